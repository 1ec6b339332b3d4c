"""The ``llm:`` section of ``config/signals.yaml``: shipped defaults, strict keys and types."""

from __future__ import annotations

import datetime as dt

import pytest

from model_code.signals.config import DEFAULT_PATH, LlmSettings, load_llm_settings


def test_shipped_file_holds_the_documented_defaults():
    settings = load_llm_settings()
    assert DEFAULT_PATH.name == "signals.yaml" and DEFAULT_PATH.parent.name == "config"
    assert settings == LlmSettings(
        enabled=False,
        models=("llama3.2:3b", "qwen2.5:3b"),
        call_timeout_s=5.0,
        run_budget_s=60.0,
        max_calls=50,
        min_tokens_per_s=5.0,
        max_tickers=20,
        anonymize=True,
        knowledge_cutoff=dt.date(2024, 9, 30),
    )


def test_other_sections_are_ignored_and_a_missing_llm_section_gives_defaults(tmp_path):
    path = tmp_path / "signals.yaml"
    path.write_text("router:\n  primary: ml\n")
    assert load_llm_settings(path) == LlmSettings()
    path.write_text(
        "router: {primary: ml}\nllm:\n  enabled: true\n  models: [a]\n  knowledge_cutoff: 2025-01-31\n"
    )
    settings = load_llm_settings(path)
    assert (
        settings.enabled and settings.models == ("a",) and settings.knowledge_cutoff == dt.date(2025, 1, 31)
    )
    assert settings.call_timeout_s == 5.0  # unset keys keep their defaults


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ("llm: {timeout: 5}", "unknown key"),
        ("llm: {enabled: 'yes'}", "true or false"),
        ("llm: {models: llama3.2:3b}", "list of model names"),
        ("llm: {models: []}", "non-empty list"),
        ("llm: {max_calls: 2.5}", "integer"),
        ("llm: {call_timeout_s: 0}", "> 0"),
        ("llm: {run_budget_s: fast}", "a number"),
        ("llm: {knowledge_cutoff: soon}", "YYYY-MM-DD"),
        ("llm: [1, 2]", "mapping"),
    ],
)
def test_malformed_settings_fail_naming_the_key_and_file(tmp_path, body, message):
    path = tmp_path / "signals.yaml"
    path.write_text(body + "\n")
    with pytest.raises(ValueError, match=message) as caught:
        load_llm_settings(path)
    assert str(path) in str(caught.value)


def test_llm_signals_count_only_after_the_knowledge_cutoff():
    settings = LlmSettings(knowledge_cutoff=dt.date(2024, 9, 30))
    assert not settings.counts_on(dt.date(2019, 6, 3))
    assert not settings.counts_on(dt.date(2024, 9, 30))
    assert settings.counts_on(dt.date(2024, 10, 1))


def test_missing_file_is_an_error(tmp_path):
    with pytest.raises(FileNotFoundError):
        load_llm_settings(tmp_path / "absent.yaml")
