"""Realistic benchmark data, written straight into the database (not through the API).

``otphub init`` must have run first (schema, catalog, the revenue and external accounts).
Everything is inserted in one transaction with the tables of ``otphub.db.schema``:
SQLAlchemy Core bulk INSERTs on SQLite, COPY (asyncpg) on PostgreSQL, on connections of
the loader's own (it does not depend on OTPHub's engine code, which may change). The data
keeps every invariant that ``otphub audit`` checks:

- each customer's wallet was funded by one ``topup`` journal row (external -> customer),
  and its ``held`` is the sum of its live activations' prices;
- each live activation has one ``hold`` row (customer -> revenue, amount = price);
- a number with a live activation has ``in_use = true``, every other one ``false``;
- live activations are ``waiting`` or ``code`` and expire far in the future.

API keys come from ``otphub.domain.keys.new_key`` and are stored as
``key_hash(secret, key)``. The plain keys, and which key owns which activation, are written
as tab-separated files for the wrk Lua scripts (see ``write_data_files``).
"""

from __future__ import annotations

import asyncio
import itertools
import random
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sqlalchemy import Table, create_engine, func, insert, select

from otphub.db import schema
from otphub.domain import keys

# Services that every provider offers in every country it serves (the ones customers buy
# most); the other offered services are drawn at random per provider and country.
POPULAR = (
    *("tg", "wa", "go", "ig", "fb", "vk", "ok", "tw", "ds", "am", "ya", "mm", "ma", "lf", "ub"),
    *("ot", "oi", "mb", "nf", "wb", "tx", "ts", "me", "vi", "dh", "uk", "bw", "sn", "zh", "kt"),
)
OPERATORS = ("any", "mts", "beeline", "megafon", "tele2", "vodafone", "orange")
OPENING_BALANCE = 1_000_000_00  # 1,000,000.00 per customer: never NO_BALANCE in a run
FAR_FUTURE = 30 * 24 * 3600  # live activations expire in 30 days


@dataclass(frozen=True)
class Shape:
    """How much data: ``scale`` multiplies the numbers and the live activations."""

    scale: int = 1
    services: int = 500
    countries: int = 200
    providers: int = 5
    customers: int = 50
    popular_per_pair: int = 30
    others_per_pair: int = 20
    code_share: float = 0.25  # share of live activations that already received a code

    @property
    def numbers(self) -> int:
        return 100_000 * self.scale

    @property
    def live(self) -> int:
        return 10_000 * self.scale


@dataclass
class Generated:
    rows: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    customer_keys: list[str] = field(default_factory=list)  # index = customer id - 1
    provider_keys: list[str] = field(default_factory=list)  # index = provider id - 1
    # (activation id, customer key, phone, provider key)
    live: list[tuple[int, str, str, str]] = field(default_factory=list)
    free_phones: list[tuple[str, str]] = field(default_factory=list)  # (phone, provider key)
    targets: list[tuple[str, int, int]] = field(default_factory=list)  # (service, country, free)
    popular: list[str] = field(default_factory=list)


def _services(catalog: list[str], wanted: int) -> tuple[list[str], list[str]]:
    """(popular, others): ``wanted`` codes of the catalog, the popular ones first."""
    present = set(catalog)
    popular = [c for c in POPULAR if c in present]
    others = sorted(c for c in catalog if c not in set(popular))
    return popular, others[: max(0, wanted - len(popular))]


