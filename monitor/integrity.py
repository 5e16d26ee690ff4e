"""A keyed integrity ledger over every clinical record; and private file modes for the store.

The hash chain of ``operator_actions`` (:mod:`monitor.audit`) has no secret: whoever holds
the file can recompute it. This ledger is keyed: each entry carries an HMAC-SHA256 with a
key kept *outside* the database (a file beside it, mode 0600, made on first use), chained
to the entry before::

    mac = HMAC(key, prev_mac + canonical_json([id, time, tbl, first_id, last_id, row_key, digest]))

and the one row of ``integrity_head`` (entries, last id, last mac) carries its own HMAC, so
neither an entry nor the head can be rewritten, removed or added without the key.

What the entries say:

- appended tables (:data:`RANGE_TABLES`: readings, alarm events, session events, operator
  actions): one entry per committed batch and table, ``first_id``-``last_id`` and the
  SHA-256 of the rows written (canonical JSON of the rows' column values in id order);
- tables whose rows change (:data:`ROW_TABLES`: alarms, sessions, users): one entry per row
  written, ``row_key`` and the SHA-256 of the row as it stands after the write (``digest``
  NULL: the row was deleted by Chairside);
- retention (:mod:`monitor.store.retention`): one entry per run of ids it removed from an
  appended table, ``first_id``-``last_id``, ``row_key`` :data:`PRUNED` and ``digest`` the
  number of rows, in the transaction that removed them. Verify counts sealed rows inside
  these runs as pruned, not deleted; a batch cut by the cutoff has its remaining rows checked
  for presence only (its digest covered the rows pruned too), until they are pruned in turn.

The store's writer thread adds the entries in the transaction that writes the rows (a
batch hash, not a hash per reading in ingest); :class:`monitor.users.UserStore` likewise for
users. Entries are read and appended inside the write transaction, so two writers of one
file cannot fork the ledger. :func:`verify_ledger` recomputes all of it. See docs/audit.md.
"""

from __future__ import annotations

import bisect
import contextlib
import hashlib
import hmac
import json
import logging
import os
import secrets
import stat
import time
from collections.abc import Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from monitor.store.db import Db

__all__ = [
    "GENESIS",
    "PRUNED",
    "RANGE_TABLES",
    "ROW_TABLES",
    "SITE_TABLES",
    "LedgerReport",
    "Sealer",
    "check_private",
    "default_key_path",
    "load_key",
    "private_file",
    "reading_rows",
    "rows_digest",
    "seal_all",
    "sealed_with",
    "verify_ledger",
]

log = logging.getLogger(__name__)

GENESIS = "0" * 64
#: ``row_key`` of a ledger entry recording ids removed by retention.
PRUNED = "pruned"
#: Appended tables: the columns sealed per batch (``id`` first).
RANGE_TABLES: dict[str, tuple[str, ...]] = {
    "readings": ("id", "chair", "parameter", "value", "device_time", "receive_time", "device",
                 "seq", "flags"),
    "alarm_events": ("id", "time", "chair", "alarm_id", "old_state", "new_state", "user", "note",
                     "alarm"),
    "session_events": ("id", "session_id", "chair", "time", "kind", "user", "detail", "data"),
    "operator_actions": ("id", "time", "user", "action", "chair", "target", "detail", "prev_hash",
                         "hash"),
}
#: Tables whose rows change: the key column (first) and the columns sealed.
ROW_TABLES: dict[str, tuple[str, ...]] = {
    "alarms": ("id", "chair", "code", "rule", "kind", "priority", "state", "message", "raised_at",
               "updated_at", "parameter", "value", "limit_value", "paused_until",
               "acknowledged_by", "acknowledged_at", "cleared_at", "onset_at"),
    "sessions": ("id", "chair", "patient", "protocol", "drug", "dose", "planned_minutes",
                 "nibp_interval_s", "observation_minutes", "state", "started_at", "started_by",
                 "infusion_started_at", "infusion_stopped_at", "observation_started_at",
                 "ended_at", "ended_by", "baseline", "baseline_source", "limit_overrides"),
    # the security-relevant columns: who, which role, which password, enabled or not
    "users": ("username", "role", "password_hash", "disabled"),
    # PostgreSQL only: an account's role on one bay (key ``<bay>/<username>``), or ``none``
    "bay_roles": ("role_key", "username", "bay", "role"),
}
#: The tables sealed by the ledger of PostgreSQL's shared ``chairside_site`` schema (the
#: site-wide accounts), not by a bay's; a SQLite file has no ``bay_roles``.
SITE_TABLES = ("users", "bay_roles")
LEDGER_SCHEMA = """
CREATE TABLE integrity_ledger (id INTEGER PRIMARY KEY, time REAL, tbl TEXT, first_id INTEGER,
    last_id INTEGER, row_key TEXT, digest TEXT, mac TEXT);
CREATE TABLE integrity_head (id INTEGER PRIMARY KEY, entries INTEGER, last_id INTEGER, mac TEXT,
    head_mac TEXT, updated_at REAL);
"""
_SEAL_CHUNK = 10_000  # rows per entry when existing rows are sealed at migration
_KEY_HEX = 64


