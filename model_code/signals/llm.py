"""The LLM fallback: ask Ollama models, in order, for a BUY/SELL/HOLD verdict on one ticker.

:func:`build_prompt` writes the question from point-in-time numbers only (no date, and by
default no ticker), :func:`ask_llm` asks each model in turn through anything with the
``ollama.Client.chat`` signature and returns the first verdict that is valid JSON matching
:data:`LLM_SCHEMA`, with one :class:`LlmCall` per attempt saying what happened. Nothing raises
for a slow, broken or unreachable server: the caller gets ``None`` and HOLDs.

Every attempt streams (so a mid-stream error and the final statistics are seen), runs under a
per-call latency budget and a :class:`RunBudget` shared by the whole run, and fails over to the
next model when it errs, is late, breaks the schema or generates below a tokens/s floor. Error
texts are stripped of every configured secret (a bearer token) before they are stored or logged.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import logging
import math
import numbers
import os
import re
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

import httpx
import jsonschema
import ollama
import polars as pl
import pydantic

from model_code.market_data.sources.redaction import SecretRedactor

log = logging.getLogger(__name__)

ACTIONS = ("BUY", "SELL", "HOLD")
LLM_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {
        "action": {"type": "string", "enum": list(ACTIONS)},
        "confidence": {"type": "number", "minimum": 0, "maximum": 1},
        "rationale": {"type": "string"},
    },
    "required": ["action", "confidence", "rationale"],
    "additionalProperties": False,
}
_VALIDATOR = jsonschema.Draft202012Validator(LLM_SCHEMA)
Outcome = Literal[
    "ok",
    "timeout",
    "unreachable",
    "http_error",
    "invalid_json",
    "schema_violation",
    "stream_error",
    "too_slow",
    "budget_exhausted",
]
OUTCOMES: tuple[str, ...] = Outcome.__args__  # type: ignore[attr-defined]
ANONYMOUS_LABEL = "asset A"
_INPUT_NAME = re.compile(r"[a-z][a-z0-9_]*")

# httpx logs each request line at INFO and httpcore its steps at DEBUG; neither writes request
# headers today, but a secret must not reach a log even if a future version does.
_TRANSPORT_LOG_REDACTOR = SecretRedactor()
for _name in ("httpx", "httpcore.connection", "httpcore.http11", "httpcore.http2", "httpcore.proxy"):
    logging.getLogger(_name).addFilter(_TRANSPORT_LOG_REDACTOR)


@dataclass(frozen=True)
class LlmVerdict:
    """A model's valid answer: ``action`` BUY/SELL/HOLD, its stated ``confidence`` in [0, 1]
    (uncalibrated: the router calibrates it), a one-line ``rationale`` and the ``model`` name."""

    action: str
    confidence: float
    rationale: str
    model: str


def _utc_now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


@dataclass(frozen=True)
class LlmCall:
    """One attempt: ``latency_ms`` from request to last byte (milliseconds), ``tokens_per_s`` from
    the server's ``eval_count / eval_duration`` (None when it sent none), the sha256 of the prompt,
    the ``outcome`` (one of :data:`OUTCOMES`), the secret-free ``error`` text (None when ok) and
    ``called_at`` (time-zone aware, UTC, like every timestamp of the ``signals`` schema)."""

    model: str
    latency_ms: float
    tokens_per_s: float | None
    prompt_sha256: str
    outcome: str
    error: str | None = None
    called_at: dt.datetime = field(default_factory=_utc_now)


@dataclass
class RunBudget:
    """What every LLM call of one run may spend together: ``seconds`` of latency, ``max_calls`` calls.

    :func:`ask_llm` charges each attempt's latency and one call; once either is spent no more
    attempts are made.
    """

    seconds: float
    max_calls: int
    spent_s: float = 0.0
    calls: int = 0

    @property
    def remaining_s(self) -> float:
        return max(0.0, self.seconds - self.spent_s)

    @property
    def exhausted(self) -> bool:
        return self.spent_s >= self.seconds or self.calls >= self.max_calls

    def charge(self, seconds: float) -> None:
        """Record one call that took ``seconds``."""
        self.calls += 1
        self.spent_s += max(0.0, seconds)

    def describe(self) -> str:
        return f"{self.spent_s:.1f} of {self.seconds:g} s and {self.calls} of {self.max_calls} calls spent"


def build_prompt(
    inputs: Mapping[str, float | None], *, ticker: str, anonymize: bool = True, horizon: int
) -> str:
    """The question for one ticker, from point-in-time numbers only.

    ``inputs``: feature, forecast and interval values as of the decision session's close, named
    in snake_case (``ts_yhat``, ``rv_21``...); None or non-finite prints ``n/a``. No date is
    written anywhere, and with ``anonymize`` the ticker is replaced by :data:`ANONYMOUS_LABEL`, so
    the model can neither look the day up nor recall the company's later history. The text is
    deterministic: names sorted, every value with 6 fixed decimals. ``horizon`` is in sessions.

    Raises:
        ValueError: a name that is not snake_case, or (anonymized) that contains the ticker.
        TypeError: a value that is not a real number (a date, a string, a bool).
    """
    if horizon < 1:
        raise ValueError(f"horizon must be at least 1 session, got {horizon}")
    symbol = re.sub(r"[^a-z0-9]", "", ticker.lower())
    lines = []
    for name in sorted(inputs):
        value = inputs[name]
        if not _INPUT_NAME.fullmatch(name):
            raise ValueError(f"prompt input {name!r}: names are snake_case, [a-z][a-z0-9_]*")
        if anonymize and symbol and symbol in name.split("_"):
            raise ValueError(f"prompt input {name!r} names the ticker; the prompt is anonymized")
        if value is not None and (isinstance(value, bool) or not isinstance(value, numbers.Real)):
            raise TypeError(f"prompt input {name!r}: only numbers go into the prompt, got {value!r}")
        shown = "n/a" if value is None or not math.isfinite(value) else f"{float(value):.6f}"
        lines.append(f"- {name}: {shown}")
    label = ANONYMOUS_LABEL if anonymize else ticker
    return "\n".join(
        [
            f"Decide one action for {label} over the next {horizon} trading sessions.",
            "Use only these numbers, all known at the close of the decision session "
            "(returns are log returns: 0.010000 is about +1 %):",
            *(lines or ["- (none)"]),
            'Answer with one JSON object: {"action": "BUY", "SELL" or "HOLD", "confidence": the '
            "probability from 0 to 1 that the price moves the way the action bets (0.5 is no view; "
            'say HOLD when unsure), "rationale": one short sentence citing the numbers}.',
        ]
    )


def prompt_sha256(prompt: str) -> str:
    """Hex sha256 of the prompt's UTF-8 bytes: which question a logged call asked."""
    return hashlib.sha256(prompt.encode()).hexdigest()