def generate(
    shape: Shape,
    *,
    secret: bytes,
    catalog_services: list[str],
    countries: list[tuple[int, str]],  # (id, phone prefix), ordered by id
    first_ids: dict[str, int],  # table -> first free id
    system: dict[str, int],  # revenue / external account ids
    now: int,
    seed: int = 20261126,
) -> Generated:
    rng = random.Random(seed)
    out = Generated()
    popular, others = _services(catalog_services, shape.services)
    out.popular = popular[: shape.popular_per_pair]
    used_countries = countries[: shape.countries]

    # ---- accounts, customers, providers, keys
    account_id = first_ids["accounts"]
    accounts: list[dict[str, Any]] = []
    customers: list[dict[str, Any]] = []
    providers: list[dict[str, Any]] = []
    api_keys: list[dict[str, Any]] = []
    key_ids = itertools.count(first_ids["api_keys"])

    def issue_key(kind: str, prefix: str, owner_id: int) -> str:
        key = keys.new_key(prefix)
        api_keys.append(
            {"id": next(key_ids), "owner_kind": kind, "owner_id": owner_id,
             "key_hash": keys.key_hash(secret, key), "hint": keys.hint(key),
             "created_at": now - 30 * 86400}
        )  # fmt: skip
        return key

    customer_account: dict[int, int] = {}
    for i in range(shape.customers):
        cid = first_ids["customers"] + i
        customer_account[cid] = account_id
        accounts.append({"id": account_id, "kind": "customer", "balance": 0, "held": 0})
        customers.append(
            {"id": cid, "name": f"bench customer {cid}", "account_id": account_id,
             "created_at": now - 30 * 86400}
        )  # fmt: skip
        out.customer_keys.append(issue_key("customer", keys.CUSTOMER_PREFIX, cid))
        account_id += 1
    provider_ids = []
    for i in range(shape.providers):
        pid = first_ids["providers"] + i
        provider_ids.append(pid)
        accounts.append({"id": account_id, "kind": "provider", "balance": 0, "held": 0})
        providers.append(
            {"id": pid, "name": f"bench SIM bank {pid}", "account_id": account_id,
             "enabled": True, "delivery_score": 500, "created_at": now - 30 * 86400}
        )  # fmt: skip
        out.provider_keys.append(issue_key("provider", keys.PROVIDER_PREFIX, pid))
        account_id += 1
    provider_key = dict(zip(provider_ids, out.provider_keys, strict=True))

    # ---- who serves which country, with how many numbers (a few big countries, a long tail)
    weights = [1.0 / (rank + 1) ** 0.9 for rank in range(len(used_countries))]
    total_weight = sum(weights)
    pairs: list[tuple[int, int, str, int]] = []  # (provider, country, prefix, numbers)
    for rank, (country_id, prefix) in enumerate(used_countries):
        if rank < 20:
            served = list(provider_ids)
        elif rank < 80:
            served = rng.sample(provider_ids, min(len(provider_ids), rng.choice((2, 3))))
        else:
            served = [rng.choice(provider_ids)]
        country_numbers = max(len(served) * 3, round(shape.numbers * weights[rank] / total_weight))
        shares = [rng.uniform(0.5, 1.5) for _ in served]
        for pid, share in zip(served, shares, strict=True):
            count = max(3, round(country_numbers * share / sum(shares)))
            pairs.append((pid, country_id, prefix, count))
    # Trim or pad to the exact total, on the biggest pair.
    excess = sum(p[3] for p in pairs) - shape.numbers
    biggest = max(range(len(pairs)), key=lambda i: pairs[i][3])
    pid, cid, prefix, count = pairs[biggest]
    pairs[biggest] = (pid, cid, prefix, count - excess)

    # ---- offers: the popular services everywhere, and some others per pair
    offers: list[dict[str, Any]] = []
    offer_of: dict[tuple[int, int], dict[str, tuple[int, int]]] = {}  # -> service -> price
    offer_id = first_ids["offers"]
    base_price = {s: rng.uniform(0.15, 0.60) for s in popular}
    base_price.update({s: rng.uniform(0.05, 0.40) for s in others})
    country_factor = {cid: rng.uniform(0.6, 1.8) for cid, _ in used_countries}
    for pid, cid, _prefix, _count in pairs:
        factor = country_factor[cid] * rng.uniform(0.9, 1.2)
        offered = popular[: shape.popular_per_pair] + rng.sample(
            others, min(len(others), shape.others_per_pair)
        )
        table: dict[str, tuple[int, int]] = {}
        for service in offered:
            price = max(1, round(base_price[service] * factor * 100))
            payout = price * 80 // 100
            table[service] = (price, payout)
            offers.append(
                {"id": offer_id, "provider_id": pid, "country_id": cid, "service": service,
                 "price": price, "payout": payout, "ttl": None, "enabled": True}
            )  # fmt: skip
            offer_id += 1
        offer_of[(pid, cid)] = table

    # ---- numbers: <prefix><country id, 3 digits><sequence, 7 digits>
    numbers: list[dict[str, Any]] = []
    seq_of_country: dict[int, int] = {}
    number_id = first_ids["numbers"]
    for pid, cid, prefix, count in pairs:
        seq = seq_of_country.get(cid, 0)
        for _ in range(count):
            seq += 1
            numbers.append(
                {"id": number_id, "provider_id": pid, "country_id": cid,
                 "operator": OPERATORS[seq % len(OPERATORS)],
                 "phone": f"{prefix}{cid:03d}{seq:07d}", "online": True, "in_use": False,
                 "created_at": now - 7 * 86400}
            )  # fmt: skip
            number_id += 1
        seq_of_country[cid] = seq

    # ---- live activations, their holds and (for those with a code) their SMS
    activations: list[dict[str, Any]] = []
    journal: list[dict[str, Any]] = []
    sms: list[dict[str, Any]] = []
    journal_id = first_ids["journal"]
    sms_id = first_ids["sms"]
    sms_seq: dict[int, int] = dict.fromkeys(provider_ids, 0)
    held: dict[int, int] = dict.fromkeys(customer_account, 0)
    activation_id = first_ids["activations"]
    popular_set = set(popular)
    customer_ids = list(customer_account)
    for index in rng.sample(range(len(numbers)), shape.live):
        number = numbers[index]
        number["in_use"] = True
        pid, cid = number["provider_id"], number["country_id"]
        table = offer_of[(pid, cid)]
        choices = list(table)
        if rng.random() < 0.8:
            choices = [s for s in choices if s in popular_set] or choices
        service = rng.choice(choices)
        price, payout = table[service]
        customer_id = rng.choice(customer_ids)
        created = now - rng.randint(0, 900)
        has_code = rng.random() < shape.code_share
        code = f"{rng.randint(0, 99999):05d}" if has_code else None
        sms_text = f"Your code: {code}" if has_code else None
        sms_at = created + rng.randint(5, 60) if has_code else None
        activations.append(
            {"id": activation_id, "customer_id": customer_id, "provider_id": pid,
             "number_id": number["id"], "service": service, "country_id": cid,
             "operator": number["operator"], "phone": number["phone"], "price": price,
             "payout": payout, "state": "code" if has_code else "waiting", "code": code,
             "sms_text": sms_text, "sms_at": sms_at, "ready_at": None, "created_at": created,
             "expires_at": now + FAR_FUTURE, "ended_at": None, "order_id": None, "ref": None}
        )  # fmt: skip
        journal.append(
            {"id": journal_id, "kind": "hold", "debit_account_id": customer_account[customer_id],
             "credit_account_id": system["revenue"], "amount": price, "resolves_id": None,
             "activation_id": activation_id, "created_at": created, "note": None}
        )  # fmt: skip
        journal_id += 1
        held[customer_id] += price
        if has_code:
            sms_seq[pid] += 1
            sms.append(
                {"id": sms_id, "provider_id": pid, "provider_sms_id": sms_seq[pid],
                 "phone": number["phone"], "phone_from": service, "text": sms_text,
                 "code": code, "activation_id": activation_id, "received_at": sms_at}
            )  # fmt: skip
            sms_id += 1
        out.live.append(
            (activation_id, out.customer_keys[customer_id - first_ids["customers"]],
             number["phone"], provider_key[pid])
        )  # fmt: skip
        activation_id += 1

    # ---- fund the wallets (one top-up each) and record the holds on them
    by_account = {a["id"]: a for a in accounts}
    for customer_id, acc in customer_account.items():
        by_account[acc]["balance"] = OPENING_BALANCE
        by_account[acc]["held"] = held[customer_id]
        journal.append(
            {"id": journal_id, "kind": "topup", "debit_account_id": system["external"],
             "credit_account_id": acc, "amount": OPENING_BALANCE, "resolves_id": None,
             "activation_id": None, "created_at": now - 30 * 86400, "note": "bench"}
        )  # fmt: skip
        journal_id += 1

    # ---- what the scripts need besides the live activations
    free = [n for n in numbers if not n["in_use"]]
    for number in rng.sample(free, min(len(free), 20_000)):
        out.free_phones.append((number["phone"], provider_key[number["provider_id"]]))
    stock: dict[tuple[str, int], int] = {}
    free_per_pair: dict[tuple[int, int], int] = {}
    for number in free:
        pair = (number["provider_id"], number["country_id"])
        free_per_pair[pair] = free_per_pair.get(pair, 0) + 1
    for (pid, cid), table in offer_of.items():
        for service in table:
            stock[(service, cid)] = stock.get((service, cid), 0) + free_per_pair.get((pid, cid), 0)
    # Purchases go where there is plenty of stock: a run never empties a (service, country).
    out.targets = sorted(
        ((s, c, n) for (s, c), n in stock.items() if n >= 200), key=lambda t: (-t[2], t[0], t[1])
    )[:300]

    out.rows = {
        "accounts": accounts,
        "customers": customers,
        "providers": providers,
        "api_keys": api_keys,
        "offers": offers,
        "numbers": numbers,
        "activations": activations,
        "journal": journal,
        "sms": sms,
    }
    return out


