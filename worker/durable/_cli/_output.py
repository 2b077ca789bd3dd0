"""How the `durable` command prints: rich tables for people, JSON for scripts, one-line errors."""

from __future__ import annotations

import os
import sys
from collections.abc import Iterable, Sequence
from datetime import UTC, datetime
from typing import Any

import orjson
from rich.console import Console
from rich.table import Table
from rich.text import Text

from .._client._schedules import ScheduleInfo
from .._records import AuditEntry, ExecutionRecord, Status, StepRecord
from .._worker._replayer import ReplayCheckResult
from .._workflow._children import children_of

_STATUS_STYLE = {
    Status.PENDING: "cyan",
    Status.RUNNING: "blue",
    Status.SLEEPING: "magenta",
    Status.WAITING: "yellow",
    Status.COMPLETED: "green",
    Status.FAILED: "red",
    Status.CANCELLED: "bright_black",
}


def console() -> Console:
    out = Console(highlight=False, soft_wrap=False)
    if not out.is_terminal and "COLUMNS" not in os.environ:
        # Piped output: wide enough that ids and times are never cut.
        out.width = 200
    return out


def print_json(value: Any) -> None:
    sys.stdout.buffer.write(
        orjson.dumps(value, option=orjson.OPT_INDENT_2 | orjson.OPT_NON_STR_KEYS, default=str)
    )
    sys.stdout.buffer.write(b"\n")
    sys.stdout.flush()


def one_line(text: str) -> str:
    return " ".join(str(text).split())


def error(message: str) -> None:
    sys.stderr.write(f"error: {one_line(message)}\n")
    sys.stderr.flush()


def when(dt: datetime | None) -> str:
    if dt is None:
        return "-"
    return dt.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S") + "Z"


def short(value: Any, limit: int = 80) -> str:
    if value is None:
        return "-"
    text = value if isinstance(value, str) else orjson.dumps(value, default=str).decode()
    return text if len(text) <= limit else text[: limit - 1] + "…"


def status_text(status: Status | str) -> Text:
    st = Status(status)
    return Text(st.value, style=_STATUS_STYLE.get(st, ""))


def _table(title: str | None, columns: Sequence[str]) -> Table:
    table = Table(title=title, title_justify="left", show_lines=False, header_style="bold")
    for name in columns:
        table.add_column(name, overflow="fold")
    return table


def _fields(title: str, rows: Iterable[tuple[str, Any]]) -> Table:
    table = Table(title=title, title_justify="left", show_header=False, box=None, pad_edge=False)
    table.add_column("field", style="bold")
    table.add_column("value", overflow="fold")
    for name, value in rows:
        table.add_row(name, value if isinstance(value, Text) else str(value))
    return table


def executions_table(records: Sequence[ExecutionRecord], next_cursor: str | None) -> None:
    out = console()
    table = _table(None, ["EXECUTION", "WORKFLOW", "STATUS", "STEP", "CREATED", "UPDATED"])
    for r in records:
        table.add_row(
            r.execution_id,
            r.workflow_id,
            status_text(r.status),
            r.current_step or "-",
            when(r.created_at),
            when(r.updated_at),
        )
    out.print(table)
    if next_cursor:
        out.print(f"more: --cursor {next_cursor}")


def _waiting_text(waiting_for: str | None) -> str:
    """What an execution waits for, in words: a signal's name, or a slot of a `max_concurrency` group."""
    if not waiting_for:
        return "-"
    kind, _, group = waiting_for.partition(":")
    if kind == "concurrency" and group:
        return f"a concurrency slot of {group} (max_concurrency reached; waits in line)"
    return waiting_for


def execution_detail(
    record: ExecutionRecord, steps: Sequence[StepRecord], audit: Sequence[AuditEntry]
) -> None:
    out = console()
    rows: list[tuple[str, Any]] = [
        ("execution", record.execution_id),
        ("workflow", record.workflow_id),
        ("worker version", version_text(record.version)),
        ("status", status_text(record.status)),
        ("current step", record.current_step or "-"),
        ("waiting for", _waiting_text(record.waiting_for)),
        ("wakes at", when(record.wake_at)),
        ("run", record.run),
        ("deadline", when(record.deadline)),
        ("attempt", record.attempt),
        ("activations", record.activations),
        ("created", when(record.created_at)),
        ("started", when(record.started_at)),
        ("finished", when(record.finished_at)),
        ("input", short(record.input, 160)),
    ]
    if record.parent:
        rows.append(("parent", f"{record.parent} (on parent cancel: {record.on_parent_cancel or '-'})"))
    children = children_of(steps)
    if children:
        rows.append(("children", ", ".join(str(c["execution_id"]) for c in children)))
    if record.result is not None:
        rows.append(("result", short(record.result, 160)))
    if record.error:
        rows.append(("error", f"{record.error.get('type', 'Error')}: {record.error.get('message', '')}"))
    out.print(_fields("Execution", rows))
    out.print()
    table = _table("Steps", ["#", "STEP", "KIND", "STATUS", "ATTEMPT", "AT", "RESULT"])
    for s in steps:
        result = (
            s.result if s.error is None else f"{s.error.get('type', 'Error')}: {s.error.get('message', '')}"
        )
        table.add_row(
            str(s.seq) if s.seq >= 0 else "-",
            s.step_id,
            _kind_text(s),
            s.status,
            str(s.attempt),
            when(s.at),
            short(result),
        )
    out.print(table)
    out.print()
    audit_table(audit)


