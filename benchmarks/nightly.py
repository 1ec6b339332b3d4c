"""The whole nightly job for the shared tickers, with stored fits, step by step (issue 13).

Setup (untimed, minutes; kept under ``--work``, default ``$PM_HOME/bench-nightly``, and reused by
the next run with the same settings): a DuckDB warehouse and a ``DAGSTER_HOME`` of their own (the
shipped ``config/dagster.yaml``), the ``parquet`` source on the shared file and no universe file, so every
one of its 402 tickers is traded. Through :func:`pm_jobs.backfill.run_job` (the shipped executor):

1. history: bars, features and targets (``market/universe``, ``market/ohlcv``,
   ``features/daily``, ``features/targets``) from ``--start`` to the session before the warm-up
   nights, in runs of at most ``MAX_PARTITIONS_PER_RUN`` sessions as a backfill cuts them;
2. ``ml_training_job`` once, on what was known at that session's close (``until``);
3. ``refit_job``: the stored statistical fits (``forecasts/fits``) on the same data;
4. ``--warmup`` nightly sessions, one ``nightly_job`` run each, so the paper account holds orders
   and positions, the ensemble weights and monitoring have a few realized days.

The warehouse and the instance are then copied aside; every timed run starts from that copy.

Timed: ``nightly_job`` for the session ``--session`` (T), then for the session after it, each one
run through ``run_job`` in this process (definitions loaded once, before; the daemon's run
launcher would add a fresh process and that load, printed apart). Each step's seconds come from
the run's event log (``STEP_START`` to ``STEP_SUCCESS`` / ``STEP_FAILURE``); the gap between the
run's wall time and the sum of its steps is the executor's own work (run start, pool claims,
event writes). One BLAS thread per process, as ``make bench`` exports.

Target (issue 13): the whole nightly job (ingest -> paper fills -> monitoring) for the 402 shared
tickers <= 20 s on 2 cores with stored fits.

    python -m benchmarks.nightly [--parquet PATH] [--work DIR] [--rebuild] [--session 2019-12-02]
"""

from __future__ import annotations

import os

for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import argparse  # noqa: E402
import datetime as dt  # noqa: E402
import json  # noqa: E402
import shutil  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402
from collections.abc import Iterable  # noqa: E402
from dataclasses import dataclass  # noqa: E402
from pathlib import Path  # noqa: E402

from benchmarks import DEFAULT_PARQUET  # noqa: E402

TARGET_SECONDS, TARGET_TICKERS, TARGET_CORES = 20.0, 402, 2
REPO = Path(__file__).resolve().parents[1]
# The environment the platform reads; the benchmark sets its own and clears the rest.
CLEARED = (
    "PM_UNIVERSE",
    "PM_HISTORY_END",
    "PM_DUCKDB_PATH",
    "PM_CSV_PATH",
    "PM_DATE_FORMAT",
    "OLLAMA_HOST",
    "PM_OLLAMA_TOKEN",
    "PM_ALPHAVANTAGE_KEY",
    "PM_FINNHUB_KEY",
    "PM_ALERT_WEBHOOK_URL",
)
STEP_END = {"STEP_SUCCESS": "ok", "STEP_FAILURE": "FAILED"}
RUN_END = ("RUN_SUCCESS", "RUN_FAILURE", "RUN_CANCELED")


@dataclass(frozen=True)
class StepTime:
    step: str
    seconds: float
    status: str  # ok, FAILED, skipped, unfinished


@dataclass(frozen=True)
class RunTimes:
    steps: list[StepTime]
    run_seconds: float | None  # RUN_START to the run's end event; None if either is missing
    created_seconds: float | None = None  # the run's first event (planned materializations) to RUN_START

    @property
    def step_seconds(self) -> float:
        return sum(s.seconds for s in self.steps)