INSERT_ORDER = (
    "accounts",
    "customers",
    "providers",
    "api_keys",
    "offers",
    "numbers",
    "activations",
    "journal",
    "sms",
)
TABLES: dict[str, Table] = {name: schema.metadata.tables[name] for name in INSERT_ORDER}


@dataclass
class LoadReport:
    seconds: float
    counts: dict[str, int]
    generated: Generated


def _generate_from(
    shape: Shape,
    secret: bytes,
    seed: int,
    catalog_services: list[str],
    countries: list[tuple[int, str]],
    system: dict[str, int],
    max_ids: dict[str, int | None],
) -> Generated:
    return generate(
        shape,
        secret=secret,
        catalog_services=catalog_services,
        countries=countries,
        first_ids={name: int(top or 0) + 1 for name, top in max_ids.items()},
        system=system,
        now=int(time.time()),
        seed=seed,
    )


def _load_sqlite(url: str, *, secret: bytes, shape: Shape, seed: int) -> Generated:
    """SQLAlchemy Core bulk INSERTs (executemany) in one transaction, on a plain engine of
    its own: the loader does not depend on how OTPHub drives the database."""
    engine = create_engine(url.replace("sqlite+aiosqlite://", "sqlite://"))
    try:
        with engine.begin() as conn:
            catalog_services = list(
                conn.execute(select(schema.services.c.code).order_by("code")).scalars()
            )
            countries = [
                (int(r.id), str(r.phone_prefix))
                for r in conn.execute(
                    select(schema.countries.c.id, schema.countries.c.phone_prefix).order_by("id")
                )
            ]
            system = {
                str(r.kind): int(r.id)
                for r in conn.execute(
                    select(schema.accounts.c.kind, schema.accounts.c.id).where(
                        schema.accounts.c.kind.in_(("revenue", "external"))
                    )
                )
            }
            max_ids = {
                name: conn.execute(select(func.max(table.c.id))).scalar()
                for name, table in TABLES.items()
            }
            generated = _generate_from(
                shape, secret, seed, catalog_services, countries, system, max_ids
            )
            for name in INSERT_ORDER:
                rows = generated.rows[name]
                for start in range(0, len(rows), 50_000):
                    conn.execute(insert(TABLES[name]), rows[start : start + 50_000])
    finally:
        engine.dispose()
    return generated


