"""Charts as inline SVG drawn on the server: no script, no library. Each is a row of bars
with the highest value and zero on the left axis and the first, middle and last bucket
under it; the page gives the same values as a table, for screen readers and for exact
numbers."""

from __future__ import annotations

from collections.abc import Callable, Sequence

from markupsafe import Markup, escape

WIDTH, HEIGHT = 360, 170
LEFT, RIGHT, TOP, BOTTOM = 58, 6, 12, 22


def bars(
    values: Sequence[float | None],
    *,
    labels: Sequence[str],
    title: str,
    fmt: Callable[[float], str],
) -> Markup:
    """An SVG bar chart of ``values`` (``None``: no bar, e.g. no activation ended in that
    bucket), ``labels`` naming each bucket; ``fmt`` writes a value for the axis."""
    known = [v for v in values if v is not None]
    low = min([0.0, *known])
    high = max([0.0, *known])
    if high == low:
        high = low + 1
    plot_w = WIDTH - LEFT - RIGHT
    plot_h = HEIGHT - TOP - BOTTOM
    step = plot_w / max(1, len(values))

    def y(value: float) -> float:
        return TOP + (high - value) / (high - low) * plot_h

    parts = [
        f'<svg viewBox="0 0 {WIDTH} {HEIGHT}" role="img" aria-label="{escape(title)}" '
        'xmlns="http://www.w3.org/2000/svg" font-size="12" font-family="sans-serif">',
        f'<line x1="{LEFT}" y1="{y(0):.1f}" x2="{WIDTH - RIGHT}" y2="{y(0):.1f}" '
        'stroke="#8a939d"/>',
        f'<line x1="{LEFT}" y1="{TOP}" x2="{LEFT}" y2="{TOP + plot_h}" stroke="#8a939d"/>',
        f'<text x="{LEFT - 4}" y="{TOP + 8}" text-anchor="end" fill="#555d66">'
        f"{escape(fmt(high))}</text>",
        f'<text x="{LEFT - 4}" y="{y(0) + 4:.1f}" text-anchor="end" fill="#555d66">'
        f"{escape(fmt(0))}</text>",
    ]
    if low < 0:
        parts.append(
            f'<text x="{LEFT - 4}" y="{TOP + plot_h:.1f}" text-anchor="end" fill="#555d66">'
            f"{escape(fmt(low))}</text>"
        )
    for i, value in enumerate(values):
        if value is None or value == 0:
            continue
        top, bottom = y(max(value, 0)), y(min(value, 0))
        parts.append(
            f'<rect x="{LEFT + i * step + step * 0.1:.1f}" y="{top:.1f}" '
            f'width="{max(step * 0.8, 1):.1f}" height="{max(bottom - top, 1):.1f}" '
            f'fill="{"#b3261e" if value < 0 else "#0b57d0"}"><title>'
            f"{escape(labels[i])}: {escape(fmt(value))}</title></rect>"
        )
    if labels:
        for i in sorted({0, len(labels) // 2, len(labels) - 1}):
            anchor = "start" if i == 0 else "end" if i == len(labels) - 1 else "middle"
            x = LEFT + i * step + (0 if anchor == "start" else step if anchor == "end" else 0)
            parts.append(
                f'<text x="{x:.1f}" y="{HEIGHT - 6}" text-anchor="{anchor}" fill="#555d66">'
                f"{escape(labels[i])}</text>"
            )
    parts.append("</svg>")
    # Every text put in above went through escape(); the rest are numbers.
    return Markup("".join(parts))  # noqa: S704
