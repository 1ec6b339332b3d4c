"""Masking of API keys in everything the web sources raise or log.

Keys come from the environment and must never reach an error message, a log line or a cache
file. Alpha Vantage only accepts its key in the query string, so URLs are masked too, including
the request lines urllib3 logs at DEBUG, which no client-side code controls; hence a
process-wide logging filter next to the per-client redactor.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from urllib.parse import quote, quote_plus


class SecretRedactor(logging.Filter):
    """Replaces secrets (and their URL-encoded forms) with ``***``; also a logging filter."""

    def __init__(self, secrets: Iterable[str] = ()) -> None:
        super().__init__()
        self._secrets: set[str] = set()
        self.add(secrets)

    def add(self, secrets: Iterable[str]) -> None:
        for secret in secrets:
            if secret:
                self._secrets |= {secret, quote(secret, safe=""), quote_plus(secret)}

    def __contains__(self, value: object) -> bool:
        return isinstance(value, str) and value in self._secrets

    def redact(self, text: str) -> str:
        for secret in sorted(self._secrets, key=len, reverse=True):
            text = text.replace(secret, "***")
        return text

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        redacted = self.redact(message)
        if redacted != message:
            record.msg, record.args = redacted, ()
        return True


# urllib3 logs every request line (query string included) at DEBUG; Alpha Vantage only accepts
# its key in the query, so every client registers its secrets here too.
_TRANSPORT_LOG_REDACTOR = SecretRedactor()
logging.getLogger("urllib3.connectionpool").addFilter(_TRANSPORT_LOG_REDACTOR)


def mask_in_transport_logs(secrets: Iterable[str]) -> None:
    """Mask ``secrets`` in urllib3's request log lines from now on (process-wide, never undone)."""
    _TRANSPORT_LOG_REDACTOR.add(secrets)
