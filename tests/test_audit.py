"""The audit trail: operator actions written by a real core are hash-chained, and an edited,
deleted or forged row in a copy of that real database file is found by verify and the CLI."""

from __future__ import annotations

import logging
import shutil
import sqlite3
from contextlib import closing
from pathlib import Path

import pytest
from conftest import Harness

import monitor.store.schema as store_module
from monitor.audit import GENESIS, AuditError, action_hash, verify_chain
from monitor.records import OperatorAction, SessionEventKind
from monitor.store import SqliteStore
from station.cli import main

K = SessionEventKind


def bay_activity(h: Harness) -> None:
    """Acknowledge, pause, and a session's start, steps, limit change and end."""
    m = h.monitor
    h.feed("spo2", 86, seconds=16)
    (alarm,) = m.open_alarms()
    m.acknowledge(alarm.id, "nurse.ann")
    m.pause_audio("c1", "nurse.bob", duration_s=60)
    s = m.start_session("c2", "MRN 0042", "nurse.ann", protocol="magnesium")
    m.session_step(s.id, K.INFUSION_STARTED, "nurse.ann", "100 mL/h")
    m.session_step(s.id, K.NOTE, "nurse.ann", "patient reports flushing, «ok»")
    m.set_limits(s.id, [{"parameter": "hr", "high": 130, "priority": "high"}], "nurse.ann")
    m.end_session(s.id, "nurse.ann")


@pytest.fixture(scope="module")
def real_db(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, int]:
    """A database written through a real core; tests tamper with copies of it."""
    h = Harness(tmp_path_factory.mktemp("bay"))
    bay_activity(h)
    h.flush()
    n = len(h.monitor.store.operator_actions())
    report = verify_chain(h.config.store.path)  # read-only, while the bay is running
    assert report.ok and report.rows == n
    h.monitor.close()
    return h.config.store.path, n


@pytest.fixture
def db(real_db: tuple[Path, int], tmp_path: Path) -> Path:
    copy = tmp_path / "copy.db"
    shutil.copy(real_db[0], copy)
    shutil.copy(f"{real_db[0]}.audit-key", f"{copy}.audit-key")  # the bay's ledger key
    return copy


def sql(path: Path, *statements: str, params: tuple = ()) -> list[tuple]:
    with closing(sqlite3.connect(path)) as conn:
        rows = [conn.execute(s, params).fetchall() for s in statements]
        conn.commit()
    return rows[-1]


def attack(path: Path, *statements: str) -> None:
    """What someone with the file would do: drop the append-only triggers, then edit."""
    sql(path, "DROP TRIGGER operator_actions_no_update", "DROP TRIGGER operator_actions_no_delete",
        *statements)


def test_actions_of_a_real_core_are_chained_and_verify(real_db, db, caplog) -> None:
    n = real_db[1]
    assert n >= 7
    rows = sql(db, "SELECT id, action, prev_hash, hash FROM operator_actions ORDER BY id")
    assert [r[0] for r in rows] == list(range(1, n + 1))
    assert {"acknowledge", "pause_audio", "start_session", "limits_changed", "session_ended"} <= {
        r[1] for r in rows}
    assert rows[0][2] == GENESIS and all(rows[i][2] == rows[i - 1][3] for i in range(1, n))
    assert sql(db, "SELECT actions, last_id, hash FROM audit_head") == [(n, n, rows[-1][3])]
    report = verify_chain(db)
    assert (report.ok, report.rows, report.first_bad_id, report.problems) == (True, n, None, [])
    assert report.head == rows[-1][3]

    with caplog.at_level(logging.INFO, logger="monitor.store"), SqliteStore(db) as store:
        store.add_records([OperatorAction(1.8e9, "admin", "login", detail={"from": "10.0.0.7"})])
        assert store.flush(10)
    assert f"audit chain head: {n + 1} actions, row {n + 1}, hash " in caplog.text
    assert verify_chain(db).ok and verify_chain(db).rows == n + 1


