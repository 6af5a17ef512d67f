"""What every page of the web console shares: who is signed in, CSRF tokens, rendering,
redirects with a one-line message, and the security headers.

Pages are plain Starlette endpoints wrapped by ``public_page``, ``customer_page`` or
``operator_page``. The wrapper reads the session cookie once, turns away whoever may not
see the page (a customer is never shown an /admin page: 404 for them, as for a stranger's
activation), and checks the CSRF token of every POST before the handler runs. Handlers use
the same services as the API: no money or stock rule is written here.
"""

from __future__ import annotations

import secrets
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote, unquote

import jinja2
import structlog
from starlette.datastructures import FormData
from starlette.requests import Request
from starlette.responses import HTMLResponse, RedirectResponse, Response

from otphub.domain import errors, logins
from otphub.services import logins as login_service
from otphub.services.logins import Signed
from otphub.services.runtime import Runtime

log = structlog.get_logger("otphub.console")

SESSION_COOKIE = "otphub_session"
# Before sign-in, forms (sign-in, sign-up) are bound to this random cookie instead.
PRE_SESSION_COOKIE = "otphub_pre"
FLASH_COOKIE = "otphub_flash"
MAX_FLASH = 300
# Forms are small: a larger body is refused before it is parsed.
MAX_FORM_FIELDS = 200

_env = jinja2.Environment(
    loader=jinja2.PackageLoader("otphub.http.console", "templates"),
    autoescape=True,
    undefined=jinja2.StrictUndefined,
    trim_blocks=True,
    lstrip_blocks=True,
)
_env.globals["explain"] = errors.explain

# No inline script or style anywhere: the policy forbids both, so an injected tag does
# nothing even if escaping were ever missed.
SECURITY_HEADERS = {
    "Content-Security-Policy": (
        "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
        "connect-src 'self'; frame-ancestors 'none'; form-action 'self'; base-uri 'none'"
    ),
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
    "X-Frame-Options": "DENY",
    "Cache-Control": "no-store",
}


@dataclass
class Visit:
    """One request to the console: its runtime, who is signed in (if anyone), the CSRF
    token to put in its forms, and (for a POST) the form, already checked."""

    request: Request
    rt: Runtime
    signed: Signed | None
    csrf: str
    form: FormData | None = None
    new_pre_session: str | None = None
    cookies: list[tuple[str, str, int]] = field(default_factory=list)

    @property
    def customer_id(self) -> int:
        assert self.signed is not None and self.signed.customer is not None
        return self.signed.customer.id

    def field(self, name: str, default: str = "") -> str:
        """A form field as text (``default`` when absent); never a file."""
        if self.form is None:
            return default
        value = self.form.get(name)
        return value if isinstance(value, str) else default


Handler = Callable[[Visit], Awaitable[Response]]
Endpoint = Callable[[Request], Awaitable[Response]]


def runtime(request: Request) -> Runtime:
    rt: Runtime = request.app.state.runtime
    return rt


def is_https(request: Request) -> bool:
    return request.url.scheme == "https"


def set_cookie(
    response: Response, request: Request, name: str, value: str, max_age: int | None
) -> None:
    """HttpOnly and SameSite=Lax always; Secure when the console is served over https
    (behind a proxy: with X-Forwarded-Proto from an address in OTPHUB_FORWARDED_ALLOW_IPS)."""
    response.set_cookie(
        name,
        value,
        max_age=max_age,
        path="/",
        httponly=True,
        samesite="lax",
        secure=is_https(request),
    )


def render(visit: Visit, template: str, *, status_code: int = 200, **context: Any) -> Response:
    request = visit.request
    flash = unquote(request.cookies.get(FLASH_COOKIE, "")[: 3 * MAX_FLASH])[:MAX_FLASH]
    # A message that says something was refused starts with "!" (see ``redirect``).
    problem = flash[1:] if flash.startswith("!") else ""
    html = _env.get_template(template).render(
        visit=visit,
        subject=visit.signed.subject if visit.signed else None,
        csrf=visit.csrf,
        flash="" if problem else flash,
        problem=problem,
        path=request.url.path,
        money=visit.rt.money.format,
        currency=visit.rt.settings.money.code,
        when=visit.rt.timestamp,
        signup_open=visit.rt.settings.signup == "open",
        **context,
    )
    response = HTMLResponse(html, status_code=status_code)
    if flash:
        response.delete_cookie(FLASH_COOKIE, path="/")
    return finish(visit, response)


def redirect(
    visit: Visit, url: str, *, flash: str | None = None, problem: str | None = None
) -> Response:
    """303 to ``url`` (a path of this site), with a one-line message for the next page:
    ``flash`` says what was done, ``problem`` what was refused (shown as an alert)."""
    response = RedirectResponse(safe_path(url), status_code=303)
    message = ("!" + problem) if problem else flash
    if message:
        set_cookie(response, visit.request, FLASH_COOKIE, quote_flash(message), 60)
    return finish(visit, response)


