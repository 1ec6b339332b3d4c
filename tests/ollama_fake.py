"""A fake Ollama server on 127.0.0.1 that speaks the documented REST API, with switchable faults.

A real Ollama cannot be installed here, so the LLM tests run the real ``ollama`` client against
this server. It answers as Ollama does (``docs/api.md`` of ollama/ollama and its
``server/routes.go``):

- ``POST /api/chat``: with ``"stream": false`` one JSON object; otherwise ``application/x-ndjson``
  in chunked transfer encoding, one object per generated token (``"done": false``), then a final
  object with ``"done": true``, ``done_reason`` and the statistics ``total_duration``,
  ``load_duration``, ``prompt_eval_count``, ``prompt_eval_duration``, ``eval_count``,
  ``eval_duration`` (durations in nanoseconds). An error after the stream started is sent as a
  ``{"error": "..."}`` line, as Ollama's ``streamResponse`` does.
- ``GET /api/tags``: ``{"models": [{"name", "model", "modified_at", "size", "digest", "details"}]}``.
- A model that is not installed: 404 ``{"error": "model \\"x\\" not found, try pulling it first"}``.

Each model gets a :class:`Script` (``server.script("llama3.2:3b", fault="slow", delay_s=1.0)``):

============== =====================================================================
fault          behaviour
============== =====================================================================
ok             a valid verdict at ``tokens_per_s`` (default 40 tokens/s)
slow           sleeps ``delay_s`` (real time, default 2 s) before answering, then as ok
slow_stream    streams as ok but waits ``chunk_delay_s`` (default 0.1 s) before every token
http_500       500 ``{"error": "llama runner process has terminated: ..."}``
not_found      404 model not found (also any model never scripted)
echo_auth      401 whose error text echoes the Authorization header (a careless proxy)
malformed_json content that is not JSON (a reply cut off mid-string)
schema         JSON that violates the verdict schema (``action`` MAYBE, ``confidence`` 1.7)
mid_stream     a few tokens, then an ``{"error": ...}`` line
drop           a few tokens, then the connection is closed without ending the stream
low_tokens     as ok but its statistics say 2 tokens/s
============== =====================================================================

``content`` overrides the reply text of the faults that send one. Every request is recorded
(:attr:`FakeOllama.received`) with its lower-cased headers and parsed JSON body. A port nobody
listens on (connection refused) comes from :func:`refused_host`.
"""

from __future__ import annotations

import hashlib
import json
import socket
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

FAULTS = (
    "ok",
    "slow",
    "slow_stream",
    "http_500",
    "not_found",
    "echo_auth",
    "malformed_json",
    "schema",
    "mid_stream",
    "drop",
    "low_tokens",
)
VERDICT = {"action": "BUY", "confidence": 0.62, "rationale": "forecast edge exceeds costs"}
SCHEMA_VIOLATION = '{"action": "MAYBE", "confidence": 1.7, "rationale": "unsure"}'
MALFORMED = '{"action": "BUY", "confidence": 0.62, "rationale": "forecast edge exc'
RUNNER_DIED = "llama runner process has terminated: signal: killed"
MID_STREAM_ERROR = "an error was encountered while running the model: unexpected EOF"
CREATED_AT = "2024-12-06T00:46:58.265747Z"
SLOW_DEFAULT_S = 2.0
SLOW_CHUNK_DEFAULT_S = 0.1


@dataclass(frozen=True)
class Script:
    """How one model answers: a fault from :data:`FAULTS`; ``delay_s`` before the answer and
    ``chunk_delay_s`` before each streamed token (seconds, real time), ``tokens_per_s`` the speed
    its statistics report, ``content`` the reply text (default: per fault)."""

    fault: str = "ok"
    content: str | None = None
    delay_s: float = 0.0
    chunk_delay_s: float = 0.0
    tokens_per_s: float = 40.0

    def __post_init__(self) -> None:
        if self.fault not in FAULTS:
            raise ValueError(f"unknown fault {self.fault!r}; known: {FAULTS}")

    def reply_text(self) -> str:
        if self.content is not None:
            return self.content
        if self.fault == "malformed_json":
            return MALFORMED
        if self.fault == "schema":
            return SCHEMA_VIOLATION
        return json.dumps(VERDICT)


@dataclass(frozen=True)
class Received:
    """One request as the server saw it (header names lower-cased, body parsed when JSON)."""

    method: str
    path: str
    headers: dict[str, str]
    body: Any = None


