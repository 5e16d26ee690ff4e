"""``GET /metrics`` in the Prometheus text format, and the store check of ``/healthz``.

Everything is read from the live objects when Prometheus scrapes (a custom collector): no
background thread, no counting on the ingest path. Each app has its own registry, never the
client library's global one, so several apps can live in one process (tests build many).

Metrics (labels kept to a handful of values each: no chair, patient or alarm ids)::

    chairside_readings_accepted_total                       the core accepted
    chairside_readings_rejected_total{reason}               the core refused (every known reason, 0 too)
    chairside_frames_rejected_total{source,kind,reason}     adapters refused
    chairside_seq_gaps_total{source,kind}                   gaps in devices' sequences (MQTT)
    chairside_messages_missing_total{source,kind}           messages those gaps lost
    chairside_source_up{source,kind}                        1 while the adapter is connected
    chairside_source_reconnects_total{source,kind}
    chairside_alarms_open{priority,state,kind}              every combination, 0 too
    chairside_store_commit_seconds                          how long the latest commit took
    chairside_store_batches_total                           commits
    chairside_store_failed_batches_total                    commits that failed (retried)
    chairside_store_pending_rows                            submitted, not yet committed
    chairside_store_writer_up                               1 while the writer thread runs
    chairside_dashboard_clients                             browser tabs that polled in the last 10 s
    chairside_screens_connected                             the same tabs (screens showing the bay)
    chairside_screens_audible                               of those, the ones whose alarm tone is heard
    chairside_screens_sound_blocked                         ... enabled, but the browser blocks the sound
    chairside_build_info{version}

A dashboard tab is counted by the id it echoes with each tick (see ``dashboard.app._refresh``)
through :func:`note_client`, with whether it can sound (``SOUND_STATES``: audible, blocked by
the browser, or never enabled on that screen). ``chairside_screens_connected > 0 and
chairside_screens_audible == 0`` means no screen would sound an alarm (docs/kiosk.md).
"""

from __future__ import annotations

import re
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from importlib import metadata
from typing import Any

from flask import Flask, Response, current_app
from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    InfoMetricFamily,
    Metric,
)
from prometheus_client.exposition import CONTENT_TYPE_LATEST, generate_latest
from prometheus_client.registry import Collector, CollectorRegistry

from dashboard.live import LiveBay
from monitor.readings import RejectReason
from monitor.records import AlarmKind, AlarmState, Priority
from monitor.seam import SourceState

__all__ = ["SOUND_STATES", "ChairsideCollector", "ClientTracker", "Metrics", "StoreCheck", "install_metrics",
           "note_client", "screens"]

EXTENSION = "chairside_metrics"
CLIENT_WINDOW = 10.0  # seconds: a tab that has not polled for this long is gone
CLIENT_ID = re.compile(r"[0-9a-f]{32}")  # uuid4().hex
SOUND_STATES = ("audible", "blocked", "off")  # what a tab reports of its alarm sound


def _version() -> str:
    try:
        return metadata.version("chairside")
    except metadata.PackageNotFoundError:
        return "unknown"


