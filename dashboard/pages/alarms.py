"""The alarm list (``/alarms``): whether any connected screen can sound alarms, the open
alarms with their actions (none on the read-only wall display), and the history of alarm
events from the store (newest first). Refreshed every 2 s; a table is re-sent only when its
content changed, so a button is never replaced under the nurse's finger."""

from __future__ import annotations

from typing import Any

import dash
from dash import Input, Output, State, callback, dcc, html, no_update

from dashboard.auth import wall_view
from dashboard.components import alarm_history_table, open_alarms_table
from dashboard.figures import alarm_event_row, alarm_views
from dashboard.live import LiveBay
from dashboard.metrics import screens
from dashboard.pages import current_live

dash.register_page(__name__, path="/alarms", name="Alarms")

HISTORY = 300


def layout(**_: Any) -> html.Div:
    return html.Div([
        dcc.Interval(id="alarms-tick", interval=2000),
        dcc.Store(id="alarms-sig"),
        html.Div(id="alarms-sound"),
        html.Section([html.H2("Open alarms"), html.Div(id="alarms-open")], className="card"),
        html.Section([html.H2(f"Alarm history (latest {HISTORY} events)"), html.Div(id="alarms-history")],
                     className="card"),
    ], className="alarms-page")


def sound_warning(counts: dict[str, int]) -> tuple[str, str]:
    """What the alarms page says about the screens' alarm sound, and its CSS class, from the
    connected screens by sound state (``dashboard.metrics.screens()``)."""
    audible, blocked, off = counts.get("audible", 0), counts.get("blocked", 0), counts.get("off", 0)
    connected = audible + blocked + off
    screens_ = f"screen{'s' if connected != 1 else ''}"
    if audible:
        return f"Alarm sound on at {audible} of {connected} connected {screens_}.", "sound-note ok"
    if not connected:
        return "No bay screen can sound alarms: no screen is connected.", "sound-note warning"
    why = [f"blocked by the browser on {blocked}" if blocked else "",
           f"never enabled on {off}" if off else ""]
    return ("No bay screen can sound alarms: "
            f"{connected} {screens_} connected, sound "
            + " and ".join(w for w in why if w)
            + ". Click the orange ALARM SOUND OFF bar on the bay screen (see docs/kiosk.md).",
            "sound-note warning")


def _tables(live: LiveBay) -> tuple[list[dict[str, Any]], list[dict[str, str]], dict[str, str]]:
    snap = live.snapshot()
    labels = {c.chair: c.label for c in snap.chairs}
    open_rows = alarm_views([a for c in snap.chairs for a in c.alarms], labels, snap.time,
                            acknowledged=True)
    events = live.monitor.alarm_events(limit=HISTORY)
    return open_rows, [alarm_event_row(e) for e in reversed(events)], labels


@callback(
    Output("alarms-open", "children"), Output("alarms-history", "children"), Output("alarms-sig", "data"),
    Output("alarms-sound", "children"), Output("alarms-sound", "className"),
    Input("alarms-tick", "n_intervals"), State("alarms-sig", "data"),
)
def refresh(_n: int | None, sig: dict[str, str] | None) -> tuple[Any, ...]:
    live = current_live()
    open_rows, history, labels = _tables(live)
    sig = sig or {}
    sound, sound_cls = sound_warning(screens())
    new = {"open": repr(open_rows), "history": repr(history[:1]) + str(len(history)), "sound": sound}
    pause_s = live.config.alarms.audio_pause_s
    same_sound = new["sound"] == sig.get("sound")
    return (open_alarms_table(open_rows, labels, pause_s, actions=not wall_view())
            if new["open"] != sig.get("open") else no_update,
            alarm_history_table(history, labels) if new["history"] != sig.get("history") else no_update,
            new, no_update if same_sound else sound, no_update if same_sound else sound_cls)