def test_triggers_refuse_update_and_delete(db) -> None:
    for statement in ("UPDATE operator_actions SET user = 'someone' WHERE id = 2",
                      "DELETE FROM operator_actions WHERE id = 2", "DELETE FROM audit_head"):
        with pytest.raises(sqlite3.DatabaseError, match=r"append-only|cannot be deleted"):
            sql(db, statement)
    assert verify_chain(db).ok


@pytest.mark.parametrize("edit", ["detail = '{\"code\":\"none\"}'", "user = 'nurse.eve'",
                                  "time = time - 3600"])
def test_an_edited_row_is_found(db, edit) -> None:
    attack(db, f"UPDATE operator_actions SET {edit} WHERE id = 3")
    report = verify_chain(db)
    assert not report.ok and report.first_bad_id == 3
    assert "row 3 was edited (hash mismatch)" in report.problems
    assert "trigger operator_actions_no_update (append-only operator_actions) is missing (dropped?)" \
        in report.problems


def test_an_edited_and_rehashed_row_breaks_the_next_link(db) -> None:
    row = sql(db, "SELECT id, time, user, action, chair, target, detail, prev_hash "
              "FROM operator_actions WHERE id = 3")[0]
    forged = action_hash(row[7], (*row[:2], "nurse.eve", *row[3:7]))
    attack(db, f"UPDATE operator_actions SET user = 'nurse.eve', hash = '{forged}' WHERE id = 3")
    report = verify_chain(db)
    assert report.first_bad_id == 4
    assert any(p.startswith("row 4's prev_hash does not match row 3's hash") for p in report.problems)


def test_a_row_deleted_in_the_middle_is_found(db, real_db) -> None:
    n = real_db[1]
    attack(db, "DELETE FROM operator_actions WHERE id = 4")
    report = verify_chain(db)
    assert not report.ok and report.rows == n - 1 and report.first_bad_id == 4
    assert report.problems[:2] == ["row 4 is missing (id gap)",
                                   "row 5's prev_hash does not match row 3's hash"]
    assert f"the table has {n - 1} actions, the chain head records {n}" in report.problems


def test_the_last_rows_deleted_are_found(db, real_db) -> None:
    n = real_db[1]
    attack(db, f"DELETE FROM operator_actions WHERE id = {n}")
    report = verify_chain(db)
    assert report.first_bad_id == n
    assert report.problems[0] == (f"row {n} is missing from the end: the chain head records {n} "
                                  f"actions ending at row {n}, the table ends at row {n - 1}")
    attack_more = f"DELETE FROM operator_actions WHERE id >= {n - 2}"
    sql(db, attack_more)
    assert verify_chain(db).problems[0].startswith(f"rows {n - 2}-{n} are missing from the end")


@pytest.mark.parametrize("well_hashed", [True, False])
def test_a_forged_row_is_found_and_does_not_stop_the_writer(db, real_db, well_hashed) -> None:
    n = real_db[1]
    (last_hash,) = sql(db, "SELECT hash FROM audit_head")[0]
    row = (n + 1, 1.8e9, "nurse.ann", "acknowledge", "c1", "1", '{"code":"SPO2_LOW"}')
    digest = action_hash(last_hash, row) if well_hashed else "f" * 64
    sql(db, "INSERT INTO operator_actions (id, time, user, action, chair, target, detail, prev_hash,"
        " hash) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)", params=(*row, last_hash, digest))
    report = verify_chain(db)
    assert not report.ok and report.first_bad_id == n + 1
    assert (f"row {n + 1} is after the chain head (row {n}): not written by Chairside (forged?)"
            in report.problems)
    assert (f"row {n + 1} was edited (hash mismatch)" in report.problems) is not well_hashed

    with SqliteStore(db, commit_interval=0.01) as store:  # the bay keeps recording
        store.add_records([OperatorAction(1.8e9 + 1, "nurse.ann", "pause_audio", "c1")])
        assert store.flush(10)
    report = verify_chain(db)
    assert report.rows == n + 2 and report.first_bad_id == n + 1
    assert f"row {n + 1} is inserted into the chain (forged?): row {n + 2} chains from row {n}" \
        in report.problems
    assert f"row {n + 2}'s prev_hash does not match row {n + 1}'s hash" in " ".join(report.problems)


