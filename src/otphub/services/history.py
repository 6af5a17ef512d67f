"""What a customer bought: getHistory."""

from __future__ import annotations

from dataclasses import dataclass

from otphub.db import activations, reports
from otphub.db.activations import Activation
from otphub.domain import errors
from otphub.domain.activation import State
from otphub.domain.numbers import parse_whole
from otphub.services.accounts import Customer
from otphub.services.runtime import Runtime

MAX_SPAN = 30 * 24 * 3600
MAX_LIMIT = 100
DEFAULT_LIMIT = 50


@dataclass(frozen=True, slots=True)
class HistoryLine:
    activation: Activation
    texts: list[str]
    refunded: bool = False  # finished, then refunded by the operator: the money went back

    @property
    def status(self) -> str:
        """getHistory's status: "6" paid for, "8" not paid for (cancelled, or refunded)."""
        return "6" if self.activation.state is State.FINISHED and not self.refunded else "8"


def _whole(raw: str | None, default: int, *, error: type[errors.ProtocolError]) -> int:
    if raw is None:
        return default
    value = parse_whole(raw)
    if value is None:
        raise error()
    return value


async def history(
    rt: Runtime,
    *,
    customer: Customer,
    start: str | None,
    end: str | None,
    offset: str | None,
    limit: str | None,
) -> list[HistoryLine]:
    now = rt.clock.now()
    until = _whole(end, now, error=errors.WrongDate)
    since = _whole(start, until - MAX_SPAN, error=errors.WrongDate)
    if since < 0 or until < since or until - since > MAX_SPAN:
        raise errors.WrongDate()
    skip = max(_whole(offset, 0, error=errors.WrongDate), 0)
    take = min(max(_whole(limit, DEFAULT_LIMIT, error=errors.WrongDate), 1), MAX_LIMIT)
    async with rt.db.read() as conn:
        ended = await activations.ended_of_customer(
            conn, customer_id=customer.id, start=since, end=until, offset=skip, limit=take
        )
        texts = await activations.sms_texts(conn, [a.id for a in ended])
        refunded = await reports.refunded_among(conn, [a.id for a in ended])
    return [HistoryLine(a, [t for t, _ in texts[a.id]], a.id in refunded) for a in ended]
