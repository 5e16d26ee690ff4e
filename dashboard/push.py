"""The push channel: every bay and chair screen gets the bay's changes as Server-Sent Events.

One :class:`BayFeed` per :class:`~dashboard.live.LiveBay` builds the bay's view (every
tile's strings and classes, the header, the pop-ups' signature) as one flat dict of
strings, keyed ``"<chair>|<field>"`` for a tile and by name for the header. It builds it
when the core reports a change (readings taken, an alarm or session event, an operator
action), at most every ``min_interval`` seconds, and in any case once a second (the clock,
ages and countdowns move). Each open tab holds one ``GET /live/stream`` (:func:`stream`):
the first event carries the whole view, every later one only the keys whose value changed
since that tab's last event. ``assets/push.js`` writes them into the page's elements
(``data-tf`` attributes) without any re-rendering; a changed pop-up signature asks Dash to
render the pop-ups once.

Every view the feed builds (at least one a second) reaches every stream, as ``{}`` when
nothing changed for it: a screen that hears nothing for 2.5 s shows "no connection" and
sounds (``assets/audio.js``). There is no heartbeat apart from the feed, so a stalled feed
shows too.

With ``[ha] enabled`` (a leader/standby pair, docs/high-availability.md) the first event also
carries ``"server"``: :data:`SERVER`, this process's id. A screen whose stream comes back
from another server than before knows the standby took over, and says so to the nurse.

Each stream holds one of the web server's threads while it is open; ``max_streams`` caps
them (a further tab gets 503 and retries), so the API and the pages always keep threads.
"""

from __future__ import annotations

import json
import logging
import os
import secrets
import socket
import threading
import time
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Any

from flask import Flask, Response, request, stream_with_context

from dashboard.auth import login_check
from dashboard.figures import TILE_FIELDS, bay_view, popup_signature
from dashboard.metrics import SOUND_STATES, note_client
from dashboard.server import STOPPING

if TYPE_CHECKING:
    from dashboard.live import LiveBay

__all__ = ["SERVER", "BayFeed", "Feed", "View", "delta", "flatten", "install_push", "sse", "stream"]

log = logging.getLogger("chairside.push")

View = dict[str, str]

#: This server process, as its screens know it: host, pid and a random part (a pid comes
#: again after a restart). Sent to the screens of an HA pair only (see above).
SERVER = f"{socket.gethostname()}:{os.getpid()}:{secrets.token_hex(4)}"

#: The keys of a tile's view model that the screen shows (see ``TILE_FIELDS``).
_TILE_KEYS = tuple(dict.fromkeys(
    f if prop == "children" else f"{f}_cls" if prop == "className" else f"{f}_title"
    for f, prop in TILE_FIELDS))
HEADER_KEYS = ("clock", "sound", "alarms", "alarms_cls", "bay_alarm", "popups")


def flatten(data: dict[str, Any], pops: list[dict[str, Any]]) -> View:
    """The screen's view of ``bay_view``'s answer: one string per element property."""
    view: View = {
        "clock": data["clock"], "sound": data["sound"], "alarms": str(data["alarms"]),
        "alarms_cls": data["alarms_cls"], "bay_alarm": data.get("bay_alarm", ""),
        "popups": f"{popup_signature(pops)}|{data['popups_more']}",
    }
    for chair, tile in data["chairs"].items():
        for key in _TILE_KEYS:
            if key in tile:
                view[f"{chair}|{key}"] = tile[key]
    return view


def delta(sent: View, view: View) -> View:
    """What a screen that has ``sent`` must be told to show ``view``."""
    return {k: v for k, v in view.items() if sent.get(k) != v}


def sse(data: object, event: str | None = None) -> str:
    """One Server-Sent Event (JSON on one ``data:`` line)."""
    head = f"event: {event}\n" if event else ""
    return f"{head}data: {json.dumps(data, separators=(',', ':'))}\n\n"


class Feed:
    """What the streams share with the thread that builds their view: the bay's
    (:class:`BayFeed`) or the site's (``dashboard.site_push.SiteFeed``). A subclass sets
    ``max_streams`` and ``check_every``, and its thread (``_run``, started by the first
    stream) calls :meth:`_publish` with each new view and ends once no stream is open."""

    max_streams: int
    check_every: float  # how often a stream checks that its login holds
    _thread_name = "feed"

    def _init_streams(self) -> None:
        self._cond = threading.Condition()
        self._version = 0
        self._view: View = {}
        self._streams = 0
        self._thread: threading.Thread | None = None

    @property
    def streams(self) -> int:
        return self._streams

    def join(self) -> bool:
        """A stream opens: False when ``max_streams`` are open already."""
        with self._cond:
            if self._streams >= self.max_streams:
                return False
            self._streams += 1
            if self._thread is None or not self._thread.is_alive():
                self._thread = threading.Thread(target=self._run, name=self._thread_name, daemon=True)
                self._thread.start()
            return True

    def leave(self) -> None:
        with self._cond:
            self._streams -= 1

    def wait(self, after: int, timeout: float) -> tuple[int, View] | None:
        """The newest view once it is newer than version ``after`` (None on timeout)."""
        with self._cond:
            if not self._cond.wait_for(lambda: self._version > after, timeout):
                return None
            return self._version, self._view

    def _publish(self, view: View) -> None:
        with self._cond:
            self._version += 1
            self._view = view
            self._cond.notify_all()

    def _done(self, idle: bool = True) -> bool:
        """(The thread.) True, and the thread forgotten, when no stream is open (and ``idle``)."""
        with self._cond:
            if self._streams <= 0 and self._version and idle:
                self._thread = None
                return True
            return False

    def _run(self) -> None:
        raise NotImplementedError


