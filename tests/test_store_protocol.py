"""The store sits behind the ``Store`` Protocol: everything the core and the exports call on
a store is in it (so a second backend, e.g. PostgreSQL, can implement it), and SqliteStore
matches it member for member."""

from __future__ import annotations

import inspect
import io
from typing import Any

import pytest
from conftest import Harness

from monitor.core import Monitor
from monitor.exports import export_session
from monitor.records import SessionEventKind
from monitor.store import SqliteStore, Store

PROTOCOL = frozenset(n for n in vars(Store) if not n.startswith("_"))
# what only the backend classes have: their database (its name), the key file, the retry tuning
# and retention (the store prunes itself: nothing outside calls it but tests and benchmarks)
SQLITE_ONLY = {"path", "database", "audit_key_file", "MAX_RETRY_S", "FAIL_LOG_EVERY_S", "PRUNE_BATCH",
               "prune_once", "retention_days"}


class ProtocolOnly:
    """A store that offers exactly the Protocol's members (delegating to a real store) and
    nothing else: what a second backend would offer."""

    def __init__(self, store: SqliteStore) -> None:
        self._store = store

    def __getattr__(self, name: str) -> Any:
        if name not in PROTOCOL:
            raise AttributeError(f"{name!r} is not in the Store Protocol")
        return getattr(self._store, name)


def test_the_protocol_covers_every_public_member_of_the_sqlite_store(tmp_path):
    with SqliteStore(tmp_path / "s.db") as store:
        public = {n for n in dir(store) if not n.startswith("_")}
    assert len(PROTOCOL) > 20
    assert public - PROTOCOL == SQLITE_ONLY
    assert public >= PROTOCOL


@pytest.mark.parametrize("name", sorted(PROTOCOL - {"committed_ticket"}))
def test_sqlite_store_signatures_match_the_protocol(name):
    ours = inspect.signature(getattr(SqliteStore, name))
    protocol = inspect.signature(getattr(Store, name))
    assert list(ours.parameters) == list(protocol.parameters)
    assert [p.default for p in ours.parameters.values()] == [p.default for p in protocol.parameters.values()]


def _open(h: Harness) -> Monitor:
    monitor = Monitor(h.config, store=ProtocolOnly(SqliteStore(h.config.store.path, commit_interval=0.02)),  # type: ignore[arg-type]
                      clock=h.clock)
    monitor.start()
    return monitor


def test_the_core_and_the_exports_need_nothing_beyond_the_protocol(tmp_path):
    h = Harness(tmp_path)
    h.monitor.close()
    h.monitor = m = _open(h)
    session = m.start_session("c1", "MRN-1", "nurse.ann")
    m.session_step(session.id, SessionEventKind.INFUSION_STARTED, "nurse.ann")
    h.feed("spo2", 97, seconds=5)
    h.feed("nibp_sys", 210)  # a high alarm at once
    (alarm,) = [a for a in m.open_alarms() if a.code == "NIBP_SYS_HIGH"]
    m.acknowledge(alarm.id, "nurse.ann")
    assert m.device_seqs() == {}  # no sequence numbers fed
    m.close()
    h.monitor = m = _open(h)  # restored through the Protocol alone
    assert m.status("c1").session is not None
    assert alarm.id in [a.id for a in m.open_alarms()]
    ended = m.end_session(session.id, "nurse.ann", patient_left=True)
    assert m.store is not None and m.store.flush(timeout=10)
    for fmt in ("csv", "fhir", "pdf"):
        out = io.BytesIO()
        result = export_session(m.store, m.session(ended.id), fmt, out, h.clock.now(), config=h.config)
        assert result.readings == 6 and out.getvalue(), fmt
    m.close()