class _Failed(Exception):
    """An attempt failed with ``outcome``; the message is the (unredacted) reason."""

    def __init__(self, outcome: str, reason: str, tokens_per_s: float | None = None) -> None:
        super().__init__(reason)
        self.outcome, self.tokens_per_s = outcome, tokens_per_s


def ask_llm(
    client: Any,
    models: Sequence[str],
    prompt: str,
    *,
    call_timeout_s: float = 5.0,
    budget: RunBudget,
    min_tokens_per_s: float,
    secrets: Iterable[str] = (),
    clock: Callable[[], float] = time.monotonic,
) -> tuple[LlmVerdict | None, list[LlmCall]]:
    """Ask ``models`` in order; return the first valid verdict (or None) and every attempt made.

    Each attempt streams ``client.chat(model, [prompt], format=LLM_SCHEMA, options={"temperature":
    0})``. It fails, and the next model is asked, when the server is unreachable or answers an
    HTTP error, the stream breaks, the reply is not JSON or breaks :data:`LLM_SCHEMA`, it takes
    longer than ``min(call_timeout_s, budget.remaining_s)`` seconds, or it generated below
    ``min_tokens_per_s`` tokens per second. ``client`` must carry its own HTTP timeout (the
    ``ollama`` client's default waits forever; ``OllamaResource.client`` sets one): the deadline
    is checked between streamed tokens, the timeout bounds a silent server. When ``budget`` is
    spent, no further attempt is made and one ``budget_exhausted`` call is logged.

    ``secrets`` (and ``$OLLAMA_API_KEY``, which the client sends when set) are replaced by ``***``
    in every error text and log line. ``clock`` is monotonic seconds.
    """
    # The ollama client sends $OLLAMA_API_KEY as a bearer token by itself when no header is set.
    redactor = SecretRedactor([*secrets, os.environ.get("OLLAMA_API_KEY", "")])
    _TRANSPORT_LOG_REDACTOR.add([*secrets, os.environ.get("OLLAMA_API_KEY", "")])
    digest = prompt_sha256(prompt)
    calls: list[LlmCall] = []
    for model in models:
        if budget.exhausted:
            reason = f"run budget spent ({budget.describe()}); not asked"
            calls.append(LlmCall(model, 0.0, None, digest, "budget_exhausted", reason))
            log.warning("llm %s: budget_exhausted: %s", model, reason)
            break
        deadline_s = min(call_timeout_s, budget.remaining_s)
        called_at, start = _utc_now(), clock()
        try:
            verdict, tokens_per_s = _attempt(client, model, prompt, deadline_s, start, clock)
            if tokens_per_s is not None and tokens_per_s < min_tokens_per_s:
                raise _Failed(
                    "too_slow",
                    f"generated {tokens_per_s:.1f} tokens/s < floor {min_tokens_per_s:g}",
                    tokens_per_s,
                )
        except _Failed as failed:
            latency = clock() - start
            budget.charge(latency)
            error = redactor.redact(str(failed))
            calls.append(
                LlmCall(model, latency * 1e3, failed.tokens_per_s, digest, failed.outcome, error, called_at)
            )
            log.warning("llm %s: %s after %.0f ms: %s", model, failed.outcome, latency * 1e3, error)
            continue
        latency = clock() - start
        budget.charge(latency)
        calls.append(LlmCall(model, latency * 1e3, tokens_per_s, digest, "ok", None, called_at))
        log.info(
            "llm %s: ok after %.0f ms: %s %.2f", model, latency * 1e3, verdict.action, verdict.confidence
        )
        return verdict, calls
    return None, calls


