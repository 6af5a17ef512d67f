"""The ``otphub`` command. Scripts rely on its exact shape: ``--json`` prints one JSON
object on stdout, every message goes to stderr, bad input exits non-zero and changes
nothing."""

from __future__ import annotations

import asyncio
import json
import os
import sys
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, NoReturn, TypeVar

import typer
from pydantic import ValidationError

from otphub.config import Settings
from otphub.domain import dialects, errors, logins
from otphub.domain.supply import parse_markup_percent
from otphub.services import (
    accounts,
    country_names,
    database,
    disputes,
    inventory,
    operator,
    provider_accounts,
    reports,
    suppliers,
    upstream_stock,
    webhooks,
)
from otphub.services import audit as audit_service
from otphub.services import logins as login_service
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
activation_app = typer.Typer(help="Activations: what customers bought.", no_args_is_help=True)
sms_app = typer.Typer(help="SMS that providers pushed.", no_args_is_help=True)
catalog_app = typer.Typer(help="Service codes and country ids.", no_args_is_help=True)
operator_app = typer.Typer(
    help="Operators: who run the deployment from the web console's /admin.",
    no_args_is_help=True,
)
app.add_typer(provider_app, name="provider")
app.add_typer(offer_app, name="offer")
app.add_typer(number_app, name="number")
app.add_typer(customer_app, name="customer")
app.add_typer(activation_app, name="activation")
app.add_typer(sms_app, name="sms")
app.add_typer(catalog_app, name="catalog")
app.add_typer(operator_app, name="operator")

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


def emit(as_json: bool, payload: dict[str, object], human: str, *, err: bool = False) -> None:
    """``--json``: the payload on stdout; else the human text (on stderr with ``err``: a
    confirmation, not data a script reads)."""
    if as_json:
        sys.stdout.write(json.dumps(payload) + "\n")
    else:
        typer.echo(human, err=err)


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
    shown = database.shown_url(current.database_url)
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
    """Run the HTTP server (migrations are applied at start). Limits for slow clients,
    connections and proxy headers: OTPHUB_HEADER_TIMEOUT, OTPHUB_BODY_TIMEOUT,
    OTPHUB_MAX_CONNECTIONS, OTPHUB_KEEP_ALIVE_SECONDS, OTPHUB_FORWARDED_ALLOW_IPS."""
    from otphub.http.server import serve as serve_http

    async def preflight(rt: Runtime) -> None:
        """The schema, the catalog and the secret, checked here once so that a missing
        secret or an unreachable database is a one-line error, not a worker's traceback."""

    run(preflight, migrate_schema=True)
    serve_http(settings(), host=host, port=port, workers=workers)


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
    agent_url: Annotated[
        str | None,
        typer.Option(help="An SMSHub-protocol agent: the URL OTPHub posts its requests to."),
    ] = None,
    upstream_url: Annotated[
        str | None,
        typer.Option(help="An upstream sms-activate service: its full handler URL."),
    ] = None,
    upstream_key: Annotated[
        str | None, typer.Option(help="OTPHub's API key at the upstream.")
    ] = None,
    markup_percent: Annotated[
        str | None, typer.Option(help="Upstream price markup in percent, e.g. 20.")
    ] = None,
    markup: Annotated[
        str | None, typer.Option(help="Upstream price markup as an amount, e.g. 0.05.")
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON object.")] = False,
) -> None:
    """Register a provider; prints its id and key (shown once). Without --agent-url or
    --upstream-url it holds local inventory (otphub number add)."""
    if (markup_percent is not None or markup is not None) and upstream_url is None:
        fail("--markup-percent and --markup apply to an upstream (--upstream-url)")
    markup_bp = _percent(markup_percent) if markup_percent is not None else 0
    markup_amount = money(markup, allow_zero=True) if markup is not None else 0
    created = run(
        lambda rt: accounts.add_provider(
            rt,
            name=name,
            agent_url=agent_url,
            upstream_url=upstream_url,
            upstream_key=upstream_key,
            markup_bp=markup_bp,
            markup_amount=markup_amount,
        )
    )
    emit(
        as_json,
        {"id": created.id, "key": created.key},
        f"provider {created.id} created; key (shown once): {created.key}",
    )


def _percent(text: str) -> int:
    try:
        return parse_markup_percent(text)
    except ValueError as exc:
        fail(str(exc))


