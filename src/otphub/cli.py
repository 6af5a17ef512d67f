"""The ``otphub`` command. Scripts rely on its exact shape: ``--json`` prints one JSON
object on stdout, every message goes to stderr, bad input exits non-zero and changes
nothing."""

from __future__ import annotations

import asyncio
import json
import os
import sys
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Annotated, NoReturn, TypeVar

import typer
from pydantic import ValidationError
from sqlalchemy.engine import make_url

from otphub.config import Settings
from otphub.domain import errors
from otphub.services import accounts, inventory
from otphub.services import audit as audit_service
from otphub.services.backup import backup_sqlite
from otphub.services.runtime import Runtime, build_runtime

app = typer.Typer(
    help="OTPHub: an SMS-activation server (sms-activate protocol).",
    no_args_is_help=True,
    add_completion=False,
)
provider_app = typer.Typer(help="Providers: the owners of SIM banks.", no_args_is_help=True)
offer_app = typer.Typer(help="Offers: what a provider sells, at what price.", no_args_is_help=True)
number_app = typer.Typer(help="Numbers: the SIMs of a provider.", no_args_is_help=True)
customer_app = typer.Typer(help="Customers: who buys activations.", no_args_is_help=True)
app.add_typer(provider_app, name="provider")
app.add_typer(offer_app, name="offer")
app.add_typer(number_app, name="number")
app.add_typer(customer_app, name="customer")

T = TypeVar("T")


def fail(message: str) -> NoReturn:
    typer.echo(f"error: {message}", err=True)
    raise typer.Exit(code=1)


def settings() -> Settings:
    try:
        return Settings()
    except ValidationError as exc:
        problems = "; ".join(
            f"OTPHUB_{'_'.join(str(p) for p in e['loc']).upper()}: {e['msg']}" for e in exc.errors()
        )
        fail(f"bad setting: {problems}")


def run(use_case: Callable[[Runtime], Awaitable[T]], *, migrate_schema: bool = False) -> T:
    """Open the database, run one use case, close. Refusals become one-line errors."""
    current = settings()
    path = current.sqlite_path()
    if not migrate_schema and path is not None and not path.exists():
        # Do not leave an empty database file behind a mistyped path.
        fail(f"no database at {path}; run `otphub init` first")

    async def main() -> T:
        rt = build_runtime(current)
        try:
            await rt.start(migrate_schema=migrate_schema)
            return await use_case(rt)
        finally:
            await rt.close()

    try:
        return asyncio.run(main())
    except (errors.OTPHubError, ValueError) as exc:
        fail(str(exc) or type(exc).__name__)
    except Exception as exc:  # database unreachable, schema missing, ...
        hint = " (run `otphub init` first?)" if "no such table" in str(exc) else ""
        fail(f"{type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}{hint}")


def emit(as_json: bool, payload: dict[str, object], human: str) -> None:
    if as_json:
        sys.stdout.write(json.dumps(payload) + "\n")
    else:
        typer.echo(human)


def money(text: str, *, allow_zero: bool = False) -> int:
    try:
        return settings().money.parse(text, allow_zero=allow_zero)
    except errors.InvalidAmount as exc:
        fail(str(exc))


@app.callback()
def root(
    database_url: Annotated[
        str | None,
        typer.Option("--database-url", help="Overrides OTPHUB_DATABASE_URL.", show_default=False),
    ] = None,
) -> None:
    if database_url:
        os.environ["OTPHUB_DATABASE_URL"] = database_url


@app.command()
def init() -> None:
    """Create or upgrade the database and load the catalog."""

    async def use_case(rt: Runtime) -> tuple[int, int, bool]:
        return len(rt.catalog.services), len(rt.catalog.countries), rt.secret_created

    service_count, country_count, secret_created = run(use_case, migrate_schema=True)
    current = settings()
    shown = make_url(current.database_url).render_as_string(hide_password=True)
    typer.echo(
        f"database ready: {shown} ({service_count} services, {country_count} countries)",
        err=True,
    )
    # Keys are stored as HMAC(secret, key): say where the secret is, every time.
    where = (
        "OTPHUB_SECRET"
        if current.secret is not None
        else f"{current.secret_path().absolute()}{' (generated now)' if secret_created else ''}"
    )
    typer.echo(
        f"server secret: {where}; every node and every backup needs this secret "
        "(without it no key works): keep it with your backups",
        err=True,
    )


