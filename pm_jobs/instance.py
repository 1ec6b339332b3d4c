"""The Dagster instance the command-line tools use.

``$DAGSTER_HOME`` when set; otherwise the one ``make dev`` and ``make demo`` use,
``$PM_HOME/dagster_home``, created with the repository's ``config/dagster.yaml`` when missing, so the
CLIs work from a bare shell in the repository.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import dagster as dg

from model_code.settings import pm_home


def dagster_instance() -> dg.DagsterInstance:
    """The Dagster instance of ``$DAGSTER_HOME``; unset, the one ``make dev`` and ``make demo``
    use (``$PM_HOME/dagster_home``, created with the shipped ``dagster.yaml`` when missing)."""
    if not os.environ.get("DAGSTER_HOME"):
        home = pm_home() / "dagster_home"
        if not (home / "dagster.yaml").exists():
            home.mkdir(parents=True, exist_ok=True)
            shutil.copy(Path(__file__).resolve().parents[1] / "config" / "dagster.yaml", home / "dagster.yaml")
        os.environ["DAGSTER_HOME"] = str(home)
    return dg.DagsterInstance.get()
