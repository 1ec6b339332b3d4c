"""The Ollama fallback, run with the real ``ollama`` client against the fake server: verdicts,
failover with each fault's reason, budgets, the tokens/s floor, what the request carries, the
anonymized prompt, and a bearer token that reaches the server but nothing we keep."""

from __future__ import annotations

import datetime as dt
import hashlib
import itertools
import logging
import re
import time

import dagster as dg
import jsonschema
import ollama
import pytest

from model_code.signals.llm import (
    ANONYMOUS_LABEL,
    LLM_CALLS_KEY,
    LLM_SCHEMA,
    OUTCOMES,
    LlmCall,
    LlmVerdict,
    RunBudget,
    ask_llm,
    build_prompt,
    llm_calls_frame,
)
from model_code.warehouse import WarehouseError
from pm_resources import OllamaResource, build_resources
from tests import ollama_fake
from tests.ollama_fake import (
    MID_STREAM_ERROR,
    RUNNER_DIED,
    VERDICT,
    refused_host,
)

ollama_server = ollama_fake.ollama_server  # the fake Ollama on 127.0.0.1, as a fixture

INPUTS = {"ts_yhat": 0.0041, "ts_lower_80": -0.021, "ts_upper_80": 0.029, "rv_21": 0.0135, "ml_yhat": None}
PROMPT = build_prompt(INPUTS, ticker="AAPL", horizon=5)
TOKEN = "tok-SECRET-9f3a7"


def ask(server, models, *, budget=None, call_timeout_s=2.0, min_tokens_per_s=5.0, **kwargs):
    client = ollama.Client(host=server.host if hasattr(server, "host") else server, timeout=call_timeout_s)
    return ask_llm(
        client,
        models,
        PROMPT,
        call_timeout_s=call_timeout_s,
        budget=budget or RunBudget(seconds=30, max_calls=20),
        min_tokens_per_s=min_tokens_per_s,
        **kwargs,
    )


def test_schema_requires_the_three_fields_and_nothing_else():
    jsonschema.validate(VERDICT, LLM_SCHEMA)
    for bad in (
        {**VERDICT, "action": "MAYBE"},
        {**VERDICT, "confidence": 1.7},
        {**VERDICT, "confidence": "high"},
        {**VERDICT, "extra": 1},
        {"action": "BUY", "confidence": 0.6},
    ):
        with pytest.raises(jsonschema.ValidationError):
            jsonschema.validate(bad, LLM_SCHEMA)


def test_success_returns_the_verdict_and_logs_one_ok_call(ollama_server):
    ollama_server.script("llama3.2:3b", "ok", tokens_per_s=40.0)
    verdict, calls = ask(ollama_server, ["llama3.2:3b", "qwen2.5:3b"])
    assert verdict == LlmVerdict("BUY", 0.62, VERDICT["rationale"], "llama3.2:3b")
    (call,) = calls
    assert (call.model, call.outcome, call.error) == ("llama3.2:3b", "ok", None)
    assert call.tokens_per_s == pytest.approx(40.0, rel=1e-6)
    assert call.prompt_sha256 == hashlib.sha256(PROMPT.encode()).hexdigest()
    assert 0 < call.latency_ms < 2000
    assert ollama_server.chats("qwen2.5:3b") == []  # the second model was not needed


def test_the_request_carries_the_schema_temperature_zero_and_streams(ollama_server):
    ollama_server.script("m", "ok")
    ask(ollama_server, ["m"])
    (sent,) = ollama_server.chats("m")
    assert sent.body["format"] == LLM_SCHEMA
    assert sent.body["options"] == {"temperature": 0}
    assert sent.body["stream"] is True
    assert sent.body["messages"] == [{"role": "user", "content": PROMPT}]


