"""The reliability suite's figures, gathered by its tests and printed once at the end:

    reliability: 14/14 faults survived, 0 unread-reported-fine, detection max 1.9s ...

`make test` shows the line in its summary; the issue's closing note quotes it.
"""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest

FIGURES: dict[str, str] = {}


def env(name: str) -> str:
    """A dev-server setting; this directory's conftest shadows tests/conftest.py's `env`."""
    value = os.environ.get(name)
    if not value:
        pytest.fail(
            f"{name} is not set. Start the local servers with `make env` and export their "
            'settings with `eval "$(make -s env-vars)"` (`make test` does both).',
            pytrace=False,
        )
    return value


ORDER = (
    "faults", "unread", "detection", "recovery", "others", "inputs", "outage", "leaks", "writes",
)  # fmt: skip


@pytest.fixture(scope="session")
def figures() -> Iterator[dict[str, str]]:
    yield FIGURES


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    if FIGURES:
        parts = [FIGURES[key] for key in ORDER if key in FIGURES]
        terminalreporter.write_line("reliability: " + ", ".join(parts))