def _attempt(
    client: Any, model: str, prompt: str, deadline_s: float, start: float, clock: Callable[[], float]
) -> tuple[LlmVerdict, float | None]:
    """One streamed chat; the verdict and tokens/s, or :class:`_Failed` with the outcome."""
    pieces: list[str] = []
    final = None
    try:
        stream = client.chat(
            model=model,
            messages=[{"role": "user", "content": prompt}],
            format=LLM_SCHEMA,
            options={"temperature": 0},
            stream=True,
        )
        try:
            for part in stream:
                pieces.append(part.message.content or "")
                if part.done:
                    final = part
                    break
                if clock() - start > deadline_s:
                    raise _Failed("timeout", f"still streaming after the {deadline_s:.2f} s latency budget")
        finally:
            close = getattr(stream, "close", None)
            if close is not None:
                close()  # ends the HTTP response when we stop reading early
    except ollama.ResponseError as exc:
        if exc.status_code == -1:  # an {"error": ...} line after the stream had started
            raise _Failed("stream_error", f"error mid-stream: {exc.error}") from None
        raise _Failed("http_error", f"HTTP {exc.status_code}: {exc.error}") from None
    except httpx.TimeoutException as exc:
        raise _Failed("timeout", f"no answer within the HTTP timeout ({type(exc).__name__})") from None
    except (ConnectionError, httpx.ConnectError) as exc:
        # The client raises ConnectionError when not streaming, httpx.ConnectError when streaming.
        raise _Failed("unreachable", f"cannot connect: {exc}") from None
    except (httpx.HTTPError, json.JSONDecodeError, pydantic.ValidationError) as exc:
        raise _Failed("stream_error", f"broken stream: {type(exc).__name__}: {exc}") from None
    if final is None:
        raise _Failed("stream_error", "the stream ended before its final (done) message")
    tokens_per_s = _tokens_per_s(final.eval_count, final.eval_duration)
    if clock() - start > deadline_s:
        raise _Failed("timeout", f"answered after the {deadline_s:.2f} s latency budget", tokens_per_s)
    return _verdict("".join(pieces), model, tokens_per_s), tokens_per_s


