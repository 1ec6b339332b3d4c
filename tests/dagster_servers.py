"""The real ``dagster-daemon`` and ``dagster-webserver`` on 127.0.0.1 for end-to-end tests.

:class:`DagsterServers` writes the shipped ``dagster.yaml`` into a temporary ``DAGSTER_HOME``,
starts both processes against the repository's ``workspace.yaml`` (each in its own process group
so that stopping them also stops the code servers and runs they started) and talks to the
webserver through GraphQL over HTTP, as the UI does. Every process it starts is stopped on exit,
even when the test fails.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

from tests.conftest import shipped_dagster_home

REPO = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
LOCATION = "portfolio_maximizer"
REPOSITORY = "__repository__"
DONE = {"SUCCESS", "FAILURE", "CANCELED"}


HISTORY_ASSETS = ["market/universe", "market/ohlcv", "features/daily", "features/targets"]


def pm_env(root: Path, tickers: list[str]) -> dict[str, str]:
    """A temporary ``PM_HOME`` under ``root`` and a universe of bundled ``tickers``, BLAS at one
    thread as the Makefile sets it: the environment the servers and their runs get."""
    universe = root / "universe.yaml"
    universe.write_text("tickers:\n" + "".join(f"  - {t}\n" for t in tickers))
    pm_home = root / "pm"
    pm_home.mkdir()
    return {
        "PM_HOME": str(pm_home),
        "PM_UNIVERSE": str(universe),
        "PM_SOURCES": "bundled",
        "OMP_NUM_THREADS": "1",
        "OPENBLAS_NUM_THREADS": "1",
        "MKL_NUM_THREADS": "1",
        "OMP_WAIT_POLICY": "PASSIVE",
    }


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class DagsterServers:
    """``with DagsterServers(tmp_path, env) as servers:`` starts daemon + webserver, stops both."""

    def __init__(self, root: Path, env: dict[str, str] | None = None, *, daemon: bool = True) -> None:
        self.home = shipped_dagster_home(root / "dagster_home")
        self.logs = root / "server_logs"
        self.logs.mkdir(exist_ok=True)
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.env = {**os.environ, **(env or {}), "DAGSTER_HOME": str(self.home)}
        self.daemon = daemon
        self.processes: list[subprocess.Popen] = []
        self.started: list[subprocess.Popen] = []  # every process ever started, for the test to check

    # processes -------------------------------------------------------------------------------
    def _start(self, name: str, args: list[str]) -> None:
        out = open(self.logs / f"{name}.log", "wb")  # noqa: SIM115 - closed with the process
        proc = subprocess.Popen(
            args, cwd=REPO, env=self.env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True
        )
        self.processes.append(proc)
        self.started.append(proc)

    def __enter__(self) -> DagsterServers:
        workspace = ["-w", str(REPO / "workspace.yaml")]
        # Create the instance's storage once before two processes race to migrate it (both
        # creating the same SQLite tables fails one of them with "table ... already exists").
        import dagster as dg

        dg.DagsterInstance.from_config(str(self.home)).dispose()
        try:
            if self.daemon:
                self._start("daemon", [str(BIN / "dagster-daemon"), "run", *workspace])
            self._start(
                "webserver",
                [str(BIN / "dagster-webserver"), "-h", "127.0.0.1", "-p", str(self.port), *workspace],
            )
            self.wait_ready()
        except BaseException:
            self.stop()
            raise
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def stop(self) -> None:
        """SIGTERM each process group, then SIGKILL what is left after 20 s."""
        for proc in self.processes:
            if proc.poll() is None:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(proc.pid, signal.SIGTERM)
        deadline = time.monotonic() + 20
        for proc in self.processes:
            with contextlib.suppress(subprocess.TimeoutExpired):
                proc.wait(timeout=max(0.1, deadline - time.monotonic()))
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=10)
        self.processes.clear()

    def log(self, name: str) -> str:
        path = self.logs / f"{name}.log"
        return path.read_text(errors="replace") if path.exists() else ""

    def wait_ready(self, timeout: float = 180) -> None:
        """Until the webserver answers and the code location has loaded."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for proc in self.processes:
                if proc.poll() is not None:
                    raise RuntimeError(
                        f"{proc.args[0]} exited {proc.returncode}:\n{self.log('webserver')[-3000:]}"
                    )
            try:
                data = self.graphql(
                    "{ workspaceOrError { ... on Workspace { locationEntries { name "
                    "locationOrLoadError { __typename ... on PythonError { message } } } } } }"
                )
            except (urllib.error.URLError, ConnectionError, TimeoutError):
                time.sleep(1)
                continue
            entries = data["workspaceOrError"]["locationEntries"]
            loaded = [e for e in entries if e["locationOrLoadError"] and e["name"] == LOCATION]
            if loaded:
                state = loaded[0]["locationOrLoadError"]
                if state["__typename"] == "PythonError":
                    raise RuntimeError(f"code location failed to load: {state['message']}")
                return
            time.sleep(1)
        raise TimeoutError(f"dagster-webserver not ready after {timeout}s:\n{self.log('webserver')[-3000:]}")

    # GraphQL ---------------------------------------------------------------------------------
    def graphql(self, query: str, variables: dict[str, Any] | None = None, timeout: float = 60) -> dict:
        body = json.dumps({"query": query, "variables": variables or {}}).encode()
        request = urllib.request.Request(
            f"{self.url}/graphql", data=body, headers={"Content-Type": "application/json"}
        )
        try:
            with urllib.request.urlopen(request, timeout=timeout) as response:
                payload = json.loads(response.read())
        except urllib.error.HTTPError as err:
            raise RuntimeError(
                f"GraphQL HTTP {err.code}: {err.read().decode(errors='replace')[:4000]}"
            ) from err
        if payload.get("errors"):
            raise RuntimeError(f"GraphQL errors: {payload['errors']}")
        return payload["data"]

    def load_history(self, start: str, end: str, timeout: float = 900) -> None:
        """Bars, features and targets for ``start..end`` through the documented backfill command,
        against this instance (the servers need not run)."""
        done = subprocess.run(
            [sys.executable, "-m", "pm_jobs.backfill", start, end, "--select", *HISTORY_ASSETS],
            cwd=REPO, env=self.env, capture_output=True, text=True, timeout=timeout,
        )  # fmt: skip
        assert done.returncode == 0, done.stdout + done.stderr

    def set_nux_seen(self) -> None:
        """Dismiss the first-visit community dialog the UI shows over the page."""
        self.graphql("mutation { setNuxSeen }")

    def launch_run(
        self,
        job: str,
        *,
        partition: str | None = None,
        run_config: dict | None = None,
        tags: dict | None = None,
    ) -> str:
        all_tags = {**(tags or {}), **({"dagster/partition": partition} if partition else {})}
        params = {
            "selector": {"repositoryLocationName": LOCATION, "repositoryName": REPOSITORY, "jobName": job},
            "runConfigData": run_config or {},
            "executionMetadata": {"tags": [{"key": k, "value": v} for k, v in all_tags.items()]},
        }
        data = self.graphql(
            "mutation($p: ExecutionParams!) { launchRun(executionParams: $p) { __typename "
            "... on LaunchRunSuccess { run { runId } } ... on PythonError { message } "
            "... on RunConfigValidationInvalid { errors { message } } ... on Error { message } } }",
            {"p": params},
        )
        result = data["launchRun"]
        if result["__typename"] != "LaunchRunSuccess":
            raise RuntimeError(f"launchRun {job} failed: {result}")
        return result["run"]["runId"]

    def job_assets(self, job: str) -> list[tuple[list[str], bool]]:
        """The asset keys (as paths) ``job`` materializes, each with whether it is partitioned."""
        selector = {"repositoryLocationName": LOCATION, "repositoryName": REPOSITORY, "pipelineName": job}
        data = self.graphql(
            "query($s: PipelineSelector!) { assetNodes(pipeline: $s) { assetKey { path } isPartitioned } }",
            {"s": selector},
        )
        return [(node["assetKey"]["path"], node["isPartitioned"]) for node in data["assetNodes"]]

    def launch_backfill(self, job: str, partitions: list[str], run_config: dict | None = None) -> str:
        # ``partitions`` must be consecutive sessions: the backfill covers partitions[0]..partitions[-1].
        """A backfill of ``job``'s assets over ``partitions``, as the UI's "Materialize" launches one:
        an asset backfill, so each asset's backfill policy cuts the runs (ours: ranges of at most
        126 sessions, one run for a short backfill)."""
        # One session range per partitioned asset (what the UI's range picker sends); the job's
        # unpartitioned assets (backtest/run) run once after them.
        span = {"range": {"start": partitions[0], "end": partitions[-1]}}
        params = {
            "partitionsByAssets": [
                {"assetKey": {"path": path}, **({"partitions": span} if partitioned else {})}
                for path, partitioned in self.job_assets(job)
            ],
            **({"runConfigData": run_config} if run_config else {}),
        }
        data = self.graphql(
            "mutation($p: LaunchBackfillParams!) { launchPartitionBackfill(backfillParams: $p) { __typename "
            "... on LaunchBackfillSuccess { backfillId } ... on PythonError { message } "
            "... on Error { message } } }",
            {"p": params},
        )
        result = data["launchPartitionBackfill"]
        if result["__typename"] != "LaunchBackfillSuccess":
            raise RuntimeError(f"launchPartitionBackfill {job} failed: {result}")
        return result["backfillId"]

    def run_status(self, run_id: str) -> str:
        data = self.graphql(
            "query($id: ID!) { runOrError(runId: $id) { __typename ... on Run { status } } }", {"id": run_id}
        )
        return data["runOrError"]["status"]

    def wait_run(self, run_id: str, timeout: float = 600) -> str:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            status = self.run_status(run_id)
            if status in DONE:
                return status
            time.sleep(1)
        raise TimeoutError(f"run {run_id} not done after {timeout}s (status {status})")

    def runs(self, job: str | None = None, tags: dict | None = None) -> list[dict]:
        """Runs (id, status, job, tags), newest first."""
        flt: dict[str, Any] = {}
        if job:
            flt["pipelineName"] = job
        if tags:
            flt["tags"] = [{"key": k, "value": v} for k, v in tags.items()]
        data = self.graphql(
            "query($f: RunsFilter) { runsOrError(filter: $f) { ... on Runs { results { runId status "
            "jobName tags { key value } } } } }",
            {"f": flt},
        )
        return data["runsOrError"]["results"]

    def wait_backfill(self, backfill_id: str, timeout: float = 900) -> list[dict]:
        """Until every run of the backfill has ended; returns those runs."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            data = self.graphql(
                "query($id: String!) { partitionBackfillOrError(backfillId: $id) { __typename "
                "... on PartitionBackfill { status } } }",
                {"id": backfill_id},
            )
            status = data["partitionBackfillOrError"]["status"]
            runs = self.runs(tags={"dagster/backfill": backfill_id})
            if status in {"COMPLETED", "FAILED", "CANCELED", "COMPLETED_SUCCESS", "COMPLETED_FAILED"} and all(
                r["status"] in DONE for r in runs
            ):
                return runs
            time.sleep(2)
        raise TimeoutError(f"backfill {backfill_id} not done after {timeout}s")
