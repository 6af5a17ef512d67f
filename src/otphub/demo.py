"""``otphub demo``: a fresh SQLite database with a simulated provider, offers for popular
services, a customer with 100.00 (with a web-console login), an operator login, and the
server running with the simulator."""

from __future__ import annotations

import asyncio
import os
import random
import secrets
from dataclasses import dataclass
from pathlib import Path

import httpx
import typer
import uvicorn

from otphub.config import Settings
from otphub.http.app import create_app
from otphub.logs import configure_logging
from otphub.services import accounts, inventory, logins
from otphub.services.runtime import Runtime, build_runtime
from otphub.workers.agent_poller import run_agent_poller
from otphub.workers.change_feed import run_change_feed
from otphub.workers.outbox import run_outbox
from otphub.workers.simulator import Simulator
from otphub.workers.sweeper import run_sweeper
from otphub.workers.upstream_follower import run_upstream_follower
from otphub.workers.upstream_poller import run_upstream_poller

DEMO_DB = Path("var/demo.db")

# country id -> (mobile number prefix, operators, how many numbers)
_NUMBERS: dict[int, tuple[str, tuple[str, ...], int]] = {
    0: ("79", ("mts", "beeline", "megafon", "tele2"), 40),  # Russia
    2: ("770", ("beeline", "kcell", "activ"), 20),  # Kazakhstan
    16: ("447", ("ee", "vodafone", "o2"), 20),  # United Kingdom
    12: ("1", ("tmobile", "verizon"), 20),  # USA (virtual)
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
    "ot": 10,  # "Any other": the simulator never sends its SMS, to show a cancel
}
# The web console's demo logins. Their passwords are new at every start (like the database):
# the demo may listen on 0.0.0.0 (--host), and a fixed password, published in this file,
# would let anyone who can reach the port top up the demo customer or sign in as operator.
DEMO_CUSTOMER_EMAIL = "demo@otphub.local"
DEMO_OPERATOR_EMAIL = "operator@otphub.local"
# The demo shortens the early-cancel window so that the cancel example needs no long wait.
DEMO_EARLY_CANCEL = 10


@dataclass(frozen=True)
class DemoSetup:
    api_key: str
    provider_id: int
    provider_key: str
    numbers: int
    customer_email: str
    customer_password: str
    operator_email: str
    operator_password: str


def new_password() -> str:
    # 16 characters of [A-Za-z0-9]: nothing a shell or a form would mangle when pasted.
    alphabet = "ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz23456789"
    return "".join(secrets.choice(alphabet) for _ in range(16))


async def seed(rt: Runtime, *, seed_value: int = 7) -> DemoSetup:
    rng = random.Random(seed_value)
    provider = await accounts.add_provider(rt, name="Simulated SIM bank")
    total = 0
    for country_id, (prefix, operators, count) in _NUMBERS.items():
        per_operator: dict[str, list[str]] = {op: [] for op in operators}
        for i in range(count):
            local_digits = (12 if country_id == 16 else 11) - len(prefix)
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
    customer_password, operator_password = new_password(), new_password()
    customer = await accounts.add_customer(
        rt,
        name="Demo customer",
        balance=rt.money.parse("100.00"),
        login=(DEMO_CUSTOMER_EMAIL, await logins.hash_password(customer_password)),
    )
    await logins.add_operator(rt, email=DEMO_OPERATOR_EMAIL, password=operator_password)
    return DemoSetup(
        api_key=customer.api_key,
        provider_id=provider.id,
        provider_key=provider.key,
        numbers=total,
        customer_email=DEMO_CUSTOMER_EMAIL,
        customer_password=customer_password,
        operator_email=DEMO_OPERATOR_EMAIL,
        operator_password=operator_password,
    )


