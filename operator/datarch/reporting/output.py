"""Verdicts rendered for people and CI: a text table, JSON with every finding, JUnit XML.

Pure formatting: no I/O, no clock (the verdict carries its times).
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from xml.etree import ElementTree

from datarch.claims import Claim, Store
from datarch.findings import Finding, Unchecked, sort_findings
from datarch.reporting.conditions import FIELDS_NOT_CHECKED
from datarch.verification import StoreResult, Verdict

_SEVERITY_MARK = {"critical": "CRIT", "warning": "WARN", "info": "INFO"}


def render_text(claim: Claim, verdict: Verdict) -> str:
    """A table per store, worst findings first, then one closing line."""
    lines: list[str] = []
    for store in verdict.stores:
        state = _store_state(store)
        version = f" {store.version}" if store.version else ""
        lines.append(f"{store.name} ({store.kind}{version}): {state}")
        if store.message and (store.error_reason or not store.findings):
            lines.append(f"  {store.message}")
        if store.findings:  # verification sorts them, worst first
            width = max(len(f.path) for f in store.findings)
            for f in store.findings:
                detail = f.message or _expected_observed(f)
                lines.append(
                    f"  {_SEVERITY_MARK[f.severity.value]}  {f.kind.value:<10}  {f.path:<{width}}  {detail}"
                )
        for u in store.unchecked:
            lines.append(f"  ????  {'unchecked':<10}  {u.describe()}")
        lines.append("")
    for backup in verdict.backups:
        lines.append(
            f"backup {backup.name}: {'fresh' if backup.fresh else backup.reason} {backup.message}".rstrip()
        )
    lines.append(_closing_line(claim, verdict))
    return "\n".join(lines) + "\n"


def _store_state(store: StoreResult) -> str:
    if store.error_reason:
        return f"NOT CHECKED ({store.error_reason})"
    if not store.reachable:
        return "absent, as documented"
    count = len(store.findings)
    state = "conforming" if count == 0 else f"{count} finding{'s' if count != 1 else ''}"
    if store.unchecked:
        fields = len(store.unchecked)
        plural = "s" if fields != 1 else ""
        found = "no findings" if count == 0 else state
        state = f"{found}, INCOMPLETE: {fields} documented field{plural} could not be checked"
    return state


def _expected_observed(finding: Finding) -> str:
    parts = []
    if finding.expected is not None:
        parts.append(f"expected {finding.expected}")
    if finding.observed is not None:
        parts.append(f"observed {finding.observed}")
    return ", ".join(parts)


def _closing_line(claim: Claim, verdict: Verdict) -> str:
    """One line that agrees with the exit code: INCOMPLETE (2), findings or stale backups (1),
    conforming (0)."""
    name = f"{claim.metadata.namespace}/{claim.metadata.name}"
    unchecked = [s.name for s in verdict.stores if not s.checked]
    fields = [u.path for s in verdict.stores if s.checked for u in s.unchecked]
    unchecked_backups = [b.name for b in verdict.backups if not b.checked]
    stale = [b.name for b in verdict.backups if b.checked and not b.fresh]
    findings = verdict.findings
    stale_part = (
        f"; {len(stale)} backup{'s' if len(stale) != 1 else ''} not fresh ({', '.join(stale)})"
        if stale
        else ""
    )
    if unchecked or unchecked_backups or fields:
        parts = []
        if unchecked:
            parts.append(f"{len(unchecked)} store(s) could not be checked ({', '.join(unchecked)})")
        if fields:
            parts.append(f"{len(fields)} field(s) could not be checked ({', '.join(fields)})")
        if unchecked_backups:
            parts.append(
                f"{len(unchecked_backups)} backup(s) could not be checked "
                f"({', '.join(unchecked_backups)})"
            )
        return (
            f"{name}: INCOMPLETE: {'; '.join(parts)}; "
            f"{len(findings)} finding(s) in the rest{stale_part}"
        )
    if findings:
        counts: dict[str, int] = {}
        for f in findings:
            counts[f.severity.value] = counts.get(f.severity.value, 0) + 1
        detail = ", ".join(f"{n} {s}" for s, n in counts.items())
        return f"{name}: {len(findings)} finding(s) ({detail}){stale_part}"
    if stale:
        return f"{name}: no findings in {len(verdict.stores)} store(s){stale_part}"
    backups = f", {len(verdict.backups)} backup(s) fresh" if verdict.backups else ""
    return f"{name}: conforming ({len(verdict.stores)} store(s) checked{backups})"


def render_json(claim: Claim, verdict: Verdict) -> str:
    """Every finding, uncapped, with all its fields."""
    document = {
        "claim": {"name": claim.metadata.name, "namespace": claim.metadata.namespace},
        "result": verdict.result,
        "conforming": verdict.conforming,
        "startedAt": verdict.started_at.isoformat(),
        "durationSeconds": round(verdict.duration_seconds, 6),
        "stores": [
            {
                "name": s.name,
                "kind": s.kind,
                "reachable": s.reachable,
                "checked": s.checked,
                "version": s.version,
                "reason": s.error_reason,
                "message": s.message,
                "findings": len(s.findings),
                "unchecked": [u.as_dict() for u in s.unchecked],
            }
            for s in verdict.stores
        ],
        "backups": [
            {
                "name": b.name,
                "fresh": b.fresh,
                "reason": b.reason,
                "message": b.message,
                "ageSeconds": b.age_seconds,
                "artifactAgeSeconds": b.artifact_age_seconds,
            }
            for b in verdict.backups
        ],
        "findings": [f.as_dict() for f in verdict.findings],
    }
    return json.dumps(document, indent=2) + "\n"


def documented_objects(store: Store) -> Iterator[str]:
    """Store-relative paths of the objects a claim documents: one JUnit test case each."""
    if store.postgres:
        for schema in store.postgres.schemas or ():
            yield schema.name
            for table in schema.tables or ():
                yield f"{schema.name}.{table.name}"
        if store.postgres.extensions is not None:
            yield "extensions"
        if store.postgres.migrations:
            yield "migrations"
    if store.mongodb:
        for database in store.mongodb.databases or ():
            yield database.name
            for collection in database.collections or ():
                yield f"{database.name}.{collection.name}"
    if store.nats:
        for stream in store.nats.streams or ():
            yield stream.name
            for consumer in stream.consumers or ():
                yield f"{stream.name}.consumers.{consumer.name}"
        for kv in store.nats.key_values or ():
            yield f"kv.{kv.bucket}"
        for obj in store.nats.object_stores or ():
            yield f"objectstore.{obj.bucket}"
    if store.s3:
        for bucket in store.s3.buckets or ():
            yield bucket.name
    if store.redis:
        for pattern in store.redis.key_patterns or ():
            yield f"patterns.{pattern.pattern}"


def _relative(path: str) -> str:
    return path.split("/", 1)[1] if "/" in path else ""


def _owner(relative_path: str, objects: list[str]) -> str | None:
    """The longest documented object whose path is the finding's path or a prefix of it."""
    best = None
    for candidate in objects:
        covers = relative_path == candidate or relative_path.startswith(candidate + ".")
        if covers and (best is None or len(candidate) > len(best)):
            best = candidate
    return best


