"""Web-console accounts: sign-up, sign-in with limited attempts, sessions, and the logins
the operator gives from the shell. Passwords are hashed with argon2id (argon2-cffi's
defaults: 64 MiB, 3 passes), off the event loop and at most two at a time, so that a burst
of sign-ins neither stalls other requests nor takes the machine's memory."""

from __future__ import annotations

import asyncio
import threading
from dataclasses import dataclass

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError

from otphub.db import logins as db
from otphub.domain import errors, logins
from otphub.domain.logins import Subject
from otphub.services import accounts
from otphub.services.runtime import Runtime

_HASHER = PasswordHasher()
# A thread's lock, taken inside the worker thread: it holds no event loop (tests and the
# shell run several), and waiting for it never blocks one.
_HASHING = threading.BoundedSemaphore(2)
# Verified when the email is unknown, so that the answer takes as long as for a known one
# (the time must not tell which emails have accounts).
_DUMMY_HASH = _HASHER.hash("not a password of anyone")


@dataclass(frozen=True, slots=True)
class Session:
    """A new console session: the cookie's token (shown to the browser only) and whom it
    signs in."""

    token: str
    subject: Subject
    expires_at: int


@dataclass(frozen=True, slots=True)
class SignedUp:
    customer_id: int
    api_key: str  # the first key, shown once on the welcome page
    session: Session


def _hash_now(password: str) -> str:
    with _HASHING:
        return _HASHER.hash(password)


def _verify_now(stored: str, password: str) -> bool:
    with _HASHING:
        try:
            return _HASHER.verify(stored, password)
        except (VerifyMismatchError, VerificationError, InvalidHashError):
            return False


async def hash_password(password: str) -> str:
    logins.check_password(password)
    return await asyncio.to_thread(_hash_now, password)


async def _verify(stored: str, password: str) -> bool:
    return await asyncio.to_thread(_verify_now, stored, password)


async def sign_up(rt: Runtime, *, name: str, email: str, password: str) -> SignedUp:
    """A customer account from the console's sign-up form (OTPHUB_SIGNUP=open only),
    signed in at once."""
    if rt.settings.signup != "open":
        raise errors.SignupClosed("sign-up is closed: ask the operator for an account")
    clean = logins.clean_email(email)
    password_hash = await hash_password(password)
    # The customer's own doing, not an operator's change: not in the record of changes.
    created = await accounts.add_customer(
        rt, name=name.strip() or clean, login=(clean, password_hash), by=None
    )
    subject = Subject("customer", created.id, clean)
    return SignedUp(created.id, created.api_key, await _open_session(rt, subject))


async def set_customer_login(rt: Runtime, *, customer_id: int, email: str, password: str) -> str:
    """Give an existing customer a login, or change it; their open sessions end. Returns
    the email as stored."""
    clean = logins.clean_email(email)
    password_hash = await hash_password(password)
    async with rt.db.write() as conn:
        await accounts.claim_email(rt, conn, clean, customer_id=customer_id)
        if not await db.set_customer_login(
            conn, customer_id=customer_id, email=clean, password_hash=password_hash
        ):
            raise errors.NotFound(f"no customer with id {customer_id}")
        await db.delete_sessions_of(conn, kind="customer", subject_id=customer_id)
    return clean


async def add_operator(rt: Runtime, *, email: str, password: str) -> int:
    """An operator login for /admin; an email in use (by a customer or an operator) is
    refused."""
    clean = logins.clean_email(email)
    password_hash = await hash_password(password)
    async with rt.db.write() as conn:
        await accounts.claim_email(rt, conn, clean, customer_id=-1)
        return await db.insert_operator(
            conn, email=clean, password_hash=password_hash, now=rt.clock.now()
        )


async def sign_in(rt: Runtime, *, email: str, password: str, address: str) -> Session:
    """A session for the right email and password. Refused without saying which was wrong;
    after too many failures for the email or from the address within the window, refused
    even when right (``TooManyAttempts`` says for how long)."""
    now = rt.clock.now()
    try:
        clean, is_email = logins.clean_email(email), True
    except errors.InvalidInput:
        # Not an email: no account has it, but the attempt is a failure like any other.
        clean, is_email = logins.attempted_email(email), False
    since = now - logins.FAILURE_WINDOW
    async with rt.db.write() as conn:
        # The attempt counts as a failure from before its (slow) hash is verified, and the
        # check and the record are one step per email: guesses sent at once cannot all pass
        # the check before the first of them is written. A right password forgets it below.
        await db.lock_email(conn, is_sqlite=rt.db.is_sqlite, email=clean)
        by_email, by_address = await db.recent_failures(
            conn, email=clean, address=address, since=since
        )
        if (
            by_email >= logins.MAX_FAILURES_PER_EMAIL
            or by_address >= logins.MAX_FAILURES_PER_ADDRESS
        ):
            oldest = await db.oldest_failure(conn, email=clean, address=address, since=since)
            raise errors.TooManyAttempts(max(1, (oldest or now) + logins.FAILURE_WINDOW - now))
        await db.record_failure(conn, email=clean, address=address, now=now)
        found = await db.login_by_email(conn, clean) if is_email else None
    right = await _verify(found.password_hash if found else _DUMMY_HASH, password[:1024])
    if found is None or not right:
        raise errors.SignInRefused("wrong email or password")
    if _HASHER.check_needs_rehash(found.password_hash):
        fresh = await hash_password(password)
        async with rt.db.write() as conn:
            await db.set_password_hash(conn, found, fresh)
    async with rt.db.write() as conn:
        await db.forget_failures(conn, email=clean, before=since)
    kind: logins.SubjectKind = "customer" if found.kind == "customer" else "operator"
    return await _open_session(rt, Subject(kind, found.id, found.email))


async def _open_session(rt: Runtime, subject: Subject) -> Session:
    token = logins.new_token()
    now = rt.clock.now()
    expires_at = now + logins.session_seconds(subject.kind)
    async with rt.db.write() as conn:
        await db.insert_session(
            conn,
            token_digest=logins.token_digest(token),
            kind=subject.kind,
            subject_id=subject.id,
            now=now,
            expires_at=expires_at,
        )
        # Expired sessions go as new ones come: the table holds live sessions only.
        await db.purge_sessions(conn, now=now)
    return Session(token, subject, expires_at)


@dataclass(frozen=True, slots=True)
class Signed:
    """Who a request's session cookie signs in; ``customer`` is set for a customer (built
    by the same rules as an API key's: a banned customer is refused with ``Banned``)."""

    subject: Subject
    digest: str
    customer: accounts.Customer | None


async def signed(rt: Runtime, token: str | None) -> Signed | None:
    """The session of this cookie token, ``None`` when it is missing, unknown or expired."""
    if not token or len(token) > 128:
        return None
    digest = logins.token_digest(token)
    async with rt.db.read() as conn:
        row = await db.session(conn, token_digest=digest, now=rt.clock.now())
    if row is None:
        return None
    kind: logins.SubjectKind = "customer" if row.kind == "customer" else "operator"
    subject = Subject(kind, row.id, row.email)
    customer = None if row.customer is None else accounts.customer_of_session(rt, row.customer)
    return Signed(subject, digest, customer)


async def sign_out(rt: Runtime, token: str | None) -> None:
    if token and len(token) <= 128:
        async with rt.db.write() as conn:
            await db.delete_session(conn, logins.token_digest(token))
