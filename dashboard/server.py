"""Serving the dashboard and the API with waitress, a production WSGI server (pure Python,
threaded, no fork: the core lives in this one process, so there is one ingest however many
browser tabs are open).

Stopping without a race. waitress's own ``server.close()`` closes the listening socket and
the trigger pipe from the calling thread while its loop thread may be inside ``select()`` on
them (EBADF in the loop thread) and while request threads still pull that trigger (EBADF in
them); it also leaves the loop running as long as a keep-alive connection is open and the
request threads alive. So :class:`WebServer` runs the loop itself, one poll at a time, and
:meth:`WebServer.stop` goes in this order: stop accepting; let the request threads finish
what they are doing and end (the loop keeps running, so their answers are sent and a thread
waiting for the loop to drain its output is not stuck); let the loop send what is still
buffered and end; then, with no other thread left to use them, close the connections, the
trigger and the listening socket.
"""

from __future__ import annotations

import logging
import threading
import time
from typing import Any

from waitress import wasyncore
from waitress.channel import HTTPChannel
from waitress.server import create_server

from dashboard.security import check_bind

__all__ = ["STOPPING", "WebServer"]

log = logging.getLogger("chairside.web")
DRAIN_S = 1.0  # at stop, how long the loop may go on sending answers already made
#: WSGI environ key: a threading.Event set when the server begins to stop. A response that
#: streams for as long as the client stays (the push stream) ends when it is set.
STOPPING = "chairside.server_stopping"


class WebServer:
    """waitress on a thread of its own; ``port`` 0 takes a free port (see ``.port``)."""

    def __init__(self, wsgi_app: object, host: str = "127.0.0.1", port: int = 8050,
                 threads: int = 40, *, auth_enabled: bool = False) -> None:
        # threads: each open screen's push stream holds one while it is open (at most
        # BayFeed.max_streams, 32), the rest serve pages, callbacks and the API
        check_bind(host, auth_enabled=auth_enabled)
        self._map: dict[int, Any] = {}  # waitress's socket map: touched by the loop thread only
        self._closing = threading.Event()

        def app(environ: dict[str, Any], start_response: Any) -> Any:
            environ[STOPPING] = self._closing
            return wsgi_app(environ, start_response)  # type: ignore[operator]

        self._server: Any = create_server(app, map=self._map, host=host, port=port,
                                          threads=threads, ident="chairside",
                                          clear_untrusted_proxy_headers=True)
        self.host = host
        self.port = int(self._server.effective_port)
        self._stopping = threading.Event()
        self._lock = threading.Lock()
        self._stopped = False
        self._thread = threading.Thread(target=self._serve, name="web", daemon=True)

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def start(self) -> None:
        self._thread.start()
        log.info("dashboard and API on %s", self.url)

    def _serve(self) -> None:
        """waitress's loop, one poll at a time until :meth:`stop` asks it to end; then what
        is already buffered for the clients is sent (for at most ``DRAIN_S``)."""
        adj = self._server.adj
        drain_until = None
        while self._map:
            if self._stopping.is_set():
                drain_until = drain_until or time.monotonic() + DRAIN_S
                if not self._output_pending() or time.monotonic() > drain_until:
                    return
            wasyncore.loop(timeout=0.05 if drain_until else adj.asyncore_loop_timeout,
                           map=self._map, use_poll=adj.asyncore_use_poll, count=1)

    def _output_pending(self) -> bool:
        return any(isinstance(ch, HTTPChannel) and ch.connected and ch.total_outbufs_len
                   for ch in list(self._map.values()))

    def stop(self, timeout: float = 5.0) -> None:
        """Stop serving: requests in progress may finish (for up to ``timeout`` s) and their
        answers are sent; then every connection and socket is closed. Idempotent."""
        with self._lock:
            if self._stopped:
                return
            self._stopped = True
        self._closing.set()  # streaming responses end (within a fraction of a second)
        server, deadline = self._server, time.monotonic() + timeout
        server.accepting = False  # the loop stops selecting the listening socket
        running = self._thread.is_alive()
        dispatcher = server.task_dispatcher
        dispatcher.shutdown(cancel_pending=True, timeout=max(0.1, deadline - time.monotonic()))
        if running:
            self._stopping.set()
            server.pull_trigger()  # wake the loop's select at once
            self._thread.join(max(0.1, deadline - time.monotonic()) + DRAIN_S)
            if self._thread.is_alive():  # cannot happen short of a bug; closing now would race
                log.error("web server loop did not stop; its sockets are left open")
                return
        # No loop any more: closing here races with nothing. Channels first; closing them
        # also wakes a request thread that still waits to write (it then ends).
        for obj in list(self._map.values()):
            if isinstance(obj, HTTPChannel):
                obj.handle_close()
        if dispatcher.threads:
            dispatcher.shutdown(cancel_pending=True, timeout=1.0)
        if dispatcher.threads:  # a request still running would pull a closed trigger
            log.warning("%d request threads still running at stop; the web server's trigger "
                        "is left open for them", len(dispatcher.threads))
            wasyncore.dispatcher.close(server)  # the listening socket only
            return
        server.close()  # the listening socket and the trigger
        wasyncore.close_all(self._map)
