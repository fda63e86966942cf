"""The manifest's JSON Schema (draft 2020-12), generated from the models.

Editors use it through the YAML language server (a ``# yaml-language-server: $schema=...`` line
at the top of a manifest, or a ``yaml.schemas`` setting); a copy is committed at
``reconciler/manifest/keystore.schema.json`` and a test fails when it drifts from the models.
Regenerate the copy with::

    reconciler schema > reconciler/manifest/keystore.schema.json
    # or, without the CLI:
    python -m reconciler.manifest.schema > reconciler/manifest/keystore.schema.json
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

from reconciler.manifest.model import KeyStoreManifest

SCHEMA_DIALECT = "https://json-schema.org/draft/2020-12/schema"
SCHEMA_PATH = Path(__file__).with_name("keystore.schema.json")
REGENERATE_COMMAND = "reconciler schema > reconciler/manifest/keystore.schema.json"


def _drop_field_titles(node: Any) -> None:
    """Pydantic titles every field after its name ("Uriendpoint"); the descriptions say more."""
    if isinstance(node, dict):
        properties = node.get("properties")
        if isinstance(properties, dict):
            for prop in properties.values():
                if isinstance(prop, dict):
                    prop.pop("title", None)
        for value in node.values():
            _drop_field_titles(value)
    elif isinstance(node, list):
        for value in node:
            _drop_field_titles(value)


def manifest_json_schema() -> dict[str, Any]:
    """The JSON Schema of one KeyStore manifest document."""
    generated = KeyStoreManifest.model_json_schema(mode="validation")
    _drop_field_titles(generated)
    generated.pop("title", None)
    generated.pop("description", None)
    return {
        "$schema": SCHEMA_DIALECT,
        "title": "reconciler KeyStore manifest",
        "description": (
            "A custom key store for AWS KMS (an external key store or a CloudHSM key store) and the "
            "KMS keys it should hold, as the reconciler's desired state. Secrets are given only as "
            "references {fromEnv: NAME} or {fromFile: PATH}."
        ),
        **generated,
    }


def manifest_json_schema_text() -> str:
    """The schema as committed: 2-space indented JSON with a trailing newline."""
    return json.dumps(manifest_json_schema(), indent=2) + "\n"


def main() -> None:
    sys.stdout.write(manifest_json_schema_text())


if __name__ == "__main__":
    main()


__all__ = ["REGENERATE_COMMAND", "SCHEMA_PATH", "manifest_json_schema", "manifest_json_schema_text"]
