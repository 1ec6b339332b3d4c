"""Model artifact folders: the ``meta.json`` every saved model carries.

An artifact is a folder holding ``meta.json`` (``format_version``, ``family``, ``params`` and
whatever the saving class adds, e.g. ``wrapper: "return_forecaster"``) beside the payload
(LightGBM's ``model.txt``, a joblib ``model.joblib``, ``forecaster.json``). This module is a
leaf: it imports no other ``model_code.ml`` module, so every model class can use it and the
loader (:mod:`model_code.ml.loading`) can import every model class without a cycle.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

FORMAT_VERSION = 1
META_FILE = "meta.json"


def write_meta(path: Path, meta: dict[str, Any]) -> None:
    """Write ``meta.json`` into the artifact folder ``path`` (created if needed)."""
    path.mkdir(parents=True, exist_ok=True)
    (path / META_FILE).write_text(json.dumps({"format_version": FORMAT_VERSION, **meta}, indent=2))


def read_meta(path: str | Path, family: str | None = None) -> dict[str, Any]:
    """Read an artifact's ``meta.json``; with ``family``, refuse an artifact of another family."""
    file = Path(path) / META_FILE
    if not file.is_file():
        raise FileNotFoundError(f"{path} is not a model artifact (no {META_FILE})")
    meta = json.loads(file.read_text())
    if family is not None and meta.get("family") != family:
        raise ValueError(f"{path} holds a {meta.get('family')!r} model, not {family!r}")
    return meta
