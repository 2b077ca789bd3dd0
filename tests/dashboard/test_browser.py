"""The dashboard in a real headless Chromium (the Debian package's /usr/bin/chromium, driven by
Playwright; no browser download): pages, live updates, actions, refusals, escaping; and the README's
screenshots (docs/screenshots/)."""

from __future__ import annotations

import asyncio
import shutil
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path

import pytest

from apps.dashboard_app import GO
from dashboard.conftest import TOKEN, Served
from durable import Status

playwright_api = pytest.importorskip("playwright.async_api")

CHROMIUM = "/usr/bin/chromium"
SCREENSHOTS = Path(__file__).resolve().parents[2] / "docs" / "screenshots"

pytestmark = [
    pytest.mark.browser,
    pytest.mark.slow,
    pytest.mark.skipif(shutil.which(CHROMIUM) is None, reason="needs /usr/bin/chromium (make chromium)"),
]

Serve = Callable[..., Awaitable[Served]]


@pytest.fixture
async def browser() -> AsyncIterator[object]:
    async with playwright_api.async_playwright() as p:
        launched = await p.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        try:
            yield launched
        finally:
            await launched.close()


async def _page(browser: object, served: Served) -> object:
    context = await browser.new_context(base_url=served.url, viewport={"width": 1360, "height": 900})  # type: ignore[attr-defined]
    page = await context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    page.on("dialog", lambda dialog: asyncio.ensure_future(dialog.accept()))
    page.js_errors = errors
    return page


async def _sign_in(page: object) -> None:
    await page.goto("/sign-in")  # type: ignore[attr-defined]
    await page.fill("input[name=token]", TOKEN)  # type: ignore[attr-defined]
    await page.fill("input[name=name]", "grace")  # type: ignore[attr-defined]
    await page.click("#sign-in button[type=submit]")  # type: ignore[attr-defined]
    await page.wait_for_url("**/executions")  # type: ignore[attr-defined]


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


async def test_pages_show_the_executions_and_save_screenshots(browser: object, served: Served) -> None:
    waiting, failed, sleeping = await _examples(served)
    page = await _page(browser, served)
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)

    await page.goto("/executions")  # type: ignore[attr-defined]
    for eid in (waiting, failed, sleeping):
        assert await page.locator(f"#executions tr[data-id='{eid}']").count() == 1  # type: ignore[attr-defined]
    assert await page.inner_text("[data-count=failed]") == "1"  # type: ignore[attr-defined]
    await page.screenshot(path=str(SCREENSHOTS / "executions.png"), full_page=True)  # type: ignore[attr-defined]

    await page.goto(f"/executions/{waiting}")  # type: ignore[attr-defined]
    assert await page.locator("#timeline tr[data-step=hello]").count() == 1  # type: ignore[attr-defined]
    assert "waiting" in await page.inner_text("#timeline tr[data-step=wait-go]")  # type: ignore[attr-defined]
    flow = page.locator("img#flow")  # type: ignore[attr-defined]
    await flow.wait_for()
    await page.wait_for_function("document.getElementById('flow').naturalWidth > 0")  # type: ignore[attr-defined]
    assert "hello (taken)" in (await flow.get_attribute("alt"))
    assert "for signal dash.go" in await page.inner_text("#wait")  # type: ignore[attr-defined]
    await page.screenshot(path=str(SCREENSHOTS / "execution.png"), full_page=True)  # type: ignore[attr-defined]

    await page.goto("/workflows")  # type: ignore[attr-defined]
    assert await page.locator("#workflows tr[data-workflow='dash.fail']").count() == 1  # type: ignore[attr-defined]
    assert failed in await page.inner_text("#workflows tr[data-workflow='dash.fail']")  # type: ignore[attr-defined]
    await page.screenshot(path=str(SCREENSHOTS / "workflows.png"), full_page=True)  # type: ignore[attr-defined]

    await page.goto("/schedules")  # type: ignore[attr-defined]
    assert "forbid" in await page.inner_text("#schedules tr[data-schedule='nightly-report']")  # type: ignore[attr-defined]
    assert "paused" in await page.inner_text("#schedules tr[data-schedule='hourly-sync']")  # type: ignore[attr-defined]
    await page.screenshot(path=str(SCREENSHOTS / "schedules.png"), full_page=True)  # type: ignore[attr-defined]
    assert page.js_errors == []  # type: ignore[attr-defined]


