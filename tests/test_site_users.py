"""Issue 15, point 5 (accounts): in PostgreSQL one account serves every bay of the site, with
a role per bay (``none``: no access there), sealed in the site schema's ledger that ``chairside
audit verify`` checks from every bay. Two bays of one real database, their real dashboards."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest
from site_support import PgHarness, login, store_section

from dashboard.app import create_app
from dashboard.auth import AUTH_KEY, CLOCK_KEY
from dashboard.live import LiveBay
from monitor.bay_store import bay_database
from monitor.logins import SessionStore
from monitor.store import StoreError
from monitor.users import UserError, UserStore
from station.cli import main

PASSWORD = "ann-secret-1"


class Site:
    """Bays ``ba`` and ``bb`` of one database, each with its core and dashboard, one key."""

    def __init__(self, tmp_path: Path, url: str) -> None:
        self.url, self.key, self.now = url, tmp_path / "site.key", [1_000_000.0]
        self.bays = {b: PgHarness(tmp_path / b, url, b, self.key, auth={"enabled": True})
                     for b in ("ba", "bb")}
        self.servers = {}
        for b, h in self.bays.items():
            server = create_app(LiveBay(h.monitor, max_age=0)).server
            server.config[CLOCK_KEY] = lambda: self.now[0]
            self.servers[b] = server

    def users(self, bay: str) -> UserStore:
        h = self.bays[bay]
        return UserStore(bay_database(h.config.store, bay), self.key)

    def login(self, bay: str, username: str = "ann", password: str = PASSWORD) -> tuple[Any, Any]:
        return login(self.servers[bay], username, password)

    def sql(self, query: str, params: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
        """As the database's owner, outside Chairside."""
        with psycopg.connect(self.url, autocommit=True) as conn:
            cur = conn.execute(query, params or None)  # type: ignore[arg-type]
            return cur.fetchall() if cur.description else []

    def config_file(self, bay: str) -> Path:
        path = self.bays[bay].tmp_path / "bay.toml"
        store = "".join(f'{k} = "{v}"\n' for k, v in store_section(self.url, self.key, path.parent).items())
        path.write_text(f'[bay]\nid = "{bay}"\n[store]\n{store}[[chairs]]\nid = "c1"\nlabel = "Chair 1"\n')
        return path


@pytest.fixture
def site(tmp_path: Path, pg_url: str) -> Iterator[Site]:
    s = Site(tmp_path, pg_url)
    yield s
    for server in s.servers.values():
        server.config[AUTH_KEY].sessions.close()  # the connections kept for the session checks
    for h in s.bays.values():
        h.monitor.close()


def test_one_account_logs_in_on_every_bay_with_its_role_there(site):
    users_a = site.users("ba")
    users_a.add("ann", "nurse", PASSWORD)  # once, for the whole site
    users_a.set_bay_role("ann", "ba", "charge")
    a, answer_a = site.login("ba")
    b, answer_b = site.login("bb")
    assert answer_a.get_json() == {"user": "ann", "role": "charge"}
    assert answer_b.get_json() == {"user": "ann", "role": "nurse"}
    assert a.get("/api/v1/users").status_code == 200  # a charge nurse manages accounts on ba
    assert b.get("/api/v1/users").status_code == 403  # a nurse on bb may not
    users_b = site.users("bb")
    assert (users_a.get("ann").role, users_a.get("ann").site_role) == ("charge", "nurse")
    assert (users_b.get("ann").role, users_b.get("ann").site_role) == ("nurse", "nurse")
    assert users_b.get("ann", "ba").role == "charge"
    assert [(u.username, u.role) for u in users_b.list()] == [("ann", "nurse")]


def test_a_login_session_gets_the_role_of_its_bay(site):
    users = site.users("ba")
    users.add("ann", "nurse", PASSWORD)
    users.set_bay_role("ann", "ba", "charge")
    stores = {b: SessionStore(bay_database(h.config.store, b)) for b, h in site.bays.items()}
    tokens = {b: s.create("ann", 100.0, 3600.0) for b, s in stores.items()}
    assert stores["ba"].verify(tokens["ba"], "ann", 101.0, 600).role == "charge"
    assert stores["bb"].verify(tokens["bb"], "ann", 101.0, 600).role == "nurse"
    # a role of none written behind Chairside's back (no session ended): the check refuses anyway
    site.sql("INSERT INTO chairside_site.bay_roles (username, bay, role) VALUES ('ann', 'bb', 'none')")
    assert stores["bb"].verify(tokens["bb"], "ann", 102.0, 600).status == "none"
    assert stores["ba"].verify(tokens["ba"], "ann", 102.0, 600).status == "ok"
    for s in stores.values():
        s.close()