def step_times(events: Iterable[tuple[str | None, str, float]]) -> RunTimes:
    """Per-step seconds from a run's events ``(step_key, event type name, unix timestamp)``, in
    the order the steps started (skipped steps, which never start, last, at 0 s). A step's time
    runs from its first ``STEP_START`` to its last ``STEP_SUCCESS`` / ``STEP_FAILURE`` (a retried
    step counts all its attempts); a step that started and never ended is ``unfinished``."""
    started: dict[str, float] = {}
    ended: dict[str, tuple[float, str]] = {}
    skipped: list[str] = []
    run_start = run_end = first = None
    for step, kind, ts in sorted(events, key=lambda e: e[2]):
        first = ts if first is None else first
        if kind == "RUN_START":
            run_start = ts if run_start is None else run_start
        elif kind in RUN_END:
            run_end = ts
        elif step is None:
            continue
        elif kind == "STEP_START":
            started.setdefault(step, ts)
        elif kind in STEP_END:
            ended[step] = (ts, STEP_END[kind])
        elif kind == "STEP_SKIPPED" and step not in skipped:
            skipped.append(step)
    steps = []
    for step, began in sorted(started.items(), key=lambda kv: kv[1]):
        if step in ended:
            steps.append(StepTime(step, max(0.0, ended[step][0] - began), ended[step][1]))
        else:
            steps.append(StepTime(step, 0.0, "unfinished"))
    steps += [StepTime(s, 0.0, "skipped") for s in skipped if s not in started]
    run_seconds = run_end - run_start if run_start is not None and run_end is not None else None
    created = run_start - first if run_start is not None else None
    return RunTimes(steps, run_seconds, created)


def run_events(instance, run_id: str) -> list[tuple[str | None, str, float]]:
    """The ``(step_key, event type name, timestamp)`` of every Dagster event of a run (the enum's
    name: its stored value of RUN_START is still ``PIPELINE_START``)."""
    return [
        (e.step_key, e.dagster_event.event_type.name, e.timestamp)
        for e in instance.all_logs(run_id)
        if e.dagster_event is not None
    ]


def format_steps(times: RunTimes, wall: float) -> list[str]:
    """The printed table: one line per step, then the steps' sum, where the rest of the wall went
    (the run's creation before RUN_START, the executor between steps, the rest outside the event
    log: the job's load and plan in this process) and the wall."""
    lines = [f"    {'step':<44} {'seconds':>8} {'share':>6}"]
    for s in times.steps:
        share = f"{s.seconds / wall:6.1%}" if wall > 0 else ""
        flag = "" if s.status == "ok" else f"  {s.status}"
        lines.append(f"    {s.step:<44} {s.seconds:8.2f} {share:>6}{flag}")
    lines.append(f"    {'sum of steps':<44} {times.step_seconds:8.2f}")
    if times.run_seconds is not None and times.created_seconds is not None:
        between = times.run_seconds - times.step_seconds
        outside = wall - times.run_seconds - times.created_seconds
        lines.append(f"    {'run creation (planned events, to RUN_START)':<44} {times.created_seconds:8.2f}")
        lines.append(f"    {'executor between steps (pool, check events)':<44} {between:8.2f}")
        lines.append(f"    {'outside the event log (job load, plan)':<44} {outside:8.2f}")
    else:
        lines.append(f"    {'outside the steps':<44} {wall - times.step_seconds:8.2f}")
    lines.append(f"    {'wall (run_job call)':<44} {wall:8.2f}")
    return lines


def verdict(wall: float, tickers: int, cores: int) -> str:
    met = wall <= TARGET_SECONDS and tickers >= TARGET_TICKERS and cores <= TARGET_CORES
    return (
        f"{'PASS' if met else 'MISS'}: {wall:.2f} s for {tickers} tickers on {cores} cores "
        f"(target <= {TARGET_SECONDS:.0f} s for {TARGET_TICKERS} tickers on {TARGET_CORES} cores)"
    )


# --- setup -------------------------------------------------------------------------------------


def _environment(live: Path, parquet: Path, start: str) -> None:
    for key in CLEARED:
        os.environ.pop(key, None)
    # The partitions cover the configured history (model_code.history): from the history's start.
    os.environ["PM_HISTORY_START"] = start
    os.environ["PM_HOME"] = str(live / "pm_home")
    os.environ["DAGSTER_HOME"] = str(live / "dagster_home")
    os.environ["PM_SOURCES"] = "parquet"
    os.environ["PM_PARQUET_PATH"] = str(parquet)


def _dagster_home(folder: Path) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    shutil.copy(REPO / "config" / "dagster.yaml", folder / "dagster.yaml")


def _refit_job():
    from pm_jobs.backfill import defs

    return defs.resolve_job_def("refit_job")


def _check(result, what: str) -> None:
    if not result.success:
        raise SystemExit(
            f"setup failed: {what} (run {result.run_id}, DAGSTER_HOME={os.environ['DAGSTER_HOME']})"
        )


