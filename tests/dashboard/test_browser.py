"""The dashboard in a real headless Chromium (the Debian package's /usr/bin/chromium, driven by
Playwright; no browser download): pages, live updates, actions, refusals, escaping; and the README's
screenshots (docs/screenshots/)."""

from __future__ import annotations

import asyncio
import os
import shutil
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path

import pytest

from apps.dashboard_app import GO
from dashboard.conftest import TOKEN, Served
from durable import Status

playwright_api = pytest.importorskip("playwright.async_api")
Browser = playwright_api.Browser
Page = playwright_api.Page

CHROMIUM = "/usr/bin/chromium"
# `make screenshots` saves them into docs/screenshots/ (shown in the README); a plain test run keeps
# them out of the work tree.
SCREENSHOTS_ENV = "DURABLE_SCREENSHOTS"

pytestmark = [
    pytest.mark.browser,
    pytest.mark.slow,
    pytest.mark.skipif(shutil.which(CHROMIUM) is None, reason="needs /usr/bin/chromium (make chromium)"),
]

Serve = Callable[..., Awaitable[Served]]


@pytest.fixture
async def browser() -> AsyncIterator[Browser]:
    async with playwright_api.async_playwright() as p:
        launched = await p.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        try:
            yield launched
        finally:
            await launched.close()


async def _page(browser: Browser, served: Served) -> Page:
    context = await browser.new_context(base_url=served.url, viewport={"width": 1360, "height": 900})
    page = await context.new_page()
    errors = _JS_ERRORS.setdefault(id(page), [])
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    page.on("dialog", lambda dialog: asyncio.ensure_future(dialog.accept()))
    return page


# Script errors per page (by id): each test checks its page had none.
_JS_ERRORS: dict[int, list[str]] = {}


def _js_errors(page: Page) -> list[str]:
    return _JS_ERRORS.get(id(page), [])


async def _sign_in(page: Page) -> None:
    await page.goto("/sign-in")
    await page.fill("input[name=token]", TOKEN)
    await page.fill("input[name=name]", "grace")
    await page.click("#sign-in button[type=submit]")
    await page.wait_for_url("**/executions")


async def _examples(served: Served) -> tuple[str, str, str]:
    d = served.durable
    waiting = await d.start("dash.greet", {"name": "ada", "items": 3}, execution_id="order-1001")
    failed = await d.start("dash.fail", 7, execution_id="import-2024-05-01")
    sleeping = await d.start("dash.sleepy", None, execution_id="reminder-17")
    done = await d.start("dash.greet", {"name": "lin"}, execution_id="order-1000")
    await served.wait_status(done, Status.WAITING)
    await d.signal(done, GO, {"approved": True})
    await d.wait(done, timeout=10)
    await served.wait_status(waiting, Status.WAITING)
    await served.wait_status(failed, Status.FAILED)
    await served.wait_status(sleeping, Status.SLEEPING)
    await d.schedules.ensure(
        "dash.sleepy", None, id="nightly-report", cron="0 3 * * *", timezone="Europe/Paris", overlap="forbid"
    )
    await d.schedules.ensure("dash.greet", {"name": "hourly"}, id="hourly-sync", interval=3600, paused=True)
    await d.schedules.trigger("nightly-report", actor="ops")
    return waiting, failed, sleeping


async def test_pages_show_the_executions_and_save_screenshots(
    served: Served, browser: Browser, tmp_path: Path
) -> None:
    shots = Path(os.environ.get(SCREENSHOTS_ENV) or tmp_path)
    waiting, failed, sleeping = await _examples(served)
    page = await _page(browser, served)
    await asyncio.to_thread(shots.mkdir, parents=True, exist_ok=True)

    await page.goto("/executions")
    for eid in (waiting, failed, sleeping):
        assert await page.locator(f"#executions tr[data-id='{eid}']").count() == 1
    assert await page.inner_text("[data-count=failed]") == "1"
    await page.screenshot(path=str(shots / "executions.png"), full_page=True)

    await page.goto(f"/executions/{waiting}")
    assert await page.locator("#timeline tr[data-step=hello]").count() == 1
    assert "waiting" in await page.inner_text("#timeline tr[data-step=wait-go]")
    flow = page.locator("img#flow")
    await flow.wait_for()
    # (Polled from here: the page's CSP forbids the eval that wait_for_function's predicates need.)
    for _ in range(100):
        if await flow.evaluate("img => img.complete && img.naturalWidth > 0"):
            break
        await asyncio.sleep(0.05)
    assert await flow.evaluate("img => img.naturalWidth") > 300
    assert "hello (taken)" in (await flow.get_attribute("alt"))
    assert "for signal dash.go" in await page.inner_text("#wait")
    await page.screenshot(path=str(shots / "execution.png"), full_page=True)

    await page.goto("/workflows")
    assert await page.locator("#workflows tr[data-workflow='dash.fail']").count() == 1
    assert failed in await page.inner_text("#workflows tr[data-workflow='dash.fail']")
    await page.screenshot(path=str(shots / "workflows.png"), full_page=True)

    await page.goto("/schedules")
    assert "forbid" in await page.inner_text("#schedules tr[data-schedule='nightly-report']")
    assert "paused" in await page.inner_text("#schedules tr[data-schedule='hourly-sync']")
    await page.screenshot(path=str(shots / "schedules.png"), full_page=True)
    assert _js_errors(page) == []


