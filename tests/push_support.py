"""Reading the push stream (``GET /live/stream``, dashboard/push.py; ``path``: the site's) through
Flask's test client, as a browser's EventSource reads it: the events one by one, then the tab goes."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from typing import Any


def new_tab() -> str:
    return uuid.uuid4().hex


class Stream:
    """One tab's open stream; ``next()`` is its next event as (name, data), name "message"
    for the bay's changes; None once the server ended it."""

    def __init__(self, client: Any, *, tab: str | None = None, sound: str | None = "off",
                 query: str | None = None, path: str = "/live/stream") -> None:
        if query is None:
            query = f"tab={tab or new_tab()}" + (f"&sound={sound}" if sound is not None else "")
        self.answer = client.get(f"{path}?{query}", buffered=False)
        assert self.answer.status_code == 200, self.answer.get_data(as_text=True)[:300]
        assert self.answer.mimetype == "text/event-stream"
        self._chunks: Iterator[Any] = iter(self.answer.response)
        self._buffer = ""

    def next(self) -> tuple[str, dict[str, Any]] | None:
        while True:
            if "\n\n" in self._buffer:
                block, self._buffer = self._buffer.split("\n\n", 1)
                fields = dict(line.split(": ", 1) for line in block.split("\n") if ": " in line)
                if "data" in fields:
                    return fields.get("event", "message"), json.loads(fields["data"])
                continue
            chunk = next(self._chunks, None)
            if chunk is None:
                return None
            self._buffer += chunk.decode() if isinstance(chunk, bytes) else chunk

    def until(self, predicate: Any, limit: int = 50) -> dict[str, Any]:
        """The first bay event whose data satisfies ``predicate`` (within ``limit`` events:
        at least one a second)."""
        for _ in range(limit):
            got = self.next()
            assert got is not None, "the stream ended"
            if got[0] == "message" and predicate(got[1]):
                return got[1]
        raise AssertionError(f"no event within {limit} satisfied {predicate}")

    def close(self) -> None:
        self.answer.close()

    def __enter__(self) -> Stream:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()


def events(client: Any, count: int = 1, **kw: Any) -> list[tuple[str, dict[str, Any]]]:
    """The first ``count`` events of one tab's stream; then the tab closes it."""
    out = []
    with Stream(client, **kw) as stream:
        while len(out) < count and (got := stream.next()) is not None:
            out.append(got)
    return out


def view(client: Any, **kw: Any) -> dict[str, Any]:
    """What a screen that just opened sees: the first event, the whole bay."""
    [(name, data)] = events(client, 1, **kw)
    assert name == "message"
    return data
