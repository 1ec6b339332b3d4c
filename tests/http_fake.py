"""A scripted HTTP server on 127.0.0.1 for testing web sources without the network.

Routes are a path plus optional query parameters to match (``{"symbol": "AAPL"}``); each route
holds a queue of :class:`Reply` objects served in order, the last one repeating. Routes with
query matches win over bare paths; a request no route matches gets a 404. Every request is
recorded with its headers so tests can check what the client sent (and what it did not).

Usage::

    with FakeHttpServer() as server:
        server.script("/query", Reply(429, {"Retry-After": "2"}), Reply.json({...}),
                      query={"symbol": "AAPL"})
        ...  # point the client at server.url
        assert len(server.received_at("/query", symbol="AAPL")) == 2

or through the ``fake_server`` fixture below. :class:`FakeTime` stands in for the clients' clock
and sleep, and :data:`POLICY` is the retry policy the tests' expected sleeps are written for.
"""

from __future__ import annotations

import json
import threading
import time
from collections import deque
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest

from model_code.market_data.sources.http import HttpPolicy


@dataclass(frozen=True)
class Reply:
    """One scripted response; ``body`` is sent as bytes (``str`` is UTF-8 encoded).

    ``delay_s`` holds the answer back (real time) to provoke client timeouts.
    """

    status: int = 200
    headers: Mapping[str, str] = field(default_factory=dict)
    body: bytes | str = b""
    delay_s: float = 0.0

    @classmethod
    def json(cls, payload: Any, status: int = 200, **headers: str) -> Reply:
        return cls(status, {"Content-Type": "application/json", **headers}, json.dumps(payload))

    @classmethod
    def text(cls, body: str, status: int = 200, **headers: str) -> Reply:
        return cls(status, {"Content-Type": "text/plain", **headers}, body)


@dataclass(frozen=True)
class Received:
    """One request as the server saw it (header names lower-cased)."""

    method: str
    target: str  # path and raw query string, exactly as sent
    path: str
    query: dict[str, str]
    headers: dict[str, str]


@dataclass
class _Route:
    path: str
    query: dict[str, str]
    replies: deque[Reply]

    def matches(self, path: str, query: Mapping[str, str]) -> bool:
        return path == self.path and all(query.get(k) == v for k, v in self.query.items())

    def next_reply(self) -> Reply:
        return self.replies.popleft() if len(self.replies) > 1 else self.replies[0]


class FakeHttpServer:
    """A ``ThreadingHTTPServer`` on an ephemeral port, served from a daemon thread."""

    def __init__(self) -> None:
        self.received: list[Received] = []
        self._routes: list[_Route] = []
        self._lock = threading.Lock()
        self._httpd = ThreadingHTTPServer(("127.0.0.1", 0), self._handler_class())
        self._thread = threading.Thread(
            target=self._httpd.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True
        )

    @property
    def url(self) -> str:
        host, port = self._httpd.server_address[:2]
        return f"http://{host}:{port}"

    def __enter__(self) -> FakeHttpServer:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._httpd.shutdown()
        self._httpd.server_close()
        self._thread.join(timeout=5)

    def script(self, path: str, *replies: Reply, query: Mapping[str, str] | None = None) -> None:
        """Serve ``replies`` in order to requests for ``path`` (and ``query``); replaces a route."""
        if not replies:
            raise ValueError("script at least one reply")
        route = _Route(path, dict(query or {}), deque(replies))
        with self._lock:
            self._routes = [r for r in self._routes if (r.path, r.query) != (route.path, route.query)]
            # Most specific first: routes that also match query parameters win.
            self._routes.append(route)
            self._routes.sort(key=lambda r: -len(r.query))

    def received_at(self, path: str, **query: str) -> list[Received]:
        """Requests for ``path`` whose query has (at least) these parameters."""
        with self._lock:
            return [
                r
                for r in self.received
                if r.path == path and all(r.query.get(k) == v for k, v in query.items())
            ]

    def _answer(self, method: str, target: str, headers: Mapping[str, str]) -> Reply:
        parts = urlsplit(target)
        query = {k: v[-1] for k, v in parse_qs(parts.query, keep_blank_values=True).items()}
        with self._lock:
            lowered = {k.lower(): v for k, v in headers.items()}
            self.received.append(Received(method, target, parts.path, query, lowered))
            for route in self._routes:
                if route.matches(parts.path, query):
                    return route.next_reply()
        return Reply.json({"error": f"no route for {parts.path}"}, status=404)

    def _handler_class(self) -> type[BaseHTTPRequestHandler]:
        server = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"
            disable_nagle_algorithm = True  # no 40 ms delayed-ACK stalls between header and body

            def _serve(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                if length:
                    self.rfile.read(length)
                reply = server._answer(self.command, self.path, dict(self.headers.items()))
                if reply.delay_s:
                    time.sleep(reply.delay_s)
                body = reply.body.encode() if isinstance(reply.body, str) else reply.body
                try:
                    self.send_response(reply.status)
                    for name, value in reply.headers.items():
                        self.send_header(name, value)
                    self.send_header("Content-Length", str(len(body)))
                    self.end_headers()
                    self.wfile.write(body)
                except (BrokenPipeError, ConnectionResetError):
                    self.close_connection = True  # the client gave up (timeout test)

            do_GET = do_POST = _serve  # noqa: N815

            def log_message(self, format: str, *args: Any) -> None:  # noqa: A002
                """Silence the default stderr access log."""

        return Handler


# No rate limit (sleeps are then retry backoff only): 4 attempts, backoff 1, 2, 4 s, capped at 30.
POLICY = HttpPolicy(
    requests_per_minute=0,
    max_attempts=4,
    backoff_s=1.0,
    backoff_max_s=30.0,
    timeout_s=5.0,
    cache_ttl_s=3600.0,
)


class FakeTime:
    """Clock and sleep for the clients: sleeping only advances the clock, and is recorded."""

    def __init__(self) -> None:
        self.now, self.sleeps = 1000.0, []

    def clock(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds


@pytest.fixture
def fake_server() -> Iterator[FakeHttpServer]:
    """A running :class:`FakeHttpServer`, shut down after the test."""
    with FakeHttpServer() as server:
        yield server
