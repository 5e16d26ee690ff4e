"""Clean stop of the long-running commands, on real processes: SIGTERM at any moment of
``chairside run`` start-up (seen: killed with -15), and Ctrl-C on ``chairside demo`` (seen:
"RuntimeError: Message publish failed" and exit 1, because the terminal's SIGINT also
killed the private broker before the simulated monitors had said goodbye).

The moment of each signal is set by waiting for a log line (a condition with a deadline),
never by a sleep."""

from __future__ import annotations

import logging
import os
import re
import signal
import socket
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from conftest import wait_until

from simulators.broker import Mosquitto, free_port

ROOT = Path(__file__).parent.parent
START_TIMEOUT = 60.0  # a loaded 2-core machine: imports alone take seconds


class Proc:
    """A ``chairside`` process whose stderr (the log) and stdout are collected line by line."""

    def __init__(self, args: list[str], *, new_group: bool = False, block_stop_signals: bool = False,
                 cwd: Path = ROOT) -> None:
        def preexec() -> None:
            # as a terminal or a service manager would start it: SIGINT not ignored (a test
            # runner may have been started in the background, where it is)
            signal.signal(signal.SIGINT, signal.SIG_DFL)
            signal.signal(signal.SIGHUP, signal.SIG_DFL)
            if block_stop_signals:  # a signal sent now stays pending until our code runs
                signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT, signal.SIGTERM})

        self.proc = subprocess.Popen([sys.executable, "-m", "station.cli", *args], cwd=cwd,
                                     stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                                     start_new_session=new_group, preexec_fn=preexec)
        self.err: list[str] = []
        self.out: list[str] = []
        self._readers = [threading.Thread(target=self._read, args=(stream, lines), daemon=True)
                         for stream, lines in ((self.proc.stderr, self.err), (self.proc.stdout, self.out))]
        for reader in self._readers:
            reader.start()

    @staticmethod
    def _read(stream: object, lines: list[str]) -> None:
        for line in stream:  # type: ignore[attr-defined]
            lines.append(line.rstrip("\n"))

    def wait_for(self, pattern: str, what: str = "") -> None:
        wait_until(lambda: any(pattern in line for line in self.err) or self.proc.poll() is not None,
                   timeout=START_TIMEOUT, what=what or repr(pattern))
        assert any(pattern in line for line in self.err), f"exited before {pattern!r}:\n{self.log}"

    def finish(self) -> int:
        code = self.proc.wait(timeout=60)
        for reader in self._readers:
            reader.join(timeout=10)
        return code

    @property
    def log(self) -> str:
        return "\n".join(self.err)

    def index(self, pattern: str) -> int:
        return next(i for i, line in enumerate(self.err) if pattern in line)

    def kill(self) -> None:
        """Whatever happened: no process and no open pipe left behind."""
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(timeout=10)
        for reader in self._readers:
            reader.join(timeout=10)
        for stream in (self.proc.stdout, self.proc.stderr):
            if stream is not None:
                stream.close()


@pytest.fixture(scope="module")
def broker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Mosquitto]:
    with Mosquitto(tmp_path_factory.mktemp("broker")) as b:
        yield b


@pytest.fixture
def bay_toml(tmp_path: Path, broker: Mosquitto) -> Path:
    """A bay with an MQTT source on the test's broker and an HL7 listener on a free port."""
    path = tmp_path / "bay.toml"
    path.write_text(f"""
[bay]
id = "bay1"
[store]
path = "{tmp_path / 'bay.db'}"
[auth]
enabled = false
[[chairs]]
id = "c1"
[[chairs]]
id = "c2"
[[sources]]
kind = "mqtt"
name = "mqtt"
port = {broker.port}
client_id = "shutdown-test-{tmp_path.name[-12:]}"
[[sources]]
kind = "hl7"
name = "hl7"
port = 0
beds = {{ "BAY1^^c2" = "c2" }}
""")
    return path


# The moments of start-up: the signal is sent once this line is in the log ("" = at once,
# before any of our code has run: the signal is pending from the exec on).
MOMENTS = {
    "at-once": "",
    "importing-the-dashboard": "starting bay bay1",
    "opening-the-store": "monitor.store",
    "starting-the-sources": "listening for HL7/MLLP",
    "serving": "running; dashboard on",
}