def _kind_text(step: StepRecord) -> str:
    """A step's kind, with its time-outs when it has any (`ctx.step(..., timeout=, heartbeat_timeout=)`)."""
    meta = step.meta
    limits = [f"{name} {meta[key]:g}s" for key, name in (("timeout", "timeout"), ("heartbeat_timeout", "heartbeat"))
              if isinstance(meta.get(key), (int, float))]  # fmt: skip
    return f"{step.kind} ({', '.join(limits)})" if limits else str(step.kind)


def audit_table(entries: Sequence[AuditEntry], title: str = "Audit") -> None:
    table = _table(title, ["AT", "KIND", "ACTOR", "STEP", "MESSAGE"])
    for e in entries:
        table.add_row(when(e.at), e.kind, e.actor or "-", e.step_id or "-", e.message)
    console().print(table)


def _timing(info: ScheduleInfo) -> str:
    if info.cron is not None:
        return f"cron {info.cron} ({info.timezone})"
    if info.interval_seconds is not None:
        return f"every {info.interval_seconds:g}s"
    return "once"


def schedules_table(infos: Sequence[ScheduleInfo]) -> None:
    table = _table(
        None, ["SCHEDULE", "WORKFLOW", "WHEN", "OVERLAP", "STATE", "NEXT RUN", "LAST RUN", "FIRED", "SKIPPED"]
    )
    for i in infos:
        state = "paused" if i.paused else ("done" if i.one_time and i.next_run_at is None else "active")
        table.add_row(
            i.schedule_id,
            i.workflow_id,
            _timing(i),
            i.overlap,
            Text(state, style="yellow" if i.paused else ""),
            when(i.next_run_at),
            when(i.last_run_at),
            str(i.fired_count),
            str(i.skipped_count),
        )
    console().print(table)


def schedule_detail(info: ScheduleInfo, audit: Sequence[AuditEntry]) -> None:
    deadline = "-" if info.starting_deadline_seconds is None else f"{info.starting_deadline_seconds:g}s"
    rows: list[tuple[str, Any]] = [
        ("schedule", info.schedule_id),
        ("workflow", info.workflow_id),
        ("when", _timing(info)),
        ("overlap", info.overlap),
        ("starting deadline", deadline),
        ("paused", "yes" if info.paused else "no"),
        ("next run", when(info.next_run_at)),
        ("last run", when(info.last_run_at)),
        ("last execution", info.last_execution_id or "-"),
        ("fired", info.fired_count),
        ("skipped", info.skipped_count),
        ("input", short(info.input, 160)),
        ("created", when(info.created_at)),
        ("updated", when(info.updated_at)),
    ]
    console().print(_fields("Schedule", rows))
    console().print()
    audit_table(audit, "History")


def message(text: str) -> None:
    console().print(text)


def version_text(version: str | None) -> str:
    """A worker version as shown: the unversioned one ("" or None) by name."""
    return version or "(unversioned)"


def versions_table(rows: Sequence[dict[str, Any]]) -> None:
    table = _table("Worker versions", ["workflow", "version", "state", "in flight", "runnable"])
    for r in rows:
        table.add_row(
            r["workflow_id"],
            version_text(r["version"]),
            Text(r["state"], style="green" if r["state"] == "current" else "yellow"),
            str(r["in_flight"]),
            str(r["runnable"]),
        )
    console().print(table)


def replay_table(results: Sequence[ReplayCheckResult]) -> None:
    table = _table("Replay check", ["execution", "workflow", "version", "result"])
    for r in results:
        style = "green" if r.ok else "red"
        table.add_row(r.execution_id, r.workflow_id, r.version or "-", Text(r.summary(), style=style))
    console().print(table)
