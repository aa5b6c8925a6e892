"""Bar charts as server-rendered SVG: no JavaScript, prints well, scales to a phone.

Only presentation attributes (fill, font-size) are used, never style="...":
the console's Content-Security-Policy refuses inline styles.
"""

from __future__ import annotations

from typing import Callable, Sequence

from markupsafe import Markup, escape

FONT = "'WenQuanYi Micro Hei', 'Noto Sans CJK SC', 'PingFang SC', 'Microsoft YaHei', sans-serif"
BAR = "#2f6fb3"
TRACK = "#e8eef5"
INK = "#1f2933"
MUTED = "#6b7785"


def _cut(label: str, chars: int) -> str:
    return label if len(label) <= chars else label[: chars - 1] + "…"


def bar_chart(title: str, items: Sequence[tuple[str, float | None]], fmt: Callable[[float], str] = lambda v: f"{v:g}",
              maximum: float | None = None, width: int = 360, label_chars: int = 7) -> Markup:
    """Horizontal bars, one row per (label, value); a None value is drawn as '暂无数据'."""
    row, top, label_w = 30, 30, 14 * label_chars + 8
    bar_w = width - label_w - 64
    values = [v for _, v in items if v is not None]
    top_value = maximum if maximum is not None else max(values, default=0) or 1
    height = top + row * max(len(items), 1) + 6
    parts = [_open(title, width, height), _title(title)]
    if not items:
        parts.append(f'<text x="0" y="{top + 18}" font-size="13" fill="{MUTED}">暂无数据</text>')
    for i, (label, value) in enumerate(items):
        y = top + i * row
        parts.append(f'<g><title>{escape(label)}：{escape("暂无数据" if value is None else fmt(value))}</title>')
        parts.append(f'<text x="0" y="{y + 18}" font-size="13" fill="{INK}">{escape(_cut(label, label_chars))}</text>')
        parts.append(f'<rect x="{label_w}" y="{y + 5}" width="{bar_w}" height="18" rx="3" fill="{TRACK}"/>')
        if value is not None:
            w = max(0.0, min(1.0, value / top_value)) * bar_w
            parts.append(f'<rect x="{label_w}" y="{y + 5}" width="{w:.1f}" height="18" rx="3" fill="{BAR}"/>')
        text = "暂无数据" if value is None else fmt(value)
        parts.append(f'<text x="{label_w + bar_w + 6}" y="{y + 18}" font-size="13" fill="{INK}">'
                     f'{escape(text)}</text></g>')
    parts.append("</svg>")
    return Markup("".join(parts))


def column_chart(title: str, items: Sequence[tuple[str, float]], width: int = 360, height: int = 200) -> Markup:
    """Vertical bars over time (e.g. tickets per week), the value above each bar."""
    top, bottom = 30, 34
    plot_h = height - top - bottom
    n = max(len(items), 1)
    slot = (width - 8) / n
    bar_w = min(36.0, slot * 0.7)
    top_value = max((v for _, v in items), default=0) or 1
    parts = [_open(title, width, height), _title(title),
             f'<line x1="4" y1="{top + plot_h}" x2="{width - 4}" y2="{top + plot_h}" stroke="{MUTED}" '
             'stroke-width="1"/>']
    if not items:
        parts.append(f'<text x="4" y="{top + 18}" font-size="13" fill="{MUTED}">暂无数据</text>')
    label_every = max(1, round(n / 8))  # at most ~8 labels fit under a phone-wide chart
    for i, (label, value) in enumerate(items):
        h = value / top_value * (plot_h - 16)
        x = 4 + i * slot + (slot - bar_w) / 2
        cx = x + bar_w / 2
        parts.append(f'<g><title>{escape(label)}：{value:g}</title>')
        parts.append(f'<rect x="{x:.1f}" y="{top + plot_h - h:.1f}" width="{bar_w:.1f}" height="{h:.1f}" rx="2" '
                     f'fill="{BAR}"/>')
        parts.append(f'<text x="{cx:.1f}" y="{top + plot_h - h - 4:.1f}" font-size="12" text-anchor="middle" '
                     f'fill="{INK}">{value:g}</text>')
        if i % label_every == 0:
            parts.append(f'<text x="{cx:.1f}" y="{top + plot_h + 16}" font-size="11" text-anchor="middle" '
                         f'fill="{MUTED}">{escape(label)}</text>')
        parts.append("</g>")
    parts.append("</svg>")
    return Markup("".join(parts))


def _open(title: str, width: int, height: float) -> str:
    return (f'<svg class="chart" xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {width} {height:.0f}" '
            f'width="100%" role="img" aria-label="{escape(title)}" font-family="{escape(FONT)}">')


def _title(title: str) -> str:
    return f'<text x="0" y="18" font-size="15" font-weight="bold" fill="{INK}">{escape(title)}</text>'
