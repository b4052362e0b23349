"""The guard page's chart of attack events per jail over the last hour, drawn as SVG on the server.

No chart library and no script: the page's strict CSP forbids inline styles and scripts, so colours go in
SVG presentation attributes (`fill`, `stroke`), which CSP does not govern. Every value is a number we
computed or a jail name we escape, and the chart carries a `<title>`, a `<desc>` and an `aria-label` so a
screen reader announces what it shows; the page also lists the same counts in a table.
"""

from __future__ import annotations

from markupsafe import Markup, escape

# Colour-blind-safe palette (Okabe–Ito), dark enough to read on white.
PALETTE = ("#0072b2", "#d55e00", "#009e73", "#cc79a7", "#8a6d00", "#56b4e9", "#000000")
WIDTH, HEIGHT = 720, 260
LEFT, RIGHT, TOP, BOTTOM = 44, 12, 16, 64


def jail_colours(names: list[str]) -> dict[str, str]:
    return {name: PALETTE[i % len(PALETTE)] for i, name in enumerate(sorted(names))}


def _nice_max(value: int) -> int:
    for step in (1, 2, 5, 10, 20, 50, 100, 200, 500, 1000, 2000, 5000, 10000):
        if value <= step * 4:
            return step * 4
    return value


def attack_chart(series: dict[str, list[int]], minutes: int = 60) -> Markup:
    """A line per jail of events per minute over the last `minutes`, newest at the right, with a legend."""
    names = sorted(series)
    colours = jail_colours(names)
    peak = _nice_max(max((max(v) for v in series.values() if v), default=0))
    plot_w, plot_h = WIDTH - LEFT - RIGHT, HEIGHT - TOP - BOTTOM
    total = sum(sum(v) for v in series.values())
    summary = ", ".join(f"{name}: {sum(series[name])}" for name in names) if names else "no events in the last hour"
    label = f"Attack events per minute over the last {minutes} minutes, by jail ({summary})"

    def x(i: int) -> float:
        return LEFT + plot_w * i / max(minutes - 1, 1)

    def y(v: int) -> float:
        return TOP + plot_h * (1 - v / peak)

    parts = [
        f'<svg class="chart" viewBox="0 0 {WIDTH} {HEIGHT}" role="img" aria-labelledby="chart-title chart-desc"'
        f' aria-label="{escape(label)}" xmlns="http://www.w3.org/2000/svg">',
        '<title id="chart-title">Attack events over the last hour</title>',
        f'<desc id="chart-desc">{escape(label)}. Total {total}.</desc>',
        f'<rect x="{LEFT}" y="{TOP}" width="{plot_w}" height="{plot_h}" fill="#ffffff" stroke="#8a94a6"/>',
    ]
    for k in range(5):  # horizontal grid lines with their values
        value = peak * k // 4
        gy = y(value)
        parts.append(f'<line x1="{LEFT}" y1="{gy:.1f}" x2="{LEFT + plot_w}" y2="{gy:.1f}" stroke="#dde2ea"/>')
        parts.append(
            f'<text x="{LEFT - 6}" y="{gy + 4:.1f}" text-anchor="end" font-size="12" fill="#1b2330">{value}</text>'
        )
    for ago in (60, 45, 30, 15, 0):  # time axis, minutes ago
        if ago > minutes:
            continue
        tx = x(minutes - 1 - ago) if ago else x(minutes - 1)
        text = "now" if ago == 0 else f"−{ago} min"
        parts.append(
            f'<text x="{tx:.1f}" y="{TOP + plot_h + 16}" text-anchor="middle" font-size="12" fill="#1b2330">'
            f"{text}</text>"
        )
    for name in names:
        values = (list(series[name]) + [0] * minutes)[:minutes]
        points = " ".join(f"{x(i):.1f},{y(v):.1f}" for i, v in enumerate(values))
        parts.append(
            f'<polyline class="series" data-jail="{escape(name)}" points="{points}" fill="none"'
            f' stroke="{colours[name]}" stroke-width="2.5" stroke-linejoin="round">'
            f"<title>{escape(name)}: {sum(values)} events</title></polyline>"
        )
    lx = LEFT
    ly = HEIGHT - 18
    for name in names:  # legend under the plot
        parts.append(f'<rect x="{lx}" y="{ly - 10}" width="14" height="14" fill="{colours[name]}"/>')
        parts.append(
            f'<text x="{lx + 20}" y="{ly + 2}" font-size="13" fill="#1b2330">'
            f"{escape(name)} ({sum(series[name])})</text>"
        )
        lx += 28 + 8 * (len(name) + len(str(sum(series[name]))) + 3)
    if not names:
        parts.append(
            f'<text x="{LEFT + plot_w / 2}" y="{TOP + plot_h / 2}" text-anchor="middle" font-size="14"'
            ' fill="#4a5568">No attack events in the last hour</text>'
        )
    parts.append("</svg>")
    return Markup("".join(parts))  # noqa: S704 — every interpolated text above is escaped or numeric
