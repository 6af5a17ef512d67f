"""Deployment settings (see the README's Configuration section).

Every setting has a safe default; environment variables ``OTPHUB_*`` or a ``.env`` file set
them, and command-line options override both.
"""

from __future__ import annotations

import contextlib
import os
import secrets
from decimal import Decimal
from pathlib import Path
from typing import Literal

from pydantic import Field, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from otphub.domain.money import Currency, currency

DEFAULT_DATABASE_URL = "sqlite:///var/otphub.db"
# Where the generated secret lives when the database is not a SQLite file (PostgreSQL):
# relative to the working directory, which is why ``otphub init`` prints the full path.
DEFAULT_SECRET_FILE = Path("var/otphub.secret")
# Shorter secrets are refused: an empty one would be an HMAC key every deployment shares,
# and a secret file cut short by a crash must not silently become a different secret.
MIN_SECRET_LENGTH = 16
MIN_METRICS_TOKEN = 16

RequestLogs = Literal["all", "except_polls", "none"]
_REQUEST_LOG_ALIASES = {
    **dict.fromkeys(("true", "1", "yes", "on"), "all"),
    **dict.fromkeys(("false", "0", "no", "off"), "none"),
}


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="OTPHUB_", env_file=".env", extra="ignore")

    database_url: str = DEFAULT_DATABASE_URL
    # PostgreSQL connections per server process: up to 3x this for transactions, this many
    # for the hot reads, and one that LISTENs (10: at most 41). Lower it to fit a fleet, or
    # tests that run several processes, into the server's max_connections.
    database_pool_size: int = Field(default=10, ge=1, le=1000)
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
    # None: not set, use (or generate) the secret file. Set but empty is refused.
    secret: str | None = None
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
    # -- the HTTP server (`otphub serve`; README "Deploying on the internet")
    # Seconds a client has to send a request's whole body once its headers are in: a client
    # that promises a body and trickles it (or never sends it) would otherwise hold a
    # connection and a task forever. Answered 408. 0 = no limit.
    body_timeout: float = Field(default=10.0, ge=0)
    # Seconds a client has to send a request's headers once it has started them: uvicorn has
    # no such limit of its own. 0 = no limit.
    header_timeout: float = Field(default=10.0, ge=0)
    # Connections and requests in progress per server process; beyond, new requests are
    # answered 503 at once. Waiting requests (wait=, event streams) each hold one, so the
    # default is high; the server raises its open-file limit to fit it, up to the hard
    # limit (lowering this when the hard limit is below it + 512). 0 = no limit.
    max_connections: int = Field(default=10_000, ge=0)
    # Seconds an idle keep-alive connection stays open between two requests.
    keep_alive_seconds: int = Field(default=5, ge=1)
    # Client addresses whose X-Forwarded-For and X-Forwarded-Proto are believed (the reverse
    # proxy's): comma-separated addresses or networks, or "*" for any (never on a server that
    # clients reach directly: they could choose the address the per-address limit sees).
    forwarded_allow_ips: str = "127.0.0.1,::1"
    # The bearer token that /metrics requires (Prometheus: authorization.credentials). Empty:
    # /metrics is off (404), since open holds, live activations and request counts describe
    # the business to whoever asks.
    metrics_token: str = ""
    # -- supply (README "Connecting providers")
    # Seconds between two GET_SERVICES to each agent provider.
    agent_poll_seconds: float = Field(default=15.0, gt=0)
    # Seconds a GET_NUMBER (and any other call to an agent) may take before the purchase
    # tries the next offer.
    agent_timeout_seconds: float = Field(default=3.0, gt=0)
    # Seconds between two reads of an upstream service's prices and balance.
    upstream_poll_seconds: float = Field(default=30.0, gt=0)
    # Cancels after which a number is retired for that service (a customer never gets back a
    # number they cancelled for the same service). 0 = never retired.
    max_cancels: int = Field(default=4, ge=0)
    # -- codes without polling, referrals (README "Codes without polling", "Referrals")
    # Allow webhook URLs that resolve to private, loopback or link-local addresses (tests,
    # closed networks). Off: such URLs are refused at registration and at each delivery.
    webhook_allow_private: bool = False
    # Percent of the operator's margin on a captured activation paid to the referrer named
    # by its ``ref`` (0 = off). A Decimal: money is never computed in floats.
    referral_share: Decimal = Field(default=Decimal(0), ge=0, le=100)
    # Whether the web console lets anyone create a customer account ("open") or only the
    # operator, from the shell ("closed").
    signup: Literal["open", "closed"] = "open"

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

    def secret_path(self) -> Path:
        """Where the generated secret is kept: beside a SQLite database, else
        ``var/otphub.secret`` under the working directory."""
        db_path = self.sqlite_path()
        if db_path is not None:
            return db_path.with_name(db_path.name + ".secret")
        return DEFAULT_SECRET_FILE

    def configured_secret(self) -> bytes | None:
        """The server secret: ``OTPHUB_SECRET``, else the secret file's content; ``None``
        when neither exists yet (``Runtime.start`` then generates one, unless the database
        already holds keys). Raises ``SecretError`` for an empty or short secret."""
        if self.secret is not None:
            if len(self.secret.strip()) < MIN_SECRET_LENGTH:
                raise SecretError(
                    f"OTPHUB_SECRET is set but has {len(self.secret.strip())} characters; "
                    f"it needs at least {MIN_SECRET_LENGTH} (unset it to use the secret file "
                    f"{self.secret_path().absolute()})"
                )
            return self.secret.encode()
        return read_secret_file(self.secret_path())

    def secret_bytes(self) -> bytes:
        """The configured secret (see ``configured_secret``), which must exist."""
        value = self.configured_secret()
        if value is None:
            raise SecretError(missing_secret_message(self.secret_path()))
        return value