@pytest.mark.parametrize("moment", list(MOMENTS))
def test_sigterm_at_any_moment_of_run_start_up_is_an_orderly_stop(bay_toml, moment):
    p = Proc(["run", "--config", str(bay_toml), "--port", "0"], block_stop_signals=moment == "at-once")
    try:
        if MOMENTS[moment]:
            p.wait_for(MOMENTS[moment])
        p.proc.send_signal(signal.SIGTERM)
        code = p.finish()
    finally:
        p.kill()
    assert code == 0, p.log
    assert "Traceback" not in p.log, p.log
    last = p.err[-1]
    assert "SIGTERM received during start-up: stopped" in last or "bay bay1: stopped" in last, p.log
    if moment == "at-once":  # nothing had started
        assert not any("monitor.store" in line for line in p.err), p.log
    if any("listening for HL7/MLLP" in line for line in p.err):  # what started was stopped
        assert p.index("hl7: connected -> stopped") < p.index("bay bay1 stopped"), p.log
    if moment == "serving":
        assert p.index("SIGTERM received: stopping") < p.index("bay bay1 stopped"), p.log


def test_sigint_on_a_serving_bay_is_an_orderly_stop(bay_toml):
    p = Proc(["run", "--config", str(bay_toml), "--port", "0"], new_group=True)
    try:
        p.wait_for("running; dashboard on")
        os.killpg(p.proc.pid, signal.SIGINT)  # Ctrl-C at a terminal
        code = p.finish()
    finally:
        p.kill()
    assert code == 0 and "Traceback" not in p.log, p.log
    assert p.index("SIGINT received: stopping") < p.index("bay bay1 stopped") < p.index("bay bay1: stopped")


def _processes_mentioning(text: str) -> list[str]:
    found = []
    for cmdline in Path("/proc").glob("[0-9]*/cmdline"):
        try:
            args = cmdline.read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        if text in args:
            found.append(args)
    return found


@pytest.mark.parametrize("mode", ["dashboard", "headless", "during-start-up", "terminal-closed"])
def test_ctrl_c_on_the_demo_stops_everything_in_order(mode):
    args = ["demo", "--chairs", "3"]
    args += ["--headless"] if mode in ("headless", "terminal-closed") else ["--port", str(free_port())]
    sig = signal.SIGHUP if mode == "terminal-closed" else signal.SIGINT
    # its own process group, so that the SIGINT goes to the whole group as a terminal's Ctrl-C
    # does (the private broker used to be in it, and died at once)
    p = Proc(args, new_group=True)
    try:
        if mode == "during-start-up":
            p.wait_for("monitor.store")
        else:
            p.wait_for("demo bay on" if mode == "dashboard" else "connected")
            wait_until(lambda: mode == "dashboard" or any("t+1s" in line for line in p.out),
                       timeout=START_TIMEOUT, what="the headless demo's first print")
        workdir = re.search(r"(/\S*chairside-demo-[^/\s]+)", p.log)
        signalled = len(p.err)
        os.killpg(p.proc.pid, sig)
        code = p.finish()
    finally:
        p.kill()
    assert code == 0, p.log
    assert "Traceback" not in p.log, p.log
    assert any(f"{sig.name} received" in line for line in p.err), p.log
    after = p.err[signalled:]
    assert not [line for line in after if " WARNING " in line or " ERROR " in line], p.log
    # the simulated monitors stopped sending first; the bay stopped before they disconnected
    # (so no "device offline" alarm), they said goodbye while the broker was up, then the
    # broker stopped, and nothing of the demo is left running
    order = ["bay demo stopped", "simulated monitors switched off", "private MQTT broker stopped",
             "chairside: demo stopped"]
    if mode != "during-start-up":  # (there the bay's start stops what it had started)
        order.insert(0, f"{sig.name} received")
    assert [p.index(line) for line in order] == sorted(p.index(line) for line in order), p.log
    assert workdir is not None, p.log
    assert _processes_mentioning(workdir.group(1)) == []
    assert not Path(workdir.group(1)).exists()


