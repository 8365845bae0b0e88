"""Inline SVG of a forecast: the 80 % band, the forecast line and the threshold (no JavaScript, no CDN)."""
from __future__ import annotations

from django.utils.html import format_html, format_html_join
from django.utils.safestring import SafeString

WIDTH, HEIGHT, PAD = 720, 240, 36


def _path(points: list[tuple[float, float]]) -> str:
    return " ".join(f"{'M' if i == 0 else 'L'}{x:.1f},{y:.1f}" for i, (x, y) in enumerate(points))


def forecast_svg(points: list[list], threshold: float | None = None) -> SafeString:
    """`points` as stored on a Forecast: [[iso time, forecast, lower80, upper80], ...]."""
    if not points:
        return format_html("<p>{}</p>", "No points.")
    values = [v for p in points for v in p[1:4]] + ([threshold] if threshold is not None else [])
    low, high = min(values), max(values)
    span = (high - low) or 1.0
    n = len(points)

    def x(i: int) -> float:
        return PAD + (WIDTH - 2 * PAD) * (i / max(n - 1, 1))

    def y(v: float) -> float:
        return HEIGHT - PAD - (HEIGHT - 2 * PAD) * ((v - low) / span)

    upper = [(x(i), y(p[3])) for i, p in enumerate(points)]
    lower = [(x(i), y(p[2])) for i, p in reversed(list(enumerate(points)))]
    band = _path(upper + lower) + " Z"
    line = _path([(x(i), y(p[1])) for i, p in enumerate(points)])
    threshold_line = ""
    if threshold is not None:
        threshold_line = format_html(
            '<line x1="{}" x2="{}" y1="{}" y2="{}" stroke="#c0392b" stroke-dasharray="6 4"/>'
            '<text x="{}" y="{}" fill="#c0392b" font-size="11">threshold {}</text>',
            PAD, WIDTH - PAD, f"{y(threshold):.1f}", f"{y(threshold):.1f}", WIDTH - PAD - 110,
            f"{y(threshold) - 4:.1f}", f"{threshold:g}")
    labels = format_html_join("", '<text x="{}" y="{}" font-size="11" fill="#555">{}</text>', [
        (4, f"{y(high) + 4:.1f}", f"{high:.4g}"), (4, f"{y(low) + 4:.1f}", f"{low:.4g}"),
        (PAD, HEIGHT - 8, points[0][0][:16]), (WIDTH - PAD - 110, HEIGHT - 8, points[-1][0][:16]),
    ])
    return format_html(
        '<svg xmlns="http://www.w3.org/2000/svg" width="{}" height="{}" viewBox="0 0 {} {}" role="img" '
        'aria-label="forecast with 80% interval">'
        '<rect width="100%" height="100%" fill="#fff"/>'
        '<path d="{}" fill="#79aec8" fill-opacity="0.35" stroke="none"/>'
        '<path d="{}" fill="none" stroke="#264b5d" stroke-width="1.5"/>{}{}</svg>',
        WIDTH, HEIGHT, WIDTH, HEIGHT, band, line, threshold_line, labels)
