"""Go-style durations ("30s", "5m", "1h30m", "168h"): parsing and printing. No I/O."""

from __future__ import annotations

import re

# Kept in one place: the CRD's CEL rule and the pydantic validator use the same pattern.
DURATION_PATTERN = r"^([0-9]+([.][0-9]+)?(ns|us|µs|ms|s|m|h))+$"

# What CEL's duration() can convert: Go's time.Duration overflows past ~292 years, and the
# API server then answers "type conversion error". Each unit at most once, largest first,
# each number small enough that even all of them together stay below ~260 years.
BOUNDED_DURATION_PATTERN = (
    r"^([0-9]{1,6}([.][0-9]+)?h)?([0-9]{1,7}([.][0-9]+)?m)?([0-9]{1,9}([.][0-9]+)?s)?"
    r"([0-9]{1,12}([.][0-9]+)?ms)?([0-9]{1,15}([.][0-9]+)?(us|µs))?([0-9]{1,18}([.][0-9]+)?ns)?$"
)
BOUNDED_DURATION_RULE = (
    "must be at most 999999h (about 114 years), each unit once and the largest first, such as 1h30m"
)
_BOUNDED = re.compile(BOUNDED_DURATION_PATTERN)

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


def check_bounded(text: str) -> None:
    """ValueError unless `text` is a duration the API server's CEL can convert."""
    if not _BOUNDED.match(text):
        raise ValueError(f"{text!r} {BOUNDED_DURATION_RULE}")