def test_slow_first_model_fails_over_to_the_second_within_budget(ollama_server):
    ollama_server.script("slow", "slow", delay_s=3.0)
    ollama_server.script("fast", "ok")
    budget = RunBudget(seconds=5.0, max_calls=10)
    started = time.monotonic()
    verdict, calls = ask(ollama_server, ["slow", "fast"], budget=budget, call_timeout_s=0.4)
    elapsed = time.monotonic() - started
    assert verdict is not None and verdict.model == "fast"
    assert [c.outcome for c in calls] == ["timeout", "ok"]
    assert "timeout" in calls[0].error.lower()
    assert 350 <= calls[0].latency_ms < 1500
    assert elapsed < 2.0 and budget.calls == 2 and budget.spent_s < budget.seconds


def test_a_model_still_streaming_past_the_latency_budget_fails_over(ollama_server):
    # Every token arrives within the HTTP timeout, but the call as a whole is late.
    ollama_server.script("trickle", "slow_stream", chunk_delay_s=0.05)
    ollama_server.script("fast", "ok")
    verdict, calls = ask(ollama_server, ["trickle", "fast"], call_timeout_s=0.3)
    assert verdict.model == "fast"
    assert calls[0].outcome == "timeout" and "latency budget" in calls[0].error
    assert calls[0].latency_ms < 800  # stopped reading at the deadline, not at the end of the reply


def test_the_latency_budget_uses_the_given_clock(ollama_server):
    ollama_server.script("m", "ok")
    clock = itertools.chain([100.0], itertools.repeat(110.0)).__next__  # 10 s pass during the call
    budget = RunBudget(seconds=60, max_calls=5)
    verdict, calls = ask(ollama_server, ["m"], call_timeout_s=5.0, budget=budget, clock=clock)
    assert verdict is None
    assert calls[0].outcome == "timeout" and calls[0].latency_ms == pytest.approx(10_000.0)
    assert budget.spent_s == pytest.approx(10.0)


@pytest.mark.parametrize(
    ("fault", "outcome", "reason"),
    [
        ("not_found", "http_error", 'HTTP 404: model "broken" not found, try pulling it first'),
        ("http_500", "http_error", f"HTTP 500: {RUNNER_DIED}"),
        ("malformed_json", "invalid_json", "reply is not JSON"),
        ("schema", "schema_violation", "'MAYBE' is not one of ['BUY', 'SELL', 'HOLD']"),
        ("mid_stream", "stream_error", MID_STREAM_ERROR),
        ("drop", "stream_error", "incomplete chunked read"),
        ("low_tokens", "too_slow", "generated 2.0 tokens/s < floor 5"),
    ],
)
def test_a_failing_model_is_logged_with_its_reason_and_the_next_is_asked(
    ollama_server, caplog, fault, outcome, reason
):
    ollama_server.script("broken", fault)
    ollama_server.script("fine", "ok")
    with caplog.at_level(logging.WARNING, logger="model_code.signals.llm"):
        verdict, calls = ask(ollama_server, ["broken", "fine"])
    assert verdict is not None and verdict.model == "fine"
    assert [(c.model, c.outcome) for c in calls] == [("broken", outcome), ("fine", "ok")]
    assert reason in calls[0].error
    assert any(outcome in r.getMessage() and reason in r.getMessage() for r in caplog.records)


def test_schema_violation_names_every_broken_field(ollama_server):
    ollama_server.script("m", "schema")
    _, (call,) = ask(ollama_server, ["m"])
    assert (
        "action: 'MAYBE'" in call.error and "confidence: 1.7 is greater than the maximum of 1" in call.error
    )


@pytest.mark.parametrize("content", ['{"action": "BUY", "confidence": NaN, "rationale": "x"}', ""])
def test_nan_and_empty_replies_are_not_json(ollama_server, content):
    ollama_server.script("m", "ok", content=content)
    _, (call,) = ask(ollama_server, ["m"])
    assert call.outcome == "invalid_json"


def test_connection_refused_fails_every_model_as_unreachable_without_raising():
    verdict, calls = ask(refused_host(), ["llama3.2:3b", "qwen2.5:3b"])
    assert verdict is None
    assert [c.outcome for c in calls] == ["unreachable", "unreachable"]
    assert all("Connection refused" in c.error for c in calls)


