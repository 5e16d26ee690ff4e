"""Child process for the serial takeover test: a SerialSource reading a terminal server's URL
until it is killed, as the active server of a pair would.

Its argument is the port URL. Prints ``state STATE`` on each change of the source's state
and ``seq N`` for each Chairside line it accepts, before accepting it, so that what the test
reads is never more than what the process took off the wire.
"""

import sys
import threading

from devices.serial_source import SerialSource
from monitor.clock import SystemClock
from monitor.config import SerialSource as SerialConfig
from monitor.seam import IngestResult


class PrintingSink:
    """The core's part for this test: print each frame's sequence number, accept it all."""

    clock = SystemClock()

    def ingest(self, readings):
        readings = list(readings)
        print(f"seq {readings[0].seq}", flush=True)
        return IngestResult(accepted=len(readings), rejected=(), ticket=None)

    def report_connection(self, chair, source, online, detail=""):
        pass

    def report_gap(self, chair, device, missing, after_seq, seq):
        pass

    def report_source(self, source, ok, detail, chairs=None, kind=""):
        pass


config = SerialConfig(kind="serial", name="ox-a", chair="c1", port=sys.argv[1],
                      protocol="chairside", reconnect_max_s=0.5)
source = SerialSource(config, PrintingSink())
source.start()
seen = None
while True:
    if source.state is not seen:
        seen = source.state
        print(f"state {seen.value}", flush=True)
    threading.Event().wait(0.01)
