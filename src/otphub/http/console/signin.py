"""Signing in, signing up and signing out (``/login``, ``/signup``, ``/logout``)."""

from __future__ import annotations

from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from otphub.domain import errors
from otphub.http.console.web import (
    SESSION_COOKIE,
    Visit,
    public_page,
    redirect,
    render,
    safe_path,
)
from otphub.services import logins as login_service
from otphub.services.logins import Session


def _home(session_kind: str) -> str:
    return "/admin" if session_kind == "operator" else "/"


def _signed_in(visit: Visit, session: Session) -> None:
    """The session cookie lives as long as the session."""
    visit.cookies.append((SESSION_COOKIE, session.token, session.expires_at - visit.rt.clock.now()))


@public_page
async def login(visit: Visit) -> Response:
    next_url = safe_path(visit.request.query_params.get("next", "") or "/")
    if visit.request.method == "GET":
        if visit.signed is not None:
            return redirect(visit, _home(visit.signed.subject.kind))
        return render(visit, "login.html", next_url=next_url, email="", error=None)
    email = visit.field("email")[:300]
    address = visit.request.client.host if visit.request.client else "-"
    try:
        session = await login_service.sign_in(
            visit.rt, email=email, password=visit.field("password"), address=address
        )
    except errors.TooManyAttempts as limited:
        minutes = max(1, round(limited.retry_after / 60))
        message = f"Too many failed sign-ins. Try again in about {minutes} minute(s)."
        limited_page = render(
            visit, "login.html", status_code=429, next_url=next_url, email=email, error=message
        )
        limited_page.headers["Retry-After"] = str(limited.retry_after)
        return limited_page
    except errors.SignInRefused:
        return render(
            visit,
            "login.html",
            status_code=401,
            next_url=next_url,
            email=email,
            error="Wrong email or password.",
        )
    _signed_in(visit, session)
    wanted = safe_path(visit.field("next") or "/")
    home = _home(session.subject.kind)
    # Each kind of account lands in its own console, whatever ``next`` says.
    in_own_console = wanted.startswith("/admin") == (home == "/admin")
    return redirect(visit, wanted if in_own_console and wanted != "/" else home)


@public_page
async def signup(visit: Visit) -> Response:
    if visit.rt.settings.signup != "open":
        return render(visit, "signup.html", status_code=403, closed=True, error=None, form={})
    if visit.request.method == "GET":
        return render(visit, "signup.html", closed=False, error=None, form={})
    form = {"name": visit.field("name")[:128], "email": visit.field("email")[:300]}
    if visit.field("password") != visit.field("password_again"):
        return render(
            visit,
            "signup.html",
            status_code=400,
            closed=False,
            error="The two passwords differ.",
            form=form,
        )
    try:
        created = await login_service.sign_up(
            visit.rt, name=form["name"], email=form["email"], password=visit.field("password")
        )
    except (errors.InvalidInput, errors.SignupClosed) as refusal:
        return render(
            visit, "signup.html", status_code=400, closed=False, error=str(refusal), form=form
        )
    _signed_in(visit, created.session)
    # Shown on this answer only (no redirect): the key is never stored in clear anywhere.
    return render(visit, "welcome.html", api_key=created.api_key)


@public_page
async def logout(visit: Visit) -> Response:
    await login_service.sign_out(visit.rt, visit.request.cookies.get(SESSION_COOKIE))
    response = redirect(visit, "/login", flash="You are signed out.")
    response.delete_cookie(SESSION_COOKIE, path="/")
    return response


def routes() -> list[BaseRoute]:
    return [
        Route("/login", login, methods=["GET", "POST"]),
        Route("/signup", signup, methods=["GET", "POST"]),
        Route("/logout", logout, methods=["POST"]),
    ]
