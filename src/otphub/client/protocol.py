"""The sms-activate protocol without a transport: each action is a ``Call`` (the query
parameters and the parser of its answer). ``SmsActivateClient`` and
``AsyncSmsActivateClient`` only send them.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any, Generic, TypeVar

from otphub.client import errors
from otphub.client.answers import (
    Answer,
    as_bool,
    as_decimal,
    as_dict,
    as_int,
    as_int_or_none,
    as_list,
    as_str,
    as_str_or_none,
    decimal_or_none,
    load_json,
    refusal,
)
from otphub.client.results import (
    ActiveActivation,
    Country,
    FullSms,
    HistoryEntry,
    Number,
    NumberV2,
    Price,
    Service,
    Sms,
    State,
    Status,
    StatusV2,
    TopCountry,
)

T = TypeVar("T")

HANDLER_PATH = "/stubs/handler_api.php"
MAX_WAIT = 60  # the longest wait= a server of this protocol holds a request (OTPHub's limit)

# setStatus values.
READY, RETRY, FINISH, CANCEL = 1, 3, 6, 8


@dataclass(frozen=True)
class Call(Generic[T]):
    """One request of the protocol: its parameters (without the key) and how to read its
    answer. ``wait`` is how long the server may hold it (added to the read timeout);
    ``empty`` is the value of a refusal that means "nothing" (``NO_ACTIVATIONS``)."""

    params: dict[str, str]
    parse: Callable[[str], T]
    wait: float = 0
    empty_on: str | None = None
    empty: Callable[[], T] | None = field(default=None)

    def result(self, answer: Answer) -> T:
        problem = refusal(answer)
        if problem is not None:
            if (
                self.empty is not None
                and isinstance(problem, errors.ProtocolError)
                and problem.name == self.empty_on
            ):
                return self.empty()
            raise problem
        return self.parse(answer.text)


def handler_url(base_url: str) -> str:
    """The handler's URL from a base URL given with or without the handler's path."""
    url = base_url.rstrip("/")
    if url.endswith("/handler_api.php"):
        return url
    return url + HANDLER_PATH


def _params(action: str, **values: Any) -> dict[str, str]:
    """The query of an action: None left out, lists comma-joined, booleans 1/0."""
    query = {"action": action}
    for name, value in values.items():
        if value is None:
            continue
        if isinstance(value, bool):
            query[name] = "1" if value else "0"
        elif isinstance(value, str):
            query[name] = value
        elif isinstance(value, Iterable):
            query[name] = ",".join(str(item) for item in value)
        else:
            query[name] = str(value)
    return query


def _after(prefix: str, text: str) -> str:
    if not text.startswith(prefix):
        raise errors.UnexpectedAnswer(f"expected {prefix}...", body=text)
    return text[len(prefix) :]


def _json_dict(text: str, what: str) -> dict[str, Any]:
    value = load_json(text)
    _raise_json_error(value)
    return as_dict(value, what)


def _raise_json_error(value: Any) -> None:
    """Some services answer a JSON action's refusal as ``{"status": "error", ...}``."""
    if isinstance(value, dict) and value.get("status") == "error":
        word = value.get("error") or value.get("message") or "ERROR"
        raise errors.error_for(str(word))


# ---------------------------------------------------------------- balance, purchase


def _balance(text: str) -> Decimal:
    return as_decimal(_after("ACCESS_BALANCE:", text), "balance")


def get_balance() -> Call[Decimal]:
    return Call(_params("getBalance"), _balance)


def _number(text: str) -> Number:
    activation_id, sep, phone = _after("ACCESS_NUMBER:", text).partition(":")
    if not sep or not phone:
        raise errors.UnexpectedAnswer("expected ACCESS_NUMBER:<id>:<phone>", body=text)
    return Number(as_int(activation_id, "activation id"), phone)


Many = str | Iterable[str | int] | None