def instructions(base: str, setup: DemoSetup, *, early_cancel: int = DEMO_EARLY_CANCEL) -> str:
    url = f"{base}/stubs/handler_api.php?api_key={setup.api_key}"
    return f"""
OTPHub demo is running at {base}
  demo customer: 100.00 USD, api_key={setup.api_key}
  simulated provider {setup.provider_id}: {setup.numbers} numbers in Russia (0),
  Kazakhstan (2), USA (12) and the United Kingdom (16); it sends the SMS ~3 s after purchase.

The web console: open {base}/login and sign in (new passwords at every start)
  as the demo customer:  email {setup.customer_email}  password {setup.customer_password}
      "Buy a number", watch its SMS arrive live, finish it, find it under "History"
  as the operator:       email {setup.operator_email}  password {setup.operator_password}
      {base}/admin: the dashboard, prices under "Offers", top-ups under "Customers"

Or the whole flow on the API (copy-paste):

  curl '{url}&action=getBalance'
  curl '{url}&action=getPrices&service=tg&country=0'
  curl '{url}&action=getNumber&service=tg&country=0'
      # -> ACCESS_NUMBER:<id>:<phone>; set ID to that id:
  ID=1
  curl "{url}&action=getStatus&id=$ID&wait=30"
      # waits for the SMS (about 3 s here, at most 30 s), then STATUS_OK:<code>
  curl "{url}&action=getStatusV2&id=$ID"
  curl "{url}&action=setStatus&status=6&id=$ID"      # finish: ACCESS_ACTIVATION
  curl '{url}&action=getBalance'                     # 99.50

  # "Any other" (ot) never gets its SMS here: buy one and cancel it for a refund.
  # A cancel is refused (EARLY_CANCEL_DENIED) for {early_cancel} s after purchase.
  curl '{url}&action=getNumberV2&service=ot&country=2'
      # -> {{"activationId": <id>, ...}}; set ID to that id:
  ID=2
  sleep {early_cancel}
  curl "{url}&action=setStatus&status=8&id=$ID"      # ACCESS_CANCEL
  curl '{url}&action=getBalance'                     # 99.50 again: the 0.10 came back

  # The same customer on the JSON API v1 (interactive docs: {base}/api/v1/docs):
  curl -H 'Authorization: Bearer {setup.api_key}' {base}/api/v1/balance
  curl -H 'Authorization: Bearer {setup.api_key}' -H 'Content-Type: application/json' \\
       -d '{{"service": "tg", "country": 0}}' {base}/api/v1/activations
      # -> {{"id": <id>, ...}}; set ID to that id, then watch its SMS arrive as events:
  curl -N -H 'Authorization: Bearer {setup.api_key}' {base}/api/v1/activations/$ID/events

Press Ctrl+C to stop.
"""


def run_demo(*, host: str, port: int) -> None:
    # The demo always runs on its own file, whatever OTPHUB_DATABASE_URL says: it starts
    # afresh every time, and must never wipe an operator's real database.
    os.environ["OTPHUB_DATABASE_URL"] = f"sqlite:///{DEMO_DB}"
    os.environ.setdefault("OTPHUB_EARLY_CANCEL", str(DEMO_EARLY_CANCEL))
    settings = Settings()
    configure_logging("warning")
    for suffix in ("", "-wal", "-shm"):
        Path(f"{DEMO_DB}{suffix}").unlink(missing_ok=True)
    rt = build_runtime(settings)

    async def prepare() -> DemoSetup:
        await rt.start()
        setup = await seed(rt)
        await rt.close()
        return setup

    setup = asyncio.run(prepare())
    base = f"http://{'127.0.0.1' if host in ('0.0.0.0', '::') else host}:{port}"  # noqa: S104
    simulator = Simulator(provider_id=setup.provider_id, key=setup.provider_key, base_url=base)

    async def announce(_rt: Runtime) -> None:
        # Print the commands only once the server answers, so that they work when pasted.
        async with httpx.AsyncClient() as client:
            while True:
                try:
                    if (await client.get(f"{base}/healthz")).status_code == 200:
                        break
                except httpx.TransportError:
                    pass
                await asyncio.sleep(0.05)
        typer.echo(instructions(base, setup, early_cancel=settings.early_cancel))

    app = create_app(
        build_runtime(settings),
        workers=(
            run_sweeper,
            run_agent_poller,
            run_outbox,
            run_upstream_poller,
            run_upstream_follower,
            run_change_feed,
            simulator.run,
            announce,
        ),
    )
    uvicorn.run(app, host=host, port=port, access_log=False, log_level="warning")
