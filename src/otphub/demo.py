"""``otphub demo``: a fresh SQLite database with a simulated provider, offers for popular
services, a customer with 100.00, and the server running with the simulator."""

from __future__ import annotations

import asyncio
import os
import random
from dataclasses import dataclass
from pathlib import Path

import typer
import uvicorn

from otphub.config import Settings
from otphub.http.app import create_app
from otphub.logs import configure_logging
from otphub.services import accounts, inventory
from otphub.services.runtime import Runtime, build_runtime
from otphub.workers.simulator import Simulator
from otphub.workers.sweeper import run_sweeper

DEMO_DB = Path("var/demo.db")

# country id -> (operators, how many numbers)
_NUMBERS: dict[int, tuple[tuple[str, ...], int]] = {
    0: (("mts", "beeline", "megafon", "tele2"), 40),  # Russia
    2: (("beeline", "kcell", "activ"), 20),  # Kazakhstan
    16: (("ee", "vodafone", "o2"), 20),  # United Kingdom
    12: (("tmobile", "verizon"), 20),  # USA (virtual)
}
# service -> price in minor units per country; the provider earns 80%.
_OFFERS: dict[str, int] = {
    "tg": 50,
    "wa": 65,
    "go": 40,
    "vk": 20,
    "ig": 35,
    "fb": 30,
    "ds": 25,
    "tw": 45,
    "am": 30,
    "mm": 25,
}


@dataclass(frozen=True)
class DemoSetup:
    api_key: str
    provider_id: int
    provider_key: str
    numbers: int


async def seed(rt: Runtime, *, seed_value: int = 7) -> DemoSetup:
    rng = random.Random(seed_value)
    provider = await accounts.add_provider(rt, name="Simulated SIM bank")
    total = 0
    for country_id, (operators, count) in _NUMBERS.items():
        prefix = rt.catalog.countries[country_id].phone_prefix
        per_operator: dict[str, list[str]] = {op: [] for op in operators}
        for i in range(count):
            local_digits = 11 - len(prefix)
            phone = prefix + "".join(str(rng.randrange(10)) for _ in range(local_digits))
            per_operator[operators[i % len(operators)]].append(phone)
        for operator, phones in per_operator.items():
            total += await inventory.add_numbers(
                rt, provider_id=provider.id, country_id=country_id, phones=phones, operator=operator
            )
        for service, price in _OFFERS.items():
            await inventory.set_offer(
                rt,
                provider_id=provider.id,
                service=service,
                country_id=country_id,
                price=price,
                payout=price * 8 // 10,
            )
    customer = await accounts.add_customer(
        rt, name="Demo customer", balance=rt.money.parse("100.00")
    )
    return DemoSetup(
        api_key=customer.api_key, provider_id=provider.id, provider_key=provider.key, numbers=total
    )


def instructions(base: str, setup: DemoSetup) -> str:
    url = f"{base}/stubs/handler_api.php?api_key={setup.api_key}"
    return f"""
OTPHub demo is running at {base}
  demo customer: 100.00 USD, api_key={setup.api_key}
  simulated provider {setup.provider_id}: {setup.numbers} numbers in Russia (0),
  Kazakhstan (2), USA (12) and the United Kingdom (16); it sends the SMS ~3 s after purchase.

Try the whole flow (copy-paste):

  curl '{url}&action=getBalance'
  curl '{url}&action=getPrices&service=tg&country=0'
  curl '{url}&action=getNumber&service=tg&country=0'
      # -> ACCESS_NUMBER:<id>:<phone>; set ID to that id:
  ID=1
  curl "{url}&action=getStatus&id=$ID"
      # STATUS_WAIT_CODE, then a few seconds later STATUS_OK:<code>
  curl "{url}&action=getStatusV2&id=$ID"
  curl "{url}&action=setStatus&status=6&id=$ID"      # finish: ACCESS_ACTIVATION
  curl '{url}&action=getBalance'                     # 99.50

  # buy another and cancel it (allowed 120 s after purchase, before a code arrives):
  curl '{url}&action=getNumberV2&service=wa&country=2'
  curl "{url}&action=setStatus&status=8&id=<id>"     # ACCESS_CANCEL, money back

Press Ctrl+C to stop.
"""


def run_demo(*, host: str, port: int) -> None:
    os.environ.setdefault("OTPHUB_DATABASE_URL", f"sqlite:///{DEMO_DB}")
    settings = Settings()
    configure_logging("warning")
    path = settings.sqlite_path()
    if path is None:
        raise typer.BadParameter("the demo runs on SQLite; unset OTPHUB_DATABASE_URL")
    # A fresh demo every time: the demo database is the demo's own file, nothing else.
    for suffix in ("", "-wal", "-shm"):
        Path(f"{path}{suffix}").unlink(missing_ok=True)
    rt = build_runtime(settings)

    async def prepare() -> DemoSetup:
        await rt.start()
        setup = await seed(rt)
        await rt.close()
        return setup

    setup = asyncio.run(prepare())
    base = f"http://{'127.0.0.1' if host in ('0.0.0.0', '::') else host}:{port}"  # noqa: S104
    simulator = Simulator(provider_id=setup.provider_id, key=setup.provider_key, base_url=base)
    typer.echo(instructions(base, setup))
    app = create_app(build_runtime(settings), workers=(run_sweeper, simulator.run))
    uvicorn.run(app, host=host, port=port, access_log=False, log_level="warning")