def test_all_models_failing_gives_none_and_one_call_each(ollama_server):
    for model, fault in [("a", "http_500"), ("b", "schema"), ("c", "mid_stream")]:
        ollama_server.script(model, fault)
    verdict, calls = ask(ollama_server, ["a", "b", "c", "never-pulled"])
    assert verdict is None  # the caller HOLDs
    assert [c.outcome for c in calls] == ["http_error", "schema_violation", "stream_error", "http_error"]


def test_call_budget_spent_stops_the_attempts_with_one_budget_exhausted_entry(ollama_server):
    ollama_server.script("a", "http_500")
    ollama_server.script("b", "ok")
    budget = RunBudget(seconds=60, max_calls=1)
    verdict, calls = ask(ollama_server, ["a", "b", "c"], budget=budget)
    assert verdict is None
    assert [(c.model, c.outcome) for c in calls] == [("a", "http_error"), ("b", "budget_exhausted")]
    assert "1 of 1 calls" in calls[1].error and calls[1].latency_ms == 0.0
    assert ollama_server.chats("b") == [] and budget.calls == 1


def test_time_budget_bounds_the_call_and_then_stops_the_run(ollama_server):
    ollama_server.script("trickle", "slow_stream", chunk_delay_s=0.05)
    ollama_server.script("fast", "ok")
    budget = RunBudget(seconds=0.3, max_calls=50)
    # The per-call budget is 5 s, but the run has only 0.3 s left, so the call gets 0.3 s.
    verdict, calls = ask(ollama_server, ["trickle", "fast"], budget=budget, call_timeout_s=5.0)
    assert verdict is None
    assert [c.outcome for c in calls] == ["timeout", "budget_exhausted"]
    assert calls[0].latency_ms < 800 and ollama_server.chats("fast") == []


def test_the_budget_is_shared_by_every_ticker_of_a_run(ollama_server):
    ollama_server.script("m", "ok")
    budget = RunBudget(seconds=60, max_calls=2)
    results = [ask(ollama_server, ["m"], budget=budget) for _ in range(3)]
    assert [v is not None for v, _ in results] == [True, True, False]
    assert [c.outcome for c in results[2][1]] == ["budget_exhausted"]
    assert len(ollama_server.chats("m")) == 2


def test_tokens_per_second_floor(ollama_server):
    ollama_server.script("m", "ok", tokens_per_s=30.0)
    verdict, (call,) = ask(ollama_server, ["m"], min_tokens_per_s=50.0)
    assert verdict is None and call.outcome == "too_slow" and call.tokens_per_s == pytest.approx(30.0)
    verdict, (call,) = ask(ollama_server, ["m"], min_tokens_per_s=29.0)
    assert verdict is not None and call.outcome == "ok"


# --- the prompt -------------------------------------------------------------------------------


def test_anonymized_prompt_names_no_ticker_and_no_date():
    prompt = build_prompt(INPUTS, ticker="AAPL", horizon=5)
    assert "AAPL" not in prompt.upper() and ANONYMOUS_LABEL in prompt
    assert not re.search(r"\b(19|20)\d{2}\b", prompt), "a year in the prompt"
    assert not re.search(r"\d{1,4}[-/.]\d{1,2}[-/.]\d{1,4}", prompt), "a date in the prompt"
    assert (
        "- ts_yhat: 0.004100" in prompt and "- ml_yhat: n/a" in prompt and "next 5 trading sessions" in prompt
    )


def test_prompt_is_deterministic_and_sorted():
    shuffled = dict(reversed(list(INPUTS.items())))
    assert build_prompt(shuffled, ticker="AAPL", horizon=5) == PROMPT
    names = re.findall(r"^- (\w+):", PROMPT, flags=re.M)
    assert names == sorted(INPUTS)
    assert build_prompt({**INPUTS, "ts_yhat": float("nan")}, ticker="AAPL", horizon=5).count("n/a") == 2


def test_prompt_names_the_ticker_only_when_asked():
    assert "AAPL" in build_prompt(INPUTS, ticker="AAPL", anonymize=False, horizon=5)


