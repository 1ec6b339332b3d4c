"""An Ollama server as a Dagster resource: the official ``ollama`` client with a timeout and budgets.

The host comes from ``OLLAMA_HOST`` and a remote server's bearer token from ``PM_OLLAMA_TOKEN``
(``build_resources`` passes both as ``dg.EnvVar``, so the UI shows the variable's name, never the
value). As in :mod:`pm_resources.market_data`, a field left unset reads its variable when used,
so run config naming only ``models`` keeps the host and token. The other defaults are the
``llm:`` section of ``config/signals.yaml`` (:func:`model_code.signals.config.load_llm_settings`).
"""

from __future__ import annotations

import os

import dagster as dg
import httpx
import ollama
from pydantic import Field

from model_code.signals.config import load_llm_settings
from model_code.signals.llm import LlmCall, LlmVerdict, RunBudget, ask_llm

DEFAULT_HOST = "127.0.0.1:11434"
# The environment variable each setting falls back to when the resource's config leaves it unset.
ENV_VARS: dict[str, str] = {"host": "OLLAMA_HOST", "bearer_token": "PM_OLLAMA_TOKEN"}
_FILE = load_llm_settings()


class OllamaResource(dg.ConfigurableResource):
    """Where the LLM fallback asks, which models in which order, and how long it may take."""

    host: str | None = Field(
        default=None,
        description=f"Ollama server, e.g. 127.0.0.1:11434 or https://llm.example.com. Unset: "
        f"OLLAMA_HOST, else {DEFAULT_HOST}.",
    )
    models: list[str] = Field(
        default=list(_FILE.models), description="Models to ask, in failover order (config/signals.yaml)."
    )
    bearer_token: str | None = Field(
        default=None,
        description="Token for a remote Ollama behind an auth proxy, sent as 'Authorization: Bearer' "
        "(use dg.EnvVar). Unset: PM_OLLAMA_TOKEN, else none.",
    )
    call_timeout_s: float = Field(
        default=_FILE.call_timeout_s, description="Per-call latency budget and HTTP timeout (seconds)."
    )
    min_tokens_per_s: float = Field(
        default=_FILE.min_tokens_per_s,
        description="A model generating slower (eval_count / eval_duration) fails over to the next.",
    )
    run_budget_s: float = Field(
        default=_FILE.run_budget_s, description="Latency of all LLM calls of one run together (seconds)."
    )
    max_calls: int = Field(default=_FILE.max_calls, description="LLM calls of one run together.")

    def resolved_host(self) -> str:
        """The configured host, else ``$OLLAMA_HOST``, else :data:`DEFAULT_HOST`."""
        return self.host or os.environ.get(ENV_VARS["host"]) or DEFAULT_HOST

    def token(self) -> str | None:
        """The configured bearer token, else ``$PM_OLLAMA_TOKEN``, else None."""
        return self.bearer_token or os.environ.get(ENV_VARS["bearer_token"]) or None

    def client(self, timeout: float) -> ollama.Client:
        """An ``ollama.Client`` on :meth:`resolved_host` whose every connect/read/write waits at
        most ``timeout`` seconds (the client's own default waits forever), with the token's
        ``Authorization`` header when one is set."""
        token = self.token()
        headers = {"Authorization": f"Bearer {token}"} if token else None
        return ollama.Client(host=self.resolved_host(), timeout=httpx.Timeout(timeout), headers=headers)

    def new_budget(self) -> RunBudget:
        """A fresh :class:`RunBudget` for one run: ``run_budget_s`` seconds, ``max_calls`` calls."""
        return RunBudget(seconds=self.run_budget_s, max_calls=self.max_calls)

    def ask(self, prompt: str, budget: RunBudget) -> tuple[LlmVerdict | None, list[LlmCall]]:
        """:func:`~model_code.signals.llm.ask_llm` over :attr:`models`; the verdict (None: HOLD) and
        every attempt, with the token masked in all error texts and logs."""
        # The HTTP timeout never lets one silent read outlast what the run has left.
        timeout = max(0.05, min(self.call_timeout_s, budget.remaining_s))
        with self.client(timeout) as client:
            return ask_llm(
                client,
                self.models,
                prompt,
                call_timeout_s=self.call_timeout_s,
                budget=budget,
                min_tokens_per_s=self.min_tokens_per_s,
                secrets=[t for t in (self.token(),) if t],
            )
