"""``chairside``: the command line.

    chairside run --config bay.toml        run the bay: sources, core, store, dashboard and API
    chairside demo [--chairs 8]            a simulated bay on real transports, with its dashboard
    chairside simulate --scenario NAME     simulated monitors on serial ptys, MQTT and MLLP
    chairside check-config bay.toml        validate a configuration
    chairside decode --protocol NAME FILE|-   what the bay makes of a device capture (JSON lines)
    chairside export --config bay.toml --session ID --format csv|zip|fhir|hl7|pdf --out FILE [--force]
    chairside audit verify --config bay.toml | --db PATH [--key FILE]   check the audit chain and
                                           every record against the keyed integrity ledger
    chairside user add|passwd|role|disable|enable|end-sessions|unlock|list --config bay.toml | --db PATH ...
                                           accounts (passwd, disable and end-sessions end its logins)

Exit status: 0 success, 2 bad input (configuration, unknown session, existing output,
no such database, an unreadable capture), 1 anything unexpected; for ``audit verify``, 1
means tampering was found.
"""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Sequence

from station.commands_bay import (
    bay_toml,
    cmd_check_config,
    cmd_demo,
    cmd_run,
    cmd_simulate,
    hl7_endpoint,
    past_offset,
)
from station.commands_records import cmd_audit_verify, cmd_decode, cmd_export, cmd_user
from station.errors import CliError
from station.lifecycle import StopRequested, StopSignals

# Only the standard library above (the commands' modules too): the rest of the project (numpy,
# pydantic, dash, sqlite...) is imported inside the commands, after main() has installed the
# stop-signal handlers, so that a SIGTERM during those seconds of start-up is an orderly stop,
# not a kill. The commands live by theme in station.commands_bay (run, demo, simulate,
# check-config) and station.commands_records (export, audit, user, decode); their names (and
# CliError, from station.errors) are re-exported here.

__all__ = ["CliError", "bay_toml", "build_parser", "cmd_audit_verify", "cmd_check_config", "cmd_decode",
           "cmd_demo", "cmd_export", "cmd_run", "cmd_simulate", "cmd_user", "hl7_endpoint", "main",
           "past_offset"]

log = logging.getLogger("chairside")
BAD_INPUT = 2
LONG_RUNNING = ("run", "demo")  # stop on SIGINT/SIGTERM from their first moment, exit 0


def _setup_logging(level: str) -> None:
    logging.basicConfig(level=getattr(logging, level.upper()), stream=sys.stderr,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")


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
    p.add_argument("--hl7-port", action="append", type=hl7_endpoint, default=None, metavar="[HOST:]PORT",
                   help="the HL7 listener (default 2575 on --hl7-host); given again, the standby "
                        "listeners the gateway fails over to, in order (a bay's two servers)")
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
    q = user_parser("role", "set an account's role; with --bay its role on one bay (PostgreSQL)")
    q.add_argument("role", choices=["nurse", "charge", "admin", "none", "default"],
                   help="the role; with --bay also none (no access to that bay) or default (the "
                   "account's site-wide role applies there again)")
    q.add_argument("--bay", help="a bay of the PostgreSQL site: the role applies there only")
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
