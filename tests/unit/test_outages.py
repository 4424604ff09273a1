"""The operator's log during an API-server outage: one line when it starts, one when it
ends, and nothing hidden when there is no outage. Records as kopf and urllib3 word them
(kopf/_cogs/clients/api.py, urllib3/connectionpool.py)."""

from __future__ import annotations

import logging

from datarch.outages import ApiOutageLog, RetryForever

WATCH = "kopf._cogs.clients.watching"
GET = "GET https://10.0.0.1/apis/datarch.io/v1alpha1/dataarchitectureclaims?watch=true"


def _record(name: str, level: int, message: str) -> logging.LogRecord:
    return logging.LogRecord(name, level, __file__, 1, message, None, None)


def _failed(attempt: int) -> logging.LogRecord:
    return _record(
        WATCH,
        logging.ERROR,
        f"Request attempt #{attempt} failed; will retry: {GET} -> ClientConnectorError()",
    )


def test_an_outage_is_one_warning_then_one_line_when_it_ends() -> None:
    outage = ApiOutageLog()
    first = _failed(1)
    assert outage.filter(first)
    assert first.levelname == "WARNING"
    assert first.getMessage().startswith("the Kubernetes API server does not answer (GET ")
    assert "watch=true" not in first.getMessage()  # the query string is noise
    assert not any(outage.filter(_failed(n)) for n in range(2, 30))
    ours = _record("datarch.operator", logging.WARNING, "while patching the status of a/b: x")
    assert not outage.filter(ours)
    back = _record(WATCH, logging.DEBUG, f"Request attempt #30 succeeded: {GET}")
    assert outage.filter(back)
    assert back.levelname == "INFO"
    assert "answers again" in back.getMessage()
    assert "29 more failed requests" in back.getMessage()


def test_without_an_outage_nothing_of_ours_or_kopfs_warnings_is_hidden() -> None:
    outage = ApiOutageLog()
    ours = _record("datarch.operator", logging.WARNING, "while patching the status of a/b: x")
    assert outage.filter(ours)
    other = _record(WATCH, logging.WARNING, "Ignoring an unsupported event type")
    assert outage.filter(other)
    chatter = _record(WATCH, logging.DEBUG, "Starting the watch-stream")
    assert not outage.filter(chatter)  # as quiet as kopf's WARNING level kept it


def test_urllib3_retry_warnings_are_dropped_the_final_failure_is_reported_by_the_caller() -> None:
    retrying = _record(
        "urllib3.connectionpool", logging.WARNING, "Retrying (Retry(total=2)) after ..."
    )
    assert not ApiOutageLog().filter(retrying)
    other = _record("urllib3.connectionpool", logging.WARNING, "Connection pool is full")
    assert ApiOutageLog().filter(other)


def test_kopf_retries_forever_from_the_start_every_time() -> None:
    backoffs = RetryForever()
    first = [b for _, b in zip(range(10), backoffs, strict=False)]
    again = [b for _, b in zip(range(10), backoffs, strict=False)]
    assert first == again == [1, 1, 2, 3, 5, 8, 10, 10, 10, 10]
