"""``/admin/customers``: finding customers and adding one (with its first API key, shown
once, and an optional console login); one customer's balance, top-up and adjustment,
limits, ban, and recent activations with their refund. Money and limits go through the
same services as the shell's commands (accounts, logins, operator, disputes)."""

from __future__ import annotations

from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from otphub.domain import dialects, errors, logins
from otphub.domain.activation import State
from otphub.http.console.admin.common import actor, change, optional_int, path_id, query
from otphub.http.console.web import Visit, not_found, operator_page, render
from otphub.services import accounts, disputes, operator, reports
from otphub.services import logins as login_service

PAGE = 100
RECENT = 50


# The new-customer form's fields shown again after a refusal: never the password.
KEPT_FIELDS = ("name", "balance", "dialect", "email")


async def _customers_page(
    visit: Visit,
    *,
    created: accounts.NewCustomer | None = None,
    email: str | None = None,
    error: str | None = None,
    status_code: int = 200,
) -> Response:
    search = query(visit, "q")
    found = await reports.list_customers(visit.rt, search=search or None, limit=PAGE + 1)
    return render(
        visit,
        "admin/customers.html",
        status_code=status_code,
        customers=found[:PAGE],
        more=len(found) > PAGE,
        q=search,
        now=visit.rt.clock.now(),
        dialects=dialects.ALL,
        default_dialect=dialects.DEFAULT,
        min_password=logins.MIN_PASSWORD,
        created=created,
        email=email,
        error=error,
        form={name: visit.field(name) for name in KEPT_FIELDS} if error else {},
    )


@operator_page
async def customers(visit: Visit) -> Response:
    """The list; its POST is the new-customer form, answered on this page (never by a
    redirect): the first API key exists in clear only in this answer."""
    if visit.request.method == "GET":
        return await _customers_page(visit)
    try:
        created, email = await _add_customer(visit)
    except (errors.InvalidInput, errors.NotFound) as refusal:
        return await _customers_page(visit, error=f"Not done: {refusal}", status_code=400)
    return await _customers_page(visit, created=created, email=email)


async def _add_customer(visit: Visit) -> tuple[accounts.NewCustomer, str | None]:
    """`otphub customer add` from a form: a name, an opening balance, a dialect and, with an
    email and a password together, a console login. Returns the customer and its email."""
    rt = visit.rt
    balance = visit.field("balance").strip()
    opening = rt.money.parse(balance, allow_zero=True) if balance else 0
    spoken = dialects.checked(visit.field("dialect").strip() or dialects.DEFAULT)
    email, password = visit.field("email").strip(), visit.field("password")
    login = None
    if email or password:
        if not (email and password):
            raise errors.InvalidInput("a console login needs both an email and a password")
        clean = logins.clean_email(email)
        login = (clean, await login_service.hash_password(password))
    created = await accounts.add_customer(
        rt, name=visit.field("name"), balance=opening, dialect=spoken, login=login, by=actor(visit)
    )
    return created, None if login is None else login[0]


@operator_page
async def customer(visit: Visit) -> Response:
    customer_id = path_id(visit)
    try:
        detail = await reports.show_customer(visit.rt, customer_id=customer_id)
    except errors.NotFound:
        return not_found(visit)
    recent = await reports.list_activations(
        visit.rt,
        customer_id=customer_id,
        provider_id=None,
        state=None,
        refunded=None,
        since=None,
        until=None,
        limit=RECENT,
    )
    settings = visit.rt.settings
    return render(
        visit,
        "admin/customer.html",
        c=detail.customer,
        keys=detail.keys,
        recent=recent,
        finished=State.FINISHED,
        now=visit.rt.clock.now(),
        default_rate=settings.rate_limit,
        default_live=settings.max_live_activations,
    )


def _here(customer_id: int) -> str:
    return f"/admin/customers/{customer_id}"


@operator_page
async def top_up(visit: Visit) -> Response:
    customer_id = path_id(visit)

    async def do() -> str:
        rt = visit.rt
        amount = rt.money.parse(visit.field("amount").strip())
        available = await accounts.top_up(
            rt, customer_id=customer_id, amount=amount, by=actor(visit)
        )
        return f"Topped up {rt.money.format(amount)}; available now {rt.money.format(available)}."

    return await change(visit, _here(customer_id), do)


@operator_page
async def adjust(visit: Visit) -> Response:
    customer_id = path_id(visit)

    async def do() -> str:
        rt = visit.rt
        delta = rt.money.parse_signed(visit.field("delta").strip())
        done = await operator.adjust(
            rt,
            customer_id=customer_id,
            delta=delta,
            reason=visit.field("reason"),
            by=actor(visit),
        )
        return (
            f"Adjusted by {rt.money.format(done.delta)}; available now "
            f"{rt.money.format(done.available)}."
        )

    return await change(visit, _here(customer_id), do)


@operator_page
async def limits(visit: Visit) -> Response:
    customer_id = path_id(visit)

    async def do() -> str:
        rate = optional_int(visit.field("rate_limit"), what="the rate limit")
        live = optional_int(visit.field("max_live"), what="the live activations cap")
        if rate is None and live is None:
            raise errors.InvalidInput("give a rate limit, a live activations cap or both")
        await operator.set_limits(
            visit.rt, customer_id=customer_id, rate_limit=rate, max_live=live, by=actor(visit)
        )
        return "Limits saved."

    return await change(visit, _here(customer_id), do)


@operator_page
async def ban(visit: Visit) -> Response:
    customer_id = path_id(visit)

    async def do() -> str:
        text = visit.field("days").strip() or "36500"
        try:
            days = float(text)
        except ValueError:
            raise errors.InvalidInput(f"the days must be a number, not {text!r}") from None
        until = await operator.ban(visit.rt, customer_id=customer_id, days=days, by=actor(visit))
        return f"Banned until {visit.rt.timestamp(until)}."

    return await change(visit, _here(customer_id), do)


@operator_page
async def unban(visit: Visit) -> Response:
    customer_id = path_id(visit)

    async def do() -> str:
        await accounts.ban_customer(visit.rt, customer_id=customer_id, until=None, by=actor(visit))
        return "Ban lifted."

    return await change(visit, _here(customer_id), do)


@operator_page
async def refund(visit: Visit) -> Response:
    activation_id = path_id(visit)
    back = visit.field("back")
    back = back if back.startswith("/admin/customers/") else "/admin/customers"

    async def do() -> str:
        rt = visit.rt
        done = await disputes.refund_activation(
            rt, activation_id=activation_id, reason=visit.field("reason"), by=actor(visit)
        )
        return (
            f"Activation {done.activation_id} refunded: {rt.money.format(done.amount)} back "
            f"to customer {done.customer_id}."
        )

    return await change(visit, back, do)


def routes() -> list[BaseRoute]:
    one = "/admin/customers/{id:int}"
    return [
        Route("/admin/customers", customers, methods=["GET", "POST"]),
        Route(one, customer, methods=["GET"]),
        Route(one + "/topup", top_up, methods=["POST"]),
        Route(one + "/adjust", adjust, methods=["POST"]),
        Route(one + "/limits", limits, methods=["POST"]),
        Route(one + "/ban", ban, methods=["POST"]),
        Route(one + "/unban", unban, methods=["POST"]),
        Route("/admin/activations/{id:int}/refund", refund, methods=["POST"]),
    ]
