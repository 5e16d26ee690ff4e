"""The bay overview (``/``): the wall screen, one tile per chair.

The tiles' numbers, classes and alarm lines are pushed (``dashboard.push``, written into
the page by ``assets/push.js``); this page adds only the sparklines, rebuilt every 5 s as
inline SVG from ``Monitor.trend`` (downsampled to 120 points, last 30 minutes), and none
over 30 chairs.
"""

from __future__ import annotations

import uuid
from typing import Any

import dash
import numpy as np
from dash import ALL, Input, Output, callback, ctx, dcc, html

from dashboard.components import tile
from dashboard.figures import COLOURS, bay_view, grid_shape, make_sparkline_svg, svg_data_uri
from dashboard.pages import current_live
from monitor.alarm_rules import LimitRule

dash.register_page(__name__, path="/", name="Bay")

SPARK_SECONDS = 1800
SPARK_POINTS = 120


def layout(**_: Any) -> html.Div:
    live = current_live()
    snap = live.snapshot()
    data, _ = bay_view(snap.chairs, snap.time)
    gen = uuid.uuid4().hex[:8]
    cols, rows = grid_shape(len(snap.chairs))
    size = tile_density(len(snap.chairs))
    # over 30 chairs the tiles are too small for a trend: the numbers get the room (and
    # the screen neither fetches nor draws 144 sparklines every 5 s)
    tiles = [tile(c.chair, c.label, data["chairs"][c.chair], gen, sparklines=size != "xsmall")
             for c in snap.chairs]
    return html.Div([
        dcc.Interval(id="spark-tick", interval=5000),
        html.Div(tiles, id="bay-grid", className=f"bay-grid tiles-{size}",
                 style={"gridTemplateColumns": f"repeat({cols}, minmax(0, 1fr))",
                        "gridTemplateRows": f"repeat({rows}, minmax(0, 1fr))"}),
    ], className="overview")


def tile_density(chairs: int) -> str:
    """The grid's density class by chair count; within it, the tiles adapt to their size on
    the screen (container queries in chairside.css): large, medium, small, xsmall."""
    return "large" if chairs <= 8 else "medium" if chairs <= 16 else "small" if chairs <= 30 else "xsmall"


def spark_limits(rules: tuple[LimitRule, ...], parameter: str) -> tuple[float | None, float | None]:
    """The innermost absolute limits of a parameter: the first lines a value would cross."""
    lows = [r.threshold for r in rules if r.parameter == parameter and r.direction == "low"
            and r.threshold is not None]
    highs = [r.threshold for r in rules if r.parameter == parameter and r.direction == "high"
             and r.threshold is not None]
    return (max(lows) if lows else None), (min(highs) if highs else None)


@callback(
    Output({"type": "spark", "chair": ALL, "p": ALL, "g": ALL}, "src"),
    Input("spark-tick", "n_intervals"),
)
def sparklines(_n: int | None) -> list[str]:
    live = current_live()
    monitor = live.monitor
    now = monitor.clock.now()
    out = []
    for o in ctx.outputs_list:
        chair, param = o["id"]["chair"], o["id"]["p"]
        w = monitor.trend(chair, param, SPARK_SECONDS, SPARK_POINTS)
        if param == "hr" and not np.isfinite(w.values).any():  # oximeter only: its pulse rate
            param = "pr"
            w = monitor.trend(chair, param, SPARK_SECONDS, SPARK_POINTS)
        low, high = spark_limits(monitor.rules(chair), param)
        svg = make_sparkline_svg(w.times, w.values, low=low, high=high, width=240, height=44,
                                 t_range=(now - SPARK_SECONDS, now), colour=COLOURS[param])
        out.append(svg_data_uri(svg))
    return out