def test_prompt_refuses_inputs_that_could_leak_identity_or_time():
    with pytest.raises(ValueError, match="names the ticker"):
        build_prompt({"aapl_close": 1.0}, ticker="AAPL", horizon=5)
    with pytest.raises(ValueError, match="snake_case"):
        build_prompt({"Close 2019-03-01": 1.0}, ticker="AAPL", horizon=5)
    with pytest.raises(TypeError, match="only numbers"):
        build_prompt({"as_of": dt.date(2019, 3, 1)}, ticker="AAPL", horizon=5)  # type: ignore[dict-item]
    with pytest.raises(TypeError, match="only numbers"):
        build_prompt({"flag": True}, ticker="AAPL", horizon=5)
    with pytest.raises(ValueError, match="horizon"):
        build_prompt(INPUTS, ticker="AAPL", horizon=0)
    assert build_prompt({"a_b": 1.0}, ticker="A", anonymize=False, horizon=1)  # only anonymized refuses


# --- the resource and secrets -----------------------------------------------------------------


def test_resource_sends_the_token_as_bearer_header_and_times_out(ollama_server):
    ollama_server.script("slow", "slow", delay_s=3.0)
    ollama_server.script("fine", "ok")
    resource = OllamaResource(
        host=ollama_server.host, models=["slow", "fine"], bearer_token=TOKEN, call_timeout_s=0.3
    )
    verdict, calls = resource.ask(PROMPT, resource.new_budget())
    assert verdict.model == "fine" and [c.outcome for c in calls] == ["timeout", "ok"]
    assert {r.headers["authorization"] for r in ollama_server.chats()} == {f"Bearer {TOKEN}"}


def test_resource_defaults_come_from_config_and_environment(monkeypatch):
    resource = OllamaResource()
    assert resource.models == ["llama3.2:3b", "qwen2.5:3b"] and resource.call_timeout_s == 5.0
    assert resource.resolved_host() == "127.0.0.1:11434" and resource.token() is None
    assert resource.new_budget() == RunBudget(seconds=60.0, max_calls=50)
    monkeypatch.setenv("OLLAMA_HOST", "http://10.0.0.7:11434")
    monkeypatch.setenv("PM_OLLAMA_TOKEN", TOKEN)
    assert resource.resolved_host() == "http://10.0.0.7:11434" and resource.token() == TOKEN


def test_build_resources_passes_the_token_as_an_env_var_never_its_value(ollama_server, monkeypatch):
    ollama_server.script("llama3.2:3b", "ok")
    monkeypatch.setenv("OLLAMA_HOST", ollama_server.host)
    monkeypatch.setenv("PM_OLLAMA_TOKEN", TOKEN)
    shipped = build_resources()["ollama"]
    assert TOKEN not in repr(shipped) and "PM_OLLAMA_TOKEN" in repr(shipped)
    with dg.build_resources({"ollama": shipped}) as resources:
        verdict, _ = resources.ollama.ask(PROMPT, resources.ollama.new_budget())
    assert verdict is not None
    assert ollama_server.chats()[0].headers["authorization"] == f"Bearer {TOKEN}"


def _everything_logged(caplog) -> str:
    return "\n".join(
        [caplog.text, *(r.getMessage() for r in caplog.records), *(repr(r.args) for r in caplog.records)]
    )


