"""``chairside``: the command line.

    chairside run --config bay.toml        run the bay: sources, core, store, dashboard and API
    chairside demo [--chairs 8]            a simulated bay on real transports, with its dashboard
    chairside simulate --scenario NAME     simulated monitors on serial ptys, MQTT and MLLP
    chairside check-config bay.toml        validate a configuration
    chairside decode --protocol NAME FILE|-   what the bay makes of a device capture (JSON lines)
    chairside export --config bay.toml --session ID --format csv|zip|fhir|hl7|pdf --out FILE [--force]
    chairside audit verify --config bay.toml | --db PATH [--key FILE]   check the audit chain and
                                           every record against the keyed integrity ledger
    chairside user add|passwd|disable|enable|end-sessions|unlock|list --config bay.toml | --db PATH ...
                                           accounts (passwd, disable and end-sessions end its logins)

Exit status: 0 success, 2 bad input (configuration, unknown session, existing output,
no such database, an unreadable capture), 1 anything unexpected; for ``audit verify``, 1
means tampering was found.
"""

from __future__ import annotations

import argparse
import contextlib
import getpass
import json
import logging
import os
import re
import signal
import sys
import tempfile
import threading
import time
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, TextIO

from station.errors import StationError
from station.lifecycle import StopRequested, StopSignals

if TYPE_CHECKING:
    from monitor.core import ChairStatus, Monitor
    from simulators.scenario import Scenario

# Only the standard library above: the rest of the project (numpy, pydantic, dash, sqlite...)
# is imported inside the commands, after main() has installed the stop-signal handlers, so
# that a SIGTERM during those seconds of start-up is an orderly stop, not a kill.

__all__ = ["CliError", "bay_toml", "build_parser", "cmd_audit_verify", "cmd_check_config", "cmd_decode",
           "cmd_demo", "cmd_export", "cmd_run", "cmd_simulate", "cmd_user", "main", "past_offset"]

log = logging.getLogger("chairside")
BAD_INPUT = 2
LONG_RUNNING = ("run", "demo")  # stop on SIGINT/SIGTERM from their first moment, exit 0


class CliError(StationError):
    """Bad input from the user: printed without a traceback, exit status 2."""