def quote_flash(text: str) -> str:
    """Percent-encoded: a cookie value holds ASCII only (a "…" or a name in Cyrillic would
    otherwise fail the response); the page shows it decoded, and escaped."""
    return quote(text[:MAX_FLASH], safe="")


def safe_path(url: str) -> str:
    """Only paths of this site: never ``//evil.example`` or ``https://...`` (open redirect).
    Control characters are refused too: browsers drop a tab or a newline from a URL, so
    ``/<TAB>/evil.example`` would be read as ``//evil.example``."""
    if not url.startswith("/") or url.startswith("//") or "\\" in url:
        return "/"
    if any(ord(c) < 0x20 or ord(c) == 0x7F for c in url):
        return "/"
    return url


def finish(visit: Visit, response: Response) -> Response:
    for name, value in SECURITY_HEADERS.items():
        response.headers.setdefault(name, value)
    if visit.new_pre_session is not None:
        set_cookie(response, visit.request, PRE_SESSION_COOKIE, visit.new_pre_session, None)
    for name, value, max_age in visit.cookies:
        set_cookie(response, visit.request, name, value, max_age)
    return response


def refused(visit: Visit, message: str, *, status_code: int = 400) -> Response:
    """The error page: what went wrong, in plain language."""
    return render(visit, "error.html", status_code=status_code, message=message)


def not_found(visit: Visit) -> Response:
    return refused(visit, "There is no such page.", status_code=404)


async def _visit(request: Request) -> Visit | Response:
    rt = runtime(request)
    token = request.cookies.get(SESSION_COOKIE)
    try:
        signed = await login_service.signed(rt, token)
    except errors.Banned as banned:
        # Signed out on the spot: the session would otherwise outlive the page that can no
        # longer show a form to end it. Signing in again works once the ban is over.
        await login_service.sign_out(rt, token)
        visit = Visit(request, rt, None, "")
        response = refused(visit, errors.explain(banned.word), status_code=403)
        response.delete_cookie(SESSION_COOKIE, path="/")
        return response
    new_pre = None
    if signed is not None:
        binding = signed.digest
    else:
        binding = request.cookies.get(PRE_SESSION_COOKIE, "")
        if len(binding) < 20 or len(binding) > 64:
            binding = new_pre = secrets.token_urlsafe(24)
    visit = Visit(
        request, rt, signed, logins.csrf_token(rt.secret, binding), new_pre_session=new_pre
    )
    if request.method == "POST":
        try:
            form = await request.form(max_fields=MAX_FORM_FIELDS, max_files=0)
        except Exception:
            return refused(visit, "The form could not be read.", status_code=400)
        if new_pre is not None or not logins.csrf_valid(
            rt.secret, binding, _text(form.get("csrf"))
        ):
            log.info("console_csrf_refused", path=request.url.path)
            return refused(
                visit,
                "This form has expired or did not come from this site. Reload the page and "
                "try again.",
                status_code=403,
            )
        visit.form = form
    return visit


def _text(value: object) -> str | None:
    return value if isinstance(value, str) else None


def public_page(handler: Handler) -> Endpoint:
    """A page anyone may open (sign-in, sign-up)."""

    async def endpoint(request: Request) -> Response:
        visit = await _visit(request)
        if isinstance(visit, Response):
            return visit
        return await handler(visit)

    return endpoint


def customer_page(handler: Handler) -> Endpoint:
    """A customer's page: a stranger is sent to sign in; an operator to /admin."""

    async def endpoint(request: Request) -> Response:
        visit = await _visit(request)
        if isinstance(visit, Response):
            return visit
        if visit.signed is None:
            return redirect(visit, "/login?next=" + quote(request.url.path, safe="/"))
        if visit.signed.subject.kind != "customer":
            return redirect(visit, "/admin")
        try:
            return await handler(visit)
        except errors.ProtocolError as refusal:
            return refused(
                visit, errors.explain(refusal.word), status_code=errors.http_status(refusal.word)
            )

    return endpoint


def operator_page(handler: Handler) -> Endpoint:
    """An operator's page: a stranger is sent to sign in; a signed-in customer gets 404,
    exactly what a page that does not exist answers (nothing tells them /admin exists)."""

    async def endpoint(request: Request) -> Response:
        visit = await _visit(request)
        if isinstance(visit, Response):
            return visit
        if visit.signed is None:
            return redirect(visit, "/login?next=" + quote(request.url.path, safe="/"))
        if visit.signed.subject.kind != "operator":
            return not_found(visit)
        try:
            return await handler(visit)
        except (errors.InvalidInput, errors.NotFound) as refusal:
            return refused(visit, str(refusal))

    return endpoint
