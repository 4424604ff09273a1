"""The `datarch` command: verify once, print the CRD, or run the operator.

Exit codes of `verify`: 0 conforming, 1 findings, 2 a store could not be checked
or the claim is invalid (2 wins: an incomplete check is never merely "drifted").
"""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path

import click

from datarch import __version__
from datarch.claims import load_claim
from datarch.crd import crd_yaml
from datarch.errors import ClaimInvalid

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
    type=click.Path(dir_okay=False, path_type=Path),
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
def verify_command(claim_file: Path, output: str, secrets_dir: Path | None) -> None:
    """Verify a claim once against the live stores."""
    # Imported here so `datarch crd` and `--version` load no store driver.
    from datarch.reporting.output import render_json, render_junit, render_text  # noqa: PLC0415
    from datarch.secrets import LocalSecrets  # noqa: PLC0415
    from datarch.verification import verify  # noqa: PLC0415

    try:
        claim = load_claim(claim_file)
    except ClaimInvalid as error:
        click.echo(f"datarch: invalid claim: {error}", err=True)
        sys.exit(EXIT_INCOMPLETE)
    verdict = asyncio.run(verify(claim.spec, LocalSecrets(secrets_dir)))
    render = {"text": render_text, "json": render_json, "junit": render_junit}[output]
    click.echo(render(claim, verdict), nl=False)
    for store in verdict.stores:
        if not store.checked:
            click.echo(
                f"datarch: store {store.name} ({store.kind}) not checked: "
                f"{store.error_reason}: {store.message}",
                err=True,
            )
    sys.exit(
        {"ok": EXIT_CONFORMING, "findings": EXIT_FINDINGS}.get(verdict.result, EXIT_INCOMPLETE)
    )


@main.command("crd")
def crd_command() -> None:
    """Print the CustomResourceDefinition generated from the claim models."""
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
