"""The small trends of the bay screen's tiles as SVG documents (:func:`make_sparkline_svg`),
a ``data:`` URI for one (:func:`svg_data_uri`), and the dashboard's colours (:data:`COLOURS`,
which the chair page's trend figure shares)."""

from __future__ import annotations

from collections.abc import Sequence
from urllib.parse import quote

import numpy as np

__all__ = ["COLOURS", "make_sparkline_svg", "svg_data_uri"]

COLOURS = {
    "hr": "#3ddc84", "pr": "#a5d6a7", "spo2": "#4cc9f0", "nibp": "#f2f2f2", "map": "#ff9fb5",
    "high": "#ff2a44", "medium": "#ffd000", "low": "#00d8ff", "baseline": "#9aa7b8",
    "grid": "#223042", "text": "#e8eef5", "muted": "#8b98a8", "paper": "#0b1016", "plot": "#0f151d",
}


def make_sparkline_svg(
    times: Sequence[float] | np.ndarray, values: Sequence[float | None] | np.ndarray, *,
    low: float | None = None, high: float | None = None, width: int = 240, height: int = 48,
    t_range: tuple[float, float] | None = None, y_range: tuple[float, float] | None = None,
    colour: str = COLOURS["hr"], stroke: float = 2.0,
) -> str:
    """A small trend as an SVG document: the values as a line (broken at gaps and missing
    values), ``low``/``high`` limits as dashed lines. Time runs left to right over
    ``t_range`` (default: the data's), so a feed that stopped ends short of the right edge."""
    t = np.asarray(times, dtype=float)
    v = np.asarray([np.nan if x is None else x for x in values], dtype=float)
    head = (f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
            f'viewBox="0 0 {width} {height}" preserveAspectRatio="none">')
    ok = np.isfinite(v) & np.isfinite(t)
    limits = [x for x in (low, high) if x is not None]
    if t_range is None:
        t_range = (float(t[ok].min()), float(t[ok].max())) if ok.any() else (0.0, 1.0)
    if y_range is None:
        pool = np.concatenate([v[ok], np.asarray(limits, dtype=float)])
        if pool.size == 0:
            return head + "</svg>"
        lo, hi = float(pool.min()), float(pool.max())
        pad = max(1.0, (hi - lo) * 0.08)
        y_range = (lo - pad, hi + pad)
    t0, t1 = t_range
    y0, y1 = y_range
    span_t = (t1 - t0) or 1.0
    span_y = (y1 - y0) or 1.0
    m = stroke  # keep the line inside the box

    def x_of(tt: np.ndarray | float) -> np.ndarray | float:
        return (np.asarray(tt) - t0) / span_t * (width - 2 * m) + m

    def y_of(vv: np.ndarray | float) -> np.ndarray | float:
        return (1 - (np.asarray(vv) - y0) / span_y) * (height - 2 * m) + m

    parts = [head]
    for limit in limits:
        if y0 <= limit <= y1:
            y = float(y_of(limit))
            parts.append(f'<line x1="0" y1="{y:.1f}" x2="{width}" y2="{y:.1f}" stroke="#ff5c70" '
                         'stroke-width="1.2" stroke-dasharray="5 4" opacity="0.8" '
                         'vector-effect="non-scaling-stroke"/>')
    inside = ok & (t >= t0) & (t <= t1)
    if inside.any():
        xs, ys = x_of(t), y_of(np.clip(v, y0, y1))
        # break the line at missing values and at gaps longer than 3 typical steps
        steps = np.diff(t[inside])
        gap = 3 * float(np.median(steps)) if steps.size else 0.0
        segments: list[list[str]] = []
        last_t: float | None = None
        for i in np.flatnonzero(ok):
            if not inside[i]:
                continue
            if last_t is None or not (i > 0 and ok[i - 1]) or (gap and t[i] - last_t > max(gap, 5.0)):
                segments.append([])
            segments[-1].append(f"{xs[i]:.0f},{ys[i]:.0f}")  # whole units: half the bytes
            last_t = float(t[i])
        d = " ".join(f"M{seg[0]}" + (f" L{' '.join(seg[1:])}" if len(seg) > 1 else "")
                     for seg in segments if seg)
        # the latest point as a dot (a zero-length stroke: round at any scale), so a single
        # reading still shows
        i = int(np.flatnonzero(inside)[-1])
        parts.append(f'<path d="{d}" fill="none" stroke="{colour}" stroke-width="{stroke}" '
                     'stroke-linejoin="round" stroke-linecap="round" vector-effect="non-scaling-stroke"/>')
        parts.append(f'<path d="M{xs[i]:.1f},{ys[i]:.1f} L{xs[i]:.1f},{ys[i]:.1f}" stroke="{colour}" '
                     f'stroke-width="{stroke * 3:g}" stroke-linecap="round" '
                     'vector-effect="non-scaling-stroke"/>')
    parts.append("</svg>")
    return "".join(parts)


def svg_data_uri(svg: str) -> str:
    """An SVG document as a ``data:`` URI for an ``<img src>`` (percent-encoded, no base64)."""
    return "data:image/svg+xml;charset=utf-8," + quote(svg, safe=" ,.:=/-\"'")