def _setup_logging(level: str) -> None:
    logging.basicConfig(level=getattr(logging, level.upper()), stream=sys.stderr,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")


def _stop_signals(args: argparse.Namespace) -> StopSignals:
    """The stop request main() installed (a fresh one when a command is called directly)."""
    stop = getattr(args, "stop", None)
    return stop if isinstance(stop, StopSignals) else StopSignals(enabled=False)


def cmd_run(args: argparse.Namespace) -> int:
    """Start the store, the core, the sources and the dashboard, one step at a time; a stop
    request (SIGINT, SIGTERM) at any point stops what has started, in reverse, and exits 0."""
    from monitor.config import load_config
    from monitor.integrity import check_private
    from station.service import BayService

    stop = _stop_signals(args)
    config = load_config(args.config)
    try:  # patient data at rest: refuse a store that others can read (docs/security.md)
        check_private(config.store.path, config.store.file_mode)
    except PermissionError as exc:
        raise CliError(str(exc)) from None
    except FileNotFoundError:
        raise CliError(f"{config.store.path.parent}: no such folder for the store") from None
    host = args.host or config.dashboard.host
    port = config.dashboard.port if args.port is None else args.port
    log.info("starting bay %s from %s", config.bay.id, args.config)
    with contextlib.ExitStack() as started:
        stop.check()
        from dashboard.app import create_app
        from dashboard.live import LiveBay
        from dashboard.server import WebServer

        stop.check()
        service = BayService(config)  # opens (and migrates) the store
        started.callback(service.stop)
        service.start(stop.check)
        stop.check()
        app = create_app(LiveBay(service.monitor, service.sources))
        stop.check()
        web = WebServer(app.server, host, port, auth_enabled=config.auth.enabled)
        started.callback(web.stop)
        web.start()
        if config.auth.enabled:
            from monitor.users import UserStore

            if not UserStore(config.store.path, config.store.key_file).list():
                log.warning("no accounts yet: add one with 'chairside user add --config %s NAME "
                            "--role admin'", args.config)
        stop.check()
        log.info("running; dashboard on %s; stop with Ctrl-C or SIGTERM", web.url)
        stop.wait()
        log.info("%s received: stopping", stop.reason)
    log.info("bay %s: stopped", config.bay.id)
    return 0


def cmd_decode(args: argparse.Namespace) -> int:
    from devices.decode import main as decode

    return decode(args)


def cmd_check_config(args: argparse.Namespace) -> int:
    from monitor.config import load_config
    from monitor.localtime import zone_name

    config = load_config(args.file)
    presets = config.presets()
    examples = [k for k, p in presets.items() if p.example]
    print(f"{args.file}: OK: bay {config.bay.id!r}, {len(config.chairs)} chairs, "
          f"limit profiles {', '.join(sorted(config.profiles()))}, "
          f"protocols {', '.join(sorted(presets))}, store {config.store.path}, "
          f"times shown in {zone_name(config.bay.zone)}"
          + ("" if config.bay.timezone else " (the machine's zone: set [bay] timezone)"))
    if examples:
        print(f"note: protocol presets {', '.join(examples)} are shipped examples; "
              "review them before clinical use")
    return 0


def cmd_export(args: argparse.Namespace) -> int:
    from monitor.config import load_config
    from monitor.exports import FORMATS, export_session
    from monitor.store import SqliteStore

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
    if not config.store.path.exists():
        raise CliError(f"{config.store.path}: no such database")
    with SqliteStore(config.store.path, audit_key_file=config.store.key_file) as store:
        session = store.get_session(args.session)
        if session is None:
            raise CliError(f"no session with id {args.session!r} in {config.store.path}")
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
    from monitor.audit import AuditError, verify_chain, verify_records
    from monitor.config import load_config

    if args.db:
        path, key = Path(args.db), args.key
    else:
        store = load_config(args.config).store
        path, key = store.path, args.key or store.key_file
    try:
        report = verify_chain(path)
        records = verify_records(path, key)
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
    if records.ok:
        print(f"records OK: {records.entries} ledger entries ({counts}), ledger head {records.head[:16]}")
    else:
        for problem in records.problems:
            print(problem)
        print(f"records NOT OK: {len(records.problems)} problems in {records.entries} ledger entries")
    return 0 if report.ok and records.ok else 1


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


def cmd_user(args: argparse.Namespace) -> int:
    from monitor.config import load_config
    from monitor.records import OperatorAction
    from monitor.store import SqliteStore
    from monitor.users import UserError, UserStore

    store_config = None if args.db else load_config(args.config).store
    path = Path(args.db) if store_config is None else store_config.path
    key = None if store_config is None else store_config.key_file
    if not path.parent.is_dir():
        raise CliError(f"{path.parent}: no such folder")
    users = UserStore(path, key)
    action = args.user_command
    try:
        if action == "list":
            for u in users.list():
                print(f"{u.username}\t{u.role}\t{'disabled' if u.disabled else 'enabled'}")
            return 0
        if action == "add":
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
    with SqliteStore(path, audit_key_file=key) as store:  # the change joins the audit chain
        store.add_records([OperatorAction(time.time(), _cli_actor(), name, detail=detail)])
    print(f"{name.removeprefix('user_').replace('_', ' ')}: {u.username} ({u.role}"
          f"{', disabled' if u.disabled else ''})")
    return 0


def cmd_simulate(args: argparse.Namespace) -> int:
    from simulators.runner import Endpoints, Simulation
    from simulators.scenario import load_scenario

    scenario = load_scenario(args.scenario)
    endpoints = Endpoints(Path(args.serial_dir), mqtt_host=args.mqtt_host, mqtt_port=args.mqtt_port,
                          bay=args.bay, hl7_host=args.hl7_host, hl7_port=args.hl7_port,
                          hl7_tls_ca=_opt_path(args.hl7_tls_ca), hl7_tls_cert=_opt_path(args.hl7_tls_cert),
                          hl7_tls_key=_opt_path(args.hl7_tls_key))
    if (args.hl7_tls_cert or args.hl7_tls_key) and not args.hl7_tls_ca:
        raise CliError("--hl7-tls-cert/--hl7-tls-key need --hl7-tls-ca (the listener's CA)")
    try:
        sim = Simulation(scenario, endpoints, epoch=time.time() + args.start)
    except OSError as exc:  # ssl.SSLError too
        raise CliError(f"--hl7-tls-ca/--hl7-tls-cert/--hl7-tls-key: cannot use the files: {exc}") \
            from None
    if args.print_config:
        print(bay_toml(scenario, sim.sources_config()))
        return 0
    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())
    sim.open()
    log.info("scenario %s: %d chairs; serial links in %s, MQTT %s:%d, HL7 %s:%d", scenario.name,
             len(scenario.chairs), endpoints.serial_dir, args.mqtt_host, args.mqtt_port,
             args.hl7_host, args.hl7_port)
    try:
        sim.run(stop, until_s=args.seconds, speed=args.speed)
    finally:
        sim.close()
    return 0


