"""The HTML pages: rendered on the server from the same views the JSON API returns; the pages' script
(static/dashboard.js) then keeps them live through `/api/events` and `/api/...`, and sends actions."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlencode

import jinja2
import orjson
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import Route

from .._errors import DurableError
from ._api import list_query
from ._auth import (
    Denied,
    Session,
    authorize_read,
    check_csrf,
    check_origin,
    clear_session,
    load_session,
    save_session,
)
from ._diagram import flow_svg
from ._http import BadRequest, client, config, read_body
from ._views import (
    STATUSES,
    error_status,
    execution_list,
    execution_view,
    schedule_list,
    schedule_view,
    workflow_list,
)

__all__ = ["page_routes"]

TEMPLATES = Path(__file__).parent / "templates"

_env = jinja2.Environment(
    loader=jinja2.FileSystemLoader(TEMPLATES),
    autoescape=True,  # every value is escaped unless marked safe (only the server-drawn SVG is)
    # Stored data varies in shape (an error without a traceback, say): a missing key renders empty.
    undefined=jinja2.Undefined,
    trim_blocks=True,
    lstrip_blocks=True,
)
_env.filters["q"] = lambda value: quote(str(value), safe="")
_env.filters["path"] = lambda value: quote(str(value), safe="/@:")


def _short_time(value: Any) -> str:
    text = str(value or "")
    return text.replace("T", " ")[:19] if text else "\u2013"


def _pretty(value: Any) -> str:
    return orjson.dumps(value, option=orjson.OPT_INDENT_2, default=str).decode()


def _compact(value: Any) -> str:
    text = "" if value is None else orjson.dumps(value, default=str).decode()
    return text if len(text) <= 120 else text[:119] + "…"


def _duration(ms: Any) -> str:
    if not isinstance(ms, int):
        return "\u2013"
    return f"{ms} ms" if ms < 1000 else f"{ms / 1000:.1f} s"


_env.filters.update(when=_short_time, pretty=_pretty, compact=_compact, duration=_duration)


def render(request: Request, template: str, status: int = 200, **context: Any) -> Response:
    session = load_session(request)
    cfg = config(request)
    html = _env.get_template(template).render(
        request_path=request.url.path,
        csrf=session.csrf,
        signed_in=session.signed_in,
        user=session.name,
        actions_enabled=cfg.actions_enabled,
        token_configured=cfg.token is not None,
        unauthenticated_actions=cfg.allow_unauthenticated_actions,
        can_act=cfg.actions_enabled and (session.signed_in or cfg.allow_unauthenticated_actions),
        **context,
    )
    response = Response(html, status_code=status, media_type="text/html; charset=utf-8")
    if session.fresh:
        save_session(request, response, session)
    return response


def _page(handler: Callable[[Request], Awaitable[Response]]) -> Callable[[Request], Awaitable[Response]]:
    """Reads need sign-in when protected (a redirect to the sign-in page); errors as an error page."""

    async def guarded(request: Request) -> Response:
        try:
            authorize_read(request)
            return await handler(request)
        except Denied as exc:
            if exc.status == 401 and config(request).protect_reads:
                target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
                return RedirectResponse("/sign-in?" + urlencode({"next": target}), status_code=303)
            return render(request, "error.html", exc.status, title="Refused", message=exc.message)
        except BadRequest as exc:
            return render(request, "error.html", 400, title="Bad request", message=str(exc))
        except DurableError as exc:
            status = error_status(exc)
            return render(
                request,
                "error.html",
                status,
                title="Not found" if status == 404 else "Error",
                message=exc.message,
            )
        except ValueError as exc:
            return render(request, "error.html", 400, title="Bad request", message=str(exc))

    return guarded


@_page
async def executions_page(request: Request) -> Response:
    query = list_query(request)
    if query["execution_id"]:
        record = await client(request).get_execution(query["execution_id"])
        if record is not None:
            return RedirectResponse(f"/executions/{quote(record.execution_id, safe='/@:')}", status_code=303)
    data = await execution_list(client(request), **query)
    filters = {k: request.query_params.get(k, "") for k in ("workflow", "after", "before", "id")}
    chosen = set(query["status"] or ())
    next_link = None
    if data["next_cursor"]:
        params = [(k, v) for k, v in request.query_params.multi_items() if k != "cursor"]
        next_link = "/executions?" + urlencode([*params, ("cursor", data["next_cursor"])])
    return render(
        request,
        "executions.html",
        title="Executions",
        data=data,
        filters=filters,
        statuses=STATUSES,
        chosen=chosen,
        next_link=next_link,
        api_query=request.url.query,
    )


@_page
async def execution_page(request: Request) -> Response:
    data = await execution_view(client(request), request.path_params["execution_id"])
    record = data["execution"]
    return render(request, "execution.html", title=f"Execution {record['execution_id']}", data=data, e=record)


@_page
async def flow_image(request: Request) -> Response:
    data = await execution_view(client(request), request.path_params["execution_id"])
    if data["flow"] is None:
        return Response(
            "no flow: the dashboard does not have this workflow's code", 404, media_type="text/plain"
        )
    svg = flow_svg(data["flow"], finished=data["execution"]["status"] == "completed")
    return Response(svg, media_type="image/svg+xml")


@_page
async def workflows_page(request: Request) -> Response:
    return render(
        request,
        "workflows.html",
        title="Workflows",
        workflows=await workflow_list(client(request)),
        statuses=STATUSES,
    )


@_page
async def schedules_page(request: Request) -> Response:
    return render(
        request, "schedules.html", title="Schedules", schedules=await schedule_list(client(request))
    )


@_page
async def schedule_page(request: Request) -> Response:
    data = await schedule_view(client(request), request.path_params["schedule_id"])
    return render(
        request,
        "schedule.html",
        title=f"Schedule {data['schedule']['schedule_id']}",
        data=data,
        s=data["schedule"],
    )


def _local(target: str) -> str:
    """Only paths on this site (no `//host` or scheme): the sign-in redirect is not an open redirect."""
    if target.startswith("/") and not target.startswith("//") and "\\" not in target:
        return target
    return "/executions"


async def sign_in_page(request: Request) -> Response:
    return render(
        request,
        "sign_in.html",
        title="Sign in",
        next=_local(request.query_params.get("next", "")),
        error=None,
    )


async def sign_in(request: Request) -> Response:
    """The pasted token, checked in constant time; a new signed-in session (new CSRF token) on success."""
    cfg = config(request)
    try:
        check_origin(request)
        body = await read_body(request)
        session = load_session(request)
        check_csrf(request, session, body.get("csrf") if isinstance(body.get("csrf"), str) else None)
    except Denied as exc:
        return render(
            request, "sign_in.html", exc.status, title="Sign in", next="/executions", error=exc.message
        )
    except BadRequest as exc:
        return render(request, "sign_in.html", 400, title="Sign in", next="/executions", error=str(exc))
    target = _local(str(body.get("next") or ""))
    if cfg.token is None:
        return render(
            request,
            "sign_in.html",
            403,
            title="Sign in",
            next=target,
            error="no token is configured: there is nothing to sign in with",
        )
    token = body.get("token")
    if not isinstance(token, str) or not cfg.token_matches(token.strip()):
        return render(request, "sign_in.html", 401, title="Sign in", next=target, error="wrong token")
    name = body.get("name") if isinstance(body.get("name"), str) else ""
    response = RedirectResponse(target, status_code=303)
    save_session(request, response, Session.new(signed_in=True, name=str(name)))
    return response


async def sign_out(request: Request) -> Response:
    try:
        check_origin(request)
        body = await read_body(request)
        check_csrf(
            request, load_session(request), body.get("csrf") if isinstance(body.get("csrf"), str) else None
        )
    except (Denied, BadRequest) as exc:
        return render(request, "error.html", 403, title="Refused", message=getattr(exc, "message", str(exc)))
    response = RedirectResponse("/executions", status_code=303)
    clear_session(request, response)
    return response


async def home(request: Request) -> Response:
    return RedirectResponse("/executions", status_code=307)


page_routes = [
    Route("/", home),
    Route("/executions", executions_page),
    Route("/executions/{execution_id:path}/flow.svg", flow_image),
    Route("/executions/{execution_id:path}", execution_page),
    Route("/workflows", workflows_page),
    Route("/schedules", schedules_page),
    Route("/schedules/{schedule_id:path}", schedule_page),
    Route("/sign-in", sign_in_page, methods=["GET"]),
    Route("/sign-in", sign_in, methods=["POST"]),
    Route("/sign-out", sign_out, methods=["POST"]),
]
