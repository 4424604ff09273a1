"""One log line when the Kubernetes API server stops answering, one when it is back.

kopf logs every failed attempt of its watch as an ERROR ("Request attempt #3/9
failed; will retry ...", dozens a minute) and the controller warns about every
status patch the outage refuses, and urllib3 warns about each of the kubernetes
client's retries (of Secret reads and patches). While an outage is on, this filter lets through
only the first of them, worded for a person, and turns the watch's first success
into "answers again". It never drops anything when no outage is on, so an
ordinary error is never hidden. No kopf import: it reads log records only.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator

# kopf's own wording (kopf/_cogs/clients/api.py), the only thing it offers to hook on.
_RETRYING = "failed; will retry: "
_SUCCEEDED = "succeeded: "
_ESCALATING = "failed; escalating: "
# The controller's warnings that an API outage explains (controller.py).
_OURS = ("while patching the status of", "while listing claims")


class RetryForever:
    """kopf's backoffs with no last attempt: its watch then never escalates an outage
    into a crash, however long the API server is away. Re-iterable (not an iterator),
    since kopf starts from the beginning for every request."""

    def __iter__(self) -> Iterator[float]:
        yield from (1, 1, 2, 3, 5, 8)
        while True:
            yield 10


class ApiOutageLog(logging.Filter):
    """Attach to kopf's client loggers (at DEBUG: the success record is a debug one) and
    to the controller's logger."""

    def __init__(self) -> None:
        super().__init__()
        self.down_since: float | None = None
        self.suppressed = 0

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        if record.name.startswith("kopf") and "Request attempt" in message:
            return self._attempt(record, message)
        if record.name.startswith("urllib3") and message.startswith("Retrying ("):
            # The kubernetes client's retries of one request: its final failure is what
            # the caller reports (a Secret unavailable, a patch refused).
            return False
        if self.down_since is not None and message.startswith(_OURS):
            self.suppressed += 1
            return False
        # kopf's other debug chatter stays as quiet as its WARNING level made it.
        return not (record.name.startswith("kopf") and record.levelno < logging.WARNING)

    def _attempt(self, record: logging.LogRecord, message: str) -> bool:
        if _RETRYING in message or _ESCALATING in message:
            if self.down_since is not None:
                self.suppressed += 1
                return False
            self.down_since = time.monotonic()
            self.suppressed = 0
            what, _, cause = message.partition(" -> ")
            request = what.rsplit(": ", 1)[-1].split("?", 1)[0]
            _reword(
                record,
                logging.WARNING,
                f"the Kubernetes API server does not answer ({request}: {cause[:200]}); "
                "retrying quietly until it does",
            )
            return True
        if _SUCCEEDED in message and self.down_since is not None:
            lasted = time.monotonic() - self.down_since
            _reword(
                record,
                logging.INFO,
                f"the Kubernetes API server answers again, after {lasted:.0f}s "
                f"({self.suppressed} more failed requests not logged)",
            )
            self.down_since = None
            return True
        return record.levelno >= logging.WARNING


def _reword(record: logging.LogRecord, level: int, message: str) -> None:
    record.levelno, record.levelname = level, logging.getLevelName(level)
    record.msg, record.args = message, None
    record.name = "datarch.operator"


def install(logger_names: tuple[str, ...] = ("kopf._cogs.clients.watching",)) -> ApiOutageLog:
    """Route kopf's watch logging through one ApiOutageLog, with the controller's."""
    outage = ApiOutageLog()
    for name in logger_names:
        logger = logging.getLogger(name)
        logger.setLevel(logging.DEBUG)
        logger.addFilter(outage)
    for name in ("datarch.operator", "urllib3.connectionpool"):
        logging.getLogger(name).addFilter(outage)
    return outage