@provider_app.command("set")
def provider_set(
    provider_id: int,
    agent_url: Annotated[str | None, typer.Option(help="The agent's new URL.")] = None,
    upstream_url: Annotated[str | None, typer.Option(help="The upstream's new URL.")] = None,
    upstream_key: Annotated[str | None, typer.Option(help="A new key at the upstream.")] = None,
    markup_percent: Annotated[str | None, typer.Option(help="New markup in percent.")] = None,
    markup: Annotated[str | None, typer.Option(help="New markup as an amount.")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON object.")] = False,
) -> None:
    """Change how a remote provider is reached or priced."""
    given = (agent_url, upstream_url, upstream_key, markup_percent, markup)
    if all(v is None for v in given):
        fail("nothing to change: give --agent-url, --upstream-url, --upstream-key or a markup")
    markup_bp = _percent(markup_percent) if markup_percent is not None else None
    markup_amount = money(markup, allow_zero=True) if markup is not None else None
    run(
        lambda rt: suppliers.set_connection(
            rt,
            provider_id=provider_id,
            agent_url=agent_url,
            upstream_url=upstream_url,
            upstream_key=upstream_key,
            markup_bp=markup_bp,
            markup_amount=markup_amount,
        )
    )
    emit(as_json, {"id": provider_id, "changed": True}, f"provider {provider_id} changed")


@offer_app.command("set")
def offer_set(
    provider: Annotated[int, typer.Option(help="Provider id.")],
    service: Annotated[str, typer.Option(help="Service code, e.g. tg.")],
    country: Annotated[int, typer.Option(help="Country id, e.g. 0.")],
    price: Annotated[str, typer.Option(help="Customer price, e.g. 0.50.")],
    payout: Annotated[
        str | None,
        typer.Option(
            help="Provider's share; default: the whole price for a new offer, "
            "unchanged for an existing one."
        ),
    ] = None,
    ttl: Annotated[
        int | None,
        typer.Option(
            help="Seconds an activation lives; default: OTPHUB_ACTIVATION_TTL for a new "
            "offer, unchanged for an existing one."
        ),
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON object.")] = False,
) -> None:
    """Create or change an offer (provider x country x service); prints its price and payout."""
    price_minor = money(price)
    payout_minor = money(payout, allow_zero=True) if payout is not None else None

    async def use_case(rt: Runtime) -> reports.OfferRow:
        offer_id = await inventory.set_offer(
            rt,
            provider_id=provider,
            service=service,
            country_id=country,
            price=price_minor,
            payout=payout_minor,
            ttl=ttl,
        )
        return await reports.show_offer(rt, offer_id=offer_id)

    offer = run(use_case)
    emit(as_json, _offer_json(offer), _offer_line(offer), err=True)


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


DialectOption = Annotated[
    str,
    typer.Option(
        help="The shapes of answers the customer's client expects: "
        + ", ".join(dialects.ALL)
        + " (customer-api.md, Dialects)."
    ),
]


def _dialect(raw: str) -> str:
    """A dialect's name, or the refusal that names the choices (before anything runs)."""
    try:
        return dialects.checked(raw)
    except errors.InvalidInput as refusal:
        fail(str(refusal))


EmailOption = Annotated[
    str | None,
    typer.Option("--email", help="The web console's login (with --password-stdin)."),
]
PasswordStdin = Annotated[
    bool,
    typer.Option(
        "--password-stdin",
        help="Read the console password from the first line of standard input "
        f"(at least {logins.MIN_PASSWORD} characters); never from the command line.",
    ),
]


def _password_from_stdin(email: str | None, password_stdin: bool) -> str | None:
    """The password for ``--email``: both options or neither."""
    if email is None and not password_stdin:
        return None
    if email is None or not password_stdin:
        fail("--email and --password-stdin go together: the password is read from stdin")
    line = sys.stdin.readline()
    password = line.removesuffix("\n").removesuffix("\r")
    if not password:
        fail("no password on standard input (e.g. printf '%s\\n' \"$PASSWORD\" | otphub ...)")
    try:
        logins.check_password(password)
    except errors.InvalidInput as exc:
        fail(str(exc))
    return password


@customer_app.command("add")
def customer_add(
    name: str,
    balance: Annotated[str, typer.Option(help="Opening balance, e.g. 10.00.")] = "0",
    dialect: DialectOption = dialects.DEFAULT,
    email: EmailOption = None,
    password_stdin: PasswordStdin = False,
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON object.")] = False,
) -> None:
    """Create a customer; prints its id and API key (shown once). With --email and
    --password-stdin, the customer can also sign in to the web console."""
    opening = money(balance, allow_zero=True)
    spoken = _dialect(dialect)
    password = _password_from_stdin(email, password_stdin)

    async def create(rt: Runtime) -> accounts.NewCustomer:
        login = None
        if email is not None and password is not None:
            login = (logins.clean_email(email), await login_service.hash_password(password))
        return await accounts.add_customer(
            rt, name=name, balance=opening, dialect=spoken, login=login
        )

    created = run(create)
    payload: dict[str, object] = {"id": created.id, "api_key": created.api_key}
    human = f"customer {created.id} created; api_key (shown once): {created.api_key}"
    if email is not None:
        payload["email"] = logins.clean_email(email)
        human += f"; console login: {payload['email']}"
    emit(as_json, payload, human)


@customer_app.command("set")
def customer_set(
    customer_id: int,
    dialect: Annotated[
        str | None,
        typer.Option(help="The shapes of answers: " + ", ".join(dialects.ALL) + "."),
    ] = None,
    email: EmailOption = None,
    password_stdin: PasswordStdin = False,
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON object.")] = False,
) -> None:
    """Change a customer's settings: the dialect (effective from their next request), or
    their web-console login (--email with --password-stdin; their open sessions end)."""
    if dialect is None and email is None and not password_stdin:
        fail(
            "nothing to set: give --dialect " + "|".join(dialects.ALL) + ", or --email E "
            "--password-stdin"
        )
    password = _password_from_stdin(email, password_stdin)
    spoken = None if dialect is None else _dialect(dialect)
    payload: dict[str, object] = {"id": customer_id}
    said: list[str] = []

    async def change(rt: Runtime) -> None:
        # The login first: it is what may be refused (an email in use, no such customer),
        # and a refused command must change nothing. The dialect, checked already, cannot
        # be refused once the customer is known to exist.
        if email is not None and password is not None:
            login = await login_service.set_customer_login(
                rt, customer_id=customer_id, email=email, password=password
            )
            payload["email"] = login
            said.append(f"console login {login}")
        if spoken is not None:
            stored = await accounts.set_dialect(rt, customer_id=customer_id, dialect=spoken)
            payload["dialect"] = stored
            said.append(f"dialect {stored}")

    run(change)
    emit(as_json, payload, f"customer {customer_id}: " + ", ".join(said), err=True)


# ignore_unknown_options: "-5.00" must reach the amount check, not be read as an option.
@customer_app.command("topup", context_settings={"ignore_unknown_options": True})
def customer_topup(customer_id: int, amount: str) -> None:
    """Add money to a customer's wallet."""
    minor = money(amount)
    available = run(lambda rt: accounts.top_up(rt, customer_id=customer_id, amount=minor))
    typer.echo(f"customer {customer_id}: available {settings().money.format(available)}", err=True)


@operator_app.command("add")
def operator_add(
    email: Annotated[str, typer.Argument(help="The operator's login email.")],
    password_stdin: PasswordStdin = False,
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON object.")] = False,
) -> None:
    """Create an operator login for the web console's /admin (the password is read from
    the first line of standard input)."""
    if not password_stdin:
        fail("give --password-stdin and the password on standard input")
    password = _password_from_stdin(email, password_stdin)
    assert password is not None
    operator_id = run(lambda rt: login_service.add_operator(rt, email=email, password=password))
    clean = logins.clean_email(email)
    emit(
        as_json,
        {"id": operator_id, "email": clean},
        f"operator {operator_id} created: {clean} signs in at /admin",
    )


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


webhook_app = typer.Typer(
    help="Webhooks of a customer: URLs each SMS is POSTed to, signed.", no_args_is_help=True
)
customer_app.add_typer(webhook_app, name="webhook")


@webhook_app.command("add")
def webhook_add(
    customer_id: Annotated[int, typer.Argument(help="The customer id.")],
    url: Annotated[str, typer.Argument(help="An http:// or https:// URL.")],
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON object.")] = False,
) -> None:
    """Register a URL (at most 3 per customer); prints its id and signing secret (shown
    once)."""
    created = run(lambda rt: webhooks.add(rt, customer_id=customer_id, url=url))
    emit(
        as_json,
        {"id": created.id, "secret": created.secret},
        f"customer {customer_id}: webhook {created.id} added for {created.url}\n"
        f"signing secret (shown once, not again): {created.secret}",
    )


@webhook_app.command("list")
def webhook_list(
    customer_id: Annotated[int, typer.Argument(help="The customer id.")],
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON object.")] = False,
) -> None:
    """A customer's webhooks: id, URL, and how its latest delivery went."""
    found = run(lambda rt: webhooks.list_of(rt, customer_id=customer_id))
    rows = [
        {
            "id": w.id,
            "url": w.url,
            "created_at": w.created_at,
            "last_attempt_at": w.last_attempt_at,
            "last_error": w.last_error,
        }
        for w in found
    ]
    human = (
        _table(
            ("id", "url", "created", "last attempt", "last error"),
            [
                (w.id, w.url, _when(w.created_at), _when(w.last_attempt_at), w.last_error)
                for w in found
            ],
        )
        if found
        else f"customer {customer_id} has no webhooks"
    )
    emit(as_json, {"webhooks": rows}, human)


@webhook_app.command("remove")
def webhook_remove(
    webhook_id: Annotated[int, typer.Argument(help="The webhook id (see `list`).")],
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON object.")] = False,
) -> None:
    """Remove a webhook; its messages not yet delivered are dropped."""
    run(lambda rt: webhooks.remove(rt, webhook_id=webhook_id))
    emit(as_json, {"id": webhook_id, "removed": True}, f"webhook {webhook_id} removed", err=True)


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
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON object.")] = False,
) -> None:
    """Set a customer's own limits (they override OTPHUB_RATE_LIMIT and
    OTPHUB_MAX_LIVE_ACTIVATIONS) and print them; without options, only print them."""
    found = run(
        lambda rt: operator.set_limits(
            rt, customer_id=customer_id, rate_limit=rate_limit, max_live=max_live
        )
    )
    current = settings()
    rate = found.rate_limit if found.rate_limit is not None else current.rate_limit
    live = found.max_live if found.max_live is not None else current.max_live_activations
    origin = {True: "own", False: "default"}
    emit(
        as_json,
        {"id": found.id, "rate_limit": found.rate_limit, "max_live": found.max_live},
        f"customer {customer_id}: rate limit {rate or 'unlimited'} "
        f"({origin[found.rate_limit is not None]}), max live {live or 'no cap'} "
        f"({origin[found.max_live is not None]})",
        err=True,
    )


@customer_app.command("ban")
def customer_ban(
    customer_id: int,
    days: Annotated[float, typer.Option(help="How long, in days (more than 0).")] = 36500.0,
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON object.")] = False,
) -> None:
    """Ban a customer: every request answers BANNED:'<until>'. Prints the ban's end."""
    until = run(lambda rt: operator.ban(rt, customer_id=customer_id, days=days))
    emit(
        as_json,
        {"id": customer_id, "banned_until": until},
        f"customer {customer_id}: banned until {_when(until)}",
        err=True,
    )


@customer_app.command("unban")
def customer_unban(customer_id: int) -> None:
    """Lift a customer's ban."""
    run(lambda rt: accounts.set_limits(rt, customer_id=customer_id, unban=True))
    typer.echo(f"customer {customer_id}: ban lifted", err=True)


# ---------------------------------------------------------------- reading the business

JsonOption = Annotated[bool, typer.Option("--json", help="Print one JSON object.")]
LimitOption = Annotated[int, typer.Option(help="At most this many rows (1 to 1000).")]


def _when(unix: int | None) -> str:
    if unix is None:
        return "-"
    return datetime.fromtimestamp(unix, UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


def _cash(minor: int) -> str:
    return settings().money.format(minor)


def _table(headers: tuple[str, ...], rows: list[tuple[object, ...]]) -> str:
    """Aligned columns for people; scripts use --json."""
    cells = [headers, *[tuple("-" if v is None else str(v) for v in row) for row in rows]]
    widths = [max(len(r[i]) for r in cells) for i in range(len(headers))]
    return "\n".join(
        "  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip() for r in cells
    )


def _customer_json(c: reports.CustomerRow) -> dict[str, object]:
    return {
        "id": c.id,
        "name": c.name,
        "balance": _cash(c.balance),
        "held": _cash(c.held),
        "available": _cash(c.balance - c.held),
        "rate_limit": c.rate_limit,
        "max_live": c.max_live,
        "banned_until": c.banned_until,
        "active_keys": c.active_keys,
        "created_at": c.created_at,
        "dialect": c.dialect,
        "referral_code": c.referral_code,
    }


def _key_json(k: reports.KeyRow) -> dict[str, object]:
    return {"id": k.id, "hint": k.hint, "created_at": k.created_at, "revoked_at": k.revoked_at}


def _key_line(k: reports.KeyRow) -> str:
    return (
        f"key {k.id} {k.hint}... {f'revoked {_when(k.revoked_at)}' if k.revoked_at else 'active'}"
    )


@customer_app.command("list")
def customer_list(
    search: Annotated[
        str | None, typer.Option(help="Part of the name or of the email, or the id.")
    ] = None,
    limit: LimitOption = 100,
    as_json: JsonOption = False,
) -> None:
    """Customers: balance, held, available, limits, ban, active keys."""
    found = run(lambda rt: reports.list_customers(rt, search=search, limit=limit))
    emit(
        as_json,
        {"customers": [_customer_json(c) for c in found]},
        _table(
            ("id", "name", "balance", "held", "available", "rate", "max_live", "banned_until"),
            [
                (
                    c.id,
                    c.name,
                    _cash(c.balance),
                    _cash(c.held),
                    _cash(c.balance - c.held),
                    c.rate_limit,
                    c.max_live,
                    _when(c.banned_until) if c.banned_until else None,
                )
                for c in found
            ],
        ),
    )


@customer_app.command("show")
def customer_show(customer_id: int, as_json: JsonOption = False) -> None:
    """One customer: money, limits, ban, dialect, referral code and keys."""
    detail = run(lambda rt: reports.show_customer(rt, customer_id=customer_id))
    c = detail.customer
    payload = _customer_json(c) | {"keys": [_key_json(k) for k in detail.keys]}
    lines = [
        f"customer {c.id}: {c.name} (since {_when(c.created_at)})",
        f"balance {_cash(c.balance)}, held {_cash(c.held)}, available {_cash(c.balance - c.held)}",
        f"rate limit {'default' if c.rate_limit is None else c.rate_limit or 'unlimited'}, "
        f"max live {'default' if c.max_live is None else c.max_live or 'no cap'}",
        f"banned until {_when(c.banned_until)}" if c.banned_until else "not banned",
        f"dialect {c.dialect}, referral code {c.referral_code or '-'}",
        *(_key_line(k) for k in detail.keys),
    ]
    emit(as_json, payload, "\n".join(lines))


# ignore_unknown_options: "-5.00" must reach the amount check, not be read as an option.
@customer_app.command("adjust", context_settings={"ignore_unknown_options": True})
def customer_adjust(
    customer_id: int,
    amount: Annotated[str, typer.Argument(help="Signed amount, e.g. -5.00 or 2.50.")],
    reason: Annotated[str, typer.Option(help="Why (kept in the journal).")],
    as_json: JsonOption = False,
) -> None:
    """Correct a wallet with a signed, journaled amount (never below zero available)."""
    try:
        delta = settings().money.parse_signed(amount)
    except errors.InvalidAmount as exc:
        fail(str(exc))
    done = run(lambda rt: operator.adjust(rt, customer_id=customer_id, delta=delta, reason=reason))
    emit(
        as_json,
        {
            "id": customer_id,
            "adjustment": _cash(done.delta),
            "balance": _cash(done.balance),
            "available": _cash(done.available),
            "reason": done.reason,
        },
        f"customer {customer_id}: adjusted by {_cash(done.delta)}; balance "
        f"{_cash(done.balance)}, available {_cash(done.available)}",
        err=True,
    )


def _provider_json(p: reports.ProviderRow) -> dict[str, object]:
    return {
        "id": p.id,
        "name": p.name,
        "enabled": p.enabled,
        "payable": _cash(p.payable),
        "delivery_score": p.delivery_score,
        "numbers": p.numbers,
        "numbers_online": p.numbers_online,
        "offers": p.offers,
        "finished": p.finished,
        "refunded": p.refunded,
        "sms": p.sms_total,
        "sms_without_code": p.sms_without_code,
        "sms_unmatched": p.sms_unmatched,
        "created_at": p.created_at,
        # Issue 9: remote providers.
        "kind": p.kind,
        "endpoint": p.endpoint_url,
        "up": p.down_since is None,
        "down_since": p.down_since,
        "last_error": p.last_error,
        "polled_at": p.polled_at,
    }


_PROVIDER_HEADERS = (
    "id",
    "name",
    "enabled",
    "payable",
    "numbers",
    "online",
    "offers",
    "finished",
    "refunded",
    "sms",
    "no_code",
    "unmatched",
    "kind",
    "health",
    "balance_there",
)


# -- upstream providers (issue 9): OTPHub's balance there and the markup, added to the
# provider list and show (a local provider or an agent has none).
def _upstream_json(terms: upstream_stock.Terms | None) -> dict[str, object] | None:
    if terms is None:
        return None
    return {
        "balance": None if terms.remote_balance is None else _cash(terms.remote_balance),
        "markup_percent": f"{terms.markup_bp // 100}.{terms.markup_bp % 100:02d}",
        "markup": _cash(terms.markup_amount),
    }


def _upstream_line(terms: upstream_stock.Terms) -> str:
    there = "not read yet" if terms.remote_balance is None else _cash(terms.remote_balance)
    return (
        f"balance there {there}; price = cost x (1 + "
        f"{terms.markup_bp // 100}.{terms.markup_bp % 100:02d} %) + {_cash(terms.markup_amount)}, "
        "rounded up"
    )


def _health(p: reports.ProviderRow) -> str:
    """A remote provider's health for humans: up (last poll) or down since when, why."""
    if p.kind == "local":
        return "-"
    if p.down_since is not None:
        return f"down since {_when(p.down_since)}: {p.last_error or '?'}"
    return "up, never polled" if p.polled_at is None else f"up, polled {_when(p.polled_at)}"


def _provider_row(p: reports.ProviderRow) -> tuple[object, ...]:
    return (
        p.id,
        p.name,
        "yes" if p.enabled else "no",
        _cash(p.payable),
        p.numbers,
        p.numbers_online,
        p.offers,
        p.finished,
        p.refunded,
        p.sms_total,
        p.sms_without_code,
        p.sms_unmatched,
        p.kind,
        _health(p),
    )


def _balance_there(terms: upstream_stock.Terms | None) -> str:
    if terms is None or terms.remote_balance is None:
        return "-"
    return _cash(terms.remote_balance)


@provider_app.command("list")
def provider_list(as_json: JsonOption = False) -> None:
    """Providers: payable, stock, finished and refunded activations, SMS without a code."""

    async def use_case(
        rt: Runtime,
    ) -> tuple[list[reports.ProviderRow], dict[int, upstream_stock.Terms]]:
        return await reports.list_providers(rt), await upstream_stock.terms(rt)

    found, upstream_terms = run(use_case)
    emit(
        as_json,
        {
            "providers": [
                _provider_json(p) | {"upstream": _upstream_json(upstream_terms.get(p.id))}
                for p in found
            ]
        },
        _table(
            _PROVIDER_HEADERS,
            [(*_provider_row(p), _balance_there(upstream_terms.get(p.id))) for p in found],
        ),
    )


@provider_app.command("show")
def provider_show(provider_id: int, as_json: JsonOption = False) -> None:
    """One provider, with its quality counters and keys."""

    async def use_case(
        rt: Runtime,
    ) -> tuple[reports.ProviderDetail, dict[int, upstream_stock.Terms]]:
        found = await reports.show_provider(rt, provider_id=provider_id)
        return found, await upstream_stock.terms(rt, provider_id=provider_id)

    detail, upstream_terms = run(use_case)
    p = detail.provider
    terms = upstream_terms.get(p.id)
    payload = _provider_json(p) | {
        "keys": [_key_json(k) for k in detail.keys],
        "upstream": _upstream_json(terms),
    }
    lines = [
        f"provider {p.id}: {p.name} ({'enabled' if p.enabled else 'disabled'}, "
        f"since {_when(p.created_at)})",
        f"payable {_cash(p.payable)}"
        + (" (below zero: the provider owes the operator)" if p.payable < 0 else ""),
        f"numbers {p.numbers} ({p.numbers_online} online), offers {p.offers}, "
        f"delivery score {p.delivery_score}/1000",
        f"activations finished {p.finished}, refunded {p.refunded}",
        f"SMS {p.sms_total}: without a recognisable code {p.sms_without_code}, "
        f"unmatched {p.sms_unmatched}",
        *([f"{p.kind} at {p.endpoint_url}: {_health(p)}"] if p.kind != "local" else []),
        *([_upstream_line(terms)] if terms is not None else []),
        *(_key_line(k) for k in detail.keys),
    ]
    emit(as_json, payload, "\n".join(lines))


# ---------------------------------------------------------------- provider accounts

FromOption = Annotated[
    str | None,
    typer.Option("--from", help="From this day on (YYYY-MM-DD, OTPHUB_TIME_ZONE)."),
]
ToOption = Annotated[
    str | None, typer.Option("--to", help="Up to and including this day (YYYY-MM-DD).")
]


def _period_json(p: provider_accounts.Period) -> dict[str, object]:
    return {"since": p.since, "until": p.until}


@provider_app.command("stats")
def provider_stats(
    provider_id: int,
    start: FromOption = None,
    end: ToOption = None,
    as_json: JsonOption = False,
) -> None:
    """Stock by service and country, sales, success rate, median time to the first SMS,
    refunds, SMS without a code, earnings and payouts."""
    found = run(
        lambda rt: provider_accounts.stats(rt, provider_id=provider_id, start=start, end=end)
    )
    r = found.record
    payload: dict[str, object] = {
        "id": found.provider_id,
        **_period_json(found.period),
        "stock": [
            {
                "service": e.service,
                "country": e.country_id,
                "count": e.count,
                "price": None if e.price is None else _cash(e.price),
                "remote": e.remote,
            }
            for e in found.stock
        ],
        "sales": r.finished,
        "cancelled": r.cancelled,
        "success_rate": found.success_rate,
        "median_sms_seconds": r.median_sms_seconds,
        "refunds": r.refunds,
        "refunded": _cash(r.refunded),
        "clawed_back": _cash(r.clawed_back),
        "sms": r.sms_total,
        "sms_without_code": r.sms_without_code,
        "earned": _cash(r.earned),
        "payouts": _cash(r.paid_out),
        "payable": _cash(found.payable),
    }
    rate = "-" if found.success_rate is None else f"{found.success_rate * 100:.1f}%"
    median = "-" if r.median_sms_seconds is None else f"{r.median_sms_seconds} s"
    lines = [
        f"provider {found.provider_id}"
        + (f", from {_when(found.period.since)}" if found.period.since is not None else "")
        + (f", before {_when(found.period.until)}" if found.period.until is not None else ""),
        f"sales {r.finished}, cancelled {r.cancelled}, success rate {rate}, "
        f"median time to the first SMS {median}",
        f"refunds {r.refunds} ({_cash(r.refunded)} to customers, "
        f"{_cash(r.clawed_back)} taken back from the provider)",
        f"SMS {r.sms_total}, without a recognisable code {r.sms_without_code}",
        f"earned {_cash(r.earned)}, paid out {_cash(r.paid_out)}, payable now "
        f"{_cash(found.payable)}",
        "stock:",
        _table(
            ("service", "country", "count", "price", "source"),
            [
                (
                    e.service,
                    e.country_id,
                    e.count,
                    None if e.price is None else _cash(e.price),
                    "remote" if e.remote else "local",
                )
                for e in found.stock
            ],
        ),
    ]
    emit(as_json, payload, "\n".join(lines))


# ignore_unknown_options: "-5.00" must reach the amount check (and be refused there).
@provider_app.command("payout", context_settings={"ignore_unknown_options": True})
def provider_payout(
    provider_id: int,
    amount: Annotated[str, typer.Argument(help="What was paid, e.g. 25.00.")],
    note: Annotated[str | None, typer.Option(help="Kept in the journal.")] = None,
    as_json: JsonOption = False,
) -> None:
    """Record a payout to the provider (never more than it is owed)."""
    paid = money(amount)
    done = run(
        lambda rt: provider_accounts.pay_out(rt, provider_id=provider_id, amount=paid, note=note)
    )
    emit(
        as_json,
        {
            "id": done.provider_id,
            "journal_id": done.journal_id,
            "paid": _cash(done.amount),
            "payable": _cash(done.payable),
            "note": done.note,
            "created_at": done.created_at,
        },
        f"provider {done.provider_id}: paid out {_cash(done.amount)}; still owed "
        f"{_cash(done.payable)}",
        err=True,
    )


@provider_app.command("statement")
def provider_statement(
    provider_id: int,
    start: FromOption = None,
    end: ToOption = None,
    as_json: JsonOption = False,
) -> None:
    """Every movement of the provider's payable (sales, refunds, payouts) with a running
    balance, from the balance before --from."""
    found = run(
        lambda rt: provider_accounts.statement(rt, provider_id=provider_id, start=start, end=end)
    )
    payload: dict[str, object] = {
        "id": found.provider_id,
        **_period_json(found.period),
        "opening": _cash(found.opening),
        "closing": _cash(found.closing),
        "movements": [
            {
                "journal_id": line.movement.journal_id,
                "kind": line.movement.kind,
                "created_at": line.movement.created_at,
                "activation": line.movement.activation_id,
                "amount": _cash(line.movement.amount),
                "balance": _cash(line.balance),
                "note": line.movement.note,
            }
            for line in found.lines
        ],
    }
    human = "\n".join(
        [
            f"provider {found.provider_id}: opening balance {_cash(found.opening)}",
            _table(
                ("time", "kind", "activation", "amount", "balance", "note"),
                [
                    (
                        _when(line.movement.created_at),
                        line.movement.kind,
                        line.movement.activation_id,
                        _cash(line.movement.amount),
                        _cash(line.balance),
                        line.movement.note,
                    )
                    for line in found.lines
                ],
            ),
            f"closing balance {_cash(found.closing)}",
        ]
    )
    emit(as_json, payload, human)


def _offer_json(o: reports.OfferRow) -> dict[str, object]:
    return {
        "id": o.id,
        "provider": o.provider_id,
        "service": o.service,
        "country": o.country_id,
        "price": _cash(o.price),
        "payout": _cash(o.payout),
        "margin": _cash(o.price - o.payout),
        "ttl": o.ttl,
        "enabled": o.enabled,
    }


def _offer_line(o: reports.OfferRow) -> str:
    return (
        f"offer {o.id}: provider {o.provider_id}, {o.service}, country {o.country_id}, "
        f"price {_cash(o.price)}, payout {_cash(o.payout)} (margin {_cash(o.price - o.payout)})"
        f"{'' if o.enabled else ', disabled'}"
    )


@offer_app.command("list")
def offer_list(
    provider: Annotated[int | None, typer.Option(help="Provider id.")] = None,
    service: Annotated[str | None, typer.Option(help="Service code.")] = None,
    country: Annotated[int | None, typer.Option(help="Country id.")] = None,
    enabled: Annotated[
        bool | None, typer.Option("--enabled/--disabled", help="Only enabled or disabled.")
    ] = None,
    limit: LimitOption = 100,
    as_json: JsonOption = False,
) -> None:
    """Offers with their price, payout and margin."""
    found = run(
        lambda rt: reports.list_offers(
            rt,
            provider_id=provider,
            service=service,
            country_id=country,
            enabled=enabled,
            limit=limit,
        )
    )
    emit(
        as_json,
        {"offers": [_offer_json(o) for o in found]},
        _table(
            ("id", "provider", "service", "country", "price", "payout", "ttl", "enabled"),
            [
                (
                    o.id,
                    o.provider_id,
                    o.service,
                    o.country_id,
                    _cash(o.price),
                    _cash(o.payout),
                    o.ttl,
                    "yes" if o.enabled else "no",
                )
                for o in found
            ],
        ),
    )


def _offer_switch(offer_id: int, enabled: bool, as_json: bool) -> None:
    offer = run(lambda rt: operator.set_offer_enabled(rt, offer_id=offer_id, enabled=enabled))
    emit(as_json, _offer_json(offer), _offer_line(offer), err=True)


@offer_app.command("disable")
def offer_disable(offer_id: int, as_json: JsonOption = False) -> None:
    """Take an offer out of sale and out of the price lists (live activations go on)."""
    _offer_switch(offer_id, False, as_json)


@offer_app.command("enable")
def offer_enable(offer_id: int, as_json: JsonOption = False) -> None:
    """Put a disabled offer back on sale."""
    _offer_switch(offer_id, True, as_json)


def _number_json(n: reports.NumberRow) -> dict[str, object]:
    return {
        "id": n.id,
        "provider": n.provider_id,
        "country": n.country_id,
        "operator": n.operator,
        "phone": n.phone,
        "online": n.online,
        "in_use": n.in_use,
        "created_at": n.created_at,
    }


def _number_state(n: reports.NumberRow) -> str:
    return "busy" if n.in_use else "free" if n.online else "offline"


@number_app.command("list")
def number_list(
    provider: Annotated[int | None, typer.Option(help="Provider id.")] = None,
    country: Annotated[int | None, typer.Option(help="Country id.")] = None,
    operator_name: Annotated[
        str | None, typer.Option("--operator", help="Mobile operator.")
    ] = None,
    phone: Annotated[str | None, typer.Option(help="Phones starting with these digits.")] = None,
    status: Annotated[str | None, typer.Option(help="free, busy or offline.")] = None,
    limit: LimitOption = 100,
    as_json: JsonOption = False,
) -> None:
    """Numbers: free (online, no live activation), busy (in one) or offline."""
    found = run(
        lambda rt: reports.list_numbers(
            rt,
            provider_id=provider,
            country_id=country,
            operator=operator_name,
            phone_prefix=phone,
            status=status,
            limit=limit,
        )
    )
    emit(
        as_json,
        {"numbers": [_number_json(n) for n in found]},
        _table(
            ("id", "provider", "country", "operator", "phone", "status"),
            [
                (n.id, n.provider_id, n.country_id, n.operator, n.phone, _number_state(n))
                for n in found
            ],
        ),
    )


def _number_done(number: reports.NumberRow, what: str, as_json: bool) -> None:
    emit(
        as_json,
        _number_json(number),
        f"number {number.id} ({number.phone}, provider {number.provider_id}): {what}",
        err=True,
    )


@number_app.command("disable")
def number_disable(number_id: int, as_json: JsonOption = False) -> None:
    """Take a number out of sale (refused while it is in a live activation)."""
    number = run(lambda rt: operator.set_number_online(rt, number_id=number_id, online=False))
    _number_done(number, "offline", as_json)


@number_app.command("enable")
def number_enable(number_id: int, as_json: JsonOption = False) -> None:
    """Put a number back on sale (refused while it is in a live activation)."""
    number = run(lambda rt: operator.set_number_online(rt, number_id=number_id, online=True))
    _number_done(number, "online", as_json)


@number_app.command("remove")
def number_remove(number_id: int, as_json: JsonOption = False) -> None:
    """Delete a number that was never sold (otherwise: `number disable`)."""
    number = run(lambda rt: operator.remove_number(rt, number_id=number_id))
    _number_done(number, "removed", as_json)


def _activation_json(act: reports.Activation, refunded: bool) -> dict[str, object]:
    return {
        "id": act.id,
        "customer": act.customer_id,
        "provider": act.provider_id,
        "number": act.number_id,
        "service": act.service,
        "country": act.country_id,
        "operator": act.operator,
        "phone": act.phone,
        "price": _cash(act.price),
        "payout": _cash(act.payout),
        "state": act.state.value,
        "refunded": refunded,
        "code": act.code,
        "created_at": act.created_at,
        "expires_at": act.expires_at,
        "ended_at": act.ended_at,
    }


@activation_app.command("list")
def activation_list(
    customer: Annotated[int | None, typer.Option(help="Customer id.")] = None,
    provider: Annotated[int | None, typer.Option(help="Provider id.")] = None,
    state: Annotated[
        str | None,
        typer.Option(help="waiting, code, retry, finished or cancelled; several with commas."),
    ] = None,
    refunded: Annotated[
        bool | None, typer.Option("--refunded/--not-refunded", help="Only refunded or not.")
    ] = None,
    since: Annotated[
        str | None, typer.Option(help="Bought at or after: 2026-11-29[T20:30] UTC, or Unix s.")
    ] = None,
    until: Annotated[str | None, typer.Option(help="Bought before (same forms).")] = None,
    limit: LimitOption = 50,
    as_json: JsonOption = False,
) -> None:
    """Activations, newest first."""
    found = run(
        lambda rt: reports.list_activations(
            rt,
            customer_id=customer,
            provider_id=provider,
            state=state,
            refunded=refunded,
            since=since,
            until=until,
            limit=limit,
        )
    )
    emit(
        as_json,
        {"activations": [_activation_json(a.activation, a.refunded) for a in found]},
        _table(
            (
                "id",
                "bought",
                "customer",
                "provider",
                "service",
                "country",
                "phone",
                "price",
                "state",
            ),
            [
                (
                    a.activation.id,
                    _when(a.activation.created_at),
                    a.activation.customer_id,
                    a.activation.provider_id,
                    a.activation.service,
                    a.activation.country_id,
                    a.activation.phone,
                    _cash(a.activation.price),
                    a.activation.state.value + (" (refunded)" if a.refunded else ""),
                )
                for a in found
            ],
        ),
    )


@activation_app.command("show")
def activation_show(activation_id: int, as_json: JsonOption = False) -> None:
    """One activation: its state, its SMS and every journal row that moved its money."""
    detail = run(lambda rt: reports.show_activation(rt, activation_id=activation_id))
    act = detail.activation
    refund = detail.refund
    payload = _activation_json(act, refund is not None) | {
        "refund_reason": refund.note if refund else None,
        "sms": [
            {
                "id": m.id,
                "received_at": m.received_at,
                "phone_from": m.phone_from,
                "text": m.text,
                "code": m.code,
            }
            for m in detail.sms
        ],
        "journal": [
            {
                "id": j.id,
                "kind": j.kind,
                "debit": j.debit_account_id,
                "credit": j.credit_account_id,
                "amount": _cash(j.amount),
                "resolves": j.resolves_id,
                "created_at": j.created_at,
                "note": j.note,
            }
            for j in detail.journal
        ],
    }
    lines = [
        f"activation {act.id}: {act.state.value}{' (refunded)' if refund else ''}, "
        f"customer {act.customer_id}, provider {act.provider_id}",
        f"{act.service} in country {act.country_id}, number {act.number_id} {act.phone} "
        f"({act.operator}), price {_cash(act.price)}, payout {_cash(act.payout)}",
        f"bought {_when(act.created_at)}, deadline {_when(act.expires_at)}, "
        f"ended {_when(act.ended_at)}",
        *(f"sms {m.id} at {_when(m.received_at)}: {m.text!r} -> {m.code}" for m in detail.sms),
        *(
            f"journal {j.id} {j.kind} {_cash(j.amount)} from account {j.debit_account_id} "
            f"to {j.credit_account_id}{f' ({j.note})' if j.note else ''}"
            for j in detail.journal
        ),
    ]
    emit(as_json, payload, "\n".join(lines))


@activation_app.command("refund")
def activation_refund(
    activation_id: int,
    reason: Annotated[str, typer.Option(help="Why (kept in the journal).")],
    as_json: JsonOption = False,
) -> None:
    """Refund a finished activation once: the customer gets the price back, the provider's
    payable and the operator's margin go down."""
    done = run(
        lambda rt: disputes.refund_activation(rt, activation_id=activation_id, reason=reason)
    )
    emit(
        as_json,
        {
            "id": done.activation_id,
            "customer": done.customer_id,
            "provider": done.provider_id,
            "refunded": _cash(done.amount),
            "from_provider": _cash(done.clawed_back),
            "from_referrer": _cash(done.from_referrer),
            "from_margin": _cash(done.margin),
            "reason": done.reason,
        },
        f"activation {done.activation_id} refunded: {_cash(done.amount)} back to customer "
        f"{done.customer_id} ({_cash(done.clawed_back)} from provider {done.provider_id}, "
        + (f"{_cash(done.from_referrer)} from the referrer, " if done.from_referrer else "")
        + f"{_cash(done.margin)} from the margin)",
        err=True,
    )


@sms_app.command("unmatched")
def sms_unmatched(
    provider: Annotated[int | None, typer.Option(help="Provider id.")] = None,
    since: Annotated[
        str | None, typer.Option(help="Received at or after: 2026-11-29[T20:30] UTC, or Unix s.")
    ] = None,
    limit: LimitOption = 50,
    as_json: JsonOption = False,
) -> None:
    """SMS that reached no live activation, newest first."""
    found = run(
        lambda rt: reports.unmatched_sms(rt, provider_id=provider, since=since, limit=limit)
    )
    emit(
        as_json,
        {
            "sms": [
                {
                    "id": m.id,
                    "provider": m.provider_id,
                    "sms_id": m.provider_sms_id,
                    "phone": m.phone,
                    "phone_from": m.phone_from,
                    "text": m.text,
                    "received_at": m.received_at,
                }
                for m in found
            ]
        },
        _table(
            ("id", "received", "provider", "phone", "from", "text"),
            [
                (m.id, _when(m.received_at), m.provider_id, m.phone, m.phone_from, m.text)
                for m in found
            ],
        ),
    )


def _catalog(kind: str, search: str | None, as_json: bool) -> None:
    async def use_case(rt: Runtime) -> list[reports.CatalogEntry]:
        return reports.search_catalog(rt, kind=kind, search=search)

    found = run(use_case)
    emit(
        as_json,
        # Country ids are numbers in the API, service codes strings.
        {kind: [{"id": int(e.id) if kind == "countries" else e.id, "name": e.name} for e in found]},
        _table(("id", "name"), [(e.id, e.name) for e in found]),
    )


@catalog_app.command("countries")
def catalog_countries(
    search: Annotated[str | None, typer.Option(help="Part of the name, or the id.")] = None,
    as_json: JsonOption = False,
) -> None:
    """Country ids (the API's `country`) with name, ISO code and phone prefix."""
    _catalog("countries", search, as_json)


@catalog_app.command("services")
def catalog_services(
    search: Annotated[str | None, typer.Option(help="Part of the name, or the code.")] = None,
    as_json: JsonOption = False,
) -> None:
    """Service codes (the API's `service`) with their names."""
    _catalog("services", search, as_json)


alias_app = typer.Typer(
    help="Country names of the SMSHub agent protocol added by the operator.", no_args_is_help=True
)
catalog_app.add_typer(alias_app, name="alias")


@alias_app.command("add")
def alias_add(name: str, country_id: int, as_json: JsonOption = False) -> None:
    """Name a catalog country the way an agent does (e.g. `otphub catalog alias add
    britain 16`): its stock under that name is then sold."""
    added = run(lambda rt: country_names.add_alias(rt, name=name, country_id=country_id))
    emit(as_json, {"name": added, "country": country_id}, f"alias {added} -> country {country_id}")


@alias_app.command("list")
def alias_list(as_json: JsonOption = False) -> None:
    """The operator's aliases (the derived names and built-in spellings are not listed)."""
    found = run(country_names.list_aliases)
    emit(
        as_json,
        {"aliases": [{"name": n, "country": c} for n, c in found.items()]},
        _table(("name", "country"), list(found.items())),
    )


@alias_app.command("remove")
def alias_remove(name: str, as_json: JsonOption = False) -> None:
    """Forget an alias."""
    removed = run(lambda rt: country_names.remove_alias(rt, name=name))
    emit(as_json, {"name": removed, "removed": True}, f"alias {removed} removed")


def main() -> None:
    app(prog_name="otphub")
