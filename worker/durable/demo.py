"""`make demo`: the example order workflow, end to end, on the embedded store.

Runs an in-process worker on MemoryStore (or on Redis when DURABLE_REDIS_URL is set),
sends the approval signal once the execution waits for it, and prints the result, the
audit timeline and the emitted events. Then, in a terminal, it serves the dashboard over the
same store until Ctrl-C (port DURABLE_DASHBOARD_PORT, 8080); otherwise (CI) it prints how to
run the dashboard and exits.
"""

from __future__ import annotations

import asyncio
import os
import secrets
import sys

from durable import Durable, Status, Store
from durable._dashboard import DashboardConfig, serve
from durable.examples.orders import APPROVED, process_order


async def main() -> int:
    url = os.environ.get("DURABLE_REDIS_URL")
    store = Store.from_url(url) if url else None
    durable = Durable(store=store, workflows=[process_order])
    print(f"store: {'Redis at ' + url if url else 'embedded MemoryStore'}")
    async with durable.worker(concurrency=8, lease_ttl=5):
        eid = await durable.start(process_order, {"id": 1001, "items": [{"sku": "book", "qty": 2}]})
        print(f"started execution {eid}")
        while (rec := await durable.get_execution(eid)) is not None and rec.status != Status.WAITING:
            await asyncio.sleep(0.02)
        print("the execution waits for orders.approved; sending it")
        await durable.signal(eid, APPROVED, {"approver": "grace"})
        result = await durable.wait(eid, timeout=30)
        print(f"result: {result}")
        print("\naudit timeline:")
        entries = await durable.list_audit_entries(eid)
        start = entries[0].at if entries else None
        for entry in entries:
            offset = (entry.at - start).total_seconds() * 1000 if start else 0.0
            step = f" [{entry.step_id}]" if entry.step_id and not entry.step_id.startswith("__") else ""
            print(f"  +{offset:7.1f} ms  {entry.kind:<16}{entry.message}{step}")
        print("\nemitted events:")
        for execution_id, name, payload in await durable.list_emitted():
            if execution_id == eid:
                print(f"  {name}: {payload}")
        await _dashboard(durable, url, eid)
    await durable.close()
    return 0


async def _dashboard(durable: Durable, url: str | None, eid: str) -> None:
    port = int(os.environ.get("DURABLE_DASHBOARD_PORT", "8080"))
    if not sys.stdout.isatty():
        how = f"durable dashboard --redis-url {url} --app durable.examples.orders --port {port}"
        if url is None:
            print(
                f"\ndashboard: run `make demo` in a terminal to browse this run at http://127.0.0.1:{port}/"
            )
            print(
                "  (the embedded store lives in this process); on Redis: " + how.replace("None", "redis://…")
            )
        else:
            print(f"\ndashboard: {how}")
        return
    token = secrets.token_urlsafe(24)
    print(f"\ndashboard: http://127.0.0.1:{port}/executions/{eid}")
    print(f"  sign in with the token {token} to act; Ctrl-C stops the demo")
    await serve(durable, DashboardConfig(token=token), port=port)


if __name__ == "__main__":
    try:
        sys.exit(asyncio.run(main()))
    except KeyboardInterrupt:  # Ctrl-C ends the dashboard, and the demo with it
        print("\nstopped")
        sys.exit(0)