def past_offset(text: str) -> float:
    """``-12h``, ``-90m``, ``-600s`` (or ``-600``; the sign may be left out): seconds before
    now, as a negative number."""
    m = re.fullmatch(r"-?(\d+(?:\.\d+)?)([hms]?)", text.strip())
    if m is None:
        raise argparse.ArgumentTypeError(f"{text!r}: give a time in the past such as -12h, -90m or -600s")
    return -float(m.group(1)) * {"h": 3600, "m": 60, "s": 1, "": 1}[m.group(2)]


def _opt_path(value: str | None) -> Path | None:
    return None if value is None else Path(value)


def bay_toml(scenario: Scenario, sources: list[dict[str, object]]) -> str:
    """A bay configuration (TOML) that reads a simulation: its chairs and sources."""
    def value(v: object) -> str:
        if isinstance(v, dict):
            return "{ " + ", ".join(f"{json.dumps(k)} = {value(x)}" for k, x in v.items()) + " }"
        return json.dumps(v)

    lines = [f"# Bay for scenario {scenario.name!r} (chairside simulate --print-config)", ""]
    for chair in scenario.chairs:
        lines += ["[[chairs]]", f"id = {value(chair.chair)}", ""]
    for source in sources:
        lines += ["[[sources]]", *(f"{k} = {value(v)}" for k, v in source.items()), ""]
    return "\n".join(lines)


def cmd_demo(args: argparse.Namespace) -> int:
    """Ctrl-C (or SIGTERM), at any moment: the simulated monitors stop sending, the dashboard
    and the bay stop, the monitors disconnect, then the private broker stops; exit 0."""
    from station.demo import Demo

    stop = _stop_signals(args)
    with tempfile.TemporaryDirectory(prefix="chairside-demo-") as tmp:
        demo = Demo(args.chairs, Path(tmp), host=args.host, port=args.port, web=not args.headless)
        try:
            demo.start(stop.check)
            if not demo.wait_ready(stop=stop):
                log.warning("not every simulated monitor is connected yet")
            assert demo.service is not None
            if args.headless:
                _headless_loop(demo.service.monitor, args.seconds, sys.stdout, stop)
            else:
                log.info("demo bay on %s (%d chairs); stop with Ctrl-C", demo.server.url,
                         len(demo.scenario.chairs))
                stop.wait(args.seconds)
            stop.check()
        except StopRequested as exc:
            log.info("%s: stopping the demo", exc)
        finally:
            demo.stop()
    log.info("demo stopped")
    return 0


def _headless_loop(monitor: Monitor, seconds: float | None, out: TextIO,
                   stop: StopSignals | None = None) -> None:
    start = time.monotonic()
    n = 0
    while seconds is None or n < seconds:
        n += 1
        delay = max(0.0, start + n - time.monotonic())
        if stop is None:
            time.sleep(delay)
        elif stop.wait(delay):
            return
        _print_bay(monitor, n, out)


def _print_bay(monitor: Monitor, sim: int, out: TextIO) -> None:
    if out.isatty():
        out.write("\x1b[H\x1b[2J")
    out.write(f"Chairside demo bay, t+{sim}s  (not a medical device)\n")
    for chair in monitor.chair_ids:
        out.write(_chair_line(monitor.status(chair)) + "\n")
    out.write("\n")
    out.flush()


def _chair_line(s: ChairStatus) -> str:
    v = s.vitals

    def num(key: str) -> str:
        vital = v[key]
        text = vital.parameter.format(vital.value)
        return text + ("?" if vital.stale and vital.value is not None else "")

    nibp = f"{num('nibp_sys')}/{num('nibp_dia')} ({num('nibp_map')})"
    if v["nibp_sys"].age_s is not None:
        nibp += f" {v['nibp_sys'].age_s / 60:.0f}m"
    score = f"{s.news2.total}{'+' if s.news2.partial else ''}"
    alarms = "  ".join(f"[{a.priority.marker} {a.message} {a.state.value}]" for a in s.alarms)
    session = s.session.protocol if s.session else "-"
    return (f"{s.chair:<4} {s.connection:<7} {session:<10} HR {num('hr'):>3}  SpO2 {num('spo2'):>3}"
            f"  NIBP {nibp:<18} NEWS2 {score:<3} {alarms}")