def _json(value: Any) -> str:
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def rows_digest(rows: Iterable[Sequence[Any]]) -> str:
    """SHA-256 of rows (column values as SQLite returns them) as one canonical JSON array."""
    return hashlib.sha256(_json(list(rows)).encode("utf-8")).hexdigest()


def reading_rows(first_id: int, readings: Iterable[Sequence[Any]]) -> list[tuple[Any, ...]]:
    """Readings (chair, parameter, value, device_time, receive_time, device, seq, flags) as
    the readings table returns them once inserted from ``first_id`` on: the columns'
    affinities applied (REAL floats, INTEGER ints, TEXT strings), so the writer can seal a
    batch without reading it back and verify finds the same digest."""
    def real(v: Any) -> float | None:
        return None if v is None else float(v)

    def integer(v: Any) -> int | None:
        return None if v is None else int(v)

    return [(first_id + i, str(c), str(p), real(v), real(t), real(rt), None if d is None else str(d),
             integer(seq), integer(f))
            for i, (c, p, v, t, rt, d, seq, f) in enumerate(readings)]


def _mac(key: bytes, prev: str, entry: Sequence[Any]) -> str:
    return hmac.new(key, (prev + _json(list(entry))).encode("utf-8"), hashlib.sha256).hexdigest()


def _head_mac(key: bytes, entries: int, last_id: int, mac: str) -> str:
    return _mac(key, "head", [entries, last_id, mac])


# ---- files ------------------------------------------------------------------------------
def default_key_path(db: str | os.PathLike[str]) -> Path:
    """Where the ledger key lives unless configured: ``<database>.audit-key``."""
    return Path(os.fspath(db) + ".audit-key")


def load_key(path: str | os.PathLike[str], create: bool = True) -> bytes:
    """The ledger key: made on first use (mode 0600) when ``create``, read after. A key file
    open to group or others is set to 0600 (logged)."""
    path = Path(path)
    if create:
        try:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        except FileExistsError:
            pass
        else:
            with os.fdopen(fd, "w", encoding="ascii") as fh:
                fh.write(secrets.token_hex(32) + "\n")
                fh.flush()
                os.fsync(fh.fileno())
            log.info("made a new audit key in %s", path)
    try:
        mode = stat.S_IMODE(path.stat().st_mode)
        if mode & 0o077:
            log.warning("audit key %s had mode %o; set to 0600", path, mode)
            path.chmod(0o600)
        text = path.read_text("ascii").strip()
    except FileNotFoundError:
        raise FileNotFoundError(f"no audit key {path}") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise OSError(f"cannot read the audit key {path}: {exc}") from exc
    if len(text) < _KEY_HEX:
        raise OSError(f"audit key {path} is too short (damaged?)")
    return text.encode("ascii")


def private_file(path: str | os.PathLike[str], mode: int = 0o600) -> None:
    """Create ``path`` empty with ``mode`` if it does not exist (before SQLite opens it, so
    the database and the -wal and -shm files SQLite makes beside it get that mode)."""
    with contextlib.suppress(FileExistsError):
        os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, mode))