async def _load_postgres(url: str, *, secret: bytes, shape: Shape, seed: int) -> Generated:
    """COPY (asyncpg) in one transaction, then the id sequences moved past the loaded ids,
    then ANALYZE (autovacuum would do it within a minute or so of such a load)."""
    import asyncpg

    conn = await asyncpg.connect(url.replace("postgresql+asyncpg://", "postgresql://"))
    try:
        async with conn.transaction():
            catalog_services = [r[0] for r in await conn.fetch("SELECT code FROM services")]
            catalog_services.sort()
            countries = [
                (int(r[0]), str(r[1]))
                for r in await conn.fetch("SELECT id, phone_prefix FROM countries ORDER BY id")
            ]
            system = {
                str(r[0]): int(r[1])
                for r in await conn.fetch(
                    "SELECT kind, id FROM accounts WHERE kind IN ('revenue', 'external')"
                )
            }
            max_ids = {
                name: await conn.fetchval(f"SELECT MAX(id) FROM {name}") for name in INSERT_ORDER
            }
            generated = _generate_from(
                shape, secret, seed, catalog_services, countries, system, max_ids
            )
            for name in INSERT_ORDER:
                rows = generated.rows[name]
                if not rows:
                    continue
                columns = list(rows[0])
                await conn.copy_records_to_table(
                    name, records=[tuple(r[c] for c in columns) for r in rows], columns=columns
                )
                await conn.execute(
                    f"SELECT setval(pg_get_serial_sequence('{name}', 'id'), "
                    f"(SELECT MAX(id) FROM {name}))"
                )
        await conn.execute("ANALYZE")
    finally:
        await conn.close()
    return generated


