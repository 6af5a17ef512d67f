"""``otphub provider list/show`` show an upstream's balance there and its markup (in-process,
as tests/cli does, on both databases)."""

from __future__ import annotations

import asyncio

from otphub.config import Settings
from otphub.services import suppliers, upstreams
from otphub.services.runtime import build_runtime
from tests.cli.test_cli import ok, ok_json, one_json_object, url, world
from tests.upstream.fake import FakeUpstream

__all__ = ["url", "world"]


def read_balance_there(provider_id: int) -> None:
    """What the poller does with the balance it reads (the poll is tested elsewhere)."""

    async def go() -> None:
        rt = build_runtime(Settings())
        await rt.start(migrate_schema=False)
        try:
            provider = await suppliers.remote_provider(rt, provider_id)
            assert provider is not None
            assert await upstreams.refresh_balance(rt, provider) is not None
        finally:
            await rt.close()

    asyncio.run(go())


def test_provider_show_and_list_give_markup_and_balance_there(
    url: str, world: dict[str, int], fake: FakeUpstream
) -> None:
    created = ok_json(
        "provider",
        "add",
        "Resold",
        "--upstream-url",
        fake.url,
        "--upstream-key",
        "k1",
        "--markup-percent",
        "12.5",
        "--markup",
        "0.05",
    )
    shown = one_json_object(ok("provider", "show", str(created["id"]), "--json").stdout)
    assert shown["kind"] == "upstream"
    assert shown["upstream"] == {"balance": None, "markup_percent": "12.50", "markup": "0.05"}
    human = ok("provider", "show", str(created["id"])).stdout
    assert "balance there not read yet; price = cost x (1 + 12.50 %) + 0.05, rounded up" in human
    listed = ok_json("provider", "list")["providers"]
    by_id = {p["id"]: p for p in listed}
    assert by_id[world["p"]]["upstream"] is None
    assert by_id[created["id"]]["upstream"]["markup_percent"] == "12.50"
    assert "balance_there" in ok("provider", "list").stdout
    fake.answers["getBalance"] = "ACCESS_BALANCE:7.25"
    read_balance_there(created["id"])
    shown = one_json_object(ok("provider", "show", str(created["id"]), "--json").stdout)
    assert shown["upstream"]["balance"] == "7.25"
    assert "balance there 7.25;" in ok("provider", "show", str(created["id"])).stdout
    assert "7.25" in ok("provider", "list").stdout