def test_bearer_token_never_reaches_calls_errors_logs_or_the_warehouse(ollama_server, caplog, warehouse):
    # echo_auth answers 401 with the Authorization header in its error text, as a careless
    # proxy does: the token really is in what the client raises, and must be masked.
    faults = [("proxy", "echo_auth"), ("gone", "not_found"), ("dies", "http_500"), ("cut", "mid_stream")]
    for model, fault in [*faults, ("fine", "ok")]:
        ollama_server.script(model, fault)
    models = [m for m, _ in faults] + ["fine"]
    resource = OllamaResource(host=ollama_server.host, models=models, bearer_token=TOKEN)
    caplog.set_level(logging.DEBUG)  # root: every logger, httpx and httpcore included
    for name in ("httpx", "httpcore", "ollama"):
        caplog.set_level(logging.DEBUG, logger=name)
    verdict, calls = resource.ask(PROMPT, resource.new_budget())
    assert verdict.model == "fine" and len(calls) == 5
    assert all(r.headers["authorization"] == f"Bearer {TOKEN}" for r in ollama_server.chats())
    assert calls[0].outcome == "http_error" and "Bearer ***" in calls[0].error  # it was there, masked
    assert any(r.name.startswith("httpcore") for r in caplog.records)  # transport debug was captured
    assert TOKEN not in repr(calls) and TOKEN not in _everything_logged(caplog)
    assert "9f3a7" not in _everything_logged(caplog)

    frame = llm_calls_frame(calls, run_id="run-1", as_of=dt.date(2025, 3, 3), ticker="AAPL")
    warehouse.upsert("signals.llm_calls", frame, LLM_CALLS_KEY)
    stored = warehouse.query("SELECT * FROM signals.llm_calls ORDER BY attempt")
    assert stored.height == 5 and stored["attempt"].to_list() == [1, 2, 3, 4, 5]
    cells = [str(v) for column in stored.columns for v in stored[column].to_list()]
    assert not any(TOKEN in cell for cell in cells)
    assert stored.row(0, named=True)["error"] == calls[0].error
    assert all(c.called_at.utcoffset() == dt.timedelta(0) for c in calls)  # time-zone aware, UTC
    assert stored["called_at"].dtype.time_zone is not None


def test_ollama_api_key_from_the_environment_is_masked_too(ollama_server, monkeypatch):
    # The ollama client sends $OLLAMA_API_KEY as a bearer token by itself when no header is set.
    monkeypatch.setenv("OLLAMA_API_KEY", "env-KEY-55aa")
    ollama_server.script("proxy", "echo_auth")
    _, (call,) = OllamaResource(host=ollama_server.host, models=["proxy"]).ask(PROMPT, RunBudget(10, 5))
    assert ollama_server.chats()[0].headers["authorization"] == "Bearer env-KEY-55aa"
    assert "env-KEY-55aa" not in call.error and "***" in call.error


# --- signals.llm_calls ------------------------------------------------------------------------


def test_llm_calls_frame_writes_idempotently_and_the_table_accepts_every_outcome(warehouse):
    calls = [LlmCall(f"m{i}", 1.5 * i, None, "0" * 64, outcome, None) for i, outcome in enumerate(OUTCOMES)]
    frame = llm_calls_frame(calls, run_id="r", as_of=dt.date(2025, 1, 2), ticker="MSFT")
    assert frame["attempt"].to_list() == list(range(1, len(OUTCOMES) + 1))
    assert warehouse.upsert("signals.llm_calls", frame, LLM_CALLS_KEY) == len(OUTCOMES)
    warehouse.upsert("signals.llm_calls", frame, LLM_CALLS_KEY)
    assert warehouse.count("signals.llm_calls") == len(OUTCOMES)
    bogus = llm_calls_frame(
        [LlmCall("m", 1.0, None, "0" * 64, "maybe")], run_id="r2", as_of=dt.date(2025, 1, 2), ticker="X"
    )
    with pytest.raises(WarehouseError):
        warehouse.upsert("signals.llm_calls", bogus, LLM_CALLS_KEY)
    assert llm_calls_frame([], run_id="r", as_of=dt.date(2025, 1, 2), ticker="X").height == 0


def test_data_model_documents_exactly_the_llm_calls_columns():
    import duckdb

    from model_code.warehouse import apply_ddl
    from tests.test_docs import DOCS, _names, markdown_tables

    (table,) = markdown_tables((DOCS / "data_model.md").read_text())["signals.llm_calls"]
    documented = {n for row in table for n in _names(row["column"])}
    conn = duckdb.connect()
    apply_ddl(conn)
    actual = {r[0] for r in conn.execute("DESCRIBE signals.llm_calls").fetchall()}
    assert (
        documented
        == actual
        == set(llm_calls_frame([], run_id="r", as_of=dt.date(2025, 1, 2), ticker="X").columns)
    )