def tokens(text: str, size: int = 3) -> list[str]:
    """``text`` in pieces of ``size`` characters, the way a model streams tokens."""
    return [text[i : i + size] for i in range(0, len(text), size)] or [""]


def _stats(n_tokens: int, tokens_per_s: float) -> dict[str, Any]:
    """Ollama's final statistics for ``n_tokens`` generated at ``tokens_per_s`` (nanoseconds)."""
    eval_duration = int(n_tokens / tokens_per_s * 1e9)
    load, prompt_eval = 1_334_875, 342_546_000
    return {
        "done_reason": "stop",
        "done": True,
        "total_duration": load + prompt_eval + eval_duration,
        "load_duration": load,
        "prompt_eval_count": 26,
        "prompt_eval_duration": prompt_eval,
        "eval_count": n_tokens,
        "eval_duration": eval_duration,
    }


class FakeOllama:
    """A ``ThreadingHTTPServer`` on an ephemeral 127.0.0.1 port; use as a context manager."""

    def __init__(self) -> None:
        self.received: list[Received] = []
        self._scripts: dict[str, Script] = {}
        self._lock = threading.Lock()
        self._stopping = threading.Event()
        self._httpd = ThreadingHTTPServer(("127.0.0.1", 0), self._handler_class())
        self._thread = threading.Thread(
            target=self._httpd.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True
        )

    @property
    def host(self) -> str:
        """``http://127.0.0.1:<port>``, as ``OLLAMA_HOST`` or ``ollama.Client(host=...)`` take it."""
        host, port = self._httpd.server_address[:2]
        return f"http://{host}:{port}"

    def __enter__(self) -> FakeOllama:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stopping.set()  # wakes handlers sleeping in a slow fault
        self._httpd.shutdown()
        self._httpd.server_close()
        self._thread.join(timeout=5)

    def script(self, model: str, fault: str = "ok", **params: Any) -> None:
        """Make ``model`` answer with ``fault`` (see the module docstring) from now on."""
        with self._lock:
            self._scripts[model] = Script(fault, **params)

    def chats(self, model: str | None = None) -> list[Received]:
        """The ``POST /api/chat`` requests received (for ``model`` only, when given)."""
        with self._lock:
            return [
                r
                for r in self.received
                if r.path == "/api/chat" and (model is None or (r.body or {}).get("model") == model)
            ]

    def _record(self, received: Received) -> Script | None:
        with self._lock:
            self.received.append(received)
            model = (received.body or {}).get("model") if isinstance(received.body, dict) else None
            return self._scripts.get(model) if model else None

    def _tags(self) -> dict[str, Any]:
        with self._lock:
            names = sorted(m for m, s in self._scripts.items() if s.fault != "not_found")
        return {"models": [_tag(name) for name in names]}

    def _handler_class(self) -> type[BaseHTTPRequestHandler]:
        server = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"
            disable_nagle_algorithm = True  # no 40 ms delayed-ACK stalls between chunks

            def handle(self) -> None:
                try:
                    super().handle()
                except (BrokenPipeError, ConnectionResetError):
                    self.close_connection = True  # the client hung up mid-stream (a timeout test)

            def do_GET(self) -> None:  # noqa: N802
                server._record(Received("GET", self.path, _lower(self.headers)))
                if self.path == "/api/tags":
                    self._json(200, server._tags())
                else:
                    self._json(404, {"error": "404 page not found"}, text=True)

            def do_POST(self) -> None:  # noqa: N802
                length = int(self.headers.get("Content-Length") or 0)
                raw = self.rfile.read(length) if length else b""
                try:
                    body = json.loads(raw) if raw else None
                except json.JSONDecodeError:
                    body = raw.decode(errors="replace")
                script = server._record(Received("POST", self.path, _lower(self.headers), body))
                if self.path != "/api/chat":
                    self._json(404, {"error": "404 page not found"}, text=True)
                elif not isinstance(body, dict) or not body.get("model"):
                    self._json(400, {"error": "model is required"})
                elif script is None or script.fault == "not_found":
                    self._json(404, {"error": f'model "{body["model"]}" not found, try pulling it first'})
                else:
                    self._chat(body, script)

            def _chat(self, body: dict[str, Any], script: Script) -> None:
                delay = script.delay_s or (SLOW_DEFAULT_S if script.fault == "slow" else 0.0)
                if delay and server._stopping.wait(delay):
                    return  # the server is shutting down
                if script.fault == "http_500":
                    self._json(500, {"error": RUNNER_DIED})
                    return
                if script.fault == "echo_auth":
                    sent = self.headers.get("Authorization", "")
                    self._json(401, {"error": f"unauthorized: credentials {sent!r} rejected"})
                    return
                text = script.reply_text()
                rate = 2.0 if script.fault == "low_tokens" else script.tokens_per_s
                pieces = tokens(text)
                if body.get("stream") is False:
                    message = {"role": "assistant", "content": text}
                    self._json(200, _chunk(body["model"], message) | _stats(len(pieces), rate))
                    return
                self._stream(body["model"], pieces, script, rate)

            def _stream(self, model: str, pieces: list[str], script: Script, rate: float) -> None:
                pause = script.chunk_delay_s or (
                    SLOW_CHUNK_DEFAULT_S if script.fault == "slow_stream" else 0.0
                )
                try:
                    self.send_response(200)
                    self.send_header("Content-Type", "application/x-ndjson")
                    self.send_header("Transfer-Encoding", "chunked")
                    self.end_headers()
                    for i, piece in enumerate(pieces):
                        if script.fault in ("mid_stream", "drop") and i == 3:
                            break
                        if pause and server._stopping.wait(pause):
                            return
                        self._line(_chunk(model, {"role": "assistant", "content": piece}, done=False))
                    if script.fault == "drop":
                        self.wfile.flush()
                        self.connection.shutdown(socket.SHUT_RDWR)  # no terminating chunk
                        self.close_connection = True
                        return
                    if script.fault == "mid_stream":
                        self._line({"error": MID_STREAM_ERROR})
                    else:
                        final = _chunk(model, {"role": "assistant", "content": ""}) | _stats(
                            len(pieces), rate
                        )
                        self._line(final)
                    self.wfile.write(b"0\r\n\r\n")
                except (BrokenPipeError, ConnectionResetError):
                    self.close_connection = True  # the client gave up (a timeout test)

            def _line(self, payload: dict[str, Any]) -> None:
                data = json.dumps(payload).encode() + b"\n"
                self.wfile.write(f"{len(data):x}\r\n".encode() + data + b"\r\n")
                self.wfile.flush()

            def _json(self, status: int, payload: dict[str, Any], *, text: bool = False) -> None:
                # Gin answers unknown routes with a plain-text "404 page not found".
                data = payload["error"].encode() if text else json.dumps(payload).encode()
                try:
                    self.send_response(status)
                    self.send_header(
                        "Content-Type", "text/plain" if text else "application/json; charset=utf-8"
                    )
                    self.send_header("Content-Length", str(len(data)))
                    self.end_headers()
                    self.wfile.write(data)
                except (BrokenPipeError, ConnectionResetError):
                    self.close_connection = True

            def log_message(self, format: str, *args: Any) -> None:  # noqa: A002
                """Silence the default stderr access log."""

        return Handler


