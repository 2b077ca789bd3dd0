"""`durable get` shows a child's parent and a parent's children; `-o json` carries them too."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from durable import Durable, RedisStore, WorkflowContext, workflow

HERE = Path(__file__).resolve().parents[1]
DURABLE = str(Path(sys.executable).with_name("durable"))


@workflow("cli_children.leaf")
async def leaf(ctx: WorkflowContext, n: int) -> int:
    return n + 1


@workflow("cli_children.root")
async def root(ctx: WorkflowContext, n: int) -> int:
    one = await ctx.child(leaf, n)
    two = await ctx.child(leaf, one, on_parent_cancel="abandon", step_id="second")
    return int(two)


def _get(redis_url: str, *args: str) -> str:
    env = {k: v for k, v in os.environ.items() if not k.startswith("DURABLE_")}
    env.update(DURABLE_REDIS_URL=redis_url, COLUMNS="250")
    proc = subprocess.run(
        [DURABLE, "get", *args], cwd=HERE, env=env, capture_output=True, text=True, timeout=30
    )
    assert proc.returncode == 0, proc.stderr
    return proc.stdout


async def test_get_shows_parent_and_children(redis_url: str) -> None:
    d = Durable(store=RedisStore.from_url(redis_url))
    try:
        async with d.worker(concurrency=4, max_idle_poll=0.2):
            assert await d.start_and_wait(root, 1, execution_id="cli-root", timeout=20) == 3
        assert await d.list_children("cli-root") == [
            {
                "execution_id": "cli-root:__child:1",
                "workflow": "cli_children.leaf",
                "on_parent_cancel": "cancel",
            },
            {
                "execution_id": "cli-root:second",
                "workflow": "cli_children.leaf",
                "on_parent_cancel": "abandon",
            },
        ]
    finally:
        await d.close()
    shown = _get(redis_url, "cli-root")
    assert "children" in shown and "cli-root:__child:1, cli-root:second" in shown
    child = _get(redis_url, "cli-root:second")
    assert "parent" in child and "cli-root (on parent cancel: abandon)" in child
    detail = json.loads(_get(redis_url, "cli-root:__child:1", "-o", "json"))
    assert detail["execution"]["parent"] == "cli-root"
    assert detail["execution"]["on_parent_cancel"] == "cancel"
    assert [c["execution_id"] for c in json.loads(_get(redis_url, "cli-root", "-o", "json"))["children"]] == [
        "cli-root:__child:1",
        "cli-root:second",
    ]