def check_private(db: str | os.PathLike[str], mode: int = 0o600) -> None:
    """Raise PermissionError, naming the fix, when the store's file, its -wal or -shm, or
    its folder is open to group or others beyond ``mode`` (0600, or 0640: group may read)."""
    db = Path(db).absolute()
    allowed = mode & 0o077
    folder_allowed = 0o050 if allowed else 0
    problems, files = [], []
    for p in (db, Path(f"{db}-wal"), Path(f"{db}-shm")):
        try:
            m = stat.S_IMODE(p.stat().st_mode)
        except FileNotFoundError:
            continue
        if m & 0o077 & ~allowed:
            problems.append(f"{p} has mode {m:04o}")
            files.append(str(p))
    m = stat.S_IMODE(db.parent.stat().st_mode)
    fixes = []
    if files:
        fixes.append(f"chmod {mode:o} {' '.join(files)}")
    if m & 0o077 & ~folder_allowed:
        problems.append(f"its folder {db.parent} has mode {m:04o}")
        fixes.append(f"chmod {0o700 | (folder_allowed):o} {db.parent}")
    if problems:
        raise PermissionError(
            f"store {db} holds patient data but is readable by others: {'; '.join(problems)}. "
            f"Fix: {' && '.join(fixes)} (or set [store] mode = \"0640\" to let the file's group "
            "read it; see docs/security.md)")


# ---- writing ----------------------------------------------------------------------------
class Sealer:
    """Appends ledger entries inside a caller's write transaction."""

    def __init__(self, key: bytes) -> None:
        self._key = key

    def _head(self, conn: Db) -> list[Any]:
        row = conn.execute("SELECT entries, last_id, mac FROM integrity_head WHERE id = 1").fetchone()
        if row is None and not conn.execute("SELECT 1 FROM integrity_ledger LIMIT 1").fetchall():
            return [0, 0, GENESIS]  # a new ledger (the site schema's starts without a head)
        if row is None:  # deleted: continue from the last entry; verify reports it
            log.error("integrity_head is missing; continuing the ledger from its last entry")
            n, last = conn.execute(
                "SELECT count(*), coalesce(max(id), 0) FROM integrity_ledger").fetchone()
            found = conn.execute("SELECT mac FROM integrity_ledger WHERE id = ?", (last,)).fetchone()
            row = (n, last, found[0] if found else GENESIS)
        return [row[0] or 0, row[1] or 0, row[2] or GENESIS]

    @staticmethod
    def tops(conn: Db, tables: Iterable[str]) -> dict[str, int]:
        """The highest id of each appended table, read before a batch writes to it."""
        return {t: conn.execute(f"SELECT coalesce(max(id), 0) FROM {t}").fetchone()[0]
                for t in tables}

    def seal(self, conn: Db, appended: Mapping[str, int],
             changed: Mapping[str, Iterable[Any]], now: float | None = None,
             written: Mapping[str, list[tuple[Any, ...]]] | None = None,
             pruned: Iterable[tuple[str, int, int]] = ()) -> list[Any] | None:
        """Seal the rows of appended tables with ids above ``appended[table]`` (one entry
        per table) and the current state of rows ``changed[table]`` (keys); record the id
        runs ``pruned`` (table, first, last) removed by retention. Returns the new head
        ``[entries, last_id, mac]``, or None if there was nothing to seal.
        ``written[table]``: those rows exactly as SQLite stores them (see
        :func:`reading_rows`), so they need not be read back."""
        now = time.time() if now is None else now
        entries: list[tuple[Any, ...]] = [(table, lo, hi, PRUNED, str(hi - lo + 1))
                                          for table, lo, hi in pruned]
        for table, top in appended.items():
            rows = (written or {}).get(table)
            if rows is None:
                cols = RANGE_TABLES[table]
                rows = conn.execute(f"SELECT {', '.join(cols)} FROM {table} WHERE id > ? "
                                    "ORDER BY id", (top,)).fetchall()
            if rows:
                entries.append((table, rows[0][0], rows[-1][0], None, rows_digest(rows)))
        for table, keys in changed.items():
            cols = ROW_TABLES[table]
            sql = f"SELECT {', '.join(cols)} FROM {table} WHERE {cols[0]} = ?"
            for k in dict.fromkeys(keys):
                row = conn.execute(sql, (k,)).fetchone()
                entries.append((table, None, None, str(k), None if row is None else rows_digest([row])))
        return self._append(conn, entries, now) if entries else None

    def _append(self, conn: Db, entries: list[tuple[Any, ...]], now: float,
                head: list[Any] | None = None) -> list[Any]:
        head = self._head(conn) if head is None else head
        top = conn.execute("SELECT coalesce(max(id), 0) FROM integrity_ledger").fetchone()[0]
        next_id, prev, params = max(head[1], top) + 1, head[2], []
        for e in entries:
            entry = (next_id, now, *e)
            prev = _mac(self._key, prev, entry)
            params.append((*entry, prev))
            next_id += 1
        conn.executemany("INSERT INTO integrity_ledger (id, time, tbl, first_id, last_id, row_key, "
                         "digest, mac) VALUES (?, ?, ?, ?, ?, ?, ?, ?)", params)
        head = [head[0] + len(params), next_id - 1, prev]
        conn.execute(
            "INSERT INTO integrity_head (id, entries, last_id, mac, head_mac, updated_at) "
            "VALUES (1, ?, ?, ?, ?, ?) ON CONFLICT (id) DO UPDATE SET entries = excluded.entries, "
            "last_id = excluded.last_id, mac = excluded.mac, head_mac = excluded.head_mac, "
            "updated_at = excluded.updated_at", (*head, _head_mac(self._key, *head), now))
        return head