def _lower(headers: Any) -> dict[str, str]:
    return {k.lower(): v for k, v in headers.items()}


def _chunk(model: str, message: dict[str, str], *, done: bool | None = None) -> dict[str, Any]:
    out: dict[str, Any] = {"model": model, "created_at": CREATED_AT, "message": message}
    if done is not None:
        out["done"] = done
    return out


def _tag(name: str) -> dict[str, Any]:
    digest = hashlib.sha256(name.encode()).hexdigest()
    family = name.split(":")[0].rstrip("0123456789.") or name
    size = name.split(":")[-1].upper() if ":" in name else "3B"
    return {
        "name": name,
        "model": name,
        "modified_at": "2024-12-07T09:32:18.757212583-08:00",
        "size": 2_019_393_189,
        "digest": digest,
        "details": {
            "parent_model": "",
            "format": "gguf",
            "family": family,
            "families": [family],
            "parameter_size": size,
            "quantization_level": "Q4_K_M",
        },
    }


def refused_host() -> str:
    """``http://127.0.0.1:<port>`` where nothing listens: connecting is refused at once."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    return f"http://127.0.0.1:{port}"


@pytest.fixture
def ollama_server() -> Iterator[FakeOllama]:
    """A running :class:`FakeOllama`, shut down after the test."""
    with FakeOllama() as server:
        yield server