@dataclass(frozen=True)
class Purchase:
    """The filters of a purchase (getNumber and getNumberV2's parameters)."""

    service: str
    country: int = 0
    operator: Many = None
    max_price: Decimal | str | None = None
    provider_ids: Iterable[int] | None = None
    except_provider_ids: Iterable[int] | None = None
    phone_exception: Many = None
    ref: str | None = None

    def params(self, action: str, **more: Any) -> dict[str, str]:
        return _params(
            action,
            service=self.service,
            country=self.country,
            operator=self.operator,
            maxPrice=self.max_price,
            providerIds=self.provider_ids,
            exceptProviderIds=self.except_provider_ids,
            phoneException=self.phone_exception,
            ref=self.ref,
            **more,
        )


def get_number(purchase: Purchase) -> Call[Number]:
    return Call(purchase.params("getNumber"), _number)


def _number_v2(text: str) -> NumberV2:
    row = _json_dict(text, "getNumberV2 answer")
    return NumberV2(
        activation_id=as_int(row.get("activationId"), "activationId"),
        phone=as_str(row.get("phoneNumber"), "phoneNumber"),
        cost=as_decimal(row.get("activationCost"), "activationCost"),
        currency=as_int(row.get("currency", 0), "currency"),
        country=as_int(row.get("countryCode", 0), "countryCode"),
        country_phone_code=as_int_or_none(row.get("countryPhoneCode")),
        can_get_another_sms=as_bool(row.get("canGetAnotherSms", True)),
        activation_time=as_str_or_none(row.get("activationTime")),
        activation_end_time=as_str_or_none(row.get("activationEndTime")),
        operator=as_str(row.get("activationOperator") or "any"),
    )


def get_number_v2(purchase: Purchase, order_id: str | None = None) -> Call[NumberV2]:
    return Call(purchase.params("getNumberV2", orderId=order_id), _number_v2)


# ---------------------------------------------------------------- an activation


def parse_status(text: str) -> Status:
    word, sep, code = text.partition(":")
    if word == "STATUS_WAIT_CODE" and not sep:
        return Status(State.WAITING, None, text)
    if word == "STATUS_OK" and sep:
        return Status(State.CODE, code, text)
    if word == "STATUS_WAIT_RETRY":
        return Status(State.RETRY, code or None, text)
    if word == "STATUS_WAIT_RESEND" and not sep:  # other services: like a retry
        return Status(State.RETRY, None, text)
    if word == "STATUS_CANCEL" and not sep:
        return Status(State.CANCELLED, None, text)
    raise errors.UnexpectedAnswer("not a getStatus answer", body=text)


def _wait(wait: float | None) -> int | None:
    return None if not wait else max(0, min(MAX_WAIT, int(wait)))


def get_status(activation_id: int, *, wait: float | None = None) -> Call[Status]:
    """``wait`` (OTPHub's extension, 0–60 s): answer as soon as the status changes."""
    seconds = _wait(wait)
    return Call(_params("getStatus", id=activation_id, wait=seconds), parse_status, seconds or 0)


def _status_v2(text: str) -> StatusV2:
    if text == "STATUS_CANCEL":
        return StatusV2(sms=None, call=None, cancelled=True)
    body = _json_dict(text, "getStatusV2 answer")
    sms = body.get("sms")
    call = body.get("call")
    return StatusV2(
        sms=None
        if sms is None
        else Sms(
            date_time=as_str_or_none(as_dict(sms, "sms").get("dateTime")),
            code=as_str_or_none(sms.get("code")),
            text=as_str_or_none(sms.get("text")),
        ),
        call=call if isinstance(call, dict) else None,
        verification_type=as_int(body.get("verificationType", 0)),
    )


def get_status_v2(activation_id: int, *, wait: float | None = None) -> Call[StatusV2]:
    seconds = _wait(wait)
    return Call(_params("getStatusV2", id=activation_id, wait=seconds), _status_v2, seconds or 0)