def load(url: str, *, secret: bytes, shape: Shape, seed: int = 20261126) -> LoadReport:
    """Generate and load the data into a database that ``otphub init`` prepared."""
    started = time.perf_counter()
    if url.startswith("sqlite"):
        generated = _load_sqlite(url, secret=secret, shape=shape, seed=seed)
    else:
        generated = asyncio.run(_load_postgres(url, secret=secret, shape=shape, seed=seed))
    counts = {name: len(rows) for name, rows in generated.rows.items()}
    return LoadReport(seconds=time.perf_counter() - started, counts=counts, generated=generated)


def write_data_files(generated: Generated, directory: Path, *, slices: int = 0) -> dict[str, Path]:
    """Tab-separated files read by the Lua scripts' ``init``; one record per line.

    ``slices``: also split the big files into that many parts (``slices/<name>.<i>.tsv``,
    i from 1), one per wrk thread for the scripts that run one thread per connection, so
    that 32 threads do not each parse every line before they start."""
    directory.mkdir(parents=True, exist_ok=True)
    files = {
        # activation id -> the key of the customer who owns it
        "status": (f"{a}\t{k}" for a, k, _p, _pk in generated.live),
        "customers": iter(generated.customer_keys),
        # phones with a live activation, and phones without one, with the owner's key
        "live_phones": (f"{p}\t{pk}" for _a, _k, p, pk in generated.live),
        "free_phones": (f"{p}\t{pk}" for p, pk in generated.free_phones),
        "targets": (f"{s}\t{c}" for s, c, _n in generated.targets),
        "services": iter(generated.popular),
    }
    paths = {}
    for name, lines in files.items():
        path = directory / f"{name}.tsv"
        path.write_text("".join(line + "\n" for line in lines))
        paths[name] = path
    if slices > 0:
        (directory / "slices").mkdir(exist_ok=True)
        for name in ("status", "live_phones", "free_phones"):
            rows = paths[name].read_text().splitlines()
            for i in range(slices):
                part = rows[i::slices] or rows[:1]
                text = "".join(line + "\n" for line in part)
                (directory / "slices" / f"{name}.{i + 1}.tsv").write_text(text)
    return paths
