"""The fake Ollama server answers as the documented API does, checked with the real ``ollama``
client and with raw HTTP, so the LLM tests that rely on it test something real."""

from __future__ import annotations

import json
import time

import httpx
import ollama
import pytest

from tests import ollama_fake
from tests.ollama_fake import (
    MID_STREAM_ERROR,
    RUNNER_DIED,
    VERDICT,
    FakeOllama,
    refused_host,
    tokens,
)

ollama_server = ollama_fake.ollama_server  # the fake Ollama on 127.0.0.1, as a fixture

MESSAGES = [{"role": "user", "content": "why is the sky blue?"}]
FINAL_STATS = {"total_duration", "load_duration", "prompt_eval_count", "eval_count", "eval_duration"}


def test_non_streaming_chat_is_one_object_with_content_and_statistics(ollama_server):
    ollama_server.script("llama3.2:3b", "ok", tokens_per_s=25.0)
    reply = ollama.Client(host=ollama_server.host, timeout=5).chat(
        model="llama3.2:3b", messages=MESSAGES, stream=False
    )
    assert json.loads(reply.message.content) == VERDICT
    assert reply.done is True and reply.done_reason == "stop" and reply.model == "llama3.2:3b"
    assert reply.eval_count == len(tokens(json.dumps(VERDICT)))  # one token per 3 characters
    assert reply.eval_count / (reply.eval_duration / 1e9) == pytest.approx(25.0, rel=1e-6)
    assert reply.total_duration > reply.eval_duration > 0


def test_streaming_chat_is_ndjson_tokens_then_a_final_object_with_statistics(ollama_server):
    ollama_server.script("llama3.2:3b", "ok")
    body = {"model": "llama3.2:3b", "messages": MESSAGES}  # streaming is Ollama's default
    with httpx.stream("POST", f"{ollama_server.host}/api/chat", json=body, timeout=5) as response:
        assert response.status_code == 200
        assert response.headers["content-type"] == "application/x-ndjson"
        assert response.headers["transfer-encoding"] == "chunked"
        lines = [json.loads(line) for line in response.iter_lines()]
    *pieces, final = lines
    assert all(t["done"] is False and t["message"]["role"] == "assistant" for t in pieces)
    assert json.loads("".join(t["message"]["content"] for t in pieces)) == VERDICT
    assert final["done"] is True and final["message"]["content"] == ""
    assert set(final) >= FINAL_STATS and final["eval_count"] == len(pieces)
    parts = list(ollama.Client(host=ollama_server.host, timeout=5).chat("llama3.2:3b", MESSAGES, stream=True))
    assert parts[-1].done and parts[-1].eval_count == len(pieces)


def test_tags_list_the_installed_models_in_the_documented_shape(ollama_server):
    ollama_server.script("qwen2.5:3b", "ok")
    ollama_server.script("llama3.2:3b", "http_500")
    ollama_server.script("gone:1b", "not_found")
    raw = httpx.get(f"{ollama_server.host}/api/tags", timeout=5).json()
    assert [m["name"] for m in raw["models"]] == ["llama3.2:3b", "qwen2.5:3b"]
    assert set(raw["models"][0]) == {"name", "model", "modified_at", "size", "digest", "details"}
    listed = ollama.Client(host=ollama_server.host, timeout=5).list()
    assert [m.model for m in listed.models] == ["llama3.2:3b", "qwen2.5:3b"]
    assert listed.models[1].details.parameter_size == "3B"


def test_unknown_model_is_a_404_with_ollamas_error_body(ollama_server):
    response = httpx.post(
        f"{ollama_server.host}/api/chat", json={"model": "nope:1b", "messages": []}, timeout=5
    )
    assert response.status_code == 404
    assert response.json() == {"error": 'model "nope:1b" not found, try pulling it first'}
    with pytest.raises(ollama.ResponseError) as caught:
        list(ollama.Client(host=ollama_server.host, timeout=5).chat("nope:1b", MESSAGES, stream=True))
    assert caught.value.status_code == 404 and "try pulling it first" in caught.value.error


def test_a_500_carries_the_runner_error(ollama_server):
    ollama_server.script("m", "http_500")
    with pytest.raises(ollama.ResponseError) as caught:
        ollama.Client(host=ollama_server.host, timeout=5).chat("m", MESSAGES, stream=False)
    assert caught.value.status_code == 500 and caught.value.error == RUNNER_DIED


def test_mid_stream_error_line_and_dropped_connection_reach_the_client(ollama_server):
    ollama_server.script("err", "mid_stream")
    ollama_server.script("drop", "drop")
    client = ollama.Client(host=ollama_server.host, timeout=5)
    seen = []
    with pytest.raises(ollama.ResponseError) as caught:
        for part in client.chat("err", MESSAGES, stream=True):
            seen.append(part)
    assert len(seen) == 3 and caught.value.error == MID_STREAM_ERROR and caught.value.status_code == -1
    with pytest.raises(httpx.RemoteProtocolError):
        list(client.chat("drop", MESSAGES, stream=True))


def test_content_faults_send_bad_text_inside_a_well_formed_stream(ollama_server):
    ollama_server.script("bad", "malformed_json")
    ollama_server.script("odd", "schema")
    client = ollama.Client(host=ollama_server.host, timeout=5)
    bad = "".join(p.message.content for p in client.chat("bad", MESSAGES, stream=True))
    with pytest.raises(json.JSONDecodeError):
        json.loads(bad)
    odd = json.loads("".join(p.message.content for p in client.chat("odd", MESSAGES, stream=True)))
    assert odd["action"] == "MAYBE" and odd["confidence"] == 1.7


def test_requests_are_recorded_with_headers_and_body(ollama_server):
    ollama_server.script("m", "ok")
    client = ollama.Client(host=ollama_server.host, timeout=5, headers={"Authorization": "Bearer t0k"})
    client.chat("m", MESSAGES, format={"type": "object"}, options={"temperature": 0}, stream=False)
    (sent,) = ollama_server.chats("m")
    assert sent.headers["authorization"] == "Bearer t0k"
    assert sent.body["format"] == {"type": "object"} and sent.body["options"] == {"temperature": 0}
    assert sent.body["stream"] is False and sent.body["messages"] == MESSAGES


def test_slow_reply_provokes_the_client_timeout_and_shutdown_does_not_wait_for_it():
    with FakeOllama() as server:
        server.script("m", "slow", delay_s=3.0)
        with pytest.raises(httpx.ReadTimeout):
            list(ollama.Client(host=server.host, timeout=0.3).chat("m", MESSAGES, stream=True))
        started = time.monotonic()
    assert time.monotonic() - started < 1.0  # the sleeping handler was woken, not waited for


def test_refused_host_refuses_connections():
    with pytest.raises(ConnectionError):
        ollama.Client(host=refused_host(), timeout=2).list()


def test_unknown_fault_is_refused(ollama_server):
    with pytest.raises(ValueError, match="unknown fault"):
        ollama_server.script("m", "sometimes")