def test_the_command_line_imports_nothing_slow_before_its_signal_handlers():
    """The handlers are installed first thing in main(); what runs before (the imports of
    station.cli and its package) must stay quick: no numpy, pydantic, sqlite, flask, dash."""
    heavy = ["numpy", "pydantic", "sqlite3", "flask", "dash", "paho", "waitress", "serial"]
    code = f"import sys, station.cli; print([m for m in {heavy!r} if m in sys.modules])"
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True,
                         timeout=60, check=True).stdout
    assert out.strip() == "[]"


def test_an_mqtt_emitter_closes_without_raising_when_its_broker_is_gone(tmp_path, caplog):
    """The fault of the demo's Ctrl-C, injected directly: the broker dies first, then the
    simulated monitor closes (it used to raise "RuntimeError: Message publish failed")."""
    from simulators.emitters import MqttEmitter

    with Mosquitto(tmp_path / "broker") as broker:
        emitter = MqttEmitter("127.0.0.1", broker.port, prefix="chairside", bay="bay1", chair="c1",
                              device="sim-c1")
        emitter.open()
        client = emitter._client
        assert client is not None
        wait_until(client.is_connected, what="the emitter connected")
        broker.kill()
        wait_until(lambda: not client.is_connected(), what="the emitter to notice")
        emitter.close()
    assert "sim-c1: offline status not published at close" in caplog.text
    assert emitter._client is None and client._thread is None  # its network thread ended


def test_stop_signals_turn_sigterm_into_a_request_and_put_the_handlers_back():
    from station.lifecycle import StopRequested, StopSignals

    before = signal.getsignal(signal.SIGTERM)
    with StopSignals() as stop:
        stop.check()  # nothing requested yet
        assert not stop.wait(0)
        signal.raise_signal(signal.SIGTERM)
        assert stop.wait(5) and stop.reason == "SIGTERM"
        with pytest.raises(StopRequested, match="SIGTERM received"):
            stop.check()
    assert signal.getsignal(signal.SIGTERM) is before


def test_stop_signals_leave_an_ignored_sigint_ignored():
    """``nohup`` and ``cmd &`` in a script start a program with SIGINT/SIGHUP ignored."""
    from station.lifecycle import StopSignals

    previous = signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        with StopSignals():
            assert signal.getsignal(signal.SIGINT) is signal.SIG_IGN
            assert signal.getsignal(signal.SIGTERM) is not signal.SIG_DFL
    finally:
        signal.signal(signal.SIGINT, previous)


def test_an_interrupted_bay_start_stops_what_it_had_started_in_reverse(tmp_path, caplog):
    from monitor.config import parse_config
    from monitor.store import StoreError
    from station.lifecycle import StopRequested
    from station.service import BayService

    caplog.set_level(logging.INFO)

    config = parse_config({"store": {"path": str(tmp_path / "bay.db")}, "chairs": [{"id": "c1"}],
                           "sources": [{"kind": "hl7", "name": f"hl7-{i}", "port": 0} for i in range(3)]},
                          "t.toml")
    service = BayService(config)
    calls = []

    def check() -> None:  # a stop request arrives after the second source has started
        calls.append(len(calls))
        if len(calls) == 5:
            raise StopRequested(signal.SIGTERM)

    with pytest.raises(StopRequested):
        service.start(check)
    first, second, third = service.sources
    assert first.port and second.port and third.port is None  # the third never started
    for source in (first, second):  # stopped again: nothing listens any more
        assert source.state.value == "stopped"
        with pytest.raises(ConnectionRefusedError):
            socket.create_connection(("127.0.0.1", source.port), timeout=5).close()
    stopped = [r.name.rsplit(".", 1)[1] for r in caplog.records if r.getMessage() == "connected -> stopped"]
    assert stopped == ["hl7-1", "hl7-0"]
    assert service.monitor.store is not None
    with pytest.raises(StoreError, match="closed"):  # the store was flushed and closed
        service.monitor.store.start()
    service.stop()  # idempotent
