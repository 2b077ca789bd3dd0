"""The dashboard's JSON API and pages on a real Redis with real executions: every page's data, every
action (audited with its actor), every way to be refused, bad input, headers, live events."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta

import httpx

from apps.dashboard_app import GO
from dashboard.conftest import TOKEN, Served
from durable import Status

Serve = Callable[..., Awaitable[Served]]
BEARER = {"Authorization": f"Bearer {TOKEN}"}


async def _three(served: Served) -> tuple[str, str, str]:
    """One waiting for a signal, one failed, one sleeping."""
    d = served.durable
    waiting = await d.start("dash.greet", {"name": "ada"}, execution_id="greet-1")
    failed = await d.start("dash.fail", 7, execution_id="fail-1")
    sleeping = await d.start("dash.sleepy", None, execution_id="sleepy-1")
    await served.wait_status(waiting, Status.WAITING)
    await served.wait_status(failed, Status.FAILED)
    await served.wait_status(sleeping, Status.SLEEPING)
    return waiting, failed, sleeping


async def test_executions_listing_filters_counts_paging_and_search(served: Served) -> None:
    waiting, failed, sleeping = await _three(served)
    http = served.http
    data = (await http.get("/api/executions")).json()
    assert {e["execution_id"] for e in data["executions"]} == {waiting, failed, sleeping}
    assert data["counts"] == {**dict.fromkeys(data["counts"], 0), "waiting": 1, "failed": 1, "sleeping": 1}
    assert (data["total"], data["capped"], data["next_cursor"]) == (3, False, None)

    by_workflow = (await http.get("/api/executions", params={"workflow": "dash.fail"})).json()
    assert [e["execution_id"] for e in by_workflow["executions"]] == [failed]
    assert by_workflow["counts"]["failed"] == 1 and by_workflow["counts"]["waiting"] == 0
    by_status = (await http.get("/api/executions?status=waiting,sleeping")).json()
    assert {e["execution_id"] for e in by_status["executions"]} == {waiting, sleeping}

    seen, cursor = [], None
    while True:
        page = (
            await http.get("/api/executions", params={"limit": 1, **({"cursor": cursor} if cursor else {})})
        ).json()
        assert len(page["executions"]) <= 1
        seen += [e["execution_id"] for e in page["executions"]]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert sorted(seen) == sorted([waiting, failed, sleeping])

    later = (datetime.now(UTC) + timedelta(hours=1)).isoformat()
    assert (await http.get("/api/executions", params={"after": later})).json()["executions"] == []
    assert len((await http.get("/api/executions", params={"before": later})).json()["executions"]) == 3
    found = (await http.get("/api/executions", params={"id": failed})).json()
    assert [e["execution_id"] for e in found["executions"]] == [failed]
    assert (await http.get("/api/executions", params={"id": "nope"})).json()["executions"] == []
    # The page: the search redirects to the execution; the list shows every row and the counts.
    page = await http.get("/executions", params={"id": failed})
    assert page.status_code == 303 and page.headers["location"] == f"/executions/{failed}"
    html = (await http.get("/executions")).text
    assert all(eid in html for eid in (waiting, failed, sleeping)) and 'data-count="failed">1<' in html


async def test_one_execution_timeline_wait_audit_flow_and_error(served: Served) -> None:
    waiting, failed, sleeping = await _three(served)
    http = served.http
    view = (await http.get(f"/api/executions/{waiting}")).json()
    assert view["execution"]["status"] == "waiting" and view["execution"]["input"] == {"name": "ada"}
    assert view["wait"] == {"kind": "signal", "step_id": "wait-go", "signal": GO, "until": None}
    hello = next(s for s in view["steps"] if s["step_id"] == "hello")
    assert (hello["status"], hello["attempt"]) == ("completed", 1) and hello["duration_ms"] >= 0
    assert [a["kind"] for a in view["audit"]][:2] == ["created", "step.completed"]
    nodes = {n["id"]: n for n in view["flow"]["nodes"]}
    assert list(nodes) == ["hello", "wait-go", "finish"]
    assert (nodes["hello"]["taken"], nodes["wait-go"]["current"], nodes["finish"]["taken"]) == (
        True,
        True,
        False,
    )
    assert view["signals"] == [GO]
    svg = await http.get(f"/executions/{waiting}/flow.svg")
    assert svg.headers["content-type"].startswith("image/svg+xml")
    assert (
        "✓ step: hello" in svg.text and "▶ waitForSignal: wait-go" in svg.text and "step: finish" in svg.text
    )

    broken = (await http.get(f"/api/executions/{failed}")).json()
    error = broken["execution"]["error"]
    assert error["type"] == "StepFailedError" or "ValueError" in json.dumps(error)
    assert "traceback" in error and "cannot take 7" in json.dumps(error)
    assert any(s["step_id"] == "explode" and s["status"] == "failed" for s in broken["steps"])
    html = (await http.get(f"/executions/{failed}")).text
    assert "Traceback" in html and "cannot take 7" in html

    nap = (await http.get(f"/api/executions/{sleeping}")).json()["wait"]
    assert nap["kind"] == "sleep" and nap["step_id"] == "nap"
    assert datetime.fromisoformat(nap["until"]) > datetime.now(UTC) + timedelta(minutes=59)
    page = (await http.get(f"/executions/{waiting}")).text
    assert "for signal <b>dash.go</b>" in page and 'id="timeline"' in page and "flow.svg" in page


async def test_workflows_and_schedules(served: Served) -> None:
    await _three(served)
    d = served.durable
    await d.schedules.ensure(
        "dash.greet", {"name": "cron"}, id="every-hour", cron="0 * * * *", overlap="forbid"
    )
    workflows = {w["workflow_id"]: w for w in (await served.http.get("/api/workflows")).json()["workflows"]}
    assert {"dash.greet", "dash.fail", "dash.sleepy"} <= set(workflows)
    assert workflows["dash.greet"]["registered"] and workflows["dash.greet"]["category"] == "tests"
    assert workflows["dash.fail"]["counts"]["failed"] == 1
    assert [f["execution_id"] for f in workflows["dash.fail"]["recent_failures"]] == ["fail-1"]

    schedules = (await served.http.get("/api/schedules")).json()["schedules"]
    assert [(s["schedule_id"], s["overlap"], s["paused"]) for s in schedules] == [
        ("every-hour", "forbid", False)
    ]
    assert schedules[0]["next_run_at"] is not None and schedules[0]["recent_runs"] == []
    one = (await served.http.get("/api/schedules/every-hour")).json()
    assert [a["kind"] for a in one["audit"]] == ["created"]
    for page in ("/workflows", "/schedules", "/schedules/every-hour"):
        reply = await served.http.get(page)
        assert reply.status_code == 200 and ("every-hour" in reply.text or "dash.fail" in reply.text)


async def test_every_action_with_the_bearer_token_is_done_and_audited(served: Served) -> None:
    waiting, failed, sleeping = await _three(served)
    http, d = served.http, served.durable

    sent = await http.post(
        f"/api/executions/{waiting}/signal", json={"name": GO, "payload": {"ok": 1}}, headers=BEARER
    )
    assert sent.status_code == 200 and sent.json()["actor"] == "dashboard:api"
    assert (await d.wait(waiting, timeout=10))["finished"] == "done with {'ok': 1}"

    reply = await http.post(
        f"/api/executions/{sleeping}/cancel", json={"reason": "not needed"}, headers=BEARER
    )
    assert reply.status_code == 200
    await served.wait_status(sleeping, Status.CANCELLED)

    reply = await http.post(f"/api/executions/{failed}/retry", json={}, headers=BEARER)
    assert reply.status_code == 200
    await served.wait_status(failed, Status.FAILED)
    assert (await d.get_execution(failed)).attempt == 2  # type: ignore[union-attr]

    other = await d.start("dash.greet", "skip me", execution_id="greet-2")
    await served.wait_status(other, Status.WAITING)
    reply = await http.post(
        f"/api/executions/{other}/skip-step", json={"step_id": "wait-go", "result": "skipped"}, headers=BEARER
    )
    assert reply.status_code == 200
    assert (await d.wait(other, timeout=10))["finished"] == "done with skipped"

    for eid, kind in ((waiting, "signal.received"), (sleeping, "cancelled"), (failed, "retry")):
        entries = await d.list_audit_entries(eid)
        assert any(e.kind.startswith(kind.split(".")[0]) and e.actor == "dashboard:api" for e in entries), (
            eid,
            [(e.kind, e.actor) for e in entries],
        )

    await d.schedules.ensure("dash.sleepy", None, id="nightly", cron="0 3 * * *")
    for action in ("pause", "resume", "trigger"):
        reply = await http.post(f"/api/schedules/nightly/{action}", headers=BEARER)
        assert reply.status_code == 200, reply.text
    started = reply.json()["execution_id"]
    assert started.startswith("nightly@manual-") and await d.get_execution(started) is not None
    audit = [(a.kind, a.actor) for a in await d.schedules.audit("nightly")]
    assert audit[1:] == [
        ("paused", "dashboard:api"),
        ("resumed", "dashboard:api"),
        ("triggered", "dashboard:api"),
    ]
    runs = (await http.get("/api/schedules/nightly")).json()["recent_runs"]
    assert [r["execution_id"] for r in runs] == [started]


async def test_a_signed_in_browser_session_acts_with_its_csrf_token(served: Served) -> None:
    waiting, _failed, _sleeping = await _three(served)
    csrf = await served.sign_in(name="alice")
    session = (await served.http.get("/api/session")).json()
    assert session["signed_in"] and session["name"] == "alice"
    reply = await served.http.post(
        f"/api/executions/{waiting}/signal",
        json={"name": GO, "payload": "from alice"},
        headers={"X-CSRF-Token": csrf, "Origin": served.url},
    )
    assert reply.status_code == 200, reply.text
    await served.durable.wait(waiting, timeout=10)
    entries = await served.durable.list_audit_entries(waiting)
    assert any(e.kind == "signal.received" and e.actor == "dashboard:alice" for e in entries)
    # Signing out drops the session: the same request is refused now.
    await served.http.post("/sign-out", data={"csrf": csrf})
    refused = await served.http.post(
        f"/api/executions/{waiting}/cancel", json={}, headers={"X-CSRF-Token": csrf}
    )
    assert refused.status_code == 403


async def _unchanged(served: Served, eid: str) -> None:
    await asyncio.sleep(0.1)
    record = await served.durable.get_execution(eid)
    assert record is not None and record.status == Status.WAITING
    assert not [
        e for e in await served.durable.list_audit_entries(eid) if e.actor and e.actor.startswith("dashboard")
    ]


async def test_refused_requests_change_nothing(served: Served) -> None:
    waiting, _failed, _sleeping = await _three(served)
    http = served.http
    url = f"/api/executions/{waiting}/signal"
    body = {"name": GO, "payload": 1}

    # No token at all (nobody signed in): 401.
    csrf = await served.csrf()
    reply = await http.post(url, json=body, headers={"X-CSRF-Token": csrf})
    assert reply.status_code == 401 and "sign in" in reply.json()["error"]
    # A wrong bearer token: 401.
    assert (
        await http.post(url, json=body, headers={"Authorization": "Bearer wrong-token-wrong-token"})
    ).status_code == 401
    # A wrong token in the sign-in form: 401, and still not signed in.
    reply = await http.post("/sign-in", data={"token": "wrong-token-wrong-token", "csrf": csrf})
    assert reply.status_code == 401 and "wrong token" in reply.text
    assert not (await http.get("/api/session")).json()["signed_in"]
    # Signed in, but without or with the wrong CSRF token: 403.
    good = await served.sign_in()
    assert (await http.post(url, json=body)).status_code == 403
    assert (await http.post(url, json=body, headers={"X-CSRF-Token": "forged"})).status_code == 403
    # The CSRF token of another session does not do either.
    async with httpx.AsyncClient(base_url=served.url) as other:
        reply = await other.post(url, json=body, headers={"X-CSRF-Token": good})
        assert reply.status_code in (401, 403)
    # Cross-origin: refused even with a valid token and CSRF token.
    evil = {"Origin": "https://evil.example", "X-CSRF-Token": good}
    reply = await http.post(url, json=body, headers=evil)
    assert reply.status_code == 403 and "cross-origin" in reply.json()["error"]
    assert (
        await http.post(url, json=body, headers={**BEARER, "Origin": "https://evil.example"})
    ).status_code == 403
    # A sign-in without the session's CSRF token is refused too (login CSRF).
    async with httpx.AsyncClient(base_url=served.url) as fresh:
        assert (await fresh.post("/sign-in", data={"token": TOKEN})).status_code == 403
    # No action on GET.
    assert (await http.get(url)).status_code in (404, 405)
    await _unchanged(served, waiting)
    # And the proper request works.
    assert (
        await http.post(url, json=body, headers={"X-CSRF-Token": good, "Origin": served.url})
    ).status_code == 200


async def test_without_a_token_actions_are_disabled(serve: Serve) -> None:
    served = await serve(token=None)
    waiting, _failed, _sleeping = await _three(served)
    csrf = await served.csrf()
    reply = await served.http.post(
        f"/api/executions/{waiting}/cancel", json={}, headers={"X-CSRF-Token": csrf}
    )
    assert reply.status_code == 403 and "no token configured" in reply.json()["error"]
    reply = await served.http.post(
        "/api/schedules/x/pause", headers={"Authorization": "Bearer anything-at-all-here"}
    )
    assert reply.status_code == 403
    assert (await served.http.post("/sign-in", data={"token": "x" * 20, "csrf": csrf})).status_code == 403
    await _unchanged(served, waiting)
    page = (await served.http.get(f"/executions/{waiting}")).text
    assert "Actions are disabled" in page


async def test_protected_reads_need_the_token(serve: Serve) -> None:
    served = await serve(protect_reads=True)
    await _three(served)
    http = served.http
    for path in (
        "/api/executions",
        "/api/executions/greet-1",
        "/api/workflows",
        "/api/schedules",
        "/api/events",
    ):
        assert (await http.get(path)).status_code == 401, path
        assert (
            await http.get(path, headers={"Authorization": "Bearer not-the-token-at-all"})
        ).status_code == 401
    page = await http.get("/executions/greet-1")
    assert page.status_code == 303 and page.headers["location"].startswith("/sign-in?next=")
    assert (await http.get("/api/executions", headers=BEARER)).status_code == 200
    await served.sign_in()
    assert (await http.get("/executions/greet-1")).status_code == 200
    assert (await http.get("/healthz")).status_code == 200


async def test_unauthenticated_actions_when_asked_for_with_a_banner(serve: Serve) -> None:
    served = await serve(token=None, allow_unauthenticated_actions=True)
    waiting, _failed, _sleeping = await _three(served)
    assert "Unauthenticated actions are enabled" in (await served.http.get("/executions")).text
    url = f"/api/executions/{waiting}/signal"
    assert (await served.http.post(url, json={"name": GO})).status_code == 403  # CSRF still checked
    csrf = await served.csrf()
    assert (await served.http.post(url, json={"name": GO}, headers={"X-CSRF-Token": csrf})).status_code == 200
    await served.durable.wait(waiting, timeout=10)
    entries = await served.durable.list_audit_entries(waiting)
    assert any(e.actor == "dashboard:anonymous" for e in entries)


async def test_bad_input(served: Served) -> None:
    waiting, failed, _sleeping = await _three(served)
    http = served.http
    assert (await http.get("/api/executions/no-such-execution")).status_code == 404
    assert (await http.get("/executions/no-such-execution")).status_code == 404
    assert (await http.get("/api/schedules/no-such-schedule")).status_code == 404
    assert (await http.post("/api/executions/no-such/cancel", json={}, headers=BEARER)).status_code == 404
    assert (await http.post("/api/schedules/no-such/pause", headers=BEARER)).status_code == 404
    assert (await http.post(f"/api/executions/{waiting}/explode", json={}, headers=BEARER)).status_code == 404
    url = f"/api/executions/{waiting}/signal"
    malformed = await http.post(
        url,
        content=b'{"name": "dash.go", "payload": {',
        headers={**BEARER, "Content-Type": "application/json"},
    )
    assert malformed.status_code == 400 and "malformed JSON" in malformed.json()["error"]
    assert (await http.post(url, json=[1, 2], headers=BEARER)).status_code == 400
    assert (await http.post(url, json={"payload": 1}, headers=BEARER)).status_code == 400  # no name
    huge = await http.post(url, json={"name": GO, "payload": "x" * 70_000}, headers=BEARER)
    assert huge.status_code == 413
    # A body too large without a declared length (chunked) is cut off the same way.

    async def chunks():  # type: ignore[no-untyped-def]
        for _ in range(80):
            yield b"x" * 1024

    chunked = await http.post(url, content=chunks(), headers={**BEARER, "Content-Type": "application/json"})
    assert chunked.status_code == 413
    assert (await http.post(f"/api/executions/{waiting}/retry", json={}, headers=BEARER)).status_code == 409
    assert (await http.post(f"/api/executions/{failed}/cancel", json={}, headers=BEARER)).status_code == 409
    assert (await http.get("/api/executions?status=sideways")).status_code == 400
    assert (await http.get("/api/executions?after=yesterday")).status_code == 400
    assert (await http.get("/api/executions?limit=0")).status_code == 400
    await _unchanged(served, waiting)


async def test_security_headers_and_escaping(served: Served) -> None:
    d = served.durable
    eid = await d.start("dash.greet", "<script>alert(1)</script>", execution_id="xss-<b>1</b>")
    await served.wait_status(eid, Status.WAITING)
    for path in (
        "/executions",
        f"/executions/{eid}",
        "/api/executions",
        "/workflows",
        "/schedules",
        "/sign-in",
    ):
        reply = await served.http.get(path)
        assert reply.status_code == 200, path
        csp = reply.headers["content-security-policy"]
        assert "default-src 'self'" in csp and "unsafe-inline" not in csp
        assert reply.headers["x-frame-options"] == "DENY"
        assert reply.headers["x-content-type-options"] == "nosniff"
        assert reply.headers["referrer-policy"] == "same-origin"
    page = (await served.http.get(f"/executions/{eid}")).text
    assert "<script>alert(1)</script>" not in page and "&lt;script&gt;alert(1)&lt;/script&gt;" in page
    assert "<b>1</b>" not in page and "&lt;b&gt;1&lt;/b&gt;" in page
    assert "<script>" not in (await served.http.get("/executions")).text.replace(
        '<script src="/static/dashboard.js" defer></script>', ""
    )
    # The session cookie: HttpOnly, SameSite=Strict (Secure only over https).
    cookie = (await served.http.get("/api/session")).headers.get("set-cookie", "")
    if not cookie:  # the client already had a session: a fresh one sets it
        async with httpx.AsyncClient(base_url=served.url) as fresh:
            cookie = (await fresh.get("/api/session")).headers["set-cookie"]
    assert (
        "HttpOnly" in cookie
        and "SameSite=strict" in cookie.replace("Strict", "strict")
        and "Secure" not in cookie
    )


async def test_live_status_events(served: Served) -> None:
    waiting, _failed, _sleeping = await _three(served)
    seen: list[dict[str, object]] = []
    async with served.http.stream("GET", "/api/events", params={"execution": waiting}) as stream:
        assert stream.headers["content-type"].startswith("text/event-stream")
        lines = stream.aiter_lines()
        async for line in lines:
            if line.startswith(": subscribed"):
                break
        await served.durable.signal(waiting, GO, "live")

        async def read() -> None:
            async for line in lines:
                if line.startswith("data: "):
                    seen.append(json.loads(line[6:]))
                    if seen[-1]["status"] == "completed":
                        return

        await asyncio.wait_for(read(), 10)
    assert {e["execution_id"] for e in seen} == {waiting}
    assert "running" in [e["status"] for e in seen] and seen[-1]["status"] == "completed"


async def test_force_fail_marks_a_stuck_execution_failed_and_audits_it(served: Served) -> None:
    waiting, failed, sleeping = await _three(served)
    http, d = served.http, served.durable
    url = f"/api/executions/{sleeping}/force-fail"
    csrf = await served.csrf()
    assert (await http.post(url, json={"reason": "stuck"}, headers={"X-CSRF-Token": csrf})).status_code == 401
    assert (await d.get_execution(sleeping)).status == Status.SLEEPING  # type: ignore[union-attr]

    reply = await http.post(url, json={"reason": "stuck on a dead API"}, headers=BEARER)
    assert reply.status_code == 200 and reply.json()["message"] == "marked failed"
    record = await d.get_execution(sleeping)
    assert record is not None and record.status == Status.FAILED
    assert "stuck on a dead API" in json.dumps(record.error)
    assert any(e.actor == "dashboard:api" and "fail" in e.kind for e in await d.list_audit_entries(sleeping))
    # Already final: 409, nothing changes; a page shows the failure.
    assert (
        await http.post(f"/api/executions/{failed}/force-fail", json={}, headers=BEARER)
    ).status_code == 409
    assert "stuck on a dead API" in (await http.get(f"/executions/{sleeping}")).text
    # And a signed-in session fails one from the page's form as well.
    csrf = await served.sign_in(name="bob")
    reply = await http.post(
        f"/api/executions/{waiting}/force-fail", json={"reason": "abandoned"}, headers={"X-CSRF-Token": csrf}
    )
    assert reply.status_code == 200
    assert any(e.actor == "dashboard:bob" for e in await d.list_audit_entries(waiting))


async def test_a_retry_due_is_the_current_wait(served: Served) -> None:
    eid = await served.durable.start("dash.flaky", 1, execution_id="flaky-1")
    await served.wait_status(eid, Status.SLEEPING)
    view = (await served.http.get(f"/api/executions/{eid}")).json()
    assert view["wait"]["kind"] == "retry" and view["wait"]["step_id"] == "call-api"
    assert datetime.fromisoformat(view["wait"]["until"]) > datetime.now(UTC) + timedelta(minutes=59)
    (step,) = view["steps"]
    assert (step["status"], step["attempt"]) == ("retry", 1)
    assert "retry of call-api due" in (await served.http.get(f"/executions/{eid}")).text
