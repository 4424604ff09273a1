"""Go-style durations ("30s", "5m", "1h30m", "168h"): parsing and printing. No I/O."""

from __future__ import annotations

import re

# Kept in one place: the CRD's CEL rule and the pydantic validator use the same pattern.
DURATION_PATTERN = r"^([0-9]+([.][0-9]+)?(ns|us|µs|ms|s|m|h))+$"

_PART = re.compile(r"([0-9]+(?:\.[0-9]+)?)(ns|us|µs|ms|s|m|h)")
_WHOLE = re.compile(DURATION_PATTERN)
_UNIT_SECONDS = {
    "ns": 1e-9,
    "us": 1e-6,
    "µs": 1e-6,
    "ms": 1e-3,
    "s": 1.0,
    "m": 60.0,
    "h": 3600.0,
}


def parse_duration(text: str) -> float:
    """Seconds in a Go-style duration; ValueError names the text when it is not one."""
    if not _WHOLE.match(text):
        raise ValueError(f"{text!r} is not a duration such as 30s, 5m or 168h")
    return sum(float(number) * _UNIT_SECONDS[unit] for number, unit in _PART.findall(text))


def format_duration(seconds: float) -> str:
    """The shortest Go-style rendering of whole seconds: 90 -> "1m30s", 604800 -> "168h"."""
    whole = round(seconds)
    if whole == 0:
        return "0s"
    hours, rest = divmod(whole, 3600)
    minutes, secs = divmod(rest, 60)
    parts = [
        f"{hours}h" if hours else "",
        f"{minutes}m" if minutes else "",
        f"{secs}s" if secs else "",
    ]
    return "".join(parts)
