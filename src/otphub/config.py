"""Deployment settings (see the README's Configuration section).

Every setting has a safe default; environment variables ``OTPHUB_*`` or a ``.env`` file set
them, and command-line options override both.
"""

from __future__ import annotations

import secrets
from pathlib import Path
from typing import Literal

from pydantic import Field, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from otphub.domain.money import Currency, currency

DEFAULT_DATABASE_URL = "sqlite:///var/otphub.db"
MIN_METRICS_TOKEN = 16

RequestLogs = Literal["all", "except_polls", "none"]
_REQUEST_LOG_ALIASES = {
    **dict.fromkeys(("true", "1", "yes", "on"), "all"),
    **dict.fromkeys(("false", "0", "no", "off"), "none"),
}


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="OTPHUB_", env_file=".env", extra="ignore")

    database_url: str = DEFAULT_DATABASE_URL
    currency: str = "USD"
    activation_ttl: int = Field(default=1200, ge=1)
    early_cancel: int = Field(default=120, ge=0)
    rate_limit: int = Field(default=300, ge=0)
    max_live_activations: int = Field(default=0, ge=0)
    # failed authentications (BAD_KEY, a bad provider key) per client address per minute
    auth_failures_per_minute: int = Field(default=60, ge=0)
    # Which customer-API requests and SMS pushes get a log line (keys and texts never):
    # "all"; "except_polls", all but status polls answered with a status (every client
    # repeats them every few seconds; /metrics counts them); "none".
    log_requests: RequestLogs = "except_polls"
    secret: str = ""
    # Seconds a process reuses its count of the stock for getPrices and similar; 0 = count
    # on every request.
    stock_cache_seconds: float = Field(default=2.0, ge=0)
    # Seconds between two runs of the expiry sweeper.
    sweep_interval: float = Field(default=5.0, gt=0)
    # SQLite's PRAGMA synchronous: NORMAL survives a process crash; FULL also survives
    # a power loss, at the cost of one fsync per commit.
    sqlite_synchronous: str = "NORMAL"
    time_zone: str = "UTC"
    log_level: str = "info"
    # The bearer token that /metrics requires (Prometheus: authorization.credentials). Empty:
    # /metrics is off (404), since open holds, live activations and request counts describe
    # the business to whoever asks.
    metrics_token: str = ""

    @field_validator("currency")
    @classmethod
    def _known_currency(cls, value: str) -> str:
        currency(value)
        return value.upper()

    @field_validator("log_requests", mode="before")
    @classmethod
    def _request_logs(cls, value: object) -> object:
        # Earlier versions took a boolean: true meant every request, false none.
        if isinstance(value, bool):
            return "all" if value else "none"
        if isinstance(value, str):
            word = value.strip().lower().replace("-", "_")
            return _REQUEST_LOG_ALIASES.get(word, word)
        return value

    @field_validator("metrics_token")
    @classmethod
    def _bearer_token(cls, value: str) -> str:
        # It travels in an HTTP header, and guessing it must be hopeless.
        if value and (len(value) < MIN_METRICS_TOKEN or not all("!" <= c <= "~" for c in value)):
            raise ValueError(
                f"must be at least {MIN_METRICS_TOKEN} characters: ASCII letters, digits and "
                "punctuation, no spaces (e.g. openssl rand -hex 32)"
            )
        return value

    @field_validator("sqlite_synchronous")
    @classmethod
    def _sync_mode(cls, value: str) -> str:
        if value.upper() not in {"OFF", "NORMAL", "FULL", "EXTRA"}:
            raise ValueError("must be OFF, NORMAL, FULL or EXTRA")
        return value.upper()

    @property
    def money(self) -> Currency:
        return currency(self.currency)

    def sqlite_path(self) -> Path | None:
        for prefix in ("sqlite:///", "sqlite+aiosqlite:///"):
            if self.database_url.startswith(prefix):
                return Path(self.database_url.removeprefix(prefix).split("?", 1)[0])
        return None

    def secret_bytes(self) -> bytes:
        """The server secret: the setting, or one generated once and kept beside the data."""
        if self.secret:
            return self.secret.encode()
        db_path = self.sqlite_path()
        path = (
            db_path.with_name(db_path.name + ".secret")
            if db_path is not None
            else Path("var/otphub.secret")
        )
        if path.exists():
            return path.read_text().strip().encode()
        path.parent.mkdir(parents=True, exist_ok=True)
        value = secrets.token_urlsafe(32)
        # O_EXCL: when two processes start at once, exactly one secret wins.
        try:
            with path.open("x") as handle:
                handle.write(value)
            path.chmod(0o600)
        except FileExistsError:
            pass
        return path.read_text().strip().encode()
