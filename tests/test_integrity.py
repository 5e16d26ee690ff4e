"""Issue 12, points 4 and 5: the keyed integrity ledger over every clinical record, and the
store's files private at rest. Each test performs the attack on a copy of a real database
written by a real core (real SQLite file, real CLI)."""

from __future__ import annotations

import os
import shutil
import sqlite3
import stat
from contextlib import closing
from pathlib import Path

import pytest
from conftest import Harness
from test_audit import bay_activity

import monitor.store.schema as store_module
from monitor.audit import AuditError, verify_records
from monitor.records import OperatorAction
from monitor.store import SqliteStore
from monitor.users import UserStore
from station.cli import main


@pytest.fixture(scope="module")
def real_db(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A bay's database: readings, alarms (one acknowledged), a session with a limit change,
    operator actions, and two accounts."""
    h = Harness(tmp_path_factory.mktemp("bay"))
    bay_activity(h)
    h.feed("hr", 72, seconds=5, chair="c2")
    h.flush()
    h.monitor.close()
    users = UserStore(h.config.store.path)
    users.add("nurse.ann", "nurse", "correct horse battery")
    users.add("admin.al", "admin", "staple battery horse correct")
    report = verify_records(h.config.store.path)
    assert report.ok, report.problems
    return h.config.store.path


@pytest.fixture
def db(real_db: Path, tmp_path: Path) -> Path:
    copy = tmp_path / "copy.db"
    shutil.copy(real_db, copy)
    shutil.copy(f"{real_db}.audit-key", f"{copy}.audit-key")
    return copy


def sql(path: Path, *statements: str, params: tuple = ()) -> list[tuple]:
    with closing(sqlite3.connect(path)) as conn:
        rows = [conn.execute(s, params).fetchall() for s in statements]
        conn.commit()
    return rows[-1]


def verify(db: Path, capsys: pytest.CaptureFixture[str]) -> tuple[int, str]:
    code = main(["audit", "verify", "--db", str(db)])
    return code, capsys.readouterr().out


def test_an_untouched_database_verifies_and_every_table_is_sealed(db, capsys) -> None:
    code, out = verify(db, capsys)
    assert code == 0, out
    report = verify_records(db)
    assert report.sealed["readings"] == sql(db, "SELECT count(*) FROM readings")[0][0] > 20
    for table in ("alarm_events", "session_events", "operator_actions", "alarms", "sessions"):
        assert report.sealed[table] >= 1, table
    assert report.sealed["users"] == 2
    assert "records OK: " in out


def test_deleting_the_last_actions_and_rewriting_the_chain_head_with_one_update(db, capsys) -> None:
    n = sql(db, "SELECT count(*) FROM operator_actions")[0][0]
    (kept,) = sql(db, f"SELECT hash FROM operator_actions WHERE id = {n - 3}")[0]
    sql(db, "DROP TRIGGER operator_actions_no_delete",
        f"DELETE FROM operator_actions WHERE id > {n - 3}",
        f"UPDATE audit_head SET actions = {n - 3}, last_id = {n - 3}, hash = '{kept}'")
    code, out = verify(db, capsys)
    assert code == 1
    assert f"operator_actions: rows {n - 2}-{n} deleted (sealed by ledger entry" in out
    assert "records NOT OK" in out


def test_the_ledger_head_cannot_be_rewritten_either(db, capsys) -> None:
    last = sql(db, "SELECT max(id) FROM integrity_ledger")[0][0]
    (mac,) = sql(db, f"SELECT mac FROM integrity_ledger WHERE id = {last - 2}")[0]
    sql(db, f"DELETE FROM integrity_ledger WHERE id > {last - 2}",
        f"UPDATE integrity_head SET entries = entries - 2, last_id = {last - 2}, mac = '{mac}'")
    code, out = verify(db, capsys)
    assert code == 1 and "ledger: the head was rewritten (MAC mismatch)" in out
    sql(db, "DELETE FROM integrity_head")
    assert "ledger: the integrity_head row is missing (deleted?)" in verify(db, capsys)[1]


def test_a_forged_ledger_entry_without_the_key_is_found(db, capsys) -> None:
    # rehash a reading batch after editing it, and write the new digest into its entry
    from monitor.integrity import RANGE_TABLES, rows_digest

    entry, lo, hi = sql(db, "SELECT id, first_id, last_id FROM integrity_ledger "
                        "WHERE tbl = 'readings' ORDER BY id DESC LIMIT 1")[0]
    sql(db, f"UPDATE readings SET value = 99 WHERE id = {hi}")
    rows = sql(db, f"SELECT {', '.join(RANGE_TABLES['readings'])} FROM readings "
               f"WHERE id BETWEEN {lo} AND {hi} ORDER BY id")
    sql(db, "UPDATE integrity_ledger SET digest = ? WHERE id = ?", params=(rows_digest(rows), entry))
    code, out = verify(db, capsys)
    assert code == 1 and f"ledger: entry {entry} was edited or forged (MAC mismatch)" in out


def test_edited_deleted_and_inserted_readings(db, capsys) -> None:
    first, last = sql(db, "SELECT min(id), max(id) FROM readings")[0]
    sql(db, f"UPDATE readings SET value = 97 WHERE id = {first}")
    code, out = verify(db, capsys)
    assert code == 1 and f"readings: one or more of rows {first}-" in out and "changed (sealed by" in out
    sql(db, f"DELETE FROM readings WHERE id = {last}")
    code, out = verify(db, capsys)
    assert code == 1 and f"readings: row {last} deleted (sealed by ledger entry" in out
    sql(db, "INSERT INTO readings (id, chair, parameter, value, device_time, receive_time, device, "
        f"seq, flags) VALUES ({last + 1000}, 'c3', 'spo2', 77, 1.8e9, 1.8e9, 'evil', 1, 0)")
    code, out = verify(db, capsys)
    assert f"readings: row {last + 1000} inserted (not sealed: not written by Chairside)" in out


def test_a_rewritten_acknowledged_by(db, capsys) -> None:
    (alarm,) = sql(db, "SELECT id FROM alarms WHERE acknowledged_by = 'nurse.ann'")[0]
    sql(db, f"UPDATE alarms SET acknowledged_by = 'nurse.bob' WHERE id = {alarm}")
    code, out = verify(db, capsys)
    assert code == 1 and f"alarms: row '{alarm}' (sealed by ledger entry" in out and "changed" in out


def test_a_changed_patient_label(db, capsys) -> None:
    (session,) = sql(db, "SELECT id FROM sessions")[0]
    sql(db, "UPDATE sessions SET patient = 'MRN 0099'")
    code, out = verify(db, capsys)
    assert code == 1 and f"sessions: row '{session}' (sealed by ledger entry" in out


def test_deleted_limits_changed_events(db, capsys) -> None:
    (event,) = sql(db, "SELECT id FROM session_events WHERE kind = 'limits_changed'")[0]
    sql(db, "DELETE FROM session_events WHERE kind = 'limits_changed'")
    code, out = verify(db, capsys)
    assert code == 1 and f"session_events: row {event} deleted (sealed by ledger entry" in out


def test_deleted_alarm_history(db, capsys) -> None:
    ids = [r[0] for r in sql(db, "SELECT id FROM alarm_events ORDER BY id")]
    assert ids
    sql(db, "DELETE FROM alarm_events", "DELETE FROM alarms")
    code, out = verify(db, capsys)
    assert code == 1 and "alarm_events: row" in out and "deleted (sealed by ledger entry" in out
    assert "alarms: row '1' deleted" in out or "alarms: rows '1'" in out


def test_nurse_made_admin_in_users(db, capsys) -> None:
    sql(db, "UPDATE users SET role = 'admin' WHERE username = 'nurse.ann'")
    code, out = verify(db, capsys)
    assert code == 1 and "users: row 'nurse.ann' (sealed by ledger entry" in out and "changed" in out
    sql(db, "INSERT INTO users VALUES ('eve', 'admin', 'x', 0, 0, 0)")
    assert "users: row 'eve' inserted (not written by Chairside)" in verify(db, capsys)[1]


def test_user_changes_through_chairside_stay_sealed_and_the_bay_keeps_writing(db, capsys) -> None:
    users = UserStore(db)
    users.set_role("nurse.ann", "charge")
    users.set_disabled("admin.al")
    users.set_password("nurse.ann", "another long passphrase")
    sql(db, "UPDATE readings SET value = 10 WHERE id = 1")  # tampering does not stop the writer
    with SqliteStore(db, commit_interval=0.01) as store:
        store.add_records([OperatorAction(1.8e9, "admin.al", "login")])
        assert store.flush(10)
    report = verify_records(db)
    assert [p for p in report.problems if not p.startswith("readings: ")] == []
    assert report.sealed["users"] == 2 and len(report.problems) == 1


def test_verify_needs_the_key_and_a_wrong_key_finds_everything_forged(db, tmp_path, capsys) -> None:
    os.unlink(f"{db}.audit-key")
    assert main(["audit", "verify", "--db", str(db)]) == 2
    assert "no audit key" in capsys.readouterr().err
    assert not Path(f"{db}.audit-key").exists()  # verify never makes a key
    other = tmp_path / "other.key"
    other.write_text("ab" * 32 + "\n")
    assert main(["audit", "verify", "--db", str(db), "--key", str(other)]) == 1
    assert "ledger: entry 1 was edited or forged (MAC mismatch)" in capsys.readouterr().out


def test_a_schema_5_database_is_sealed_at_migration(tmp_path, monkeypatch, capsys) -> None:
    monkeypatch.setattr(store_module, "MIGRATIONS", store_module.MIGRATIONS[:5])
    h = Harness(tmp_path)
    bay_activity(h)
    h.flush()
    h.monitor.close()
    path = h.config.store.path
    assert sql(path, "PRAGMA user_version") == [(5,)]
    with pytest.raises(AuditError, match="schema version 5, without the integrity ledger"):
        verify_records(path)
    monkeypatch.undo()
    SqliteStore(path).close()
    report = verify_records(path)
    assert report.ok and report.sealed["readings"] == sql(path, "SELECT count(*) FROM readings")[0][0]
    assert report.sealed["operator_actions"] >= 7 and report.sealed["sessions"] == 1
    sql(path, "UPDATE sessions SET patient = 'someone else'")
    assert main(["audit", "verify", "--db", str(path)]) == 1


# ---- point 5: patient data at rest ---------------------------------------------------------
def mode(path: Path | str) -> int:
    return stat.S_IMODE(os.stat(path).st_mode)


def test_store_files_key_and_exports_are_created_0600(tmp_path, capsys) -> None:
    old = os.umask(0o022)  # a typical service umask: would give 0644
    try:
        h = Harness(tmp_path)
        bay_activity(h)
        h.flush()
        path = h.config.store.path
        for p in (path, f"{path}-wal", f"{path}-shm", f"{path}.audit-key"):
            assert mode(p) == 0o600, p
        (session,) = sql(path, "SELECT id FROM sessions")[0]
        h.monitor.close()
        config = tmp_path / "bay.toml"
        config.write_text(f'[store]\npath = "{path}"\n[[chairs]]\nid = "c1"\n[[chairs]]\nid = "c2"\n')
        for fmt in ("csv", "zip"):
            out = tmp_path / f"export.{fmt}"
            assert main(["export", "--config", str(config), "--session", session, "--format", fmt,
                         "--out", str(out)]) == 0
            assert mode(out) == 0o600
        out.chmod(0o644)
        assert main(["export", "--config", str(config), "--session", session, "--format", "zip",
                     "--out", str(out), "--force"]) == 0
        assert mode(out) == 0o600
    finally:
        os.umask(old)


def test_store_mode_0640_gives_the_group_read(tmp_path) -> None:
    path = tmp_path / "bay.db"
    with SqliteStore(path, file_mode=0o640) as store:
        store.add_records([OperatorAction(1.8e9, "a", "login")])
        assert store.flush(10)
        assert mode(path) == mode(f"{path}-wal") == 0o640


@pytest.mark.parametrize("what", ["file", "wal", "folder"])
def test_run_refuses_a_store_others_can_read(tmp_path, capsys, what) -> None:
    folder = tmp_path / "data"
    folder.mkdir(mode=0o700)
    path = folder / "bay.db"
    with SqliteStore(path) as store:
        store.add_records([OperatorAction(1.8e9, "a", "login")])
        assert store.flush(10)
        # the -wal exists while the store is open; check while it does
        config = tmp_path / "bay.toml"
        config.write_text(f'[store]\npath = "{path}"\n[dashboard]\nport = 1\n[[chairs]]\nid = "c1"\n')
        target = {"file": path, "wal": Path(f"{path}-wal"), "folder": folder}[what]
        target.chmod(0o755 if what == "folder" else 0o644)
        assert main(["run", "--config", str(config)]) == 2
    err = capsys.readouterr().err
    assert "readable by others" in err
    fix = f"chmod 700 {folder}" if what == "folder" else f"chmod 600 {target}"
    assert fix in err, err


def test_run_accepts_a_group_readable_store_when_configured(tmp_path) -> None:
    from monitor.config import load_config
    from monitor.integrity import check_private

    folder = tmp_path / "data"
    folder.mkdir(mode=0o750)
    path = folder / "bay.db"
    SqliteStore(path, file_mode=0o640).close()
    config = tmp_path / "bay.toml"
    config.write_text(f'[store]\npath = "{path}"\nmode = "0640"\n[[chairs]]\nid = "c1"\n')
    store = load_config(config).store
    check_private(store.path, store.file_mode)  # no error
    path.chmod(0o644)
    with pytest.raises(PermissionError, match=r"chmod 640 .*bay\.db"):
        check_private(store.path, store.file_mode)