class ClientTracker:
    """Dashboard tabs by the id each one sends with its tick: how many polled recently, and
    of those how many can sound (the state each reported last).

    At most ``limit`` ids are kept (the oldest go first), so made-up ids cannot grow it."""

    def __init__(self, window: float = CLIENT_WINDOW, limit: int = 1000,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.window = window
        self.limit = limit
        self._clock = clock
        self._lock = threading.Lock()
        self._seen: dict[str, float] = {}  # id -> last poll; insertion order is poll order
        self._sound: dict[str, str] = {}  # id -> its SOUND_STATES entry

    def seen(self, client_id: str, sound: str | None = None) -> None:
        """A tab polled; ``sound`` is what it reports (None: as before; unknown: "off")."""
        now = self._clock()
        with self._lock:
            self._seen.pop(client_id, None)  # re-insert: the dict stays ordered by last poll
            self._seen[client_id] = now
            if sound is not None or client_id not in self._sound:
                self._sound[client_id] = sound if sound in SOUND_STATES else "off"
            if len(self._seen) > self.limit:
                self._prune(now)
                while len(self._seen) > self.limit:
                    oldest = next(iter(self._seen))
                    del self._seen[oldest]
                    self._sound.pop(oldest, None)

    def count(self) -> int:
        with self._lock:
            self._prune(self._clock())
            return len(self._seen)

    def sounds(self) -> dict[str, int]:
        """The tabs that polled recently, by sound state (every state, 0 too)."""
        with self._lock:
            self._prune(self._clock())
            counts = dict.fromkeys(SOUND_STATES, 0)
            for client_id in self._seen:
                counts[self._sound[client_id]] += 1
            return counts

    def _prune(self, now: float) -> None:
        for client_id, last in list(self._seen.items()):
            if now - last <= self.window:
                break  # ordered by last poll: the rest are newer
            del self._seen[client_id]
            self._sound.pop(client_id, None)


class StoreCheck:
    """Whether the store is writing: its writer thread runs, and it has not failed a commit
    since the last one that succeeded while rows wait to be written.

    It keeps the store's counters from the previous look (``stats()`` has no times): a
    failed commit shows from the next look after it until a commit succeeds. Failures
    before the first look are not counted against it (they may be long over)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._batches: int | None = None
        self._failed_before = 0  # failed_batches when a commit was last seen to succeed

    def writable(self, stats: dict[str, Any]) -> bool:
        if not stats.get("writer_alive", False):
            return False
        batches, failed = int(stats.get("batches", 0)), int(stats.get("failed_batches", 0))
        with self._lock:
            if self._batches is None or batches != self._batches:  # first look, or it committed
                self._batches, self._failed_before = batches, failed
            failing = failed > self._failed_before
        return not (failing and stats.get("pending", 0) > 0)


class ChairsideCollector(Collector):
    """Reads the bay (core, adapters, store, dashboard tabs) at each scrape."""

    def __init__(self, live: LiveBay, clients: ClientTracker) -> None:
        self.live = live
        self.clients = clients
        self.version = _version()

    def collect(self) -> Iterator[Metric]:
        monitor = self.live.monitor
        yield CounterMetricFamily("chairside_readings_accepted", "Readings the core accepted",
                                  value=monitor.accepted)
        rejected = CounterMetricFamily("chairside_readings_rejected", "Readings the core refused, by reason",
                                       labels=["reason"])
        # dict() of a Counter is one C call: a consistent copy while ingest threads count
        counts = dict.fromkeys((r.value for r in RejectReason), 0) | dict(monitor.rejections.counts)
        for reason, n in sorted(counts.items()):
            rejected.add_metric([reason], n)
        yield rejected
        yield from self._sources()
        yield self._alarms()
        yield from self._store()
        yield GaugeMetricFamily("chairside_dashboard_clients",
                                f"Dashboard browser tabs that polled in the last {self.clients.window:g} s",
                                value=self.clients.count())
        yield from self._screens()
        yield InfoMetricFamily("chairside_build", "Chairside build", value={"version": self.version})

    def _sources(self) -> Iterable[Metric]:
        up = GaugeMetricFamily("chairside_source_up", "1 while the adapter is connected (or listening)",
                               labels=["source", "kind"])
        reconnects = CounterMetricFamily("chairside_source_reconnects", "Adapter reconnections",
                                         labels=["source", "kind"])
        gaps = CounterMetricFamily("chairside_seq_gaps", "Gaps seen in devices' sequences (MQTT seq)",
                                   labels=["source", "kind"])
        missing = CounterMetricFamily("chairside_messages_missing",
                                      "Messages of devices' sequences that never arrived (lost in gaps)",
                                      labels=["source", "kind"])
        frames = CounterMetricFamily("chairside_frames_rejected", "Frames an adapter refused, by reason",
                                     labels=["source", "kind", "reason"])
        for source in self.live.sources:
            health = source.health()
            labels = [str(health.get("name", source.name)), str(health.get("kind", ""))]
            up.add_metric(labels, 1 if health.get("state") == SourceState.CONNECTED.value else 0)
            reconnects.add_metric(labels, health.get("reconnects", 0))
            if "seq_gaps" in health:
                gaps.add_metric(labels, health["seq_gaps"])
                missing.add_metric(labels, health.get("missing_seqs", 0))
            for reason, n in sorted(health.get("rejected", {}).items()):
                frames.add_metric([*labels, reason], n)
        return up, reconnects, gaps, missing, frames

    def _alarms(self) -> Metric:
        open_states = [s for s in AlarmState if s.is_open]
        counts = {(p.label, s.value, k.value): 0 for p in Priority for s in open_states for k in AlarmKind}
        for alarm in self.live.monitor.open_alarms():
            key = (alarm.priority.label, alarm.state.value, alarm.kind.value)
            counts[key] = counts.get(key, 0) + 1
        gauge = GaugeMetricFamily("chairside_alarms_open", "Open alarms by priority, state and kind",
                                  labels=["priority", "state", "kind"])
        for labels, n in counts.items():
            gauge.add_metric(list(labels), n)
        return gauge

    def _screens(self) -> Iterable[Metric]:
        sounds = self.clients.sounds()
        return (
            GaugeMetricFamily("chairside_screens_connected",
                              f"Dashboard screens (tabs) that polled in the last {self.clients.window:g} s",
                              value=sum(sounds.values())),
            GaugeMetricFamily("chairside_screens_audible",
                              "Connected screens whose alarm sound is enabled and not blocked",
                              value=sounds["audible"]),
            GaugeMetricFamily("chairside_screens_sound_blocked",
                              "Connected screens whose alarm sound was enabled but the browser blocks",
                              value=sounds["blocked"]),
        )

    def _store(self) -> Iterable[Metric]:
        stats = self.live.monitor.store_stats()
        if stats is None:
            return ()
        return (
            GaugeMetricFamily("chairside_store_commit_seconds", "Duration of the latest store commit",
                              value=stats.get("last_commit_seconds", 0.0)),
            CounterMetricFamily("chairside_store_batches", "Store commits",
                                value=stats.get("batches", 0)),
            CounterMetricFamily("chairside_store_failed_batches", "Store commits that failed (retried)",
                                value=stats.get("failed_batches", 0)),
            GaugeMetricFamily("chairside_store_pending_rows", "Rows submitted and not yet committed",
                              value=stats.get("pending", 0)),
            GaugeMetricFamily("chairside_store_writer_up", "1 while the store's writer thread runs",
                              value=1 if stats.get("writer_alive") else 0),
        )


class Metrics:
    """One app's registry, its collector, its dashboard tabs and its store check."""

    def __init__(self, live: LiveBay) -> None:
        self.clients = ClientTracker()
        self.store_check = StoreCheck()
        self.registry = CollectorRegistry()
        self.registry.register(ChairsideCollector(live, self.clients))

    def exposition(self) -> bytes:
        return generate_latest(self.registry)


def install_metrics(server: Flask, live: LiveBay) -> Metrics:
    """Serve ``GET /metrics`` and keep the app's :class:`Metrics` in ``server.extensions``."""
    metrics = Metrics(live)
    server.extensions[EXTENSION] = metrics

    def prometheus_metrics() -> Response:
        return Response(metrics.exposition(), headers={"Content-Type": CONTENT_TYPE_LATEST,
                                                       "Cache-Control": "no-store"})

    server.add_url_rule("/metrics", "chairside_metrics", prometheus_metrics, methods=["GET"])
    return metrics


def note_client(client_id: str, sound: str | None = None) -> None:
    """A dashboard tab polled (called by the tick callback, in a request of the app), and
    whether it can sound (``SOUND_STATES``; None: unchanged)."""
    metrics: Metrics | None = current_app.extensions.get(EXTENSION)
    if metrics is not None and CLIENT_ID.fullmatch(client_id):
        metrics.clients.seen(client_id, sound)


def screens() -> dict[str, int]:
    """The app's connected screens by sound state (in a request of the app)."""
    metrics: Metrics | None = current_app.extensions.get(EXTENSION)
    return metrics.clients.sounds() if metrics is not None else dict.fromkeys(SOUND_STATES, 0)
