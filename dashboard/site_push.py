"""The site view's push channel: the bays' cards as Server-Sent Events, like the bay screen's.

One :class:`SiteFeed` per app with a site source (``LiveBay.site``): one thread waits on the
source's :meth:`~monitor.site.SiteSource.wait_change` (the stores polled, or PostgreSQL's
LISTEN/NOTIFY) and re-reads the summaries when it says something changed; in any case it
builds the view (``dashboard.site_view.site_view``: the strings and classes of every card)
once every ``period`` s from the latest summaries, so the ages move and every stream hears
from the feed at least once a second. Each open site screen holds one ``GET
/live/site-stream`` (``dashboard.push.stream``): the whole view first, then only what changed;
``assets/site.js`` writes it into the elements marked ``data-sf``.

The thread runs while a site stream is open. The site stream, like the page, needs a login
(any role; not the wall display): ``dashboard.auth_access.PAGES``.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterator

from flask import Flask, Response, abort, request, stream_with_context

from dashboard.auth import login_check
from dashboard.live import LiveBay
from dashboard.push import Feed, sse, stream
from dashboard.server import STOPPING
from dashboard.site_view import site_view
from monitor.site import BaySummary, SiteSource

__all__ = ["SITE_PAGE", "SITE_STREAM", "SiteFeed", "install_site_push"]

log = logging.getLogger("chairside.site")

SITE_PAGE = "/site"
SITE_STREAM = "/live/site-stream"


class SiteFeed(Feed):
    """The site's view for the site streams, rebuilt on change and every ``period`` s."""

    _thread_name = "site-feed"

    def __init__(self, source: SiteSource, clock: Callable[[], float] = time.time, *,
                 period: float = 1.0, max_streams: int = 16, check_every: float = 2.0) -> None:
        self.source = source
        self.clock = clock
        self.period = period
        self.max_streams = max_streams
        self.check_every = check_every
        self._init_streams()
        self.reads = 0  # how often the summaries were read (once per change, not per second)

    def _run(self) -> None:
        summaries: list[BaySummary] | None = None
        changed = True
        while not self._done():
            try:
                if changed or summaries is None:
                    summaries = self.source.summaries()
                    self.reads += 1
                view = site_view(summaries, self.clock())
            except Exception:  # the streams then go quiet: the screens show it, nothing is hidden
                log.exception("building the site's view failed")
            else:
                self._publish(view)
            started = time.monotonic()
            try:
                changed = self.source.wait_change(self.period)
            except Exception:
                log.exception("waiting for the site to change failed")
                changed = True
                time.sleep(max(0.0, started + self.period - time.monotonic()))  # not a busy loop


def install_site_push(server: Flask, live: LiveBay) -> None:
    """``GET /live/site-stream``: the push stream of one site screen (404 without a site
    source, as ``/site`` itself then is)."""

    @server.before_request
    def no_site() -> None:
        if live.site is None and request.path == SITE_PAGE:
            abort(404)

    @server.route(SITE_STREAM)
    def site_stream() -> Response:
        feed = live.site_feed
        if feed is None:
            abort(404)
        body = _guarded(feed, login_check(), request.environ.get(STOPPING))
        return Response(stream_with_context(body), mimetype="text/event-stream",
                        headers={"Cache-Control": "no-store", "X-Accel-Buffering": "no"})


def _guarded(feed: SiteFeed, allowed: Callable[[], bool], stopping: threading.Event | None) -> Iterator[str]:
    if not feed.join():
        yield sse({"retry_s": 5}, "busy")
        return
    yield from stream(feed, seen=lambda: None, allowed=allowed, stopping=stopping)
