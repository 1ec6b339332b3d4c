"""The model registry: artifacts under ``$PM_HOME/models``, one ``models.registry`` row each.

``model_id`` is deterministic: ``{family}-h{horizon}-{digest}`` where digest is the first 16 hex
of sha256 over (family, horizon, train_start, train_end, params JSON, feature-list hash,
trained_at to the microsecond). Retraining the same configuration therefore gets a new id (its
trained_at differs), and an id can be recomputed from its row to check it.

Writes are atomic: the artifact is saved under a temporary folder name, then the row is
inserted and the folder renamed inside one warehouse transaction; any failure rolls the row
back and removes the artifact. Models expire (FreqAI-style) ``ttl_days`` after training and are
then refused by :meth:`ModelRegistry.load`: retrain rather than trade on a stale model.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import math
import shutil
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from model_code.ml.loading import load_model
from model_code.settings import pm_home
from model_code.warehouse import Warehouse

DEFAULT_TTL_DAYS = 30
STATUSES = ("champion", "challenger", "retired")
_COLUMNS = (
    "model_id",
    "family",
    "horizon",
    "trained_at",
    "train_start",
    "train_end",
    "params",
    "cv_metrics",
    "feature_list_hash",
    "feature_list",
    "artifact_path",
    "status",
    "expires_at",
)


class ModelNotFound(LookupError):
    """No registry row has this model_id."""


class ModelExpired(RuntimeError):
    """The model is past its expiry at the requested as_of; retrain before using it."""


def feature_list_hash(features: Sequence[str]) -> str:
    """sha256 hex of the ordered feature list (order matters: columns are positional)."""
    return hashlib.sha256(json.dumps(list(features)).encode()).hexdigest()


def _jsonable(value: Any) -> Any:
    """numpy scalars/arrays to Python, non-finite floats to None (JSON has no NaN)."""
    if isinstance(value, Mapping):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple | np.ndarray):
        return [_jsonable(v) for v in value]
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dt.date):
        return value.isoformat()
    return value


def _dumps(value: Any) -> str:
    return json.dumps(_jsonable(value), sort_keys=True)


def _as_datetime(value: dt.datetime | dt.date) -> dt.datetime:
    """A date means its midnight; aware datetimes are converted to naive UTC."""
    if isinstance(value, dt.datetime):
        return value.astimezone(dt.UTC).replace(tzinfo=None) if value.tzinfo else value
    return dt.datetime.combine(value, dt.time.min)


def _utcnow() -> dt.datetime:
    return dt.datetime.now(dt.UTC).replace(tzinfo=None)


def model_id_of(
    model: Any,
    horizon: int,
    train_start: dt.date,
    train_end: dt.date,
    feature_list: Sequence[str],
    trained_at: dt.datetime | dt.date,
    *,
    family: str | None = None,
) -> str:
    """The id :meth:`ModelRegistry.register` gives ``model`` (see module docs), known before
    it is registered (governance names its records by it)."""
    family = family or model.family
    trained = _as_datetime(trained_at)
    digest = hashlib.sha256(
        "|".join(
            [
                family,
                str(horizon),
                str(train_start),
                str(train_end),
                _dumps(model.params),
                feature_list_hash(feature_list),
                trained.isoformat(),
            ]
        ).encode()
    ).hexdigest()[:16]
    return f"{family}-h{horizon}-{digest}"


@dataclass(frozen=True)
class RegistryRecord:
    """One ``models.registry`` row with its JSON columns decoded."""

    model_id: str
    family: str
    horizon: int
    trained_at: dt.datetime
    train_start: dt.date
    train_end: dt.date
    params: dict[str, Any]
    cv_metrics: dict[str, Any]
    feature_list_hash: str
    feature_list: list[str]
    artifact_path: str
    status: str
    expires_at: dt.datetime | None

    @classmethod
    def from_row(cls, row: Mapping[str, Any]) -> RegistryRecord:
        decoded = {
            k: json.loads(row[k]) if row[k] is not None else {}
            for k in ("params", "cv_metrics", "feature_list")
        }
        return cls(**{**{k: row[k] for k in _COLUMNS}, **decoded})

    def expired(self, as_of: dt.datetime | dt.date) -> bool:
        return self.expires_at is not None and _as_datetime(as_of) > self.expires_at

    def check_usable(self, as_of: dt.datetime | dt.date) -> None:
        """Raise :class:`ModelExpired` if the model is past its expiry at ``as_of``."""
        if self.expired(as_of):
            raise ModelExpired(
                f"model {self.model_id} ({self.family}, horizon {self.horizon}) expired at "
                f"{self.expires_at:%Y-%m-%d %H:%M} UTC and cannot be used as of {as_of}: it was trained "
                f"{self.trained_at:%Y-%m-%d %H:%M} on {self.train_start}..{self.train_end}. Retrain it "
                "(re-materialize the training asset) and promote the new model, or register with a "
                "longer ttl_days."
            )


def load_artifact(rec: RegistryRecord, artifact_root: str | Path | None = None) -> Any:
    """The model saved for ``rec``: from its ``artifact_path`` or, if that folder moved, from
    ``artifact_root/model_id`` (default ``$PM_HOME/models``). Reads files only: it needs no open
    warehouse and checks no expiry (:meth:`RegistryRecord.check_usable` does)."""
    path = Path(rec.artifact_path)
    if not path.is_dir():
        path = (Path(artifact_root) if artifact_root is not None else pm_home() / "models") / rec.model_id
    if not path.is_dir():
        raise FileNotFoundError(f"artifact of model {rec.model_id} missing at {rec.artifact_path} and {path}")
    return load_model(path)


class ModelRegistry:
    """Register, load, promote and retire models; rows in ``models.registry``."""

    def __init__(self, warehouse: Warehouse, artifact_root: Path | None = None) -> None:
        self.warehouse = warehouse
        self.artifact_root = Path(artifact_root) if artifact_root is not None else pm_home() / "models"

    def register(
        self,
        model: Any,
        *,
        horizon: int,
        train_start: dt.date,
        train_end: dt.date,
        feature_list: Sequence[str],
        cv_metrics: Mapping[str, Any] | None = None,
        family: str | None = None,
        status: str = "challenger",
        ttl_days: float | None = DEFAULT_TTL_DAYS,
        trained_at: dt.datetime | None = None,
    ) -> str:
        """Save ``model``'s artifact and insert its row atomically; returns the model_id.

        ``family`` defaults to ``model.family``; ``ttl_days=None`` never expires. Registering as
        'champion' retires the previous champion of the same family/horizon in the same
        transaction. Raises ValueError on a bad status, warehouse errors after cleaning up.
        """
        if status not in STATUSES:
            raise ValueError(f"status must be one of {STATUSES}, got {status!r}")
        family = family or model.family
        trained = _as_datetime(trained_at) if trained_at is not None else _utcnow()
        fhash = feature_list_hash(feature_list)
        params = _dumps(model.params)
        model_id = model_id_of(model, horizon, train_start, train_end, feature_list, trained, family=family)
        final = self.artifact_root / model_id
        tmp = self.artifact_root / f".tmp-{model_id}-{uuid.uuid4().hex[:8]}"
        expires = trained + dt.timedelta(days=ttl_days) if ttl_days is not None else None
        row = [
            model_id,
            family,
            int(horizon),
            trained,
            train_start,
            train_end,
            params,
            _dumps(dict(cv_metrics or {})),
            fhash,
            json.dumps(list(feature_list)),
            str(final),
            status,
            expires,
        ]
        try:
            model.save(tmp)
            with self.warehouse.transaction():
                if status == "champion":
                    self._retire_champions(family, horizon, keep=model_id)
                marks = ", ".join("?" * len(_COLUMNS))
                self.warehouse.execute(
                    f"INSERT INTO models.registry ({', '.join(_COLUMNS)}) VALUES ({marks})", row
                )
                if final.exists():
                    raise FileExistsError(f"artifact folder {final} already exists")
                tmp.rename(final)
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            if not self._exists(model_id):
                shutil.rmtree(final, ignore_errors=True)
            raise
        return model_id

    def _exists(self, model_id: str) -> bool:
        try:
            return bool(
                self.warehouse.execute("SELECT 1 FROM models.registry WHERE model_id = ?", [model_id])
            )
        except Exception:  # the table itself may be what failed
            return False

    def record(self, model_id: str) -> RegistryRecord:
        """The registry row of ``model_id``; raises :class:`ModelNotFound`."""
        rows = self.warehouse.query("SELECT * FROM models.registry WHERE model_id = ?", [model_id])
        if rows.height == 0:
            raise ModelNotFound(f"no model {model_id!r} in models.registry")
        return RegistryRecord.from_row(rows.row(0, named=True))

    def load(
        self, model_id: str, *, as_of: dt.datetime | dt.date | None = None
    ) -> tuple[Any, RegistryRecord]:
        """The model and its record, refusing it (:class:`ModelExpired`) if expired at ``as_of``.

        ``as_of`` defaults to now (UTC); a date means its midnight. The artifact is found at
        ``artifact_path`` or, if the folder moved, at ``artifact_root/model_id``.
        """
        rec = self.record(model_id)
        rec.check_usable(as_of if as_of is not None else _utcnow())
        return load_artifact(rec, self.artifact_root), rec

    def champion(
        self, family: str, horizon: int, as_of: dt.datetime | dt.date | None = None
    ) -> RegistryRecord | None:
        """The champion of ``family``/``horizon`` (None if there is none).

        With ``as_of``, raises :class:`ModelExpired` if the champion is expired at that time.
        """
        rows = self.warehouse.query(
            "SELECT * FROM models.registry WHERE family = ? AND horizon = ? AND status = 'champion' "
            "ORDER BY trained_at DESC LIMIT 1",
            [family, int(horizon)],
        )
        if rows.height == 0:
            return None
        rec = RegistryRecord.from_row(rows.row(0, named=True))
        if as_of is not None:
            rec.check_usable(as_of)
        return rec

    def promote(self, model_id: str, *, as_of: dt.datetime | dt.date | None = None) -> None:
        """Make ``model_id`` the champion; the previous champion is retired in the same transaction.

        Refuses (:class:`ModelExpired`) a model expired at ``as_of`` (default now, UTC).
        """
        rec = self.record(model_id)
        rec.check_usable(as_of if as_of is not None else _utcnow())
        with self.warehouse.transaction():
            self._retire_champions(rec.family, rec.horizon, keep=model_id)
            self.warehouse.execute(
                "UPDATE models.registry SET status = 'champion' WHERE model_id = ?", [model_id]
            )

    def retire(self, model_id: str) -> None:
        """Mark ``model_id`` retired (its artifact is kept for audit)."""
        self.record(model_id)
        self.warehouse.execute("UPDATE models.registry SET status = 'retired' WHERE model_id = ?", [model_id])

    def _retire_champions(self, family: str, horizon: int, *, keep: str) -> None:
        self.warehouse.execute(
            "UPDATE models.registry SET status = 'retired' "
            "WHERE family = ? AND horizon = ? AND status = 'champion' AND model_id <> ?",
            [family, int(horizon), keep],
        )

    def records(self, family: str | None = None, horizon: int | None = None) -> list[RegistryRecord]:
        """Registry records, newest first, optionally filtered by family and horizon."""
        rows = self.warehouse.query(
            "SELECT * FROM models.registry WHERE (? IS NULL OR family = ?) AND (? IS NULL OR horizon = ?) "
            "ORDER BY trained_at DESC, model_id",
            [family, family, horizon, horizon],
        )
        return [RegistryRecord.from_row(r) for r in rows.iter_rows(named=True)]
