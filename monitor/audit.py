"""The audit trail: ``operator_actions`` is append-only and hash-chained; this checks it.

Every operator action (acknowledge, pause_audio, limit changes, session start/steps/end, and
later logins and user changes) is one row of ``operator_actions``. The store's single writer
thread gives each row, as it inserts it::

    hash = sha256(prev_hash + canonical_json({id, time, user, action, chair, target, detail}))

where ``prev_hash`` is the previous row's ``hash`` (:data:`GENESIS` for the first row) and
the JSON is canonical: keys sorted, separators ``(",", ":")``, UTF-8 (``ensure_ascii=False``),
floats as ``repr``; ``detail`` is hashed as the JSON text stored in the row. In the same
transaction the writer updates the one row of ``audit_head`` (number of actions, last row id,
last hash) and, after the commit, logs the head at INFO, so that a copy of the head also
lives outside the database.

:func:`verify_chain` walks the rows in id order over a read-only connection and recomputes
every hash. It finds an edited row (hash mismatch), a row deleted in the middle (id gap, and
the next row's ``prev_hash`` no longer matches), rows deleted from the end or forged rows
appended (the table disagrees with ``audit_head``), and dropped append-only triggers.

The chain has no secret key: someone with write access to the file and this code can rewrite
every row and the head consistently. The keyed ledger (:mod:`monitor.integrity`) catches
that, and covers the other clinical records too: :func:`verify_records` checks it. See
docs/audit.md.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

from monitor.errors import CoreError
from monitor.integrity import (
    RANGE_TABLES,
    ROW_TABLES,
    SITE_TABLES,
    LedgerReport,
    default_key_path,
    load_key,
    verify_ledger,
)

if TYPE_CHECKING:
    from monitor.store.db import Database, Db

_R = TypeVar("_R")

__all__ = ["ACTION_FIELDS", "GENESIS", "TRIGGERS", "AuditError", "AuditReport", "action_hash",
           "canonical_json", "verify_chain", "verify_records", "verify_site_records"]

#: ``prev_hash`` of the first row.
GENESIS = "0" * 64
#: The hashed columns of ``operator_actions``, in the order rows carry them.
ACTION_FIELDS = ("id", "time", "user", "action", "chair", "target", "detail")
#: The append-only triggers (names -> table); the store's migration 2 creates them.
TRIGGERS = {"operator_actions_no_update": "operator_actions",
            "operator_actions_no_delete": "operator_actions",
            "audit_head_no_delete": "audit_head"}


class AuditError(CoreError):
    """The file cannot be checked (missing, not a Chairside database, not yet migrated)."""


def canonical_json(row: Sequence[Any]) -> str:
    """The canonical JSON of a row given as values in :data:`ACTION_FIELDS` order."""
    return json.dumps(dict(zip(ACTION_FIELDS, row, strict=True)), sort_keys=True,
                      separators=(",", ":"), ensure_ascii=False)


def action_hash(prev_hash: str, row: Sequence[Any]) -> str:
    """The hash of a row (values in :data:`ACTION_FIELDS` order) chained after ``prev_hash``."""
    return hashlib.sha256((prev_hash + canonical_json(row)).encode("utf-8")).hexdigest()


@dataclass(slots=True)
class AuditReport:
    ok: bool
    rows: int  # rows in operator_actions
    first_bad_id: int | None  # the first row found missing, edited or forged
    problems: list[str] = field(default_factory=list)
    head: str = GENESIS  # the last row's stored hash


def _missing(first: int, last: int) -> str:
    return f"row {first} is" if first == last else f"rows {first}-{last} are"


def verify_chain(where: str | os.PathLike[str] | Database) -> AuditReport:
    """Check the audit chain of a bay's database: a SQLite file (opened read-only) or a
    :class:`~monitor.store.db.Database`; the bay may keep running. Raises
    :class:`AuditError` if the database cannot be checked at all."""
    return _read_only(where, _verify)


def verify_records(where: str | os.PathLike[str] | Database,
                   key_file: str | os.PathLike[str] | None = None) -> LedgerReport:
    """Check every clinical record of a bay's database (a SQLite file or a
    :class:`~monitor.store.db.Database`) against its keyed integrity ledger (key from
    ``key_file``, default ``<path>.audit-key`` beside a file; never created here). Raises
    :class:`AuditError` if the database cannot be checked at all."""
    if key_file is None and not isinstance(where, str | os.PathLike):
        raise AuditError(f"{where.name}: give the bay's audit key with --key (or [store] audit_key_file)")
    key_path = default_key_path(where) if key_file is None else Path(key_file)  # type: ignore[arg-type]
    try:
        key = load_key(key_path, create=False)
    except OSError as exc:
        raise AuditError(f"{exc}: give the bay's key with --key (or [store] audit_key_file)") from None

    def check(conn: Db, name: str) -> LedgerReport:
        if "operator_actions" not in conn.tables():
            raise AuditError(f"{name} is not a Chairside database (no operator_actions table)")
        from monitor.store.schema import MIGRATIONS, _migrate_integrity  # (it imports this)

        version = conn.version()
        if _migrate_integrity not in MIGRATIONS[:version]:  # else a missing table was dropped
            raise AuditError(f"{name} has schema version {version}, without the integrity ledger: "
                             "open it once with this Chairside (e.g. chairside run) to migrate it")
        # in PostgreSQL the accounts are site-wide, sealed in the site schema's own ledger
        # (verify_site_records); a SQLite file has no per-bay roles
        left_out = set(SITE_TABLES) if conn.dialect == "postgresql" else {"bay_roles"}
        return verify_ledger(conn, key, (set(RANGE_TABLES) | set(ROW_TABLES)) - left_out)

    return _read_only(where, check)


def verify_site_records(where: str | os.PathLike[str] | Database,
                        key_file: str | os.PathLike[str] | None = None) -> LedgerReport | None:
    """PostgreSQL: check the site-wide accounts and their per-bay roles against the ledger of
    the shared ``chairside_site`` schema (sealed with the bays' common key, ``key_file``).
    None for a SQLite file, whose accounts :func:`verify_records` checks."""
    from monitor.store.db import SITE_SCHEMA, PgDatabase

    if not isinstance(where, PgDatabase):
        return None
    if key_file is None:
        raise AuditError(f"{where.name}: give the bay's audit key with --key (or [store] audit_key_file)")
    try:
        key = load_key(Path(key_file), create=False)
    except OSError as exc:
        raise AuditError(f"{exc}: give the bay's key with --key (or [store] audit_key_file)") from None

    def check(conn: Db, name: str) -> LedgerReport:
        if not {"users", "bay_roles"} <= conn.tables():
            raise AuditError(f"{name} holds no site accounts: open a bay of the site once with this "
                             "Chairside (e.g. chairside run) to create them")
        return verify_ledger(conn, key, SITE_TABLES)

    return _read_only(where.for_bay(where.bay, SITE_SCHEMA), check)


def _read_only(where: str | os.PathLike[str] | Database, check: Callable[[Db, str], _R]) -> _R:
    from monitor.store.db import DbError, SqliteDatabase

    if isinstance(where, str | os.PathLike):
        path = Path(where)
        if not path.is_file():
            raise AuditError(f"{path}: no such database")
        where, name = SqliteDatabase(path), str(path)
    else:
        name = where.name
    try:
        conn = where.connect(read_only=True)
    except DbError as exc:
        raise AuditError(f"cannot open {name}: {exc.reason}") from exc
    try:
        # one snapshot: the rows and the head agree with each other
        conn.execute("BEGIN" if conn.dialect == "sqlite" else
                     "BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY")
        try:
            return check(conn, name)
        finally:
            conn.rollback()
    except DbError as exc:
        raise AuditError(f"cannot check {name}: {exc.reason}") from exc
    finally:
        conn.close()


def _verify(conn: Db, path: str) -> AuditReport:
    tables = conn.tables()
    if "operator_actions" not in tables:
        raise AuditError(f"{path} is not a Chairside database (no operator_actions table)")
    if not {"prev_hash", "hash"} <= conn.columns("operator_actions"):
        version = conn.version()
        raise AuditError(f"{path} has schema version {version}, without the audit chain: open it "
                         "once with this Chairside (e.g. chairside run) to migrate it")
    problems: list[str] = []
    first_bad: list[int] = []

    def bad(row_id: int | None, text: str) -> None:
        problems.append(text)
        if row_id is not None:
            first_bad.append(row_id)

    rows, prev_id, prev_hash = 0, 0, GENESIS
    recent: dict[str, int] = {GENESIS: 0}  # hash -> id of the last rows, to name inserted rows
    cur = conn.execute(f"SELECT {', '.join(ACTION_FIELDS)}, prev_hash, hash FROM operator_actions "
                       "ORDER BY id")
    for row in cur:
        row_id, stored_prev, stored = row[0], row[-2], row[-1]
        rows += 1
        gap = row_id != prev_id + 1
        if gap:
            what = _missing(prev_id + 1, row_id - 1) if row_id > prev_id + 1 else f"row {row_id} is"
            what += " missing (id gap)" if row_id > prev_id + 1 else " out of sequence"
            bad(prev_id + 1 if row_id > prev_id + 1 else row_id, what)
        if stored_prev != prev_hash:
            after = f"row {prev_id}'s hash" if prev_id else "the start of the chain"
            origin = recent.get(stored_prev) if isinstance(stored_prev, str) else None
            if origin is not None and origin < prev_id:
                bad(origin + 1, f"{_missing(origin + 1, prev_id)} inserted into the chain (forged?): "
                    f"row {row_id} chains from row {origin}")
            bad(row_id, f"row {row_id}'s prev_hash does not match {after}"
                + ("" if gap else " (a row before it was removed, inserted or rewritten)"))
        try:
            expected = action_hash(stored_prev or "", row[:-2])
        except (TypeError, ValueError):  # content no writer could have produced
            expected = None
        if stored is None:
            bad(row_id, f"row {row_id} has no hash (inserted outside Chairside)")
        elif stored != expected:
            bad(row_id, f"row {row_id} was edited (hash mismatch)")
        prev_id, prev_hash = row_id, stored
        if isinstance(stored, str):
            recent[stored] = row_id
            if len(recent) > 256:
                del recent[next(iter(recent))]

    if "audit_head" not in tables:
        bad(None, "the audit_head table is missing (dropped?)")
    else:
        head = conn.execute("SELECT actions, last_id, hash FROM audit_head WHERE id = 1").fetchone()
        if head is None:
            bad(None, "the audit_head row is missing (deleted?)")
        else:
            n, last_id, head_hash = head
            if last_id is not None and prev_id < last_id:
                bad(prev_id + 1, f"{_missing(prev_id + 1, last_id)} missing from the end: the "
                    f"chain head records {n} actions ending at row {last_id}, the table ends at "
                    f"row {prev_id}")
            elif last_id is not None and prev_id > last_id:
                bad(last_id + 1, f"{_missing(last_id + 1, prev_id)} after the chain head (row "
                    f"{last_id}): not written by Chairside (forged?)")
            elif head_hash != prev_hash:
                bad(prev_id or None, f"row {prev_id}'s hash does not match the chain head "
                    f"{str(head_hash)[:16]}")
            if n != rows:
                bad(None, f"the table has {rows} actions, the chain head records {n}")

    present = conn.triggers()
    for name, table in TRIGGERS.items():
        if name not in present:
            bad(None, f"trigger {name} (append-only {table}) is missing (dropped?)")
    return AuditReport(not problems, rows, min(first_bad) if first_bad else None, problems,
                       prev_hash or GENESIS)
