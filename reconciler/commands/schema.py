"""``reconciler schema``: the manifests' JSON Schema, for editors."""

from __future__ import annotations

import click


@click.command(short_help="Print the manifests' JSON Schema.")
def schema() -> None:
    """Print the JSON Schema of the manifest (for editors' YAML language servers)."""
    from reconciler.manifest.schema import manifest_json_schema_text

    click.echo(manifest_json_schema_text(), nl=False)