def _full_sms(text: str) -> FullSms:
    if text.startswith("FULL_SMS:"):
        return FullSms(State.CODE, text[len("FULL_SMS:") :])
    status = parse_status(text)
    return FullSms(status.state, None)


def get_full_sms(activation_id: int, *, wait: float | None = None) -> Call[FullSms]:
    seconds = _wait(wait)
    return Call(_params("getFullSms", id=activation_id, wait=seconds), _full_sms, seconds or 0)


def _set_status(text: str) -> str:
    if not text.startswith("ACCESS_"):
        raise errors.UnexpectedAnswer("not a setStatus answer", body=text)
    return text


def set_status(activation_id: int, status: int) -> Call[str]:
    """The answer word: ACCESS_READY, ACCESS_RETRY_GET, ACCESS_ACTIVATION, ACCESS_CANCEL."""
    return Call(_params("setStatus", id=activation_id, status=status), _set_status)


# ---------------------------------------------------------------- lists


def _rows(text: str, key: str) -> list[Any]:
    """The rows of a list action in each dialect's shape: ``{key: [...]}`` (sms-activate),
    a top-level list (grizzly), ``{"data": [...]}`` (herosms)."""
    value = load_json(text)
    _raise_json_error(value)
    if isinstance(value, dict):
        value = value.get(key, value.get("data"))
        if isinstance(value, dict):  # some services key the rows by id
            value = list(value.values())
    return as_list(value, f"{key} rows")


def _codes(value: Any) -> tuple[str, ...]:
    if value is None or value == "":
        return ()
    if isinstance(value, list):
        return tuple(as_str(item) for item in value)
    return (as_str(value),)


def _active(text: str) -> list[ActiveActivation]:
    rows = []
    for item in _rows(text, "activeActivations"):
        row = as_dict(item, "activation row")
        rows.append(
            ActiveActivation(
                activation_id=as_int(row.get("activationId"), "activationId"),
                service=as_str(row.get("serviceCode", "")),
                phone=as_str(row.get("phoneNumber", "")),
                cost=as_decimal(row.get("activationCost", 0)),
                status=as_str(row.get("activationStatus", "")),
                codes=_codes(row.get("smsCode")),
                text=as_str_or_none(row.get("smsText")),
                activation_time=as_str_or_none(row.get("activationTime")),
                country=as_int(row.get("countryCode", 0)),
                can_get_another_sms=as_bool(row.get("canGetAnotherSms", True)),
                currency=as_int_or_none(row.get("currency")),
            )
        )
    return rows


def get_active_activations() -> Call[list[ActiveActivation]]:
    """None live: an empty list (the protocol answers ``NO_ACTIVATIONS``)."""
    return Call(_params("getActiveActivations"), _active, empty_on="NO_ACTIVATIONS", empty=list)


def _history(text: str) -> list[HistoryEntry]:
    entries = []
    for item in _rows(text, "history"):
        row = as_dict(item, "history row")
        sms = row.get("sms")
        entries.append(
            HistoryEntry(
                # herosms names them activationId and activationStatus
                id=as_int(row.get("id", row.get("activationId")), "id"),
                date=as_str_or_none(row.get("date")),
                phone=as_str(row.get("phone", "")),
                sms=tuple(sms) if isinstance(sms, list) else (() if sms is None else (sms,)),
                cost=as_decimal(row.get("cost", 0)),
                status=as_str(row.get("status", row.get("activationStatus", ""))),
                currency=as_int_or_none(row.get("currency")),
            )
        )
    return entries


def get_history(
    *, start: int | None = None, end: int | None = None, offset: int | None = None,
    limit: int | None = None,
) -> Call[list[HistoryEntry]]:  # fmt: skip
    """Ended activations, newest first; ``start``/``end`` unix seconds (≤ 30 days apart)."""
    params = _params("getHistory", start=start, end=end, offset=offset, limit=limit)
    return Call(params, _history)


# ---------------------------------------------------------------- catalog and stock


