"""Structured logs (structlog). Keys travel in query strings in this protocol, so the
server never logs a request line; uvicorn's access log is switched off."""

from __future__ import annotations

import logging
import sys

import structlog

_DRIVER_LOGGERS = ("aiosqlite", "asyncpg", "sqlalchemy", "alembic", "httpx", "httpcore")


def configure_logging(level: str = "info") -> None:
    numeric = logging.getLevelNamesMapping().get(level.upper(), logging.INFO)
    logging.basicConfig(stream=sys.stderr, level=numeric, format="%(message)s")
    # OTPHUB_LOG_LEVEL=debug is for OTPHub's own loggers. The database drivers' debug
    # output carries every SQL statement and parameter: never below WARNING.
    for noisy in _DRIVER_LOGGERS:
        logging.getLogger(noisy).setLevel(max(numeric, logging.WARNING))
    structlog.configure(
        # Lean on purpose: with request logs on, this runs for every request. (No context
        # variables are bound anywhere; a plain write() instead of print() plus flush.)
        processors=[
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="iso", utc=True),
            structlog.processors.format_exc_info,
            structlog.processors.JSONRenderer(),
        ],
        wrapper_class=structlog.make_filtering_bound_logger(numeric),
        logger_factory=structlog.WriteLoggerFactory(sys.stderr),
        cache_logger_on_first_use=True,
    )
