"""`durable export-history` and `durable replay-check`: will the code loaded now resume these executions?"""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path
from typing import Annotated, Any

import orjson
import typer

from .._client._durable import Durable
from .._client._histories import load_histories
from .._worker._replayer import ExecutionHistory, ReplayCheckResult, check_replay
from . import _output as out
from ._app import CliError, Settings, _run, app

# A pod's termination message is cut at 4,096 bytes; the summary stays under it.
_TERMINATION_LOG_MAX = 4000

_Workflow = Annotated[str | None, typer.Option("--workflow", help="Only executions of this workflow id.")]
_Version = Annotated[
    str | None,
    typer.Option("--version", help='Only executions started by this worker version ("" for unversioned).'),
]
_Limit = Annotated[int, typer.Option(min=1, help="At most this many executions, newest first.")]
_FinishedWithin = Annotated[
    float, typer.Option(min=0.0, help="Also executions that finished in the last this many seconds.")
]


@app.command("export-history")
def export_history(
    ctx: typer.Context,
    workflow: _Workflow = None,
    version: _Version = None,
    limit: _Limit = 100,
    finished_within: _FinishedWithin = 3600.0,
    out_file: Annotated[str, typer.Option("--out", help="Write the JSON lines here ('-': stdout).")] = "-",
) -> None:
    """Write the histories of in-flight (and recently finished) executions, one JSON line each."""

    async def go(d: Durable) -> list[ExecutionHistory]:
        return await load_histories(
            d, workflow_id=workflow, version=version, limit=limit, finished_within_s=finished_within
        )

    histories = _run(ctx, go)
    text = "".join(h.to_json() + "\n" for h in histories)
    if out_file == "-":
        sys.stdout.write(text)
        return
    try:
        Path(out_file).write_text(text)
    except OSError as exc:
        raise CliError(f"cannot write --out {out_file!r}: {exc.strerror or exc}", 2) from exc
    out.message(f"exported {len(histories)} execution histories to {out_file}")


@app.command("replay-check")
def replay_check(
    ctx: typer.Context,
    workflow: _Workflow = None,
    version: _Version = None,
    limit: _Limit = 100,
    finished_within: _FinishedWithin = 3600.0,
    from_file: Annotated[
        str | None,
        typer.Option("--from-file", help="Histories from `durable export-history` instead of Redis."),
    ] = None,
    termination_log: Annotated[
        str | None,
        typer.Option(
            "--termination-log", help="Also write a JSON summary here (a Kubernetes termination message)."
        ),
    ] = None,
) -> None:
    """Replay recorded histories on the code of --app without running steps; exit 1 if any diverges."""
    settings: Settings = ctx.obj
    settings.load_apps(required=True)
    if from_file is not None:
        histories = [
            h
            for h in _read_histories(from_file)
            if (workflow is None or h.workflow_id == workflow)
            and (version is None or (h.version or "") == version)
        ][:limit]
    else:

        async def go(d: Durable) -> list[ExecutionHistory]:
            return await load_histories(
                d, workflow_id=workflow, version=version, limit=limit, finished_within_s=finished_within
            )

        histories = _run(ctx, go)

    async def check_all() -> list[ReplayCheckResult]:
        return [await check_replay(h) for h in histories]

    results = asyncio.run(check_all())
    failed = [r for r in results if not r.ok]
    if termination_log is not None:
        _write_termination_log(termination_log, results)
    if settings.json:
        out.print_json(
            {
                "checked": len(results),
                "ok": len(results) - len(failed),
                "results": [r.to_dict() for r in results],
            }
        )
    else:
        out.replay_table(results)
        out.message(
            f"checked {len(results)}: {len(results) - len(failed)} ok, {len(failed)} would not replay"
            if results
            else "checked 0: no executions to replay"
        )
    if failed:
        raise typer.Exit(1)


def _read_histories(path: str) -> list[ExecutionHistory]:
    try:
        lines = Path(path).read_text().splitlines() if path != "-" else sys.stdin.read().splitlines()
    except OSError as exc:
        raise CliError(f"cannot read --from-file {path!r}: {exc.strerror or exc}", 2) from exc
    except UnicodeDecodeError as exc:
        raise CliError(f"{path}: not UTF-8 text ({exc.reason})", 2) from exc
    histories: list[ExecutionHistory] = []
    for number, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            histories.append(ExecutionHistory.from_json(line))
        except ValueError as exc:
            raise CliError(f"{path}:{number}: not an execution history: {exc}", 2) from exc
    return histories


def _write_termination_log(path: str, results: list[ReplayCheckResult]) -> None:
    """The summary the operator reads from the verification Job's pod: as many divergences as fit."""
    failed = [r for r in results if not r.ok]
    keys = ("execution_id", "workflow_id", "position", "expected", "actual", "error")
    diverged: list[dict[str, Any]] = []
    summary: dict[str, Any] = {
        "checked": len(results),
        "ok": len(results) - len(failed),
        "diverged": diverged,
    }
    for result in failed:
        entry = {k: v for k, v in result.to_dict().items() if k in keys}
        if isinstance(entry["error"], str):
            entry["error"] = entry["error"][:300]
        if (
            len(orjson.dumps({**summary, "diverged": [*diverged, entry], "truncated": True}))
            > _TERMINATION_LOG_MAX
        ):
            summary["truncated"] = True
            break
        diverged.append(entry)
    try:
        Path(path).write_bytes(orjson.dumps(summary))
    except OSError as exc:
        raise CliError(f"cannot write --termination-log {path!r}: {exc.strerror or exc}", 2) from exc
