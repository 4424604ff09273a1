"""The `datarch` command: verify once, print the CRD, or run the operator.

Exit codes of `verify`: 0 conforming, 1 findings, 2 a store could not be checked
or the claim is invalid (2 wins: an incomplete check is never merely "drifted").
"""

from __future__ import annotations

import asyncio
import gc
import os
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import click

from datarch import __version__
from datarch.claims import Claim, ClaimSpec, load_claim
from datarch.errors import ClaimInvalid

if TYPE_CHECKING:
    from datarch.secrets import SecretResolver
    from datarch.verification import BackupChecker, StoreResult

EXIT_CONFORMING = 0
EXIT_FINDINGS = 1
EXIT_INCOMPLETE = 2


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="datarch")
def main() -> None:
    """Keeps a platform's documented data architecture honest."""


@main.command("verify")
@click.option(
    "-f",
    "--file",
    "claim_file",
    required=True,
    type=click.Path(path_type=Path),  # what cannot be read is a one-line exit 2, not usage
    help="The claim (YAML).",
)
@click.option(
    "-o",
    "--output",
    type=click.Choice(["text", "json", "junit"]),
    default="text",
    show_default=True,
    help="Report format.",
)
@click.option(
    "--secrets-dir",
    type=click.Path(file_okay=False, path_type=Path),
    help="DIR/<secret>/<key> files, laid out like a mounted Secret. "
    "Default: DATARCH_SECRET_<SECRET>_<KEY> environment variables.",
)
@click.option(
    "--skip-backups",
    is_flag=True,
    help="Verify the stores only. Otherwise backups are read from the cluster of the "
    "current kubeconfig (or in-cluster config), in the claim's namespace.",
)
def verify_command(
    claim_file: Path, output: str, secrets_dir: Path | None, skip_backups: bool
) -> None:
    """Verify a claim once against the live stores."""
    # A one-shot process: reference counting frees what it must, and the cyclic
    # collector would otherwise rescan a large claim's ~10^5 objects many times.
    gc.disable()
    # Imported here so `datarch crd` and `--version` load no store driver.
    from datarch.reporting.output import render_json, render_junit, render_text  # noqa: PLC0415
    from datarch.secrets import LocalSecrets  # noqa: PLC0415
    from datarch.verification import verify  # noqa: PLC0415

    try:
        claim = load_claim(claim_file)
    except ClaimInvalid as error:
        click.echo(f"datarch: invalid claim: {error}", err=True)
        sys.exit(EXIT_INCOMPLETE)
    secrets = LocalSecrets(secrets_dir)
    backups = None if skip_backups or not claim.spec.backups else _backup_checker(claim, secrets)
    # Not asyncio.run: its teardown would wait for work abandoned at a store's timeout
    # (a driver winding down), and the process exits right after the report anyway.
    verdict = asyncio.Runner().run(verify(claim.spec, secrets, backups=backups))
    render = {"text": render_text, "json": render_json, "junit": render_junit}[output]
    click.echo(render(claim, verdict), nl=False)
    for store in verdict.stores:
        if not store.checked:
            click.echo(
                f"datarch: store {store.name} ({store.kind}) not checked: "
                f"{store.error_reason}: {store.message}",
                err=True,
            )
        for item in store.unchecked:
            click.echo(f"datarch: {item.describe()}", err=True)
    for backup in verdict.backups:
        if not backup.checked:
            click.echo(
                f"datarch: backup {backup.name} not checked: {backup.reason}: {backup.message}",
                err=True,
            )
    code = {"ok": EXIT_CONFORMING, "findings": EXIT_FINDINGS}.get(verdict.result, EXIT_INCOMPLETE)
    # Every connection is closed and the report written: skip the interpreter's teardown,
    # which would free a large claim's objects one by one for nothing.
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)


def _backup_checker(claim: Claim, secrets: SecretResolver) -> BackupChecker:
    """Reads CronJobs and Jobs through the current kubeconfig; without one, every
    backup is reported as not checked (exit 2), never as fresh."""
    from kubernetes import client  # noqa: PLC0415  (only claims with backups)

    from datarch.backups import CRON_JOB_UNREADABLE, BackupResult  # noqa: PLC0415
    from datarch.kube import api_client  # noqa: PLC0415
    from datarch.verification import backups_from_cluster  # noqa: PLC0415

    try:
        batch_v1 = client.BatchV1Api(api_client())
    except Exception as error:  # the kubernetes client raises several unrelated types
        cause = f"while loading the Kubernetes configuration: {error}; use --skip-backups to verify the stores only"

        async def unreadable(spec: ClaimSpec, _: Sequence[StoreResult]) -> list[BackupResult]:
            return [BackupResult(b.name, False, CRON_JOB_UNREADABLE, cause) for b in spec.backups]

        return unreadable
    timeout = claim.spec.timeout_seconds
    return backups_from_cluster(claim.metadata.namespace, batch_v1, secrets, api_timeout=timeout)


@main.command("crd")
def crd_command() -> None:
    """Print the CustomResourceDefinition generated from the claim models."""
    from datarch.crd import crd_yaml  # noqa: PLC0415  (PyYAML loads only for this command)

    click.echo(crd_yaml(), nl=False)


@main.command("operator")
@click.option(
    "--namespace",
    "namespaces",
    multiple=True,
    help="Watch this namespace (repeatable). Default: all namespaces.",
)
@click.option("--metrics-port", default=8080, show_default=True, type=int)
@click.option("--health-port", default=8081, show_default=True, type=int)
def operator_command(namespaces: tuple[str, ...], metrics_port: int, health_port: int) -> None:
    """Run the controller: verify every claim continuously."""
    from datarch.handlers import run_operator  # noqa: PLC0415  (kopf loads only for this command)

    run_operator(namespaces=list(namespaces), metrics_port=metrics_port, health_port=health_port)