def _setup(instance, plan: dict, state_file: Path) -> None:
    import dagster as dg

    from benchmarks import nightly as this  # importable, for dg.reconstructable
    from pm_jobs.backfill import QUIET, run_job, session_chunks
    from pm_jobs.demo import HISTORY_ASSETS

    state = json.loads(state_file.read_text()) if state_file.is_file() else {"plan": plan, "done": []}
    done = state["done"]

    def mark(stage: str) -> None:
        done.append(stage)
        state_file.write_text(json.dumps(state, indent=1))

    for chunk in session_chunks(plan["start"], plan["fit_on"]):
        stage = f"history {chunk[0]}..{chunk[-1]}"
        if stage in done:
            continue
        began = time.perf_counter()
        _check(run_job(instance, "nightly_job", chunk, HISTORY_ASSETS), stage)
        print(f"  setup {stage}: {time.perf_counter() - began:.1f} s", flush=True)
        mark(stage)
    stage = f"ml_training_job until {plan['fit_on']}"
    if stage not in done:
        began = time.perf_counter()
        config = {"ops": {"ml__model": {"config": {"until": plan["fit_on"]}}}}
        _check(run_job(instance, "ml_training_job", None, None, config), stage)
        print(f"  setup {stage}: {time.perf_counter() - began:.1f} s", flush=True)
        mark(stage)
    stage = f"refit_job as of {plan['fit_on']}"
    if stage not in done:
        began = time.perf_counter()
        config = {"ops": {"forecasts__fits": {"config": {"as_of": plan["fit_on"]}}}}
        result = dg.execute_job(
            dg.reconstructable(this._refit_job),
            instance=instance,
            run_config={**QUIET, **config},
            raise_on_error=False,
        )
        _check(result, stage)
        print(f"  setup {stage}: {time.perf_counter() - began:.1f} s", flush=True)
        mark(stage)
    for night in plan["warmup"]:
        stage = f"nightly {night}"
        if stage in done:
            continue
        began = time.perf_counter()
        _check(run_job(instance, "nightly_job", [night]), stage)
        print(f"  setup {stage}: {time.perf_counter() - began:.1f} s", flush=True)
        mark(stage)


def _plan(args, parquet: Path) -> dict:
    from model_code.market_data.calendar import trading_calendar

    calendar = trading_calendar()
    session = dt.date.fromisoformat(args.session)
    if not calendar.is_session(session):
        raise SystemExit(f"--session {session} is not an NYSE session")
    sessions = calendar.sessions_in_range(session - dt.timedelta(days=3 * (args.warmup + 2) + 10), session)
    before = [str(s) for s in sessions if s < session]
    if len(before) < args.warmup + 1:
        raise SystemExit("--warmup too large")
    after = calendar.sessions_in_range(session, session + dt.timedelta(days=10))
    return {
        "parquet": str(parquet),
        "start": args.start,
        "fit_on": before[-args.warmup - 1],
        "warmup": before[-args.warmup :] if args.warmup else [],
        "timed": [str(after[0]), str(after[1])],
    }


def _copy(src: Path, dst: Path) -> None:
    if dst.exists():
        shutil.rmtree(dst)
    shutil.copytree(src, dst)


def _descendant_cpu() -> dict[int, float]:
    """CPU seconds (user + system) of each live descendant process of this one (Linux ``/proc``;
    empty elsewhere): the forecasts' loky workers outlive a run, so ``RUSAGE_CHILDREN`` alone
    would miss them."""
    tick = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100
    parent, cpu = {}, {}
    for entry in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = entry.read_text().rsplit(")", 1)[1].split()
        except (OSError, IndexError):
            continue
        pid = int(entry.parent.name)
        parent[pid] = int(fields[1])
        cpu[pid] = (int(fields[11]) + int(fields[12])) / tick
    mine, frontier = set(), {os.getpid()}
    while frontier:
        frontier = {p for p, pp in parent.items() if pp in frontier} - mine
        mine |= frontier
    return {p: cpu[p] for p in mine}


def cpu_mark() -> tuple[float, float, dict[int, float]]:
    import resource

    done = resource.getrusage(resource.RUSAGE_CHILDREN)
    return time.process_time(), done.ru_utime + done.ru_stime, _descendant_cpu()


def cpu_since(mark: tuple[float, float, dict[int, float]]) -> tuple[float, float]:
    """(this process's CPU seconds, its child processes' CPU seconds) since ``mark``."""
    main_before, ended_before, alive_before = mark
    main_now, ended_now, alive_now = cpu_mark()
    children = ended_now - ended_before + sum(c - alive_before.get(p, 0.0) for p, c in alive_now.items())
    return main_now - main_before, children


