"""The JSON API: every page's data (`/api/executions`, `/api/executions/{id}`, `/api/workflows`,
`/api/schedules`, `/api/schedules/{id}`), the operator actions (POST), the session, live events."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

from starlette.requests import Request
from starlette.responses import Response, StreamingResponse
from starlette.routing import Route

from .._client._durable import Durable
from .._errors import DurableError, ExecutionNotFound
from ._auth import Denied, Identity, authorize_action, authorize_read, load_session, save_session
from ._http import BadRequest, client, config, hub, json_response, parse_time, read_body, to_json
from ._views import (
    error_status,
    execution_list,
    execution_view,
    schedule_list,
    schedule_view,
    summary,
    workflow_list,
)

__all__ = ["EXECUTION_ACTIONS", "SCHEDULE_ACTIONS", "api_routes", "list_query"]

_MAX_LIMIT = 500


def _errors(handler: Callable[[Request], Awaitable[Response]]) -> Callable[[Request], Awaitable[Response]]:
    """Client errors as JSON: refused 401/403, bad input 400, unknown ids 404, wrong state 409."""

    async def guarded(request: Request) -> Response:
        try:
            return await handler(request)
        except Denied as exc:
            return json_response({"error": exc.message}, exc.status)
        except BadRequest as exc:
            return json_response({"error": str(exc)}, 400)
        except DurableError as exc:
            return json_response({"error": exc.message, "type": type(exc).__name__}, error_status(exc))
        except ValueError as exc:
            return json_response({"error": str(exc)}, 400)

    return guarded


def list_query(request: Request) -> dict[str, Any]:
    """The listing filters in a query string: workflow, status (repeated or comma-separated), created
    after/before (ISO 8601), cursor, limit, id."""
    q = request.query_params
    statuses = [s for value in q.getlist("status") for s in value.split(",") if s]
    try:
        limit = int(q.get("limit") or 50)
    except ValueError:
        raise BadRequest("limit must be a number") from None
    if not 1 <= limit <= _MAX_LIMIT:
        raise BadRequest(f"limit must be between 1 and {_MAX_LIMIT}")
    return {
        "workflow": q.get("workflow") or None,
        "status": statuses or None,
        "created_after": parse_time(q.get("after"), "after"),
        "created_before": parse_time(q.get("before"), "before"),
        "cursor": q.get("cursor") or None,
        "limit": limit,
        "execution_id": (q.get("id") or "").strip() or None,
    }


@_errors
async def executions(request: Request) -> Response:
    authorize_read(request)
    return json_response(await execution_list(client(request), **list_query(request)))


@_errors
async def execution(request: Request) -> Response:
    authorize_read(request)
    return json_response(await execution_view(client(request), request.path_params["execution_id"]))


@_errors
async def workflows(request: Request) -> Response:
    authorize_read(request)
    return json_response({"workflows": await workflow_list(client(request))})


@_errors
async def schedules(request: Request) -> Response:
    authorize_read(request)
    return json_response({"schedules": await schedule_list(client(request))})


@_errors
async def schedule(request: Request) -> Response:
    authorize_read(request)
    return json_response(await schedule_view(client(request), request.path_params["schedule_id"]))


# ---------------------------------------------------------------------------- actions
def _text(body: dict[str, Any], name: str, *, required: bool = False, default: str = "") -> str:
    value = body.get(name, default)
    if value is None:
        value = default
    if not isinstance(value, str):
        raise BadRequest(f"{name} must be a string")
    value = value.strip()
    if required and not value:
        raise BadRequest(f"{name} is required")
    return value


async def _cancel(d: Durable, eid: str, body: dict[str, Any], who: Identity) -> str:
    reason = _text(body, "reason") or "cancelled from the dashboard"
    status = await d.cancel(eid, reason, actor=who.actor)
    return "cancelled" if status.value == "cancelled" else "cancel requested: it stops at its next checkpoint"


async def _retry(d: Durable, eid: str, body: dict[str, Any], who: Identity) -> str:
    await d.retry(eid, discard_signal=bool(body.get("discard_signal")), actor=who.actor)
    return "retrying from the failed step"


async def _skip_step(d: Durable, eid: str, body: dict[str, Any], who: Identity) -> str:
    step_id = _text(body, "step_id", required=True)
    await d.skip_step(eid, step_id, body.get("result"), actor=who.actor)
    return f"step {step_id} skipped"


async def _force_fail(d: Durable, eid: str, body: dict[str, Any], who: Identity) -> str:
    reason = _text(body, "reason") or "failed by an operator from the dashboard"
    status = await d.force_fail(eid, reason, actor=who.actor)
    return "marked failed" if status.value == "failed" else "fail requested: it stops at its next checkpoint"


async def _signal(d: Durable, eid: str, body: dict[str, Any], who: Identity) -> str:
    name = _text(body, "name", required=True)
    delivery = _text(body, "delivery_id") or None
    delivered = await d.signal(eid, name, body.get("payload"), delivery_id=delivery, actor=who.actor)
    return f"signal {name} sent" if delivered else f"signal {name} was already delivered (same delivery id)"


ExecutionAction = Callable[[Durable, str, dict[str, Any], Identity], Awaitable[str]]
EXECUTION_ACTIONS: dict[str, ExecutionAction] = {
    "cancel": _cancel,
    "retry": _retry,
    "skip-step": _skip_step,
    "force-fail": _force_fail,
    "signal": _signal,
}
SCHEDULE_ACTIONS = ("pause", "resume", "trigger")


async def _authorized_body(request: Request) -> tuple[Identity, dict[str, Any]]:
    """Authorize first (a refused request learns nothing about its body), then parse the body."""
    try:
        body: dict[str, Any] | None = await read_body(request)
        problem: BadRequest | None = None
    except BadRequest as exc:
        body, problem = None, exc
    csrf = body.get("csrf") if body is not None and isinstance(body.get("csrf"), str) else None
    identity = authorize_action(request, csrf)
    if problem is not None or body is None:
        raise problem or BadRequest("no body")
    return identity, body


@_errors
async def execution_action(request: Request) -> Response:
    eid: str = request.path_params["execution_id"]
    action = EXECUTION_ACTIONS.get(request.path_params["action"])
    if action is None:
        return json_response({"error": f"unknown action {request.path_params['action']!r}"}, 404)
    identity, body = await _authorized_body(request)
    d = client(request)
    if await d.get_execution(eid) is None:
        raise ExecutionNotFound(f"execution {eid!r} does not exist", execution_id=eid)
    message = await action(d, eid, body, identity)
    record = await d.get_execution(eid)
    return json_response(
        {
            "ok": True,
            "message": message,
            "actor": identity.actor,
            "execution": summary(record) if record else None,
        }
    )


@_errors
async def schedule_action(request: Request) -> Response:
    sid: str = request.path_params["schedule_id"]
    action = request.path_params["action"]
    if action not in SCHEDULE_ACTIONS:
        return json_response({"error": f"unknown action {action!r}"}, 404)
    identity, _body = await _authorized_body(request)
    schedules = client(request).schedules
    started = None
    if action == "pause":
        await schedules.pause(sid, actor=identity.actor)
        message = "paused"
    elif action == "resume":
        await schedules.resume(sid, actor=identity.actor)
        message = "resumed"
    else:
        started = await schedules.trigger(sid, actor=identity.actor)
        message = f"triggered: started {started}"
    info = await schedules.get(sid)
    return json_response(
        {
            "ok": True,
            "message": message,
            "actor": identity.actor,
            "execution_id": started,
            "schedule": info.to_dict(),
        }
    )


# ---------------------------------------------------------------------------- session and events
async def session(request: Request) -> Response:
    """The caller's session: signed in or not, and its CSRF token (scripts without a bearer token,
    in the unauthenticated mode, read it here). Sets the cookie when the session is new."""
    cfg = config(request)
    current = load_session(request)
    response = json_response(
        {
            "signed_in": current.signed_in,
            "name": current.name,
            "csrf": current.csrf,
            "actions_enabled": cfg.actions_enabled,
            "token_configured": cfg.token is not None,
            "unauthenticated_actions": cfg.allow_unauthenticated_actions,
            "reads_protected": cfg.protect_reads,
        }
    )
    if current.fresh:
        save_session(request, response, current)
    return response


@_errors
async def events(request: Request) -> Response:
    """Server-sent events: one `status` event per status change (of `execution` or `workflow` when
    given), and a comment every 15 s to keep proxies from closing the stream."""
    authorize_read(request)
    only_execution = request.query_params.get("execution") or None
    only_workflow = request.query_params.get("workflow") or None
    live = hub(request)

    async def stream() -> AsyncIterator[bytes]:
        async with live.subscribe() as queue:
            # The first bytes (and so the headers, the browser's `open`) go out once subscribed.
            yield b"retry: 2000\n\n: subscribed\n\n"
            while True:
                try:
                    event = await asyncio.wait_for(queue.get(), 15)
                except TimeoutError:
                    yield b": keep-alive\n\n"
                    continue
                if only_execution and event.execution_id != only_execution:
                    continue
                if only_workflow and event.workflow_id != only_workflow:
                    continue
                data = {
                    "execution_id": event.execution_id,
                    "workflow_id": event.workflow_id,
                    "status": event.status.value,
                    "current_step": event.current_step,
                    "at": event.at.isoformat(),
                }
                yield b"event: status\ndata: " + to_json(data) + b"\n\n"

    return StreamingResponse(stream(), media_type="text/event-stream", headers={"X-Accel-Buffering": "no"})


async def healthz(request: Request) -> Response:
    return json_response({"ok": True})


api_routes = [
    Route("/healthz", healthz),
    Route("/api/session", session),
    Route("/api/events", events),
    Route("/api/executions", executions),
    Route("/api/executions/{execution_id:path}/{action:str}", execution_action, methods=["POST"]),
    Route("/api/executions/{execution_id:path}", execution),
    Route("/api/workflows", workflows),
    Route("/api/schedules", schedules),
    Route("/api/schedules/{schedule_id:path}/{action:str}", schedule_action, methods=["POST"]),
    Route("/api/schedules/{schedule_id:path}", schedule),
]