class BayFeed(Feed):
    """The bay's view for the push streams, rebuilt on change and every ``period`` s.

    Its thread runs while at least one stream is open (the first starts it; it ends a
    ``period`` after the last has gone)."""

    _thread_name = "bay-feed"

    def __init__(self, live: LiveBay, *, min_interval: float = 0.05, period: float = 1.0,
                 max_streams: int = 32, check_every: float = 2.0) -> None:
        self.live = live
        self.min_interval = min_interval
        self.period = period
        self.max_streams = max_streams
        self.check_every = check_every
        self._poke = threading.Event()
        self._init_streams()
        self.build_seconds = 0.0  # spent building views (the benchmark reports it)
        live.monitor.on_change(self._poke.set)

    def changed(self) -> None:
        """Something the screens show changed: rebuild soon (within ``min_interval``)."""
        self._poke.set()

    def _run(self) -> None:
        last = 0.0
        while not self._done(idle=time.monotonic() - last >= self.period):
            self._poke.wait(max(0.0, last + self.period - time.monotonic()))
            wait = last + self.min_interval - time.monotonic()
            if wait > 0:  # let a burst of changes settle into one view
                time.sleep(wait)
            self._poke.clear()
            last = time.monotonic()
            try:
                view = self.build()
            except Exception:  # the screens then show "no connection": nothing is hidden
                log.exception("building the bay's view failed")
                continue
            self.build_seconds += time.monotonic() - last
            self._publish(view)

    def build(self) -> View:
        live = self.live
        snap = live.snapshot(max_age=0)
        data, pops = bay_view(snap.chairs, snap.time, live.config.bay.name)
        problem = live.recording_problem()
        if problem is not None:  # a bay-wide technical alarm: shown on every screen, and it sounds
            data["bay_alarm"] = problem
            if data["sound"] in ("silent", "low"):
                data["sound"] = "medium"
        return flatten(data, pops)


def stream(feed: Feed, *, seen: Callable[[], None], allowed: Callable[[], bool],
           stopping: threading.Event | None = None, hello: View | None = None) -> Iterator[str]:
    """One tab's events: the whole view first (with ``hello``'s keys), then what changed.
    ``seen()`` after each event (the tab is counted as a connected screen); ``allowed()`` every
    ``feed.check_every`` s (a login that ended closes the stream with an ``auth`` event). Ends when the server
    stops (``stopping``) or the tab goes away. The caller has ``feed.join()``-ed."""
    sent: View = {}
    version = 0
    checked = time.monotonic()
    try:
        yield "retry: 1000\n\n"
        while stopping is None or not stopping.is_set():
            got = feed.wait(version, timeout=0.25)
            if got is None:
                continue
            version, view = got
            if time.monotonic() - checked >= feed.check_every:
                checked = time.monotonic()
                if not allowed():
                    yield sse({"reason": "login ended"}, "auth")
                    return
            change = delta(sent, view)
            if hello:  # the first event only
                change, hello = {**change, **hello}, None
            sent = view
            seen()
            yield sse(change)  # even when empty: the screen knows its feed is alive
    finally:
        feed.leave()


def install_push(server: Flask, live: LiveBay) -> None:
    """``GET /live/stream?tab=<id>&sound=<state>``: the push stream of one tab (``tab``: its
    id, 32 hex digits; ``sound``: whether it can be heard, ``SOUND_STATES``; a tab whose
    sound changes reconnects). ``GET /live/check``: 204 while the caller may open it (a
    screen whose stream failed asks, so that a 401 takes it to the login page)."""

    @server.route("/live/stream")
    def live_stream() -> Response:
        tab = request.args.get("tab", "")
        sound = request.args.get("sound", "off")
        sound = sound if sound in SOUND_STATES else "off"
        feed = live.feed
        hello = {"server": SERVER} if live.config.ha.enabled else None
        body = _guarded(feed, tab, sound, login_check(), request.environ.get(STOPPING), hello)
        return Response(stream_with_context(body), mimetype="text/event-stream",
                        headers={"Cache-Control": "no-store", "X-Accel-Buffering": "no"})

    @server.route("/live/check")
    def live_check() -> Response:
        return Response(status=204)


def _guarded(feed: BayFeed, tab: str, sound: str, allowed: Callable[[], bool],
             stopping: threading.Event | None, hello: View | None) -> Iterator[str]:
    if not feed.join():
        yield sse({"retry_s": 5}, "busy")
        return
    yield from stream(feed, seen=lambda: note_client(tab, sound), allowed=allowed, stopping=stopping,
                      hello=hello)
