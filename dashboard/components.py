"""Dash component builders shared by the pages: the chair tile, the alarm pop-ups and the
alarm tables. Each takes view models (plain dicts from :mod:`dashboard.figures`) and returns
components; none reads the core.

A tile's live fields carry ``data-tf="<chair>|<field>"`` (TILE_FIELDS): the push stream's
keys, which ``assets/push.js`` writes into them. Component ids that callbacks match on:

    {"type": "spark", "chair": c, "p": param, "g": render} a tile's sparkline <img>
    {"type": "ack", "alarm": id, "where": w}             an Acknowledge button (one alarm)
    {"type": "ackchair", "chair": c, "where": w}         a pop-up's Acknowledge: every alarm of the chair
    {"type": "pause", "chair": c, "where": w}            a Pause audio button
    {"type": "confirm", "action": a}                     a button of a confirmation dialog
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from dash import dcc, html

from dashboard.figures import TILE_FIELDS, fmt_duration

__all__ = ["NEED_NAME", "alarm_history_table", "confirm_dialog", "open_alarms_table", "popup", "popups",
           "tile"]

NEED_NAME = "Enter your name in the Nurse field (top right) first: every action is recorded with it."

_FIELDS = {f for f, _ in TILE_FIELDS}


def _field(vm: dict[str, str], chair: str, name: str, base: str = "",
           tag: Any = html.Span) -> Any:
    assert name in _FIELDS, name
    extra = {"title": vm.get(f"{name}_title", "")} if (name, "title") in TILE_FIELDS else {}
    return tag(vm.get(name, ""), className=vm.get(f"{name}_cls", base),
               **{"data-tf": f"{chair}|{name}"}, **extra)


def tile(chair: str, label: str, vm: dict[str, str], gen: str, *, sparklines: bool = True,
         link: bool = True) -> html.Div:
    """One chair's tile. ``vm`` is :func:`dashboard.figures.tile_view`; ``gen`` makes the
    sparklines' ids of this rendering unique."""

    def f(name: str, base: str = "", tag: Any = html.Span) -> Any:
        return _field(vm, chair, name, base, tag)

    def spark(param: str) -> Any:
        if not sparklines:
            return None
        return html.Img(id={"type": "spark", "chair": chair, "p": param, "g": gen},
                        className=f"spark spark-{param}", alt="")

    head = html.Div([
        dcc.Link(label, href=f"/chair/{chair}", className="chair-name") if link
        else html.Span(label, className="chair-name"),
        f("conn", "conn"),
    ], className="tile-head")
    sub = html.Div([
        html.Div([f("patient", "patient"), f("phase", "phase")], className="sub-line"),
        f("proto", "proto", html.Div),
    ], className="tile-sub")
    hr = html.Div([
        html.Div([f("hr_label", "vlabel"), f("hr_age", "age")], className="vhead"),
        f("hr", "val val-hr"), spark("hr"),
    ], className="vital vital-hr")
    spo2 = html.Div([
        html.Div([html.Span("SpO2", className="vlabel"), f("spo2_age", "age")], className="vhead"),
        f("spo2", "val val-spo2"), spark("spo2"),
    ], className="vital vital-spo2")
    nibp = html.Div([
        html.Div([html.Span("NIBP", className="vlabel"), f("nibp_age", "age nibp-age")],
                  className="vhead"),
        html.Div([f("nibp", "val val-nibp"), f("nibp_map", "nibp-map")], className="nibp-line"),
    ], className="vital vital-nibp")
    news = html.Div([
        html.Div([html.Span("NEWS2", className="vlabel"), f("news_note", "news-note")], className="vhead"),
        f("news", "news"),
    ], className="vital vital-news")
    bar = html.Div([f("alarm", "alarm-text"), f("alarm_state", "alarm-state")],
                   className=vm.get("alarmbar_cls", "alarmbar alarm-none"),
                   **{"data-tf": f"{chair}|alarmbar"})
    return html.Div([head, sub, hr, spo2, nibp, news, bar],
                    className=vm.get("tile_cls", "tile"), **{"data-chair": chair, "data-tf": f"{chair}|tile"})


def confirm_dialog(title: str, text: str, items: Sequence[str],
                   actions: Sequence[tuple[str, str, str]]) -> html.Div:
    """A modal confirmation: ``title``, an explanation, the clinical lines it is about (e.g.
    the open alarms) and its buttons as ``(action, label, css class)``; the first action is
    the safe one (it has the focus). Cancel is always offered as ``cancel``."""
    buttons = [html.Button(label, id={"type": "confirm", "action": action}, n_clicks=0,
                           className=f"btn {cls}", autoFocus=i == 0)
               for i, (action, label, cls) in enumerate(actions)]
    return html.Div(html.Div([
        html.H3(title),
        html.P(text),
        html.Ul([html.Li(line) for line in items], className="confirm-items") if items else None,
        html.Div(buttons, className="btn-row"),
    ], className="modal", role="alertdialog", **{"aria-modal": "true"}), className="modal-backdrop")


