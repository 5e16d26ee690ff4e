"""The alarm list (``/alarms``): the open alarms with their actions, and the history of
alarm events from the store (newest first). Refreshed every 2 s; a table is re-sent only
when its content changed, so a button is never replaced under the nurse's finger."""

from __future__ import annotations

from typing import Any

import dash
from dash import Input, Output, State, callback, dcc, html, no_update

from dashboard.components import alarm_history_table, open_alarms_table
from dashboard.figures import alarm_event_row, alarm_views
from dashboard.live import LiveBay
from dashboard.pages import current_live

dash.register_page(__name__, path="/alarms", name="Alarms")

HISTORY = 300


def layout(**_: Any) -> html.Div:
    return html.Div([
        dcc.Interval(id="alarms-tick", interval=2000),
        dcc.Store(id="alarms-sig"),
        html.Section([html.H2("Open alarms"), html.Div(id="alarms-open")], className="card"),
        html.Section([html.H2(f"Alarm history (latest {HISTORY} events)"), html.Div(id="alarms-history")],
                     className="card"),
    ], className="alarms-page")


def _tables(live: LiveBay) -> tuple[list[dict[str, Any]], list[dict[str, str]], dict[str, str]]:
    snap = live.snapshot()
    labels = {c.chair: c.label for c in snap.chairs}
    open_rows = alarm_views([a for c in snap.chairs for a in c.alarms], labels, snap.time,
                            acknowledged=True)
    store = live.monitor.store
    events = store.alarm_events(limit=HISTORY) if store is not None else []
    return open_rows, [alarm_event_row(e) for e in reversed(events)], labels


@callback(
    Output("alarms-open", "children"), Output("alarms-history", "children"), Output("alarms-sig", "data"),
    Input("alarms-tick", "n_intervals"), State("alarms-sig", "data"),
)
def refresh(_n: int | None, sig: dict[str, str] | None) -> tuple[Any, Any, Any]:
    live = current_live()
    open_rows, history, labels = _tables(live)
    sig = sig or {}
    new = {"open": repr(open_rows), "history": repr(history[:1]) + str(len(history))}
    pause_s = live.config.alarms.audio_pause_s
    return (open_alarms_table(open_rows, labels, pause_s) if new["open"] != sig.get("open") else no_update,
            alarm_history_table(history, labels) if new["history"] != sig.get("history") else no_update,
            new)