def test_no_access_to_a_bay_refuses_its_login_there_and_ends_its_sessions_there(site):
    users_a = site.users("ba")
    users_a.add("ann", "nurse", PASSWORD)
    a, _ = site.login("ba")
    b, _ = site.login("bb")
    assert b.get("/api/v1/chairs").status_code == 200
    assert users_a.set_bay_role("ann", "bb", "none").role == "none"  # from the other bay
    assert b.get("/api/v1/chairs").status_code == 401  # the open session on bb is over
    assert a.get("/api/v1/chairs").status_code == 200  # the one on ba is not
    assert site.login("bb")[1].status_code == 401
    assert site.users("bb").authenticate("ann", PASSWORD) is None
    assert site.sql("SELECT end_reason FROM bay_bb.auth_sessions") == [("bay_access_removed",)]
    assert site.sql("SELECT end_reason FROM bay_ba.auth_sessions") == [(None,)]
    users_a.set_bay_role("ann", "bb", None)  # the site default again
    assert site.login("bb")[1].get_json() == {"user": "ann", "role": "nurse"}


def test_bay_roles_are_checked(site):
    users = site.users("ba")
    users.add("ann", "nurse", PASSWORD)
    with pytest.raises(UserError, match=r"no bay 'bz' in this site \(bays: ba, bb\)"):
        users.set_bay_role("ann", "bz", "charge")
    with pytest.raises(UserError, match="role must be one of"):
        users.set_bay_role("ann", "bb", "boss")
    with pytest.raises(UserError, match="no user 'bob'"):
        users.set_bay_role("bob", "bb", "charge")


def test_audit_verify_checks_the_site_accounts_from_every_bay(site, capsys):
    site.users("ba").add("ann", "nurse", PASSWORD)
    config_a, config_b = site.config_file("ba"), site.config_file("bb")
    assert main(["user", "role", "ann", "--bay", "bb", "none", "--config", str(config_a)]) == 0
    assert "role set: ann on bay bb: nurse -> none (site default nurse)" in capsys.readouterr().out
    assert main(["user", "role", "ann", "charge", "--config", str(config_b)]) == 0
    assert "role set: ann: nurse -> charge" in capsys.readouterr().out
    assert main(["user", "list", "--config", str(config_b)]) == 0
    assert capsys.readouterr().out == "ann\tnone\tenabled\tsite default charge\n"
    site.bays["ba"].flush()
    (action,) = [x for x in site.bays["ba"].monitor.store.operator_actions() if x.action.startswith("user_")]
    assert (action.action, action.detail) == ("user_bay_role_set", {
        "username": "ann", "old_role": "nurse", "role": "none", "bay": "bb"})
    for config in (config_a, config_b):
        assert main(["audit", "verify", "--config", str(config)]) == 0
        out = capsys.readouterr().out
        assert "site accounts OK" in out and "(users 1, bay_roles 1)" in out, out
    site.sql("UPDATE chairside_site.bay_roles SET role = 'admin'")  # behind Chairside's back
    for config in (config_a, config_b):
        assert main(["audit", "verify", "--config", str(config)]) == 1
        out = capsys.readouterr().out
        assert "site: bay_roles: row 'bb/ann' (sealed by ledger entry 2) changed" in out, out
        assert "site accounts NOT OK: 1 problems" in out


def test_every_bay_of_a_site_seals_its_accounts_with_one_key(site, tmp_path):
    site.users("ba").add("ann", "nurse", PASSWORD)
    other = PgHarness(tmp_path / "bc", site.url, "bc", tmp_path / "other.key")
    try:
        with pytest.raises(StoreError, match="sealed with another audit key"):
            UserStore(bay_database(other.config.store, "bc"), other.key)
    finally:
        other.monitor.close()


def test_a_sqlite_bay_has_no_per_bay_roles(tmp_path, capsys):
    users = UserStore(tmp_path / "bay.db")
    users.add("ann", "nurse", PASSWORD)
    with pytest.raises(UserError, match="per-bay roles need the PostgreSQL store"):
        users.set_bay_role("ann", "bay1", "charge")
    assert main(["user", "role", "ann", "charge", "--db", str(tmp_path / "bay.db")]) == 0
    assert "role set: ann: nurse -> charge" in capsys.readouterr().out
    assert (users.get("ann").role, users.get("ann").site_role) == ("charge", "charge")
    assert main(["audit", "verify", "--db", str(tmp_path / "bay.db")]) == 0
    assert "site accounts" not in capsys.readouterr().out
