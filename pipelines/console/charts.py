"""Charts as inline SVG markup: no script, no image file, no font download.

Labels are set in the CJK fonts the machine has (infra/install.sh installs Noto CJK), so Japanese
class names render offline in the console and in the one-file report alike. Every label is
escaped: a class named ``<script>`` is text.
"""

from __future__ import annotations

import unicodedata
from html import escape

FONT = "'Noto Sans CJK JP','Noto Sans JP','IPAexGothic','Hiragino Sans','Yu Gothic',sans-serif"
_BAR = "#2f6db3"
# What the label column (170-190 px at 11-12 px) holds, in columns: a half-width character takes
# one, a full-width one (kana, kanji) two. Counted in characters, a Japanese class name of 20 kana
# ran past the chart's left edge and lost its start.
_LABEL_COLUMNS = 28


def _columns(ch: str) -> int:
    if unicodedata.combining(ch):
        return 0  # a voicing mark (゙) stays with its kana
    return 2 if unicodedata.east_asian_width(ch) in "WF" else 1


def _label(text: str) -> str:
    if sum(map(_columns, text)) <= _LABEL_COLUMNS:
        return escape(text)
    kept, used = [], 0
    for ch in text:
        used += _columns(ch)
        if used > _LABEL_COLUMNS - 2:  # the ellipsis is full-width in CJK fonts
            break
        kept.append(ch)
    return escape("".join(kept) + "…")


def bar_chart(rows: list[tuple[str, float]], *, title: str, limit: float = 1.0) -> str:
    """Horizontal bars from 0 to ``limit``, one per (label, value), the value printed at each bar's end."""
    row_h, label_w, bar_w = 22, 190, 320
    height = row_h * len(rows) + 30
    parts = [
        f'<svg role="img" width="{label_w + bar_w + 60}" height="{height}" '
        f'viewBox="0 0 {label_w + bar_w + 60} {height}" font-family="{FONT}" font-size="12">',
        f"<title>{escape(title)}</title>",
    ]
    for i, (label, value) in enumerate(rows):
        y = 10 + i * row_h
        width = max(0.0, min(1.0, value / limit if limit else 0.0)) * bar_w
        parts.append(
            f'<text x="{label_w - 6}" y="{y + 14}" text-anchor="end">{_label(label)}</text>'
            f'<rect x="{label_w}" y="{y + 3}" width="{width:.1f}" height="{row_h - 6}" fill="{_BAR}"/>'
            f'<text x="{label_w + width + 4:.1f}" y="{y + 14}">{value:.3f}</text>'
        )
    axis_y = 10 + len(rows) * row_h
    parts.append(
        f'<line x1="{label_w}" y1="{axis_y}" x2="{label_w + bar_w}" y2="{axis_y}" stroke="#888"/>'
        f'<text x="{label_w}" y="{axis_y + 14}" font-size="10">0</text>'
        f'<text x="{label_w + bar_w}" y="{axis_y + 14}" font-size="10" text-anchor="end">{limit:g}</text>'
    )
    parts.append("</svg>")
    return "".join(parts)


def confusion_matrix(labels: list[str], counts: list[list[int]], *, title: str) -> str:
    """A heat map: rows are true labels, columns predicted; darker cells hold more of their row."""
    n = len(labels)
    cell, label_w, top = 34, 170, 120
    size_w, size_h = label_w + cell * n + 10, top + cell * n + 10
    parts = [
        f'<svg role="img" width="{size_w}" height="{size_h}" '
        f'viewBox="0 0 {size_w} {size_h}" font-family="{FONT}" font-size="11">',
        f"<title>{escape(title)}</title>",
    ]
    for j, label in enumerate(labels):
        x = label_w + j * cell + cell / 2
        parts.append(
            f'<text x="{x:.0f}" y="{top - 6}" transform="rotate(-50 {x:.0f} {top - 6})">{_label(label)}</text>'
        )
    for i, label in enumerate(labels):
        row = counts[i] if i < len(counts) else []
        total = sum(row) or 1
        y = top + i * cell
        parts.append(f'<text x="{label_w - 6}" y="{y + cell / 2 + 4:.0f}" text-anchor="end">{_label(label)}</text>')
        for j in range(n):
            value = row[j] if j < len(row) else 0
            share = value / total
            shade = 255 - int(200 * share)
            fill = (
                f"rgb({shade},{shade + (255 - shade) // 3},255)"
                if i != j
                else f"rgb({shade},{255 - int(90 * share)},{shade})"
            )
            ink = "#fff" if share > 0.6 else "#111"
            parts.append(
                f'<rect x="{label_w + j * cell}" y="{y}" width="{cell - 1}" height="{cell - 1}" fill="{fill}">'
                f"<title>{_label(label)} → {_label(labels[j])}: {value}</title></rect>"
                f'<text x="{label_w + j * cell + cell / 2:.0f}" y="{y + cell / 2 + 4:.0f}" text-anchor="middle" '
                f'fill="{ink}">{value}</text>'
            )
    parts.append("</svg>")
    return "".join(parts)


def interval_chart(rows: list[tuple[str, float, float, float]], *, title: str) -> str:
    """Each (label, point, low, high) difference as a dot with its interval around a zero line."""
    row_h, label_w, plot_w = 26, 190, 320
    span = max([0.05] + [abs(v) for _, p, lo, hi in rows for v in (p, lo, hi)])
    height = row_h * len(rows) + 30

    def x(value: float) -> float:
        return label_w + plot_w / 2 + value / span * (plot_w / 2)

    parts = [
        f'<svg role="img" width="{label_w + plot_w + 170}" height="{height}" '
        f'viewBox="0 0 {label_w + plot_w + 170} {height}" font-family="{FONT}" font-size="12">',
        f"<title>{escape(title)}</title>",
        f'<line x1="{x(0):.1f}" y1="4" x2="{x(0):.1f}" y2="{height - 20}" stroke="#888" stroke-dasharray="3 3"/>',
    ]
    for i, (label, point, low, high) in enumerate(rows):
        y = 14 + i * row_h
        colour = "#0a6b2d" if low >= 0 else "#a11" if high < 0 else "#b26b00"
        parts.append(
            f'<text x="{label_w - 6}" y="{y + 4}" text-anchor="end">{_label(label)}</text>'
            f'<line x1="{x(low):.1f}" y1="{y}" x2="{x(high):.1f}" y2="{y}" stroke="{colour}" stroke-width="3"/>'
            f'<circle cx="{x(point):.1f}" cy="{y}" r="5" fill="{colour}"/>'
            f'<text x="{label_w + plot_w + 10}" y="{y + 4}" font-size="10">'
            f"{point:+.3f} [{low:+.3f}, {high:+.3f}]</text>"
        )
    parts.append(
        f'<text x="{x(-span):.0f}" y="{height - 6}" font-size="10">{-span:+.2f}</text>'
        f'<text x="{x(span):.0f}" y="{height - 6}" font-size="10" text-anchor="end">{span:+.2f}</text></svg>'
    )
    return "".join(parts)