def render_junit(claim: Claim, verdict: Verdict) -> str:
    """One testsuite per store; one testcase per documented object plus one for the store itself."""
    suites = ElementTree.Element("testsuites", name=f"datarch {claim.metadata.name}")
    stores = {s.name: s for s in claim.spec.stores}
    for result in verdict.stores:
        store = stores[result.name]
        objects = list(dict.fromkeys(documented_objects(store)))
        by_case: dict[str, list[Finding]] = {name: [] for name in ["(store)", *objects]}
        for finding in result.findings:
            by_case[_owner(_relative(finding.path), objects) or "(store)"].append(finding)
        unchecked_by_case: dict[str, list[Unchecked]] = {}
        for item in result.unchecked:
            case_of = _owner(_relative(item.path), objects) or "(store)"
            unchecked_by_case.setdefault(case_of, []).append(item)
        suite = ElementTree.SubElement(
            suites, "testsuite", name=f"{result.name} ({result.kind})", tests=str(len(by_case))
        )
        failures = errors = 0
        for case_name, findings in by_case.items():
            case = ElementTree.SubElement(suite, "testcase", classname=result.name, name=case_name)
            if not result.checked:
                errors += 1
                error = ElementTree.SubElement(case, "error", type=result.error_reason or "Error")
                error.set("message", result.message)
            elif case_name in unchecked_by_case:
                # Could not check a documented field: an error, like an unreadable store,
                # whatever was found beside it (listed in the text).
                errors += 1
                items = unchecked_by_case[case_name]
                error = ElementTree.SubElement(
                    case,
                    "error",
                    type=FIELDS_NOT_CHECKED,
                    message=f"{len(items)} documented field(s) could not be checked",
                )
                error.text = "\n".join(
                    [u.describe() for u in items] + [f.describe() for f in sort_findings(findings)]
                )
            elif findings:
                failures += 1
                failure = ElementTree.SubElement(
                    case,
                    "failure",
                    type=findings[0].severity.value,
                    message=f"{len(findings)} finding(s)",
                )
                failure.text = "\n".join(f.describe() for f in sort_findings(findings))
        suite.set("failures", str(failures))
        suite.set("errors", str(errors))
    for backup in verdict.backups:
        suite = ElementTree.SubElement(suites, "testsuite", name=f"backup {backup.name}", tests="1")
        case = ElementTree.SubElement(suite, "testcase", classname="backups", name=backup.name)
        # Could not tell (CronJob or artifact unreadable): an error, like an unchecked store.
        outcome = "error" if not backup.checked else "failure" if not backup.fresh else None
        if outcome is not None:
            element = ElementTree.SubElement(
                case, outcome, type=backup.reason, message=backup.message
            )
            element.text = backup.message
        suite.set("failures", "1" if outcome == "failure" else "0")
        suite.set("errors", "1" if outcome == "error" else "0")
    ElementTree.indent(suites)
    return ElementTree.tostring(suites, encoding="unicode", xml_declaration=True) + "\n"