def _prices(text: str) -> dict[int, dict[str, Price]]:
    prices: dict[int, dict[str, Price]] = {}
    for country, services in _json_dict(text, "getPrices answer").items():
        row = prices.setdefault(as_int(country, "country"), {})
        for service, price in as_dict(services, "services").items():
            values = as_dict(price, "price")
            count = as_int(values.get("count", 0))
            row[service] = Price(
                cost=as_decimal(values.get("cost"), "cost"),
                count=count,
                physical_count=as_int(values.get("physicalCount", count)),
            )
    return prices


def get_prices(*, service: str | None = None, country: int | None = None) -> Call[
    dict[int, dict[str, Price]]
]:  # fmt: skip
    """{country id: {service code: Price}}; a pair without stock is absent."""
    return Call(_params("getPrices", service=service, country=country), _prices)


def _countries(text: str) -> dict[int, Country]:
    countries = {}
    for key, item in _json_dict(text, "getCountries answer").items():
        row = as_dict(item, "country")
        eng = as_str(row.get("eng", ""))
        countries[as_int(row.get("id", key))] = Country(
            id=as_int(row.get("id", key)),
            eng=eng,
            rus=as_str(row.get("rus") or eng),
            chn=as_str(row.get("chn") or eng),
            visible=as_bool(row.get("visible", 1)),
            retry=as_bool(row.get("retry", 0)),
            rent=as_bool(row.get("rent", 0)),
            multi_service=as_bool(row.get("multiService", 0)),
        )
    return countries


def get_countries() -> Call[dict[int, Country]]:
    return Call(_params("getCountries"), _countries)


def _services(text: str) -> list[Service]:
    return [
        Service(as_str(row.get("code")), as_str(row.get("name", "")))
        for row in (as_dict(item, "service") for item in _rows(text, "services"))
    ]


def get_services_list(*, country: int | None = None) -> Call[list[Service]]:
    return Call(_params("getServicesList", country=country), _services)


def _operators(text: str) -> dict[int, list[str]]:
    body = _json_dict(text, "getOperators answer")
    found = as_dict(body.get("countryOperators", {}), "countryOperators")
    return {
        as_int(country): [as_str(name) for name in as_list(names, "operators")]
        for country, names in found.items()
    }


def get_operators(*, country: int | None = None) -> Call[dict[int, list[str]]]:
    """{country id: [operator names]}; none known: an empty dict (``OPERATORS_NOT_FOUND``)."""
    return Call(
        _params("getOperators", country=country),
        _operators,
        empty_on="OPERATORS_NOT_FOUND",
        empty=dict,
    )


def _numbers_status(text: str) -> dict[str, int]:
    """``{"tg_0": "120"}`` → ``{"tg": 120}`` (the ``_0`` is sms-activate's "no forwarding")."""
    counts = {}
    for key, count in _json_dict(text, "getNumbersStatus answer").items():
        counts[key.removesuffix("_0")] = as_int(count, "count")
    return counts


def get_numbers_status(*, country: int | None = None, operator: str | None = None) -> Call[
    dict[str, int]
]:  # fmt: skip
    return Call(_params("getNumbersStatus", country=country, operator=operator), _numbers_status)


def _top_countries(text: str) -> list[TopCountry]:
    value = load_json(text)
    _raise_json_error(value)
    rows = list(value.values()) if isinstance(value, dict) else as_list(value, "top countries")
    top = []
    for item in rows:
        row = as_dict(item, "top country")
        count = as_int(row.get("count", 0))
        top.append(
            TopCountry(
                country=as_int(row.get("country"), "country"),
                count=count,
                physical_count=as_int(row.get("physicalCount", count)),
                price=as_decimal(row.get("price"), "price"),
                retail_price=decimal_or_none(row.get("retail_price")),
            )
        )
    return top


def get_top_countries_by_service(service: str | None = None) -> Call[list[TopCountry]]:
    return Call(_params("getTopCountriesByService", service=service), _top_countries)