@app.command()
def serve(
    host: Annotated[str, typer.Option(help="Address to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="TCP port.")] = 8000,
    workers: Annotated[int, typer.Option(help="Server processes.", min=1)] = 1,
) -> None:
    """Run the HTTP server (migrations are applied at start)."""
    import uvicorn

    current = settings()
    uvicorn.run(
        "otphub.http.asgi:build",
        factory=True,
        host=host,
        port=port,
        workers=workers,
        access_log=False,  # keys travel in query strings: never log request lines
        log_level=current.log_level.lower(),
        timeout_graceful_shutdown=10,
    )


@app.command()
def demo(
    port: Annotated[int, typer.Option(help="TCP port.")] = 8000,
    host: Annotated[str, typer.Option(help="Address to listen on.")] = "127.0.0.1",
) -> None:
    """Serve a demo: a fresh SQLite file with a simulated provider and a funded customer."""
    from otphub.demo import run_demo

    run_demo(host=host, port=port)


@provider_app.command("add")
def provider_add(
    name: str,
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON object.")] = False,
) -> None:
    """Register a provider; prints its id and key (shown once)."""
    created = run(lambda rt: accounts.add_provider(rt, name=name))
    emit(
        as_json,
        {"id": created.id, "key": created.key},
        f"provider {created.id} created; key (shown once): {created.key}",
    )


@offer_app.command("set")
def offer_set(
    provider: Annotated[int, typer.Option(help="Provider id.")],
    service: Annotated[str, typer.Option(help="Service code, e.g. tg.")],
    country: Annotated[int, typer.Option(help="Country id, e.g. 0.")],
    price: Annotated[str, typer.Option(help="Customer price, e.g. 0.50.")],
    payout: Annotated[
        str | None, typer.Option(help="Provider's share; default: the whole price.")
    ] = None,
    ttl: Annotated[
        int | None,
        typer.Option(help="Seconds an activation lives; default: OTPHUB_ACTIVATION_TTL."),
    ] = None,
) -> None:
    """Create or change an offer (provider x country x service)."""
    price_minor = money(price)
    payout_minor = money(payout, allow_zero=True) if payout is not None else None
    offer_id = run(
        lambda rt: inventory.set_offer(
            rt,
            provider_id=provider,
            service=service,
            country_id=country,
            price=price_minor,
            payout=payout_minor,
            ttl=ttl,
        )
    )
    typer.echo(
        f"offer {offer_id}: provider {provider}, {service}, country {country}, price {price}",
        err=True,
    )


@number_app.command("add")
def number_add(
    phones: Annotated[list[str], typer.Argument(help="Phone numbers with country code.")],
    provider: Annotated[int, typer.Option(help="Provider id.")],
    country: Annotated[int, typer.Option(help="Country id.")],
    operator: Annotated[str | None, typer.Option(help="Mobile operator, e.g. mts.")] = None,
) -> None:
    """Register numbers of a provider."""
    added = run(
        lambda rt: inventory.add_numbers(
            rt, provider_id=provider, country_id=country, phones=phones, operator=operator
        )
    )
    typer.echo(f"{added} numbers added ({len(phones) - added} known already)", err=True)


@customer_app.command("add")
def customer_add(
    name: str,
    balance: Annotated[str, typer.Option(help="Opening balance, e.g. 10.00.")] = "0",
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON object.")] = False,
) -> None:
    """Create a customer; prints its id and API key (shown once)."""
    opening = money(balance, allow_zero=True)
    created = run(lambda rt: accounts.add_customer(rt, name=name, balance=opening))
    emit(
        as_json,
        {"id": created.id, "api_key": created.api_key},
        f"customer {created.id} created; api_key (shown once): {created.api_key}",
    )


# ignore_unknown_options: "-5.00" must reach the amount check, not be read as an option.
@customer_app.command("topup", context_settings={"ignore_unknown_options": True})
def customer_topup(customer_id: int, amount: str) -> None:
    """Add money to a customer's wallet."""
    minor = money(amount)
    available = run(lambda rt: accounts.top_up(rt, customer_id=customer_id, amount=minor))
    typer.echo(f"customer {customer_id}: available {settings().money.format(available)}", err=True)


@app.command()
def audit() -> None:
    """Recompute every balance from the journal; exit 1 naming what is wrong."""
    report = run(audit_service.audit)
    cur = settings().money
    t = report.totals
    typer.echo(
        f"wallets {cur.format(t['wallets'])} (held {cur.format(t['held'])}), "
        f"provider payables {cur.format(t['payables'])}, revenue {cur.format(t['revenue'])}, "
        f"external {cur.format(t['external'])}",
        err=True,
    )
    if not report.clean:
        for problem in report.problems:
            typer.echo(f"AUDIT FAILED: {problem}", err=True)
        raise typer.Exit(code=1)
    typer.echo("audit clean", err=True)


@app.command()
def backup(
    path: Annotated[Path, typer.Argument(help="Where to write the copy (must not exist).")],
) -> None:
    """Online, consistent copy of the SQLite database (PostgreSQL: use pg_dump)."""
    try:
        counts = backup_sqlite(settings(), path)
    except errors.OTPHubError as exc:
        fail(str(exc))
    summary = ", ".join(f"{n} {table}" for table, n in counts.items())
    typer.echo(f"backup written to {path} ({summary}); integrity check ok", err=True)


# ---------------------------------------------------------------- keys and limits


def _key_commands(kind: accounts.OwnerKind) -> typer.Typer:
    keys_app = typer.Typer(help=f"API keys of a {kind}: add, revoke, list.", no_args_is_help=True)

    @keys_app.command("add")
    def key_add(
        owner_id: Annotated[int, typer.Argument(help="The customer or provider id.")],
        as_json: Annotated[bool, typer.Option("--json", help="Print one JSON object.")] = False,
    ) -> None:
        """Issue another key (shown once). The old keys keep working until revoked."""
        created = run(lambda rt: accounts.add_key(rt, kind=kind, owner_id=owner_id))
        field = "api_key" if kind == "customer" else "key"
        emit(
            as_json,
            {"id": created.id, field: created.key},
            f"{kind} {owner_id}: key {created.id} (shown once): {created.key}",
        )

    @keys_app.command("revoke")
    def key_revoke(
        key: Annotated[
            str,
            typer.Argument(
                help="The key's id (see `list`). The key itself works too, but then it is "
                "in your shell history and the process list: prefer the id."
            ),
        ],
    ) -> None:
        """Revoke a key by its id; every server process refuses it from the next request on."""
        info = run(lambda rt: accounts.revoke_key(rt, kind=kind, key=key))
        typer.echo(f"{kind} key {info.id} ({info.hint}...) revoked", err=True)

    @keys_app.command("list")
    def key_list(
        owner_id: Annotated[int, typer.Argument(help="The customer or provider id.")],
        as_json: Annotated[bool, typer.Option("--json", help="Print one JSON object.")] = False,
    ) -> None:
        """The keys of a customer or provider: id, first characters, state."""
        found = run(lambda rt: accounts.list_keys(rt, kind=kind, owner_id=owner_id))
        rows = [
            {"id": k.id, "hint": k.hint, "created_at": k.created_at, "revoked_at": k.revoked_at}
            for k in found
        ]
        human = "\n".join(
            f"{k.id}\t{k.hint}...\t{'revoked' if k.revoked_at else 'active'}" for k in found
        )
        emit(as_json, {"keys": rows}, human)

    return keys_app


customer_app.add_typer(_key_commands("customer"), name="key")
provider_app.add_typer(_key_commands("provider"), name="key")


@customer_app.command("limits")
def customer_limits(
    customer_id: int,
    rate_limit: Annotated[
        int | None,
        typer.Option(help="Requests per second per key; 0 = unlimited; default: the setting."),
    ] = None,
    max_live: Annotated[
        int | None, typer.Option(help="Live activations at most; 0 = no cap.")
    ] = None,
) -> None:
    """Set a customer's own limits (they override OTPHUB_RATE_LIMIT and
    OTPHUB_MAX_LIVE_ACTIVATIONS)."""
    run(
        lambda rt: accounts.set_limits(
            rt, customer_id=customer_id, rate_limit=rate_limit, max_live=max_live
        )
    )
    typer.echo(f"customer {customer_id}: limits set", err=True)


@customer_app.command("ban")
def customer_ban(
    customer_id: int,
    days: Annotated[float, typer.Option(help="How long, in days.", min=0.0)] = 36500.0,
) -> None:
    """Ban a customer: every request answers BANNED:'<until>'."""

    async def use_case(rt: Runtime) -> None:
        until = rt.clock.now() + int(days * 86400)
        await accounts.set_limits(rt, customer_id=customer_id, banned_until=until)

    run(use_case)
    typer.echo(f"customer {customer_id}: banned", err=True)


@customer_app.command("unban")
def customer_unban(customer_id: int) -> None:
    """Lift a customer's ban."""
    run(lambda rt: accounts.set_limits(rt, customer_id=customer_id, unban=True))
    typer.echo(f"customer {customer_id}: ban lifted", err=True)


def main() -> None:
    app(prog_name="otphub")
