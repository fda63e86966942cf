"""The desired state: KeyStore manifests, their loading and validation, secret references, schema.

The planner and the CLI use:

* :func:`load` -> :class:`LoadResult` (``.manifests``: :class:`LoadedManifest`, ``.problems``:
  :class:`Problem`); act only when ``result.ok``;
* :func:`digest` to tell that the manifests changed between plan and apply;
* :meth:`LoadedManifest.resolve` / :func:`resolve_secret` when a step needs a secret's value;
* :func:`manifest_json_schema` for ``reconciler schema``.
"""

from reconciler.manifest.checks import check_manifests, group_key
from reconciler.manifest.loader import (
    LoadedManifest,
    LoadResult,
    Problem,
    canonical_manifest,
    check_secrets,
    digest,
    format_field_path,
    load,
    parse_field_path,
)
from reconciler.manifest.model import (
    API_VERSION,
    KIND,
    CloudHsmSpec,
    DeletionSpec,
    KeySpec,
    KeyStoreManifest,
    KeyStoreSpec,
    ManagedKey,
    Metadata,
    SecretRef,
    XksCredential,
    XksSpec,
)
from reconciler.manifest.secrets import SecretError, SensitiveStr, resolve_secret



def __getattr__(name: str) -> object:
    # Imported lazily so that ``python -m reconciler.manifest.schema`` runs without a warning.
    if name in ("manifest_json_schema", "manifest_json_schema_text"):
        from reconciler.manifest import schema

        return getattr(schema, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = [
    "API_VERSION",
    "KIND",
    "CloudHsmSpec",
    "DeletionSpec",
    "KeySpec",
    "KeyStoreManifest",
    "KeyStoreSpec",
    "LoadResult",
    "LoadedManifest",
    "ManagedKey",
    "Metadata",
    "Problem",
    "SecretError",
    "SecretRef",
    "SensitiveStr",
    "XksCredential",
    "XksSpec",
    "canonical_manifest",
    "check_manifests",
    "check_secrets",
    "digest",
    "format_field_path",
    "group_key",
    "load",
    "manifest_json_schema",
    "manifest_json_schema_text",
    "parse_field_path",
    "resolve_secret",
]
