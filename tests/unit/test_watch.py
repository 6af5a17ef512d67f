"""``changes.Watch``: the wait of a waiting request (``wait=``, event streams), no database."""

from __future__ import annotations

import asyncio

from otphub.services.changes import Watch


def test_a_wake_while_the_timeout_is_expiring_is_kept_and_raises_nothing() -> None:
    """The wait's own deadline fired, the task not yet resumed, and a change comes: the
    wake must neither raise (it runs after a commit: seen failing, a stored SMS answered
    503 to its agent) nor be lost."""

    async def scenario() -> bool:
        watch = Watch()
        waiting = asyncio.create_task(watch.wait(30))
        await asyncio.sleep(0)  # the task is in its wait
        timeout = watch._timeout
        assert timeout is not None
        timeout._on_timeout()  # type: ignore[attr-defined]  # the deadline fires now
        assert timeout.expired()
        watch.wake()
        return await waiting

    assert asyncio.run(scenario()) is True


def test_a_wake_ends_the_wait_at_once_and_a_timeout_ends_it_unwoken() -> None:
    async def scenario() -> tuple[bool, bool, bool]:
        loop = asyncio.get_running_loop()
        woken = Watch()
        loop.call_later(0.01, woken.wake)
        started = loop.time()
        first = await woken.wait(30)
        assert loop.time() - started < 5
        again = await woken.wait(30)  # woken stays woken: look again
        quiet = await Watch().wait(0.01)
        return first, again, quiet

    assert asyncio.run(scenario()) == (True, True, False)


def test_a_client_gone_ends_the_wait_and_says_so() -> None:
    async def scenario() -> tuple[bool, bool]:
        messages = [{"type": "http.request", "body": b"", "more_body": False}]

        async def receive() -> dict[str, object]:
            if messages:
                return messages.pop()
            await asyncio.sleep(0.01)
            return {"type": "http.disconnect"}

        watch = Watch()
        woken = await watch.wait(30, receive=receive)
        return woken, watch.gone

    assert asyncio.run(scenario()) == (False, True)
