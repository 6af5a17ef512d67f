"""``wait_for_code`` on the sms-activate protocol, without a transport: which request to
send next and what an answer means. The sync and async clients only send and sleep.

It asks ``getStatus&wait=N`` (OTPHub's long-poll: the answer comes when the status changes,
or after N seconds). A server without the extension ignores ``wait`` and answers at once;
an unchanged answer that comes back in less than half the time asked for shows it, and the
wait goes on by polling every ``interval`` seconds (remembered by the client, so its next
waits poll at once).
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass

from otphub.client import errors, protocol
from otphub.client.results import State, Status

# Below this many seconds left, a long-poll is not worth telling apart from a poll.
MIN_LONG_POLL = 2


@dataclass(frozen=True)
class Step:
    call: protocol.Call[Status]
    pause: float  # seconds to sleep before sending it


class CodeWait:
    def __init__(
        self,
        activation_id: int,
        *,
        timeout: float,
        interval: float,
        long_poll: bool | None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.activation_id = activation_id
        self.timeout = timeout
        self.interval = max(0.0, interval)
        # None: not known yet; False: the server answers wait= at once (polling).
        self.long_poll = long_poll
        self._clock = clock
        self._deadline = clock() + timeout
        self._pause = 0.0
        self._asked = 0  # the wait= of the request in flight
        self._sent_at = 0.0
        self._last: str | None = None

    def step(self) -> Step:
        """The next request; raises ``WaitTimeout`` when the time is up."""
        remaining = self._deadline - self._clock()
        if remaining <= 0:
            raise errors.WaitTimeout(self.activation_id, self.timeout)
        pause = min(self._pause, remaining)
        remaining -= pause
        if self.long_poll is not False and remaining >= MIN_LONG_POLL:
            self._asked = min(protocol.MAX_WAIT, math.floor(remaining))
        else:
            self._asked = 0
        self._sent_at = self._clock() + pause
        return Step(protocol.get_status(self.activation_id, wait=self._asked or None), pause)

    def seen(self, status: Status) -> str | None:
        """The code when the answer has one; raises ``ActivationCancelled`` when it ended."""
        if status.state is State.CODE and status.code is not None:
            return status.code
        if status.state in (State.CANCELLED, State.FINISHED):
            raise errors.ActivationCancelled(
                status.answer,
                "the activation was cancelled or finished before a code came",
                activation_id=self.activation_id,
            )
        took = self._clock() - self._sent_at
        unchanged = self._last is None or status.answer == self._last
        if self._asked:
            if unchanged and took < self._asked / 2:
                self.long_poll = False  # wait= ignored: the server answered at once
            else:
                self.long_poll = True
        self._last = status.answer
        self._pause = 0.0 if self.long_poll and self._asked else self.interval
        return None

    def throttled(self, retry_after: float | None) -> None:
        """A 429 (the wait goes on after the server's Retry-After, or the interval)."""
        self._pause = max(self.interval, retry_after or 0.0, 1.0)