async def test_a_signal_sent_from_the_page_completes_the_execution_live(
    browser: Browser, served: Served
) -> None:
    waiting, _failed, _sleeping = await _examples(served)
    page = await _page(browser, served)
    await _sign_in(page)
    await page.goto(f"/executions/{waiting}")
    await page.wait_for_selector("body[data-live-connected='1']")
    assert await page.input_value("#act-signal input[name=name]") == GO
    await page.fill("#act-signal textarea[name=payload]", '{"approved": true, "by": "grace"}')
    await page.click("#act-signal button[type=submit]")
    await page.wait_for_selector("#flash.ok")
    assert "signal dash.go sent" in await page.inner_text("#flash")
    result = await served.durable.wait(waiting, timeout=10)
    assert "'by': 'grace'" in result["finished"]
    # The page moves by itself (server-sent events, then the API), without a reload.
    await page.wait_for_selector("h1 .status.s-completed", timeout=10_000)
    assert await page.locator("#timeline tr", has_text="finish").count() == 1
    assert "dashboard:grace" in await page.inner_text("#audit")
    entries = await served.durable.list_audit_entries(waiting)
    assert any(e.kind == "signal.received" and e.actor == "dashboard:grace" for e in entries)
    assert _js_errors(page) == []


async def test_an_action_without_signing_in_is_refused_and_the_page_says_so(
    browser: Browser, served: Served
) -> None:
    waiting, _failed, _sleeping = await _examples(served)
    page = await _page(browser, served)
    await page.goto(f"/executions/{waiting}")
    assert "You are not signed in" in await page.inner_text("main")
    await page.click("#act-cancel button[type=submit]")
    await page.wait_for_selector("#flash.bad")
    text = await page.inner_text("#flash")
    assert "Refused (401)" in text and "sign in" in text
    await page.click("#act-signal button[type=submit]")
    await asyncio.sleep(0.2)
    record = await served.durable.get_execution(waiting)
    assert record is not None and record.status == Status.WAITING
    # A payload that is not JSON is caught before anything is sent.
    await page.fill("#act-signal textarea[name=payload]", "{not json")
    await page.click("#act-signal button[type=submit]")
    await page.locator("#flash", has_text="not valid JSON").wait_for()


async def test_a_script_in_an_input_renders_as_text(served: Served, browser: Browser) -> None:
    evil = "<script>window.__pwned = 1</script><img src=x onerror=window.__pwned=2>"
    eid = await served.durable.start("dash.greet", evil, execution_id="evil-1")
    await served.wait_status(eid, Status.WAITING)
    page = await _page(browser, served)
    await page.goto(f"/executions/{eid}")
    assert evil in await page.inner_text("#input")
    await page.goto("/executions")
    await asyncio.sleep(0.2)
    assert await page.evaluate("window.__pwned === undefined")
    assert await page.locator("#input script, main img[src=x]").count() == 0


async def test_force_fail_and_a_schedule_trigger_from_the_pages(served: Served, browser: Browser) -> None:
    _waiting, _failed, sleeping = await _examples(served)
    page = await _page(browser, served)
    await _sign_in(page)
    await page.goto(f"/executions/{sleeping}")
    await page.wait_for_selector("body[data-live-connected='1']")
    await page.fill("#act-fail input[name=reason]", "stuck on a dead API")
    await page.click("#act-fail button[type=submit]")
    await page.wait_for_selector("#error", timeout=10_000)
    assert "stuck on a dead API" in await page.inner_text("#error")
    assert "failed" in await page.inner_text("h1 .status")
    record = await served.durable.get_execution(sleeping)
    assert record is not None and record.status == Status.FAILED

    await page.goto("/schedules/nightly-report")
    await page.click("form[data-endpoint$='/trigger'] button")
    await page.wait_for_selector("#flash.ok")
    assert "triggered: started nightly-report@manual-" in await page.inner_text("#flash")
    await page.locator("#audit", has_text="dashboard:grace").wait_for()
    audit = [(a.kind, a.actor) for a in await served.durable.schedules.audit("nightly-report")]
    assert audit[-1] == ("triggered", "dashboard:grace")
    assert _js_errors(page) == []


async def test_the_list_shows_a_new_execution_without_a_reload(served: Served, browser: Browser) -> None:
    page = await _page(browser, served)
    await page.goto("/executions")
    await page.wait_for_selector("body[data-live-connected='1']")
    assert await page.locator("#executions tr.empty").count() == 1
    eid = await served.durable.start("dash.greet", {"name": "new"}, execution_id="arrived-1")
    await page.locator(f"#executions tr[data-id='{eid}']").wait_for(timeout=10_000)
    await page.locator(f"#executions tr[data-id='{eid}'] .status.s-waiting").wait_for(timeout=10_000)
    assert await page.inner_text("[data-count=waiting]") == "1"
    assert _js_errors(page) == []
