"""The ``chairside`` commands that run a bay or a simulation: ``run``, ``demo``, ``simulate``
and ``check-config`` (the parser that calls them: :mod:`station.cli`).

Only the standard library at import: the rest of the project is imported inside the commands,
after :func:`station.cli.main` has installed the stop-signal handlers.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import logging
import re
import signal
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import TYPE_CHECKING, TextIO

from station.errors import CliError
from station.lifecycle import StopRequested, StopSignals

if TYPE_CHECKING:
    from monitor.core import ChairStatus, Monitor
    from simulators.scenario import Scenario

__all__ = ["bay_toml", "cmd_check_config", "cmd_demo", "cmd_run", "cmd_simulate", "hl7_endpoint",
           "past_offset"]

log = logging.getLogger("chairside")


def _stop_signals(args: argparse.Namespace) -> StopSignals:
    """The stop request main() installed (a fresh one when a command is called directly)."""
    stop = getattr(args, "stop", None)
    return stop if isinstance(stop, StopSignals) else StopSignals(enabled=False)


def cmd_run(args: argparse.Namespace) -> int:
    """Start the store, the core, the sources and the dashboard, one step at a time; a stop
    request (SIGINT, SIGTERM) at any point stops what has started, in reverse, and exits 0."""
    from monitor.bay_store import bay_database
    from monitor.config import load_config
    from monitor.integrity import check_private
    from station.service import BayService

    stop = _stop_signals(args)
    config = load_config(args.config)
    try:  # patient data at rest: refuse a store that others can read (docs/security.md)
        if config.store.url is None:
            check_private(config.store.path, config.store.file_mode)
    except PermissionError as exc:
        raise CliError(str(exc)) from None
    except FileNotFoundError:
        raise CliError(f"{config.store.path.parent}: no such folder for the store") from None
    host = args.host or config.dashboard.host
    port = config.dashboard.port if args.port is None else args.port
    log.info("starting bay %s from %s", config.bay.id, args.config)
    if config.ha.enabled:  # one of the bay's two servers: lead or wait (station.ha)
        from station.ha import StandbyPair

        StandbyPair(config, host, port, stop).run()
        log.info("bay %s: stopped (%s)", config.bay.id, stop.reason)
        return 0
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
        app = create_app(LiveBay(service.monitor, service.sources, site=service.site))
        stop.check()
        web = WebServer(app.server, host, port, auth_enabled=config.auth.enabled)
        started.callback(web.stop)
        web.start()
        if config.auth.enabled:
            from monitor.users import UserStore

            if not UserStore(bay_database(config.store, config.bay.id), config.store.key_file).list():
                log.warning("no accounts yet: add one with 'chairside user add --config %s NAME "
                            "--role admin'", args.config)
        stop.check()
        log.info("running; dashboard on %s; stop with Ctrl-C or SIGTERM", web.url)
        stop.wait()
        log.info("%s received: stopping", stop.reason)
    log.info("bay %s: stopped", config.bay.id)
    return 0


def cmd_check_config(args: argparse.Namespace) -> int:
    from monitor.bay_store import store_where
    from monitor.config import load_config
    from monitor.localtime import zone_name

    config = load_config(args.file)
    presets = config.presets()
    examples = [k for k, p in presets.items() if p.example]
    print(f"{args.file}: OK: bay {config.bay.id!r}, {len(config.chairs)} chairs, "
          f"limit profiles {', '.join(sorted(config.profiles()))}, "
          f"protocols {', '.join(sorted(presets))}, store {store_where(config.store)}, "
          f"times shown in {zone_name(config.bay.zone)}"
          + ("" if config.bay.timezone else " (the machine's zone: set [bay] timezone)"))
    if examples:
        print(f"note: protocol presets {', '.join(examples)} are shipped examples; "
              "review them before clinical use")
    return 0


def cmd_simulate(args: argparse.Namespace) -> int:
    from simulators.runner import Endpoints, Simulation
    from simulators.scenario import load_scenario

    scenario = load_scenario(args.scenario)
    hl7 = [(host or args.hl7_host, port) for host, port in args.hl7_port or [(None, 2575)]]
    endpoints = Endpoints(Path(args.serial_dir), mqtt_host=args.mqtt_host, mqtt_port=args.mqtt_port,
                          bay=args.bay, hl7_host=hl7[0][0], hl7_port=hl7[0][1], hl7_standby=tuple(hl7[1:]),
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
    log.info("scenario %s: %d chairs; serial links in %s, MQTT %s:%d, HL7 %s", scenario.name,
             len(scenario.chairs), endpoints.serial_dir, args.mqtt_host, args.mqtt_port,
             ", then ".join(f"{host}:{port}" for host, port in hl7))
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


def hl7_endpoint(text: str) -> tuple[str | None, int]:
    """``--hl7-port``: ``PORT`` (on ``--hl7-host``: host None) or ``HOST:PORT`` (``[::1]:2575``
    for an IPv6 address)."""
    host, _, port = text.strip().rpartition(":")
    host = host[1:-1] if host.startswith("[") and host.endswith("]") else host
    if not port.isdigit() or not 1 <= int(port) <= 65535 or (_ and not host):
        raise argparse.ArgumentTypeError(f"{text!r}: give a port (2575) or host:port (10.0.0.12:2575)")
    return host or None, int(port)


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
