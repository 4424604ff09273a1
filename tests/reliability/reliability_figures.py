"""The reliability suite's figures, gathered by its tests and printed once at the end of
the run by tests/conftest.py's terminal summary:

    reliability: 15/15 faults survived, 0 unread-reported-fine, detection max 1.5s, ...

(Not a conftest.py: a second module named `conftest` would shadow tests/conftest.py for
every test collected after it.)
"""

from __future__ import annotations

FIGURES: dict[str, str] = {}
ORDER = (
    "faults", "unread", "detection", "recovery", "others", "inputs", "outage", "kills", "leaks",
    "writes",
)  # fmt: skip


def figure_line() -> str:
    parts = [FIGURES[key] for key in ORDER if key in FIGURES]
    return "reliability: " + ", ".join(parts) if parts else ""
