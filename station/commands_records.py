"""The ``chairside`` commands on a bay's records and accounts: ``export``, ``audit verify``,
``user`` and ``decode`` (the parser that calls them: :mod:`station.cli`).

Only the standard library at import: the rest of the project is imported inside the commands.
"""

from __future__ import annotations

import argparse
import getpass
import logging
import os
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING

from station.errors import CliError

if TYPE_CHECKING:
    from monitor.users import User, UserStore

__all__ = ["cmd_audit_verify", "cmd_decode", "cmd_export", "cmd_user"]

log = logging.getLogger("chairside")


def cmd_decode(args: argparse.Namespace) -> int:
    from devices.decode import main as decode

    return decode(args)


def cmd_export(args: argparse.Namespace) -> int:
    from monitor.bay_store import open_bay_store, store_where
    from monitor.config import load_config
    from monitor.exports import FORMATS, export_session

    config = load_config(args.config)
    spec = FORMATS[args.format]
    to_stdout = args.out == "-"
    out = Path(args.out)
    if to_stdout:
        if spec.binary and sys.stdout.isatty():
            raise CliError(f"{args.format} is a binary format: give --out FILE, or redirect the output")
    elif out.is_dir():
        raise CliError(f"{out} is a folder; give a file name")
    elif out.exists() and not args.force:
        raise CliError(f"{out} exists; use --force to overwrite it")
    elif not out.parent.is_dir():
        raise CliError(f"{out.parent}: no such folder")
    if config.store.url is None and not config.store.path.exists():
        raise CliError(f"{config.store.path}: no such database")
    with open_bay_store(config.store, config.bay.id) as store:
        session = store.get_session(args.session)
        if session is None:
            raise CliError(f"no session with id {args.session!r} in {store_where(config.store)}")
        now = time.time()
        if to_stdout:
            sys.stdout.flush()
            result = export_session(store, session, args.format, sys.stdout.buffer, now, config=config)
        else:
            # written beside the target and renamed into place: a failed export leaves no
            # half-written file, and an existing one is replaced only once the new one is whole
            tmp = out.with_name(f".{out.name}.{os.getpid()}.part")
            try:
                # patient data: 0600 from its first byte, whatever the umask (os.replace keeps it)
                with os.fdopen(os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600), "wb") as fh:
                    os.fchmod(fh.fileno(), 0o600)
                    result = export_session(store, session, args.format, fh, now, config=config)
                    os.fsync(fh.fileno())
                os.replace(tmp, out)
            finally:
                tmp.unlink(missing_ok=True)
    log.info("exported session %s (%s%s, %d readings) as %s to %s", session.id, session.chair,
             ", partial: not ended" if result.partial else "", result.readings, args.format, args.out)
    return 0


def cmd_audit_verify(args: argparse.Namespace) -> int:
    from monitor.audit import AuditError, verify_chain, verify_records, verify_site_records
    from monitor.bay_store import bay_database
    from monitor.config import load_config

    if args.db:
        where, key = Path(args.db), args.key
    else:
        config = load_config(args.config)
        key = args.key or config.store.key_file
        where = config.store.path if config.store.url is None else bay_database(config.store, config.bay.id)
    try:
        report = verify_chain(where)
        records = verify_records(where, key)
        site = verify_site_records(where, key)  # PostgreSQL: the site-wide accounts
    except AuditError as exc:
        raise CliError(str(exc)) from None
    if report.ok:
        print(f"audit trail OK: {report.rows} actions, chain head {report.head[:16]}")
    else:
        for problem in report.problems:
            print(problem)
        print(f"audit trail NOT OK: {len(report.problems)} problems in {report.rows} actions"
              + (f", first at row {report.first_bad_id}" if report.first_bad_id is not None else ""))
    counts = ", ".join(f"{table} {n}" for table, n in records.sealed.items())
    if records.pruned:
        counts += "; pruned by retention: " + ", ".join(f"{t} {n}" for t, n in records.pruned.items())
    if records.ok:
        print(f"records OK: {records.entries} ledger entries ({counts}), ledger head {records.head[:16]}")
    else:
        for problem in records.problems:
            print(problem)
        print(f"records NOT OK: {len(records.problems)} problems in {records.entries} ledger entries")
    if site is not None:
        counts = ", ".join(f"{table} {n}" for table, n in site.sealed.items())
        if site.ok:
            print(f"site accounts OK: {site.entries} ledger entries ({counts}), ledger head {site.head[:16]}")
        else:
            for problem in site.problems:
                print(f"site: {problem}")
            print(f"site accounts NOT OK: {len(site.problems)} problems in {site.entries} ledger entries")
    return 0 if report.ok and records.ok and (site is None or site.ok) else 1