def _tokens_per_s(eval_count: int | None, eval_duration_ns: int | None) -> float | None:
    if not eval_count or not eval_duration_ns or eval_duration_ns <= 0:
        return None
    return eval_count / (eval_duration_ns / 1e9)


def _reject_constant(name: str) -> float:
    raise ValueError(f"{name} is not JSON")


def _verdict(content: str, model: str, tokens_per_s: float | None) -> LlmVerdict:
    """The reply text as a verdict, or :class:`_Failed` (``invalid_json`` / ``schema_violation``)."""
    try:
        reply = json.loads(content, parse_constant=_reject_constant)
    except ValueError as exc:
        raise _Failed("invalid_json", f"reply is not JSON ({exc}): {content[:120]!r}", tokens_per_s) from None
    problems = sorted(_VALIDATOR.iter_errors(reply), key=lambda e: list(e.path))
    if problems:
        where = "; ".join(f"{'/'.join(map(str, e.path)) or '(root)'}: {e.message}" for e in problems)
        raise _Failed("schema_violation", f"reply breaks the schema: {where}", tokens_per_s)
    return LlmVerdict(reply["action"], float(reply["confidence"]), reply["rationale"], model)


LLM_CALLS_SCHEMA: dict[str, pl.DataType] = {
    "run_id": pl.String(),
    "as_of": pl.Date(),
    "ticker": pl.String(),
    "attempt": pl.Int32(),
    "model": pl.String(),
    "latency_ms": pl.Float64(),
    "tokens_per_s": pl.Float64(),
    "prompt_sha256": pl.String(),
    "outcome": pl.String(),
    "error": pl.String(),
    "called_at": pl.Datetime("us", "UTC"),
    "action": pl.String(),
    "stated_confidence": pl.Float64(),
}
LLM_CALLS_KEY = ("run_id", "as_of", "ticker", "attempt")


def llm_calls_frame(
    calls: Sequence[LlmCall],
    *,
    run_id: str,
    as_of: dt.date,
    ticker: str,
    verdict: LlmVerdict | None = None,
) -> pl.DataFrame:
    """Rows of ``signals.llm_calls`` for one ticker's attempts, numbered 1, 2, ... in call order
    (upsert with key :data:`LLM_CALLS_KEY`). The attempt that produced ``verdict`` (the last
    ``ok`` one) carries its ``action`` and ``stated_confidence``: the LLM source's own calls, which
    calibrate its confidence once their horizon closes."""
    answered = max((i for i, c in enumerate(calls) if c.outcome == "ok"), default=None) if verdict else None
    rows = [
        {
            "run_id": run_id,
            "as_of": as_of,
            "ticker": ticker,
            "attempt": attempt,
            "model": c.model,
            "latency_ms": c.latency_ms,
            "tokens_per_s": c.tokens_per_s,
            "prompt_sha256": c.prompt_sha256,
            "outcome": c.outcome,
            "error": c.error,
            "called_at": c.called_at,
            "action": verdict.action if verdict and attempt - 1 == answered else None,
            "stated_confidence": verdict.confidence if verdict and attempt - 1 == answered else None,
        }
        for attempt, c in enumerate(calls, start=1)
    ]
    return pl.DataFrame(rows, schema=LLM_CALLS_SCHEMA)
