"""The flow diagram: a workflow's `FlowShape` drawn as SVG on the server, the steps taken marked.

Drawn top to bottom like `durable describe --format mermaid` (start, one box per `ctx.*` call, end),
with presentation attributes only (the pages' CSP allows no inline styles). Every label is escaped.
"""

from __future__ import annotations

from html import escape
from typing import Any

__all__ = ["flow_svg"]

_WIDTH = 420
_BOX_W = 340
_BOX_H = 34
_GAP = 18
_TOP = 12

# (fill, stroke, text colour) per state of a node.
_TAKEN = ("#d9f2e3", "#2f8f5b", "#123524")
_CURRENT = ("#fff1cc", "#c98a00", "#3d2b00")
_AHEAD = ("#ffffff", "#9aa3ad", "#4a5560")
_ENDS = ("#e8ecf1", "#5b6875", "#1f2a35")


def _label(node: dict[str, Any]) -> str:
    kind, step_id = str(node.get("kind", "")), str(node.get("id", ""))
    extra = ""
    if kind == "sleep" and node.get("seconds") is not None:
        extra = f" ({node['seconds']:g} s)"
    elif kind == "waitForSignal":
        extra = f" ({node.get('signal')})"
    elif kind == "switch" and node.get("branches"):
        extra = f" [{', '.join(map(str, node['branches']))}]"
    text = f"{kind}: {step_id}{extra}"
    return text if len(text) <= 52 else text[:51] + "…"


def flow_svg(flow: dict[str, Any], *, finished: bool = False) -> str:
    """SVG markup for `flow` (a `FlowShape.to_dict()` whose nodes carry `taken` and `current`)."""
    nodes: list[dict[str, Any]] = list(flow.get("nodes", []))
    rows = len(nodes) + 2
    height = _TOP * 2 + rows * _BOX_H + (rows - 1) * _GAP + (24 if not flow.get("complete", True) else 0)
    x = (_WIDTH - _BOX_W) // 2
    cx = _WIDTH // 2
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" class="flow" role="img" width="{_WIDTH}" height="{height}" '
        f'viewBox="0 0 {_WIDTH} {height}" font-family="system-ui, sans-serif" font-size="13">',
        f"<title>flow of {escape(str(flow.get('workflow_id', '')))}</title>",
    ]

    def box(
        row: int, text: str, colours: tuple[str, str, str], *, rounded: int, css: str, bold: bool
    ) -> None:
        y = _TOP + row * (_BOX_H + _GAP)
        fill, stroke, ink = colours
        weight = ' font-weight="600"' if bold else ""
        parts.append(
            f'<g class="{css}"><rect x="{x}" y="{y}" width="{_BOX_W}" height="{_BOX_H}" rx="{rounded}" '
            f'fill="{fill}" stroke="{stroke}" stroke-width="{2 if bold else 1}"/>'
            f'<text x="{cx}" y="{y + _BOX_H / 2 + 4.5}" text-anchor="middle" fill="{ink}"{weight}>'
            f"{escape(text)}</text></g>"
        )
        if row > 0:
            top = y - _GAP
            parts.append(
                f'<line x1="{cx}" y1="{top}" x2="{cx}" y2="{y - 4}" stroke="#5b6875" stroke-width="1.5"/>'
                f'<path d="M{cx - 4},{y - 8} L{cx},{y - 1} L{cx + 4},{y - 8} Z" fill="#5b6875"/>'
            )

    box(0, "start", _ENDS, rounded=17, css="node start", bold=False)
    for index, node in enumerate(nodes, 1):
        if node.get("current"):
            colours, css = _CURRENT, "node current"
        elif node.get("taken"):
            colours, css = _TAKEN, "node taken"
        else:
            colours, css = _AHEAD, "node ahead"
        marker = (
            "✓ " if node.get("taken") and not node.get("current") else ("▶ " if node.get("current") else "")
        )
        box(index, marker + _label(node), colours, rounded=4, css=css, bold=bool(node.get("current")))
    box(len(nodes) + 1, "end", _TAKEN if finished else _ENDS, rounded=17, css="node end", bold=False)
    if not flow.get("complete", True):
        y = height - 10
        parts.append(
            f'<text x="{cx}" y="{y}" text-anchor="middle" fill="#8a3b12">'
            f"{escape(('describe stopped: ' + str(flow.get('stopped_by') or ''))[:90])}</text>"
        )
    parts.append("</svg>")
    return "".join(parts)