def seal_all(conn: Db, key: bytes) -> int:
    """At migration: seal every existing row (appended tables in chunks of ids). Returns
    the number of entries written."""
    sealer, entries, now = Sealer(key), [], time.time()
    for table, cols in RANGE_TABLES.items():
        sql = f"SELECT {', '.join(cols)} FROM {table} WHERE id > ? ORDER BY id LIMIT ?"
        top = 0
        while rows := conn.execute(sql, (top, _SEAL_CHUNK)).fetchall():
            entries.append((table, rows[0][0], rows[-1][0], None, rows_digest(rows)))
            top = rows[-1][0]
    present = conn.tables()
    for table, cols in ROW_TABLES.items():
        if table not in present:  # users, in PostgreSQL: site-wide, sealed in the site's ledger
            continue
        for row in conn.execute(f"SELECT {', '.join(cols)} FROM {table} ORDER BY {cols[0]}"):
            entries.append((table, None, None, str(row[0]), rows_digest([row])))
    head = sealer._append(conn, entries, now, [0, 0, GENESIS])
    log.info("integrity ledger: existing records sealed in %d entries, head %s", len(entries), head[2])
    return len(entries)


# ---- verifying --------------------------------------------------------------------------
def sealed_with(conn: Db, key: bytes) -> bool:
    """Whether the ledger's head carries ``key``'s MAC (True for a ledger with no head yet):
    a writer with another key would fork what verify can check."""
    head = conn.execute("SELECT entries, last_id, mac, head_mac FROM integrity_head WHERE id = 1").fetchone()
    return head is None or hmac.compare_digest(str(head[3]), _head_mac(key, head[0], head[1], str(head[2])))


@dataclass(slots=True)
class LedgerReport:
    ok: bool
    entries: int
    problems: list[str] = field(default_factory=list)
    sealed: dict[str, int] = field(default_factory=dict)  # rows checked per table
    head: str = GENESIS
    pruned: dict[str, int] = field(default_factory=dict)  # rows removed by retention per table


def _ids(ids: list[int]) -> str:
    """``rows 3, 7-9`` from sorted ids."""
    parts, i = [], 0
    while i < len(ids):
        j = i
        while j + 1 < len(ids) and ids[j + 1] == ids[j] + 1:
            j += 1
        parts.append(str(ids[i]) if i == j else f"{ids[i]}-{ids[j]}")
        i = j + 1
    return ("row " if len(ids) == 1 else "rows ") + ", ".join(parts)