def _load_average() -> str:
    try:
        return " ".join(f"{x:.2f}" for x in os.getloadavg())
    except OSError:
        return "n/a"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--parquet", type=Path, default=DEFAULT_PARQUET)
    ap.add_argument("--work", type=Path, default=None, help="setup cache (default $PM_HOME/bench-nightly)")
    ap.add_argument("--rebuild", action="store_true", help="rebuild the setup even if cached")
    ap.add_argument("--start", default="2015-01-12", help="first session of the history")
    ap.add_argument("--session", default="2019-12-02", help="the timed night T (then T+1)")
    ap.add_argument("--warmup", type=int, default=4, help="nightly runs before T, in the setup")
    args = ap.parse_args(argv)

    parquet = args.parquet.resolve()
    if not parquet.is_file():
        print(f"shared data not found: {parquet} (--parquet)", file=sys.stderr)
        return 2
    work = (args.work or Path(os.environ.get("PM_HOME") or ".pm") / "bench-nightly").resolve()
    live, snapshot, state_file = work / "live", work / "snapshot", work / "setup.json"
    plan = _plan(args, parquet)
    cached = json.loads(state_file.read_text()) if state_file.is_file() else None
    if args.rebuild or cached is None or cached["plan"] != plan:
        # Only what this benchmark made is removed, never anything else under --work.
        for made in (live, snapshot):
            shutil.rmtree(made, ignore_errors=True)
        state_file.unlink(missing_ok=True)
    work.mkdir(parents=True, exist_ok=True)
    _environment(live, parquet, plan["start"])

    began = time.perf_counter()
    import dagster as dg

    from pm_jobs.backfill import run_job

    load_s = time.perf_counter() - began

    complete = state_file.is_file() and json.loads(state_file.read_text()).get("complete")
    if not complete:
        print(
            f"setup (untimed) in {work}: history {plan['start']}..{plan['fit_on']}, ML trained and fits "
            f"refitted as of {plan['fit_on']}, nightly runs {', '.join(plan['warmup'])} ...",
            flush=True,
        )
        _dagster_home(live / "dagster_home")
        instance = dg.DagsterInstance.from_config(os.environ["DAGSTER_HOME"])
        _setup(instance, plan, state_file)
        instance.dispose()
        _copy(live, snapshot)
        state = json.loads(state_file.read_text())
        state["complete"] = True
        state_file.write_text(json.dumps(state, indent=1))
    else:
        print(f"setup reused from {work} (--rebuild to redo it)")
    _copy(snapshot, live)  # every timed run starts from the same state
    instance = dg.DagsterInstance.from_config(os.environ["DAGSTER_HOME"])

    import duckdb

    from model_code.settings import duckdb_path

    with duckdb.connect(str(duckdb_path()), read_only=True) as conn:
        tickers = conn.execute("SELECT count(*) FROM market.universe WHERE active").fetchone()[0]
        traded = conn.execute(
            "SELECT count(DISTINCT ticker) FROM market.ohlcv WHERE date = ?",
            [dt.date.fromisoformat(plan["fit_on"])],
        ).fetchone()[0]
        fits = conn.execute("SELECT count(*) FROM models.fits").fetchone()[0]
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    print(
        f"{tickers} tickers in the universe ({traded} with a bar on {plan['fit_on']}), {fits} stored fits; "
        f"{cores} cores; "
        f"definitions loaded in {load_s:.1f} s (a launched run's process pays this too, not counted below)"
    )
    walls = []
    for label, night in zip(("T (first run in this process)", "T+1 (warm)"), plan["timed"], strict=True):
        load = _load_average()
        mark = cpu_mark()
        began = time.perf_counter()
        result = run_job(instance, "nightly_job", [night])
        wall = time.perf_counter() - began
        main_cpu, child_cpu = cpu_since(mark)
        walls.append(wall)
        times = step_times(run_events(instance, result.run_id))
        print(
            f"\nnightly_job {night}, {label}: run {result.run_id[:8]} {'ok' if result.success else 'FAILED'}"
        )
        print(f"  load average at start {load}, at end {_load_average()}")
        print("\n".join(format_steps(times, wall)))
        print(
            f"  CPU seconds: this process {main_cpu:.1f}, worker processes {child_cpu:.1f} "
            f"(wall {wall:.1f} s; CPU / wall {(main_cpu + child_cpu) / wall:.2f} of {cores} cores)"
        )
        top = sorted(times.steps, key=lambda s: -s.seconds)[:3]
        print("  largest: " + ", ".join(f"{s.step} {s.seconds:.1f} s" for s in top))
        print("  " + verdict(wall, tickers, cores))
        if not result.success:
            return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
