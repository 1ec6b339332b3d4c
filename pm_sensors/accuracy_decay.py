"""Accuracy-decay sensor: a refit of exactly the models and tickers whose accuracy decayed.

It reads the materializations of ``monitoring/model_health`` from the instance's event log,
never DuckDB: their ``refit_request`` metadata names the pairs that crossed their decay
threshold at the evaluated session (``model_code/monitoring/pairs.py``). The cursor is the
storage id of the last materialization handled, and every materialization after it is read in
pages, so a burst of evaluations during a backfill is all seen, in order.

Each evaluation that names pairs yields one run request per family: statistical pairs a
``refit_job`` run with ``{model: [tickers]}``, ML pairs one ``ml_training_job`` run per family
with the decayed horizons. The run key is the materialization's storage id and the pairs, so
re-evaluating the same events (a tick whose cursor was not saved) asks for the same runs, which
Dagster does not launch twice. A run over a partition range stores one materialization per
partition, all with the range's last-session metadata; only the one for that session triggers.
"""

import hashlib
import json

import dagster as dg

from model_code.monitoring import ML, STATISTICAL
from pm_assets.monitoring.model_health import MODEL_HEALTH, REFIT_METADATA
from pm_sensors.refit_requests import ml_training_run_config, refit_run_config

PAGE = 100


def _digest(payload: object) -> str:
    return hashlib.sha256(json.dumps(payload, sort_keys=True).encode()).hexdigest()[:12]


def _request_of(record) -> tuple[str | None, dict]:
    """(evaluated as_of, refit request) of one materialization record."""
    metadata = record.asset_materialization.metadata
    as_of = metadata.get("as_of")
    request = metadata.get(REFIT_METADATA)
    return (as_of.value if as_of else None), (request.value if request else {}) or {}


def run_requests_for(record, refit_job_name: str | None, ml_job_name: str, log=None) -> list[dg.RunRequest]:
    """The run requests one ``monitoring/model_health`` materialization asks for."""
    as_of, request = _request_of(record)
    if record.partition_key is not None and as_of is not None and record.partition_key != as_of:
        return []  # one of a range run's partitions; the range's last session speaks for it
    tags = {"pm/trigger": "accuracy_decay", "pm/evaluation": str(record.storage_id)}
    if as_of:
        tags["pm/decay_as_of"] = as_of
    out = []
    statistical = request.get(STATISTICAL) or {}
    if statistical and refit_job_name is None:
        if log is not None:
            log.info(
                "statistical pairs decayed (%s) but no refit_job exists: they refit nightly", statistical
            )
    elif statistical:
        config = refit_run_config(statistical)
        out.append(
            dg.RunRequest(
                run_key=f"accuracy-decay:{record.storage_id}:{STATISTICAL}:{_digest(config)}",
                job_name=refit_job_name,
                run_config=config,
                tags=tags,
            )
        )
    for model, horizons in sorted((request.get(ML) or {}).items()):
        config = ml_training_run_config(model, horizons)
        out.append(
            dg.RunRequest(
                run_key=f"accuracy-decay:{record.storage_id}:{ML}:{model}:{_digest(config)}",
                job_name=ml_job_name,
                run_config=config,
                tags=tags,
            )
        )
    return out


def build_accuracy_decay_sensor(
    ml_job,
    refit_job=None,
    name: str = "accuracy_decay_sensor",
    default_status: dg.DefaultSensorStatus = dg.DefaultSensorStatus.RUNNING,
    minimum_interval_seconds: int = 60,
) -> dg.SensorDefinition:
    """The decay sensor targeting ``ml_job`` and, when given, the statistical ``refit_job``."""
    jobs = [ml_job, *([refit_job] if refit_job is not None else [])]
    refit_name = refit_job.name if refit_job is not None else None

    @dg.sensor(
        name=name,
        jobs=jobs,
        minimum_interval_seconds=minimum_interval_seconds,
        default_status=default_status,
        description=(
            "Requests a refit of exactly the models and tickers (ML: horizons) that monitoring/"
            "model_health found decayed, once per evaluation."
        ),
    )
    def accuracy_decay_sensor(context: dg.SensorEvaluationContext):
        after = int(context.cursor) if context.cursor else None
        requests: list[dg.RunRequest] = []
        seen = 0
        while True:
            page = context.instance.fetch_materializations(
                dg.AssetRecordsFilter(asset_key=MODEL_HEALTH, after_storage_id=after),
                limit=PAGE,
                ascending=True,
            )
            for record in page.records:
                requests.extend(run_requests_for(record, refit_name, ml_job.name, context.log))
                after = record.storage_id
                seen += 1
            if not page.has_more or not page.records:
                break
        if not seen:
            return dg.SkipReason("no new monitoring/model_health evaluation")
        cursor = str(after)
        if not requests:
            return dg.SensorResult(
                skip_reason=f"{seen} evaluation(s), no model crossed its threshold", cursor=cursor
            )
        return dg.SensorResult(run_requests=requests, cursor=cursor)

    return accuracy_decay_sensor