def verify_ledger(conn: Db, key: bytes, only: Collection[str] | None = None) -> LedgerReport:
    """Check the ledger's MACs and head, then every covered table against it (inside the
    caller's read transaction); ``only``: the tables this ledger covers (default all of
    :data:`RANGE_TABLES` and :data:`ROW_TABLES`; a PostgreSQL bay's leaves out the site-wide
    users)."""
    problems: list[str] = []
    tables = conn.tables()
    if "integrity_ledger" not in tables:
        return LedgerReport(False, 0, ["ledger: the integrity_ledger table is missing (dropped?)"])
    trusted: list[tuple[Any, ...]] = []
    prev, prev_id, n = GENESIS, 0, 0
    for row in conn.execute("SELECT id, time, tbl, first_id, last_id, row_key, digest, mac "
                            "FROM integrity_ledger ORDER BY id"):
        n += 1
        if row[0] > prev_id + 1:
            problems.append(f"ledger: entries {prev_id + 1}-{row[0] - 1} are missing (deleted)")
        if hmac.compare_digest(str(row[7]), _mac(key, prev, row[:7])):
            trusted.append(row)
        elif row[0] > prev_id + 1:  # the gap explains the broken link; is the entry itself sound?
            problems.append(f"ledger: entry {row[0]} does not chain from entry {prev_id}")
        else:
            problems.append(f"ledger: entry {row[0]} was edited or forged (MAC mismatch)")
        prev, prev_id = str(row[7]), row[0]
    head = None
    if "integrity_head" in tables:
        head = conn.execute("SELECT entries, last_id, mac, head_mac FROM integrity_head "
                            "WHERE id = 1").fetchone()
    if head is None and n == 0:
        pass  # a ledger nothing was sealed in yet (rows in its tables are reported unsealed)
    elif head is None:
        problems.append("ledger: the integrity_head row is missing (deleted?)")
    elif not hmac.compare_digest(str(head[3]), _head_mac(key, head[0], head[1], str(head[2]))):
        problems.append("ledger: the head was rewritten (MAC mismatch)")
    elif head[1] > prev_id:
        problems.append(f"ledger: entries {prev_id + 1}-{head[1]} are missing from the end "
                        f"(deleted): the head records {head[0]} entries ending at entry {head[1]}")
    elif head[1] < prev_id:
        problems.append(f"ledger: entries {head[1] + 1}-{prev_id} are after the head (forged?)")
    elif head[2] != prev or head[0] != n:
        problems.append("ledger: the head does not match the last entry")

    sealed: dict[str, int] = {}
    pruned_rows: dict[str, int] = {}
    for table, cols in RANGE_TABLES.items():
        if only is not None and table not in only:
            continue
        if table not in tables:
            problems.append(f"{table}: the table is missing (dropped?)")
            continue
        ranges = sorted((r[3], r[4], r[0], r[6]) for r in trusted if r[2] == table and r[5] is None)
        pruned = _merge([(r[3], r[4]) for r in trusted if r[2] == table and r[5] == PRUNED])
        found, gone = _check_ranges(conn, table, cols, ranges, pruned)
        problems += found
        sealed[table] = sum(hi - lo + 1 for lo, hi, _, _ in ranges) - gone
        if pruned:
            pruned_rows[table] = sum(hi - lo + 1 for lo, hi in pruned)
    for table, cols in ROW_TABLES.items():
        if only is not None and table not in only:
            continue
        if table not in tables:
            problems.append(f"{table}: the table is missing (dropped?)")
            continue
        latest = {r[5]: (r[0], r[6]) for r in trusted if r[2] == table}  # in id order: last wins
        problems += _check_rows(conn, table, cols, latest)
        sealed[table] = sum(1 for _, d in latest.values() if d is not None)
    return LedgerReport(not problems, n, problems, sealed, prev, pruned_rows)


def _merge(runs: Iterable[tuple[int, int]]) -> list[tuple[int, int]]:
    """Id runs sorted, overlapping or adjacent ones merged."""
    merged: list[list[int]] = []
    for lo, hi in sorted(runs):
        if merged and lo <= merged[-1][1] + 1:
            merged[-1][1] = max(merged[-1][1], hi)
        else:
            merged.append([lo, hi])
    return [(lo, hi) for lo, hi in merged]


