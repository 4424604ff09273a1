"""Server version constraints (">=15", ">=7.0,<8", "==2.10.*"): the one comparer every kind shares."""

from __future__ import annotations

import fnmatch
import re

from datarch.findings import Finding, FindingKind, Severity

_CLAUSE = re.compile(r"^\s*(>=|<=|==|!=|>|<|~=|=)?\s*([0-9][0-9A-Za-z.*+-]*)\s*$")
_LEADING_VERSION = re.compile(r"[0-9]+(?:\.[0-9]+)*")


class VersionConstraintInvalid(ValueError):
    pass


def _numbers(version: str) -> tuple[int, ...]:
    match = _LEADING_VERSION.search(version)
    if not match:
        raise VersionConstraintInvalid(f"{version!r} has no version number")
    return tuple(int(part) for part in match.group(0).split("."))


def _pad(left: tuple[int, ...], right: tuple[int, ...]) -> tuple[tuple[int, ...], tuple[int, ...]]:
    size = max(len(left), len(right))
    return left + (0,) * (size - len(left)), right + (0,) * (size - len(right))


def _satisfies(operator: str, wanted: str, observed: tuple[int, ...], observed_text: str) -> bool:
    if "*" in wanted:
        matched = fnmatch.fnmatchcase(".".join(map(str, observed)), wanted)
        return matched if operator in ("==", "=", "") else not matched
    target = _numbers(wanted)
    if operator in ("==", "=", ""):
        # "==7" means any 7.x: compare only as many parts as the claim states.
        return observed[: len(target)] == target
    if operator == "!=":
        return observed[: len(target)] != target
    if operator == "~=":
        # Compatible release, as in PEP 440: ~=15.2 means >=15.2,<16.
        prefix = target[:-1] if len(target) > 1 else target
        left, right = _pad(observed, target)
        return left >= right and observed[: len(prefix)] == prefix
    left, right = _pad(observed, target)
    return {">=": left >= right, "<=": left <= right, ">": left > right, "<": left < right}[
        operator
    ]


def version_satisfies(constraint: str, observed_version: str) -> bool:
    """True when every comma-separated clause holds; VersionConstraintInvalid on nonsense."""
    observed = _numbers(observed_version)
    for clause in constraint.split(","):
        match = _CLAUSE.match(clause)
        if not match:
            raise VersionConstraintInvalid(
                f"{clause.strip()!r} is not a version clause such as >=15"
            )
        if not _satisfies(match.group(1) or "", match.group(2), observed, observed_version):
            return False
    return True


def compare_version(constraint: str | None, observed_version: str | None) -> list[Finding]:
    if constraint is None:
        return []
    if observed_version is None:
        return [
            Finding(
                "version",
                FindingKind.MISSING,
                Severity.WARNING,
                constraint,
                None,
                "the server does not report a version",
            )
        ]
    try:
        if version_satisfies(constraint, observed_version):
            return []
    except VersionConstraintInvalid as error:
        return [
            Finding(
                "version",
                FindingKind.DIFFERENT,
                Severity.WARNING,
                constraint,
                observed_version,
                f"version constraint cannot be checked: {error}",
            )
        ]
    return [
        Finding("version", FindingKind.DIFFERENT, Severity.WARNING, constraint, observed_version)
    ]
