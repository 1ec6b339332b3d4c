"""Alerts: every alert appended as one JSON line under ``$PM_HOME/alerts/``, and posted to a
webhook when one is configured (``PM_ALERT_WEBHOOK_URL``, passed as ``dg.EnvVar``).

The file is the record; the webhook is best effort: a post that fails or times out is logged,
never raised, so an alert about a failed run cannot itself fail the sensor that sends it.
"""

from __future__ import annotations

import datetime as dt
import json
import urllib.request
from pathlib import Path
from typing import Any

import dagster as dg
from pydantic import Field

from model_code.settings import pm_home

ALERTS_FILE = "alerts.jsonl"


class AlertsResource(dg.ConfigurableResource):
    """Where alerts go: a JSON-lines file in ``alerts_dir`` and, optionally, a webhook."""

    alerts_dir: str = Field(
        default_factory=lambda: str(pm_home() / "alerts"), description="Folder of alerts.jsonl."
    )
    webhook_url: str | None = Field(default=None, description="URL the alert JSON is POSTed to (optional).")
    timeout_seconds: float = Field(default=5.0, description="Webhook request timeout (seconds).")

    @property
    def path(self) -> Path:
        return Path(self.alerts_dir) / ALERTS_FILE

    def send(self, alert: dict[str, Any]) -> bool:
        """Append ``alert`` (with ``sent_at``, UTC) to the file; POST it when a webhook is set.

        Returns whether the webhook accepted it (False when none is configured or it failed).
        """
        record = {"sent_at": dt.datetime.now(dt.UTC).isoformat(), **alert}
        line = json.dumps(record, sort_keys=True, default=str)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with self.path.open("a", encoding="utf-8") as f:
            f.write(line + "\n")
        if not self.webhook_url:
            return False
        request = urllib.request.Request(
            self.webhook_url, data=line.encode(), headers={"Content-Type": "application/json"}, method="POST"
        )
        try:
            with urllib.request.urlopen(request, timeout=self.timeout_seconds) as response:
                return 200 <= response.status < 300
        except Exception as exc:  # noqa: BLE001 - any failure to post is logged, never raised
            dg.get_dagster_logger().warning("alert webhook post failed (%s): %s", type(exc).__name__, exc)
            return False