def _within(runs: list[tuple[int, int]], lo: int, hi: int) -> list[tuple[int, int]]:
    """The parts of merged ``runs`` inside [lo, hi]."""
    i = bisect.bisect_right(runs, (lo, lo)) - 1
    parts = []
    for a, b in runs[max(i, 0):]:
        if a > hi:
            break
        if b >= lo:
            parts.append((max(a, lo), min(b, hi)))
    return parts


def _check_ranges(conn: Db, table: str, cols: tuple[str, ...], ranges: list[tuple[int, int, int, str]],
                  pruned: list[tuple[int, int]]) -> tuple[list[str], int]:
    """Problems in the sealed ``ranges``, and how many of their rows were pruned (``pruned``:
    merged id runs removed by retention)."""
    problems: list[str] = []
    select = f"SELECT {', '.join(cols)} FROM {table} WHERE id BETWEEN ? AND ? ORDER BY id"
    covered = n_pruned = 0
    uncovered: list[int] = []
    for lo, hi, entry, digest in ranges:
        if lo > covered + 1:
            uncovered += [r[0] for r in conn.execute(
                f"SELECT id FROM {table} WHERE id BETWEEN ? AND ? ORDER BY id",
                (covered + 1, lo - 1))]
        covered = max(covered, hi)
        cut = _within(pruned, lo, hi)
        if cut:  # (partly) pruned: the digest covered rows that are gone; check the rest is there
            n_pruned += sum(b - a + 1 for a, b in cut)
            have = [r[0] for r in conn.execute(f"SELECT id FROM {table} WHERE id BETWEEN ? AND ? "
                                               "ORDER BY id", (lo, hi))]
            removed = {i for a, b in cut for i in range(a, b + 1)} if cut != [(lo, hi)] else None
            back = have if removed is None else [i for i in have if i in removed]
            present = set(have)
            missing = [] if removed is None else \
                [i for i in range(lo, hi + 1) if i not in removed and i not in present]
            if missing:
                problems.append(f"{table}: {_ids(missing)} deleted (sealed by ledger entry {entry}, "
                                "whose other rows were pruned)")
            if back:
                problems.append(f"{table}: {_ids(back)} present although pruned (inserted again, "
                                "not by Chairside)")
            continue
        rows = conn.execute(select, (lo, hi)).fetchall()
        if len(rows) < hi - lo + 1:
            have = {r[0] for r in rows}
            gone = [i for i in range(lo, hi + 1) if i not in have]
            rest = "; the batch's other rows can no longer be checked" if rows else ""
            problems.append(f"{table}: {_ids(gone)} deleted (sealed by ledger entry {entry}{rest})")
        elif rows_digest(rows) != digest:
            what = _ids([lo]) if lo == hi else f"one or more of rows {lo}-{hi}"
            problems.append(f"{table}: {what} changed (sealed by ledger entry {entry})")
    uncovered += [r[0] for r in conn.execute(
        f"SELECT id FROM {table} WHERE id > ? ORDER BY id", (covered,))]
    if uncovered:
        problems.append(f"{table}: {_ids(uncovered)} inserted (not sealed: not written by Chairside)")
    return problems, n_pruned


def _check_rows(conn: Db, table: str, cols: tuple[str, ...],
                latest: dict[str, tuple[int, str | None]]) -> list[str]:
    problems: list[str] = []
    seen: set[str] = set()
    changed, inserted = [], []
    for row in conn.execute(f"SELECT {', '.join(cols)} FROM {table} ORDER BY {cols[0]}"):
        k = str(row[0])
        seen.add(k)
        entry = latest.get(k)
        if entry is None or entry[1] is None:
            inserted.append(k)
        elif rows_digest([row]) != entry[1]:
            changed.append(f"{k!r} (sealed by ledger entry {entry[0]})")
    deleted = [k for k, (_, d) in latest.items() if d is not None and k not in seen]
    for what, keys in (("changed", changed), ("deleted", [repr(k) for k in deleted]),
                       ("inserted (not written by Chairside)", [repr(k) for k in inserted])):
        if keys:
            problems.append(f"{table}: {'row' if len(keys) == 1 else 'rows'} {', '.join(keys)} {what}")
    return problems