def popup(vm: dict[str, Any], pause_s: float, actions: bool = True) -> html.Div:
    """One alarm pop-up: chair, priority, time, the message, its state, and the actions
    (none with ``actions=False``: the read-only wall display)."""
    prio = vm["priority"].upper() + (" · TECHNICAL" if vm["technical"] else "")
    cls = f"popup popup-{vm['priority']}" + (" tech" if vm["technical"] else "") + (
        " paused" if vm["paused"] else "")
    return html.Div([
        html.Div([
            dcc.Link(vm["chair_label"], href=f"/chair/{vm['chair']}", className="popup-chair"),
            html.Span(prio, className="popup-prio"),
            html.Span(vm["time"], className="popup-time"),
        ], className="popup-head"),
        html.Div(vm["text"], className="popup-msg"),
        html.Div([
            html.Div([
                html.Div(vm["state_text"], className="popup-state"),
                html.Div(f"+{vm['others']} more on this chair" if vm.get("others") else "",
                         className="popup-others"),
            ], className="popup-status"),
            *([html.Button("Acknowledge" + (f" all {vm['others'] + 1}" if vm.get("others") else ""),
                           id={"type": "ackchair", "chair": vm["chair"], "where": f"popup{vm['id']}"},
                           className="btn btn-ack", n_clicks=0,
                           title="acknowledges every alarm of this chair"),
               html.Button(f"Pause audio {fmt_duration(pause_s)}",
                           id={"type": "pause", "chair": vm["chair"], "where": f"popup{vm['id']}"},
                           className="btn btn-pause", n_clicks=0, disabled=vm["paused"])]
              if actions else []),
        ], className="popup-foot"),
    ], className=cls, **{"data-alarm": str(vm["id"]), "data-chair": vm["chair"]})


def popups(vms: Sequence[dict[str, Any]], more: int, pause_s: float, actions: bool = True) -> list[Any]:
    children: list[Any] = [popup(vm, pause_s, actions) for vm in vms]
    if more:
        children.append(dcc.Link(f"+{more} more alarm{'s' if more > 1 else ''}: open the alarm list",
                                 href="/alarms", className="popup-more"))
    return children


def open_alarms_table(rows: Sequence[dict[str, Any]], labels: dict[str, str], pause_s: float,
                      where: str = "list", actions: bool = True) -> Any:
    """Open alarms with their actions (none with ``actions=False``: the read-only wall
    display); ``rows`` are popup-style view models plus ``ack_by`` for acknowledged ones."""
    if not rows:
        return html.Div("No open alarms.", className="empty")
    cols = ("Priority", "Chair", "Alarm", "State", "Raised", *([""] if actions else []))
    head = html.Tr([html.Th(x) for x in cols])
    body = []
    for r in rows:
        body.append(html.Tr([
            html.Td(r["priority"].upper() + (" · TECH" if r["technical"] else ""),
                    className=f"prio prio-{r['priority']}"),
            html.Td(dcc.Link(labels.get(r["chair"], r["chair"]), href=f"/chair/{r['chair']}")),
            html.Td(r["text"], className="msg"),
            html.Td(r["state_text"]),
            html.Td(r["time"]),
            *([html.Td([
                html.Button("Acknowledge", id={"type": "ack", "alarm": r["id"], "where": where},
                            className="btn btn-ack btn-small", n_clicks=0,
                            disabled=r["state"] == "acknowledged"),
                html.Button("Pause audio", className="btn btn-pause btn-small", n_clicks=0,
                            id={"type": "pause", "chair": r["chair"], "where": f"{where}{r['id']}"},
                            disabled=r["state"] not in ("active", "paused")),
            ], className="actions")] if actions else []),
        ], className=f"row-{r['priority']} state-{r['state']}", **{"data-alarm": str(r["id"])}))
    return html.Table([html.Thead(head), html.Tbody(body)], className="table alarms-open")


def alarm_history_table(rows: Sequence[dict[str, str]], labels: dict[str, str] | None = None,
                        chair_column: bool = True) -> Any:
    """Alarm events, newest first."""
    if not rows:
        return html.Div("No alarm events yet.", className="empty")
    cols = ["Time", *(["Chair"] if chair_column else []), "Priority", "Alarm", "Change", "By", "Note"]
    body = []
    for r in rows:
        cells = [html.Td(r["time"], title=r["date"])]
        if chair_column:
            cells.append(html.Td((labels or {}).get(r["chair"], r["chair"])))
        cells += [html.Td(r["priority"].upper() + (" · TECH" if r["kind"] == "technical" else ""),
                          className=f"prio prio-{r['priority']}"),
                  html.Td(r["message"], className="msg"), html.Td(r["change"]), html.Td(r["user"]),
                  html.Td(r["note"], className="note")]
        body.append(html.Tr(cells))
    return html.Table([html.Thead(html.Tr([html.Th(c) for c in cols])), html.Tbody(body)],
                      className="table alarms-history")