async def test_a_signal_sent_from_the_page_completes_the_execution_live(
    browser: object, served: Served
) -> None:
    waiting, _failed, _sleeping = await _examples(served)
    page = await _page(browser, served)
    await _sign_in(page)
    await page.goto(f"/executions/{waiting}")  # type: ignore[attr-defined]
    await page.wait_for_selector("body[data-live-connected='1']")  # type: ignore[attr-defined]
    assert await page.input_value("#act-signal input[name=name]") == GO  # type: ignore[attr-defined]
    await page.fill("#act-signal textarea[name=payload]", '{"approved": true, "by": "grace"}')  # type: ignore[attr-defined]
    await page.click("#act-signal button[type=submit]")  # type: ignore[attr-defined]
    await page.wait_for_selector("#flash.ok")  # type: ignore[attr-defined]
    assert "signal dash.go sent" in await page.inner_text("#flash")  # type: ignore[attr-defined]
    result = await served.durable.wait(waiting, timeout=10)
    assert "'by': 'grace'" in result["finished"]
    # The page moves by itself (server-sent events, then the API), without a reload.
    await page.wait_for_selector("h1 .status.s-completed", timeout=10_000)  # type: ignore[attr-defined]
    assert await page.locator("#timeline tr", has_text="finish").count() == 1  # type: ignore[attr-defined]
    assert "dashboard:grace" in await page.inner_text("#audit")  # type: ignore[attr-defined]
    entries = await served.durable.list_audit_entries(waiting)
    assert any(e.kind == "signal.received" and e.actor == "dashboard:grace" for e in entries)
    assert page.js_errors == []  # type: ignore[attr-defined]


async def test_an_action_without_signing_in_is_refused_and_the_page_says_so(
    browser: object, served: Served
) -> None:
    waiting, _failed, _sleeping = await _examples(served)
    page = await _page(browser, served)
    await page.goto(f"/executions/{waiting}")  # type: ignore[attr-defined]
    assert "You are not signed in" in await page.inner_text("main")  # type: ignore[attr-defined]
    await page.click("#act-cancel button[type=submit]")  # type: ignore[attr-defined]
    await page.wait_for_selector("#flash.bad")  # type: ignore[attr-defined]
    text = await page.inner_text("#flash")  # type: ignore[attr-defined]
    assert "Refused (401)" in text and "sign in" in text
    await page.click("#act-signal button[type=submit]")  # type: ignore[attr-defined]
    await asyncio.sleep(0.2)
    record = await served.durable.get_execution(waiting)
    assert record is not None and record.status == Status.WAITING
    # A payload that is not JSON is caught before anything is sent.
    await page.fill("#act-signal textarea[name=payload]", "{not json")  # type: ignore[attr-defined]
    await page.click("#act-signal button[type=submit]")  # type: ignore[attr-defined]
    await page.wait_for_function("document.getElementById('flash').textContent.includes('not valid JSON')")  # type: ignore[attr-defined]


async def test_a_script_in_an_input_renders_as_text(browser: object, served: Served) -> None:
    evil = "<script>window.__pwned = 1</script><img src=x onerror=window.__pwned=2>"
    eid = await served.durable.start("dash.greet", evil, execution_id="evil-1")
    await served.wait_status(eid, Status.WAITING)
    page = await _page(browser, served)
    await page.goto(f"/executions/{eid}")  # type: ignore[attr-defined]
    assert evil in await page.inner_text("#input")  # type: ignore[attr-defined]
    await page.goto("/executions")  # type: ignore[attr-defined]
    await asyncio.sleep(0.2)
    assert await page.evaluate("window.__pwned === undefined")  # type: ignore[attr-defined]
    assert await page.locator("#input script, main img[src=x]").count() == 0  # type: ignore[attr-defined]