def test_readings_do_no_audit_work(tmp_path, caplog) -> None:
    """A batch of readings alone never reads the audit chain's head. Seen from outside: with
    the head's table gone, readings are written and nothing notices; the first operator action
    reads the head, finds it missing, says so and rebuilds it (the control)."""
    h = Harness(tmp_path)
    path = h.config.store.path
    try:
        sql(path, "DROP TABLE audit_head")
        with caplog.at_level(logging.ERROR, logger="monitor.store"):
            h.feed("hr", 72, seconds=3)
            h.flush()
            assert h.monitor.store.count_readings() == 3
            assert "audit_head" not in caplog.text
            assert sql(path, "SELECT name FROM sqlite_master WHERE name = 'audit_head'") == []

            h.monitor.store.add_records([OperatorAction(1.8e9, "nurse.ann", "pause_audio", "c1")])
            h.flush()
        assert "audit_head is missing; continuing the chain from the last row" in caplog.text
        assert sql(path, "SELECT actions, last_id FROM audit_head") == [(1, 1)]
    finally:
        h.monitor.close()
    report = verify_chain(path)  # the chain is whole; the dropped table's trigger is reported
    assert report.rows == 1 and report.first_bad_id is None
    assert report.problems == ["trigger audit_head_no_delete (append-only audit_head) is missing (dropped?)"]


def test_migration_hashes_the_rows_of_a_version_1_database(tmp_path, monkeypatch) -> None:
    monkeypatch.setattr(store_module, "MIGRATIONS", store_module.MIGRATIONS[:1])
    h = Harness(tmp_path)
    bay_activity(h)
    h.flush()
    h.monitor.close()
    path = h.config.store.path
    assert sql(path, "PRAGMA user_version") == [(1,)]
    n = sql(path, "SELECT count(*) FROM operator_actions")[0][0]
    assert n >= 7
    with pytest.raises(AuditError, match="schema version 1, without the audit chain"):
        verify_chain(path)
    assert main(["audit", "verify", "--db", str(path)]) == 2

    monkeypatch.undo()
    with SqliteStore(path, commit_interval=0.01) as store:
        report = verify_chain(path)
        assert (report.ok, report.rows) == (True, n)
        store.add_records([OperatorAction(1.8e9, "admin", "user_added", detail={"user": "nurse.cy"})])
        assert store.flush(10)
    assert sql(path, "PRAGMA user_version") == [(len(store_module.MIGRATIONS),)]
    report = verify_chain(path)
    assert (report.ok, report.rows) == (True, n + 1)
    with pytest.raises(sqlite3.DatabaseError, match="append-only"):
        sql(path, "DELETE FROM operator_actions WHERE id = 1")


def test_cli_exit_codes(db, real_db, tmp_path, capsys) -> None:
    n = real_db[1]
    assert main(["audit", "verify", "--db", str(db)]) == 0
    (head,) = sql(db, "SELECT hash FROM audit_head")[0]
    assert capsys.readouterr().out.startswith(f"audit trail OK: {n} actions, chain head {head[:16]}\n"
                                              "records OK: ")

    config = tmp_path / "bay.toml"
    config.write_text(f'[store]\npath = "{db}"\n[[chairs]]\nid = "c1"\n')
    assert main(["audit", "verify", "--config", str(config)]) == 0
    capsys.readouterr()

    attack(db, "UPDATE operator_actions SET detail = '{}' WHERE id = 2")
    assert main(["audit", "verify", "--config", str(config)]) == 1
    out = capsys.readouterr().out
    assert "row 2 was edited (hash mismatch)\n" in out
    assert f"audit trail NOT OK: 3 problems in {n} actions, first at row 2\n" in out
    assert "operator_actions: one or more of rows" in out or "operator_actions: row 2 changed" in out

    assert main(["audit", "verify", "--db", str(tmp_path / "nope.db")]) == 2
    assert "nope.db: no such database" in capsys.readouterr().err
    (tmp_path / "notes.txt").write_text("not a database\n" * 100)
    assert main(["audit", "verify", "--db", str(tmp_path / "notes.txt")]) == 2
    assert "notes.txt" in capsys.readouterr().err
    with pytest.raises(SystemExit) as info:
        main(["audit", "verify"])
    assert info.value.code == 2
