"""The health routes of the HTTP API (:mod:`dashboard.api`): the public /healthz (ok or
degraded, for a load balancer; with login on no details, :func:`public_health`) and the
detailed /api/v1/health for those who may read the configuration."""

from __future__ import annotations

from typing import Any

from flask import Blueprint, jsonify

from dashboard.auth import auth_enabled, require
from dashboard.live import LiveBay
from dashboard.metrics import Metrics
from monitor.seam import SourceState

__all__ = ["HEALTH_PERMISSION", "add_health_routes", "public_health"]

HEALTH_PERMISSION = "config"  # the detailed health tells what the configuration does: same readers
LINK_DOWN = "link down (details: GET /api/v1/health)"


def public_health(body: dict[str, Any]) -> dict[str, Any]:
    """What /healthz tells anyone when login is on: ``status``, ``role`` (``leader``: this
    server serves the bay; a standby answers from ``dashboard.standby``), ``store_writable``, each
    adapter's name, kind and state (site-chosen names, not addresses), and which sources'
    links are down; never a device path, broker address, client id, user name or counter."""
    return {
        "status": body["status"], "role": body["role"], "store_writable": body["store_writable"],
        "adapters": [{key: a.get(key) for key in ("name", "kind", "state")} for a in body["adapters"]],
        "source_problems": dict.fromkeys(body["source_problems"], LINK_DOWN),
    }


def add_health_routes(api: Blueprint, live: LiveBay, metrics: Metrics) -> None:
    def health_body() -> tuple[dict[str, Any], int]:
        body = live.health()
        stats = body.get("store")
        body["store_writable"] = stats is None or (
            metrics.store_check.writable(stats) and not stats.get("failing"))
        failed = any(a.get("state") == SourceState.FAILED.value for a in body["adapters"]) \
            or bool(body["source_problems"])
        if body["store_writable"] and not failed:
            return body, 200
        body["status"] = "degraded"
        return body, 503

    @api.get("/healthz")
    def healthz() -> Any:
        """200 when well; 503 when the store cannot write, an adapter FAILED or a source's
        link is down, for a load balancer or monitoring system. Public: with login on, no
        details (:func:`public_health`); without login (loopback only) the detailed body."""
        body, status = health_body()
        return jsonify(public_health(body) if auth_enabled() else body), status

    @api.get("/api/v1/health")
    def health() -> Any:
        """The detailed health: adapters' settings (ports, broker, client id) and counters,
        the store's statistics (who may read the configuration may read this)."""
        require(HEALTH_PERMISSION)
        body, status = health_body()
        return jsonify(body), status
