"""Arguments for the Lua scripts, flattened in the order the scripts read them."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from .._base import AuditDraft, Checkpoint

__all__ = ["pack_audit", "pack_checkpoint", "timer_member"]


def pack_audit(drafts: Sequence[AuditDraft], out: list[Any]) -> list[Any]:
    """A count, then (kind, message, step id, actor, data) per entry."""
    out.append(len(drafts))
    for d in drafts:
        out.extend((d.kind, d.message, d.step_id or "", d.actor or "", d.data or b""))
    return out


def pack_checkpoint(cp: Checkpoint, out: list[Any]) -> list[Any]:
    """Flatten a checkpoint into ARGV in the order lua/_prelude.lua's write_checkpoint reads it."""
    out.append(len(cp.records))
    for step_id, record in cp.records:
        out.append(step_id)
        out.append(record)
    pack_audit(cp.audit, out)
    out.append(len(cp.events))
    for name, payload in cp.events:
        out.append(name)
        out.append(payload)
    if cp.current_step is None:
        out.extend(("0", ""))
    else:
        out.extend(("1", cp.current_step))
    return out


def timer_member(execution_id: str, timer_id: str) -> str:
    """A timer's member in the timers sorted set."""
    if "|" in timer_id:
        raise ValueError(f"timer id {timer_id!r} may not contain '|'")
    return f"{execution_id}|{timer_id}"