def build_parser() -> argparse.ArgumentParser:
    from monitor.exports import FORMATS

    parser = argparse.ArgumentParser(prog="chairside", description=(
        "Vital-signs watch for an IV-infusion bay. Not a medical device: it does not replace "
        "the bedside monitors' own alarms."))
    parser.add_argument("--log-level", default="info",
                        choices=["debug", "info", "warning", "error"])
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    p = sub.add_parser("run", help="run the bay and its dashboard from a configuration file")
    p.add_argument("--config", required=True, help="the bay's TOML configuration")
    p.add_argument("--host", default=None, help="dashboard address (default: [dashboard] host)")
    p.add_argument("--port", type=int, default=None, help="dashboard port (default: [dashboard] port)")
    p.set_defaults(func=cmd_run)

    p = sub.add_parser("demo", help="a simulated bay on real transports, with its dashboard")
    p.add_argument("--chairs", type=int, default=8, choices=range(1, 49), metavar="N",
                   help="number of chairs, 1-48 (default 8)")
    p.add_argument("--host", default="127.0.0.1", help="dashboard address (default 127.0.0.1)")
    p.add_argument("--port", type=int, default=8050, help="dashboard port (default 8050)")
    p.add_argument("--headless", action="store_true",
                   help="no dashboard: print the bay once a second instead")
    p.add_argument("--seconds", type=float, default=None,
                   help="stop after this many seconds (default: until Ctrl-C)")
    p.set_defaults(func=cmd_demo)

    p = sub.add_parser("simulate", help="simulated bedside monitors on real transports")
    p.add_argument("--scenario", required=True,
                   help="a scenario file, or the name of a shipped one (e.g. demo-bay, technical)")
    p.add_argument("--serial-dir", default="/tmp/chairside-sim",
                   help="folder for the serial chairs' pty links (default /tmp/chairside-sim)")
    p.add_argument("--mqtt-host", default="127.0.0.1")
    p.add_argument("--mqtt-port", type=int, default=1883)
    p.add_argument("--bay", default="bay1", help="the <bay> of the MQTT topics")
    p.add_argument("--hl7-host", default="127.0.0.1")
    p.add_argument("--hl7-port", type=int, default=2575)
    p.add_argument("--hl7-tls-ca", default=None,
                   help="MLLP over TLS: the CA file of the listener's certificate")
    p.add_argument("--hl7-tls-cert", default=None, help="the gateway's client certificate (PEM)")
    p.add_argument("--hl7-tls-key", default=None, help="its key (default: in --hl7-tls-cert)")
    p.add_argument("--speed", type=float, default=1.0, help="simulated seconds per second")
    p.add_argument("--from", dest="start", type=past_offset, default=0.0, metavar="-DURATION",
                   help="start the scenario this long ago (--from=-12h, -90m, -600s): the past is "
                        "sent at full speed with its own device times, then in real time")
    p.add_argument("--seconds", type=float, default=None, help="stop after this simulated time")
    p.add_argument("--print-config", action="store_true",
                   help="print the bay configuration that reads this simulation, then exit")
    p.set_defaults(func=cmd_simulate)

    p = sub.add_parser("check-config", help="validate a configuration file")
    p.add_argument("file")
    p.set_defaults(func=cmd_check_config)

    from wire.registry import names as protocol_names

    p = sub.add_parser("decode", help="decode a device capture through the bay's parsers (JSON lines)",
                       description="Read a capture (the bytes exactly as the device sent them) through "
                       "the bay's parsers and print one JSON object per reading, status record or "
                       "rejected line/message. hl7: MLLP-framed or blank-line separated messages; "
                       "mqtt-json: one payload per line. Exit status 0 even when input was rejected, "
                       "2 for unusable arguments or an unreadable file.")
    p.add_argument("--protocol", required=True, choices=protocol_names(), metavar="PROTOCOL",
                   help="one of: " + ", ".join(protocol_names()))
    p.add_argument("file", metavar="FILE", help="the capture, or - for standard input")
    p.set_defaults(func=cmd_decode)

    p = sub.add_parser("export", help="export a session for the chart (CSV, zip, FHIR, HL7, PDF)",
                       formatter_class=argparse.RawDescriptionHelpFormatter,
                       description="Export one session. Formats:\n" + "\n".join(
                           f"  {f.name:<5} {f.description}" for f in FORMATS.values())
                       + "\nA session that has not ended exports up to now, marked partial.")
    p.add_argument("--config", required=True)
    p.add_argument("--session", required=True, help="session id")
    p.add_argument("--format", default="csv", choices=list(FORMATS))
    p.add_argument("--out", required=True, help="output file, or - for standard output")
    p.add_argument("--force", action="store_true", help="overwrite an existing output file")
    p.set_defaults(func=cmd_export)

    p = sub.add_parser("audit", help="the operator-action audit trail")
    audit = p.add_subparsers(dest="audit_command", required=True, metavar="ACTION")
    p = audit.add_parser("verify", help="check that no audited action was edited, deleted or forged",
                         description="Check the hash chain of the operator actions, and every "
                         "reading, alarm, session, event and user against the keyed integrity "
                         "ledger (see docs/audit.md). Exit status: 0 OK, 1 tampering found, "
                         "2 bad input (e.g. no such database, no key).")
    where = p.add_mutually_exclusive_group(required=True)
    where.add_argument("--config", help="the bay's TOML configuration (its [store] path is checked)")
    where.add_argument("--db", help="the database file to check")
    p.add_argument("--key", help="the ledger's key file (default: [store] audit_key_file, or "
                   "<database>.audit-key)")
    p.set_defaults(func=cmd_audit_verify)

    p = sub.add_parser("user", help="accounts for the dashboard and the API",
                       description="Accounts in the bay's store. Passwords are read from a prompt "
                       "or, with --password-stdin, from the first line of standard input; never "
                       "from the command line. Roles: nurse (acknowledge, pause, sessions, export), "
                       "charge and admin (also limits, users, configuration).")
    users = p.add_subparsers(dest="user_command", required=True, metavar="ACTION")

    def user_parser(name: str, help_text: str, username: bool = True) -> argparse.ArgumentParser:
        q = users.add_parser(name, help=help_text)
        where = q.add_mutually_exclusive_group(required=True)
        where.add_argument("--config", help="the bay's TOML configuration (its [store] holds the users)")
        where.add_argument("--db", help="the database file")
        if username:
            q.add_argument("username")
        q.set_defaults(func=cmd_user)
        return q

    q = user_parser("add", "add an account")
    q.add_argument("--role", required=True, choices=["nurse", "charge", "admin"])
    q.add_argument("--password-stdin", action="store_true", help="read the password from standard input")
    q = user_parser("passwd", "set an account's password")
    q.add_argument("--password-stdin", action="store_true", help="read the password from standard input")
    user_parser("disable", "disable an account (it can no longer log in)")
    user_parser("enable", "enable a disabled account")
    user_parser("end-sessions", "end every login session of the account at once")
    user_parser("unlock", "forget the account's failed logins (ends a lockout)")
    user_parser("list", "list the accounts", username=False)
    return parser


def _command_of(argv: Sequence[str]) -> str | None:
    """The command word of ``argv``, found without the (slow to build) full parser."""
    pre = argparse.ArgumentParser(add_help=False)
    pre.add_argument("--log-level")
    pre.add_argument("command", nargs="?")
    try:
        return pre.parse_known_args(argv)[0].command
    except SystemExit:  # bad global options: the full parser will say so
        return None


def main(argv: Sequence[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    # First of all, before anything slow: SIGINT and SIGTERM become an orderly stop
    with StopSignals(enabled=_command_of(argv) in LONG_RUNNING) as stop:
        from dashboard.security import BindRefused
        from monitor.config import ConfigError
        from monitor.store import StoreError

        args = build_parser().parse_args(argv)
        args.stop = stop
        _setup_logging(args.log_level)
        try:
            return int(args.func(args))
        except (ConfigError, CliError, StoreError, BindRefused) as exc:
            print(f"chairside: {exc}", file=sys.stderr)
            return BAD_INPUT
        except StopRequested as exc:
            log.info("%s during start-up: stopped", exc)
            return 0


if __name__ == "__main__":
    sys.exit(main())