class SecretError(ValueError):
    """The server secret is missing, empty or too short: a one-line error, never a
    silently different secret (every key stored would stop working)."""


def missing_secret_message(path: Path) -> str:
    return (
        f"no server secret: OTPHUB_SECRET is not set and there is no secret file at "
        f"{path.absolute()}"
    )


def read_secret_file(path: Path) -> bytes | None:
    """The secret kept in ``path``, ``None`` if there is no such file."""
    try:
        value = path.read_text().strip()
    except FileNotFoundError:
        return None
    if len(value) < MIN_SECRET_LENGTH:
        raise SecretError(
            f"the secret file {path.absolute()} is {'empty' if not value else 'too short'} "
            f"({len(value)} characters, at least {MIN_SECRET_LENGTH} needed): restore it from "
            f"a backup or set OTPHUB_SECRET; a new secret would make every key invalid"
        )
    return value.encode()


def create_secret_file(path: Path) -> bytes:
    """Generate a secret into ``path`` atomically, readable by its owner only, and return
    the secret now in ``path`` (another process starting at the same time may have won).

    The secret is written and synced under a private temporary name opened with mode 0600
    (no window in which others could read it), then linked to ``path``: the link fails if
    ``path`` exists, so exactly one secret wins, and ``path`` never holds a partial one.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    value = secrets.token_urlsafe(32)
    temporary = path.with_name(f".{path.name}.{os.getpid()}.{secrets.token_hex(4)}")
    try:
        _write_private(temporary, value)
        try:
            os.link(temporary, path)
        except FileExistsError:
            pass  # another process won: its secret is the one
        except OSError:
            # A filesystem without hard links: create the file itself, still exclusively
            # and 0600 (a crash mid-write then leaves a short file, which is refused).
            with contextlib.suppress(FileExistsError):
                _write_private(path, value)
    finally:
        temporary.unlink(missing_ok=True)
    found = read_secret_file(path)
    if found is None:  # pragma: no cover - removed between our link and our read
        raise SecretError(f"the secret file {path.absolute()} vanished while being created")
    return found


def _write_private(path: Path, value: str) -> None:
    """Create ``path`` (never an existing file) with mode 0600 from the start, and sync."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        os.write(fd, value.encode())
        os.fsync(fd)
    finally:
        os.close(fd)
