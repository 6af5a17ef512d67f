"""The two baselines of the benchmark: a tiny Starlette app, served like OTPHub.

- ``GET /word``: a fixed word. What the framework and server stack can do at best.
- ``GET /db?id=N``: one primary-key read of ``activations`` and one single-row INSERT and
  COMMIT into a table of its own (``bench_writes``), on the same database and through the
  same stack as OTPHub: ``otphub.db.engine.open_database`` (the same engines, drivers and
  pool, and on SQLite the same ``BEGIN IMMEDIATE`` writer queue). The read goes through
  ``Database.one`` when the engine has it (OTPHub's hot-path read), else through a read
  transaction; ``GET /info`` says which. What one write transaction per request can do at
  best.

Run: ``python bench/baseline_app.py --port P --database-url URL``. uvicorn gets the options
``otphub serve`` gives it (one worker, no access log, the same log level and shutdown
timeout); the event loop and HTTP parser are uvicorn's defaults, as for OTPHub.
"""

from __future__ import annotations

import argparse
import contextlib
import time
from collections.abc import AsyncIterator

import uvicorn
from sqlalchemy import (
    BigInteger,
    Column,
    Integer,
    MetaData,
    String,
    Table,
    bindparam,
    insert,
    select,
)
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from otphub.db.engine import Database, open_database
from otphub.db.schema import activations

TEXT = "text/plain; charset=utf-8"

bench_metadata = MetaData()
bench_writes = Table(
    "bench_writes",
    bench_metadata,
    Column("id", BigInteger().with_variant(Integer(), "sqlite"), primary_key=True),
    Column("activation_id", BigInteger, nullable=False),
    Column("state", String(16), nullable=True),
    Column("created_at", BigInteger, nullable=False),
)
READ = select(activations.c.state).where(activations.c.id == bindparam("id"))


def create_app(database_url: str, pool_size: int | None = None) -> Starlette:
    db: Database = (
        open_database(database_url)
        if pool_size is None
        else open_database(database_url, pool_size=pool_size)
    )
    one = getattr(db, "one", None)  # OTPHub's hot-path read, where the engine has one

    async def word(_request: Request) -> Response:
        return Response(b"OK", media_type=TEXT)

    async def info(_request: Request) -> Response:
        return Response(
            f'{{"read":"{"Database.one" if one else "Database.read"}"}}'.encode(),
            media_type="application/json",
        )

    async def read_state(wanted: int) -> str | None:
        if one is not None:
            row = await one(READ, {"id": wanted})
            return None if row is None else str(row[0])
        async with db.read() as conn:
            value = (await conn.execute(READ, {"id": wanted})).scalar_one_or_none()
            return None if value is None else str(value)

    async def db_endpoint(request: Request) -> Response:
        try:
            wanted = int(request.query_params.get("id", ""))
        except ValueError:
            return Response(b"BAD_ID", media_type=TEXT)
        state = await read_state(wanted)
        async with db.write() as conn:
            await conn.execute(
                insert(bench_writes).values(
                    activation_id=wanted, state=state, created_at=int(time.time())
                )
            )
        return Response(f"OK:{state}".encode(), media_type=TEXT)

    @contextlib.asynccontextmanager
    async def lifespan(_app: Starlette) -> AsyncIterator[None]:
        async with db.write() as conn:
            await conn.run_sync(bench_metadata.create_all)
        try:
            yield
        finally:
            await db.dispose()

    return Starlette(
        routes=[
            Route("/word", word, methods=["GET"]),
            Route("/db", db_endpoint, methods=["GET"]),
            Route("/info", info, methods=["GET"]),
        ],
        lifespan=lifespan,
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--database-url", required=True)
    parser.add_argument("--log-level", default="info")
    parser.add_argument(
        "--pool-size",
        type=int,
        default=None,
        help="for experiments only: the benchmark uses open_database's default, as OTPHub",
    )
    args = parser.parse_args()
    uvicorn.run(
        create_app(args.database_url, args.pool_size),
        host=args.host,
        port=args.port,
        workers=1,
        access_log=False,
        log_level=args.log_level,
        timeout_graceful_shutdown=10,
    )


if __name__ == "__main__":
    main()