def _read_password(args: argparse.Namespace, confirm: bool = True) -> str:
    """From standard input (``--password-stdin``: its first line) or a prompt; never argv."""
    if args.password_stdin:
        password = sys.stdin.readline().rstrip("\r\n")
    else:
        password = getpass.getpass("Password: ")
        if confirm and getpass.getpass("Password again: ") != password:
            raise CliError("the passwords differ")
    if not password:
        raise CliError("no password given")
    return password


def _cli_actor() -> str:
    try:
        who = getpass.getuser()
    except (KeyError, OSError):
        who = str(os.getuid())
    return f"cli:{who}"


def _set_role(users: UserStore, args: argparse.Namespace) -> tuple[str, User, str]:
    """``user role``: the account's role (PostgreSQL: its site default), or with ``--bay`` its
    role on that bay (``none``: no access; ``default``: the site default again). Returns the
    operator action's name, the account after, and the role it had before."""
    role = args.role
    if not args.bay:
        if role in ("none", "default"):
            raise CliError(f"{role!r} is a role on one bay: give --bay BAY")
        before = users.require(args.username).site_role
        if before == role:
            raise CliError(f"{args.username} already has the role {role}")
        return "user_role_set", users.set_role(args.username, role), before
    before = users.require(args.username, args.bay).role
    u = users.set_bay_role(args.username, args.bay, None if role == "default" else role)
    return "user_bay_role_set", u, before


def cmd_user(args: argparse.Namespace) -> int:
    from monitor.bay_store import bay_database
    from monitor.config import load_config
    from monitor.records import OperatorAction
    from monitor.store import open_store
    from monitor.store.db import SqliteDatabase
    from monitor.users import UserError, UserStore

    config = None if args.db else load_config(args.config)
    path = Path(args.db) if config is None else config.store.path
    key = None if config is None else config.store.key_file
    database = SqliteDatabase(path) if config is None else bay_database(config.store, config.bay.id)
    if (config is None or config.store.url is None) and not path.parent.is_dir():
        raise CliError(f"{path.parent}: no such folder")
    users = UserStore(database, key)
    action = args.user_command
    try:
        if action == "list":  # the role on this bay (and, when it differs, the site default)
            for u in users.list():
                print(f"{u.username}\t{u.role}\t{'disabled' if u.disabled else 'enabled'}"
                      + (f"\tsite default {u.site_role}" if u.site_role != u.role else ""))
            return 0
        if action == "role":
            name, u, before = _set_role(users, args)
            detail = {"username": u.username, "old_role": before, "role": u.role if args.bay else u.site_role}
            if args.bay:
                detail["bay"] = args.bay
        elif action == "add":
            users._check(args.username, args.role)  # before asking for the password
            if users.get(args.username) is not None:
                raise CliError(f"user {args.username!r} exists")
            u = users.add(args.username, args.role, _read_password(args))
            detail = {"username": u.username, "role": u.role}
            name = "user_added"
        elif action == "passwd":
            users.require(args.username)
            u = users.set_password(args.username, _read_password(args))  # its sessions end
            detail, name = {"username": u.username}, "user_password_set"
        elif action == "end-sessions":
            u = users.require(args.username)
            detail, name = {"username": u.username, "sessions": users.end_sessions(u.username)}, \
                "user_sessions_ended"
        elif action == "unlock":
            u = users.require(args.username)
            detail, name = {"username": u.username, "failures": users.unlock(u.username)}, "user_unlocked"
        else:
            u = users.set_disabled(args.username, action == "disable")
            detail, name = {"username": u.username}, f"user_{action}d"
    except UserError as exc:
        raise CliError(str(exc)) from None
    with open_store(database, key) as store:  # the change joins the audit chain
        store.add_records([OperatorAction(time.time(), _cli_actor(), name, detail=detail)])
    if action == "role":
        on = f" on bay {args.bay}" if args.bay else ""
        print(f"role set: {u.username}{on}: {detail['old_role']} -> {detail['role']}"
              + (f" (site default {u.site_role})" if args.bay else ""))
        return 0
    print(f"{name.removeprefix('user_').replace('_', ' ')}: {u.username} ({u.role}"
          f"{', disabled' if u.disabled else ''})")
    return 0
