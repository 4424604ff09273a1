"""Finding, Severity and FindingKind: the one shape every comparison returns. No I/O."""

from __future__ import annotations

import fnmatch
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace
from enum import StrEnum


class Severity(StrEnum):
    CRITICAL = "critical"
    WARNING = "warning"
    INFO = "info"

    @property
    def rank(self) -> int:
        """0 for the most severe, so findings sort worst first."""
        return _SEVERITY_RANK[self]


_SEVERITY_RANK = {Severity.CRITICAL: 0, Severity.WARNING: 1, Severity.INFO: 2}


class FindingKind(StrEnum):
    MISSING = "missing"  # documented, not there
    UNEXPECTED = "unexpected"  # there, not documented (strict mode only)
    DIFFERENT = "different"  # there, but not as documented


@dataclass(frozen=True, slots=True)
class Finding:
    """One difference between expected and observed.

    `path` reads `store/schema.table.columns.email.type`; comparers return it
    without the `store/` prefix and verification adds it.
    """

    path: str
    kind: FindingKind
    severity: Severity
    expected: str | None = None
    observed: str | None = None
    message: str = ""

    def describe(self) -> str:
        """One line a person reads: what differs, what the claim said, what was there."""
        if self.message:
            return f"{self.path}: {self.message}"
        if self.kind is FindingKind.MISSING:
            return f"{self.path}: documented but missing" + (
                f" (expected {self.expected})" if self.expected else ""
            )
        if self.kind is FindingKind.UNEXPECTED:
            return f"{self.path}: present but not documented" + (
                f" ({self.observed})" if self.observed else ""
            )
        return f"{self.path}: expected {self.expected}, observed {self.observed}"

    def as_dict(self) -> dict[str, str | None]:
        return {
            "path": self.path,
            "kind": self.kind.value,
            "severity": self.severity.value,
            "expected": self.expected,
            "observed": self.observed,
            "message": self.describe(),
        }


@dataclass(frozen=True, slots=True)
class Unchecked:
    """A documented field the probe could not read: the check is incomplete.

    Never a finding (nothing is known to differ) and never a pass (nothing is
    known to match): the store's verdict is "could not check", like an
    unreadable store, and `grant` names what would let the probe read it.
    The path takes `store/` as a finding's does.
    """

    path: str
    reason: str  # why it could not be read, e.g. "CONFIG GET is refused to the probe's user"
    grant: str | None = None  # e.g. "+config|get"; None when no permission would help

    def describe(self) -> str:
        """`cache/persistence.save: could not check (...); grant +config|get to read it`."""
        hint = f"; grant {self.grant} to read it" if self.grant else ""
        return f"{self.path}: could not check ({self.reason}){hint}"

    def as_dict(self) -> dict[str, str | None]:
        return {
            "path": self.path,
            "reason": self.reason,
            "grant": self.grant,
            "message": self.describe(),
        }


# What a comparer returns: findings, and the documented fields it could not judge.
Outcome = Finding | Unchecked


@dataclass(frozen=True, slots=True)
class SeverityOverride:
    """A claim's own severity for findings whose store-relative path matches a glob."""

    path: str
    severity: Severity


def apply_overrides(
    findings: Iterable[Finding], overrides: Sequence[SeverityOverride]
) -> list[Finding]:
    """The first matching override wins, so a claim lists specific globs before broad ones."""
    if not overrides:
        return list(findings)
    return [_overridden(finding, overrides) for finding in findings]


def _overridden(finding: Finding, overrides: Sequence[SeverityOverride]) -> Finding:
    for override in overrides:
        if fnmatch.fnmatchcase(finding.path, override.path):
            return replace(finding, severity=override.severity)
    return finding


def sort_findings(findings: Iterable[Finding]) -> list[Finding]:
    """Worst first, then by path, so output is stable from pass to pass."""
    return sorted(findings, key=lambda f: (f.severity.rank, f.path, f.kind.value))
