"""Server-rendered SVG charts (no scripts, no external assets), in the style of the ledger's burn-down.

- `timeline_svg(pack)`: a breach's evidence as a timeline: working intervals counted (green),
  pauses (grey), holidays (pink), DST changes (dashed), the due time (orange) and the stop (red).
- `compliance_bars_svg(rows)`: achieved percent per month as bars, with the count decided.
"""

from __future__ import annotations

import datetime as dt

from django.utils.html import escape, format_html
from django.utils.safestring import mark_safe

_SVG = '<svg xmlns="http://www.w3.org/2000/svg" width="{{}}" height="{{}}" role="img" aria-label="{label}">{{}}</svg>'


def _t(value: str | None) -> float | None:
    return None if value is None else dt.datetime.fromisoformat(value.replace("Z", "+00:00")).timestamp()


def timeline_svg(pack: dict, width: int = 900, height: int = 150) -> str:
    data = pack["clock"]
    t0 = _t(data["start"])
    marks = [t for t in (_t(data["measured_until"]), _t(data["due_at"])) if t is not None]
    t1 = max([t0 + 60, *marks])
    left, right = 60, width - 20

    def x(t: float) -> float:
        return left + (right - left) * (min(max(t, t0), t1) - t0) / (t1 - t0)

    parts = [
        f'<line x1="{left}" x2="{right}" y1="110" y2="110" stroke="#888"/>',
        '<text x="2" y="44" font-size="11">work</text><text x="2" y="74" font-size="11">pauses</text>',
    ]
    for row in data["working_intervals"]:
        a, b = x(_t(row["start"])), x(_t(row["end"]))
        parts.append(
            f'<rect x="{a:.1f}" y="30" width="{max(b - a, 0.8):.1f}" height="20" fill="#3c9a5f">'
            f"<title>{escape(row['start'])} to {escape(row['end'])}: {row['business_seconds']} s counted</title></rect>"
        )
    for pause in data["pauses"]:
        a, b = x(_t(pause["start"])), x(_t(pause["end"]))
        parts.append(f'<rect x="{a:.1f}" y="60" width="{max(b - a, 0.8):.1f}" height="20" fill="#999"/>')
    for change in data["dst_changes"]:
        at = x(_t(change["at"]))
        parts.append(f'<line x1="{at:.1f}" x2="{at:.1f}" y1="20" y2="110" stroke="#7a3fb0" stroke-dasharray="4 3"/>')
    for label, value, colour, y in (
        ("due", data["due_at"], "#e08a00", 16),
        ("stop", data["measured_until"], "#c62828", 130),
    ):
        if value is None:
            continue
        at = x(_t(value))
        # Labels right of the line, or left of it near the right edge, so they stay in the picture.
        anchor, dx = ("end", -3) if at > width * 0.6 else ("start", 3)
        parts.append(
            f'<line x1="{at:.1f}" x2="{at:.1f}" y1="20" y2="115" stroke="{colour}" stroke-width="2"/>'
            f'<text x="{at + dx:.1f}" y="{y}" font-size="11" fill="{colour}" text-anchor="{anchor}">'
            f"{label} {escape(value)}</text>"
        )
    parts.append(f'<text x="{left}" y="145" font-size="10">{escape(data["start"])}</text>')
    return format_html(
        _SVG.format(label="Breach timeline"),
        width,
        height,
        mark_safe("".join(parts)),  # every dynamic text above went through escape()
    )


def compliance_bars_svg(rows: list[dict], width: int = 720, height: int = 220) -> str:
    """Achieved percent per month (rows of a compliance report grouped by month)."""
    if not any(row["decided"] for row in rows):
        return format_html("<em>{}</em>", "No decided clocks in the last 12 months.")
    left, bottom, top = 40, height - 40, 15
    slot = (width - left - 10) / len(rows)
    parts = [
        f'<line x1="{left}" x2="{width - 10}" y1="{bottom}" y2="{bottom}" stroke="#888"/>',
        f'<text x="2" y="{top + 4}" font-size="11">100%</text><text x="2" y="{bottom}" font-size="11">0%</text>',
    ]
    for index, row in enumerate(rows):
        percent = row["achieved_percent"]
        bar = 0 if percent is None else (bottom - top) * percent / 100
        x0 = left + index * slot + slot * 0.15
        colour = "#3c9a5f" if (percent or 0) >= 95 else "#e08a00" if (percent or 0) >= 80 else "#c62828"
        label = "-" if percent is None else f"{percent:.1f}%"
        parts.append(
            f'<rect x="{x0:.1f}" y="{bottom - bar:.1f}" width="{slot * 0.7:.1f}" height="{bar:.1f}" fill="{colour}">'
            f"<title>{escape(row['month'])}: {label} of {row['decided']} decided</title></rect>"
            f'<text x="{x0:.1f}" y="{bottom - bar - 3:.1f}" font-size="10">{label}</text>'
            f'<text x="{x0:.1f}" y="{bottom + 14}" font-size="10">{escape(row["month"])}</text>'
            f'<text x="{x0:.1f}" y="{bottom + 27}" font-size="9" fill="#555">n={row["decided"]}</text>'
        )
    return format_html(
        _SVG.format(label="Compliance per month"),
        width,
        height,
        mark_safe("".join(parts)),  # every dynamic text above went through escape()
    )
