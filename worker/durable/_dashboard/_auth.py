"""Who is asking: bearer tokens, signed session cookies, CSRF tokens and the Origin check.

A browser signs in by pasting the token into the sign-in form; the session that results lives in a
signed cookie (HttpOnly, SameSite=Strict, Secure over https) and holds a per-session CSRF token, which
every state-changing request from a page must echo (header `X-CSRF-Token` or form field `csrf`).
Scripts send `Authorization: Bearer <token>` instead: a header a browser never adds by itself, so such
requests need no CSRF token. A request whose `Origin` is not this dashboard's is refused outright.
"""

from __future__ import annotations

import hmac
import secrets
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from itsdangerous import BadSignature, URLSafeTimedSerializer
from starlette.requests import Request
from starlette.responses import Response

from ._config import DashboardConfig

__all__ = [
    "COOKIE",
    "CSRF_HEADER",
    "Denied",
    "Identity",
    "Session",
    "authorize_action",
    "authorize_read",
    "check_origin",
    "load_session",
    "save_session",
]

COOKIE = "durable_dashboard"
CSRF_HEADER = "x-csrf-token"
# Names typed at sign-in go into audit entries: keep them short and plain.
_NAME_CHARS = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._@+-")


class Denied(Exception):
    """A request refused: `status` 401 (who are you?) or 403 (not allowed), `message` for the page."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


@dataclass
class Session:
    """What the cookie holds: the CSRF token, whether the token was presented, the name given."""

    csrf: str
    signed_in: bool = False
    name: str = ""
    # True when this request made the session (so the response must set the cookie).
    fresh: bool = False

    @classmethod
    def new(cls, *, signed_in: bool = False, name: str = "") -> Session:
        return cls(csrf=secrets.token_urlsafe(32), signed_in=signed_in, name=clean_name(name), fresh=True)

    def to_cookie(self) -> dict[str, Any]:
        return {"c": self.csrf, "s": self.signed_in, "n": self.name}


@dataclass(frozen=True)
class Identity:
    """An authenticated caller; `actor` is what audit entries name."""

    actor: str
    via: str  # "bearer", "session" or "anonymous"


def clean_name(name: str) -> str:
    return "".join(c for c in name.strip() if c in _NAME_CHARS)[:64]


def _serializer(config: DashboardConfig) -> URLSafeTimedSerializer:
    return URLSafeTimedSerializer(config.session_key(), salt="durable-dashboard-session")


def load_session(request: Request) -> Session:
    """The request's session (cached on the request); a new anonymous one when the cookie is missing,
    tampered with, signed with another key (the token changed) or expired."""
    cached = request.scope.get("durable.session")
    if isinstance(cached, Session):
        return cached
    config: DashboardConfig = request.app.state.config
    session: Session | None = None
    raw = request.cookies.get(COOKIE)
    if raw:
        try:
            data = _serializer(config).loads(raw, max_age=config.session_max_age_s)
            if isinstance(data, dict) and isinstance(data.get("c"), str) and data["c"]:
                signed_in = bool(data.get("s")) and config.token is not None
                session = Session(csrf=data["c"], signed_in=signed_in, name=str(data.get("n") or ""))
        except BadSignature:
            session = None
    if session is None:
        session = Session.new()
    request.scope["durable.session"] = session
    return session


def save_session(request: Request, response: Response, session: Session) -> None:
    config: DashboardConfig = request.app.state.config
    response.set_cookie(
        COOKIE,
        _serializer(config).dumps(session.to_cookie()),
        max_age=config.session_max_age_s,
        path="/",
        httponly=True,
        samesite="strict",
        secure=https(request),
    )


def clear_session(request: Request, response: Response) -> None:
    response.delete_cookie(COOKIE, path="/", httponly=True, samesite="strict", secure=https(request))


def _bearer(request: Request) -> str | None:
    header = request.headers.get("authorization", "")
    scheme, _, value = header.partition(" ")
    return value.strip() if scheme.lower() == "bearer" else None


def https(request: Request) -> bool:
    """Served over https here or at a proxy in front (X-Forwarded-Proto: it can only make the cookie
    stricter, so it is believed from anyone)."""
    return request.url.scheme == "https" or request.headers.get("x-forwarded-proto", "").lower() == "https"


def check_origin(request: Request) -> None:
    """Refuse a request a page of another site sent (browsers send `Origin` with every POST).

    The Origin's host and port must be the ones the request was sent to (its Host header); the scheme is
    not compared, because behind a TLS-terminating Ingress the page is https and the request to us http.
    """
    origin = request.headers.get("origin")
    if origin is None:
        return  # not a browser (curl, a script): they carry a bearer token or a CSRF token anyway
    try:
        parts = urlsplit(origin)
        origin_host = parts.netloc.lower()
        default_port = {"http": 80, "https": 443}.get(parts.scheme)
        if parts.port is not None and parts.port == default_port:
            origin_host = (parts.hostname or "").lower()
    except ValueError:
        origin_host = ""
    host = request.headers.get("host", "").lower()
    for suffix in (":80", ":443"):
        host = host.removesuffix(suffix)
    if not origin_host or origin_host != host:
        raise Denied(403, f"cross-origin request refused (Origin {origin!r} is not this dashboard)")


def check_csrf(request: Request, session: Session, sent: str | None) -> None:
    if not sent or session.fresh or not hmac.compare_digest(sent.encode(), session.csrf.encode()):
        raise Denied(403, "missing or wrong CSRF token: reload the page and try again")


def authorize_read(request: Request) -> Identity | None:
    """None when reads are open; raises `Denied(401)` when they are protected and nobody signed in."""
    config: DashboardConfig = request.app.state.config
    api = _bearer_identity(request, config)
    if api is not None:
        return api
    session = load_session(request)
    if session.signed_in:
        return Identity(_session_actor(session), "session")
    if config.protect_reads:
        raise Denied(401, "sign in to see this dashboard")
    return None


def _bearer_identity(request: Request, config: DashboardConfig) -> Identity | None:
    """The API caller when the request carries a bearer token (`Denied(401)` if it is wrong), else None."""
    bearer = _bearer(request)
    if bearer is None:
        return None
    if not config.token_matches(bearer):
        raise Denied(401, "wrong token")
    return Identity("dashboard:api", "bearer")


def _session_actor(session: Session) -> str:
    return f"dashboard:{session.name}" if session.name else "dashboard"


def authorize_action(request: Request, csrf_sent: str | None) -> Identity:
    """The caller of a state-changing request, or `Denied`: a cross-origin request (403), actions off
    because no authentication is configured (403), a wrong or missing token (401), a session request
    without its CSRF token (403)."""
    config: DashboardConfig = request.app.state.config
    check_origin(request)
    if not config.actions_enabled:
        raise Denied(
            403,
            "actions are disabled: this dashboard has no token configured "
            "(--token-file or DURABLE_DASHBOARD_TOKEN)",
        )
    api = _bearer_identity(request, config)
    if api is not None:
        return api
    session = load_session(request)
    check_csrf(request, session, csrf_sent or request.headers.get(CSRF_HEADER))
    if session.signed_in:
        return Identity(_session_actor(session), "session")
    if config.allow_unauthenticated_actions:
        return Identity("dashboard:anonymous", "anonymous")
    raise Denied(401, "not signed in: sign in with the dashboard token to act")
