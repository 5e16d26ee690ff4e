"""Serving the dashboard and the API with waitress, a production WSGI server (pure Python,
threaded, no fork: the core lives in this one process, so there is one ingest however many
browser tabs are open)."""

from __future__ import annotations

import logging
import threading

from waitress.server import create_server

from dashboard.security import check_bind

__all__ = ["WebServer"]

log = logging.getLogger("chairside.web")


class WebServer:
    """waitress on a thread of its own; ``port`` 0 takes a free port (see ``.port``)."""

    def __init__(self, wsgi_app: object, host: str = "127.0.0.1", port: int = 8050,
                 threads: int = 8, *, auth_enabled: bool = False) -> None:
        check_bind(host, auth_enabled=auth_enabled)
        self._server = create_server(wsgi_app, host=host, port=port, threads=threads,
                                     ident="chairside", clear_untrusted_proxy_headers=True)
        self.host = host
        self.port = int(self._server.effective_port)  # type: ignore[union-attr]
        self._thread = threading.Thread(target=self._server.run, name="web", daemon=True)

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def start(self) -> None:
        self._thread.start()
        log.info("dashboard and API on %s", self.url)

    def stop(self) -> None:
        self._server.close()
        self._thread.join(timeout=5)
