"""Which region and endpoint a command means: its flags, then the environment, then the manifests.

Bad values are refused here, where they were given, with the fix (an unknown region would reach
an endpoint that does not exist; a malformed endpoint URL would fail deep inside botocore).
"""

from __future__ import annotations

import os
from typing import Any

from reconciler.aws.connection import Target, env_region
from reconciler.aws.regions import check_region
from reconciler.errors import UserError

SANDBOX_DEFAULT_REGION = "us-east-1"


def resolve_region(target: Target, loaded: Any) -> str:
    """``--region``, else ``AWS_REGION`` / ``AWS_DEFAULT_REGION``, else the one ``spec.region`` the
    manifests (``loaded``, a :class:`reconciler.manifest.loader.LoadResult`) name, else the
    sandbox's default region."""
    if target.region:
        check_region(target.region, "--region")
        return target.region
    if env_region():
        check_region(env_region(), "AWS_REGION" if os.environ.get("AWS_REGION") else "AWS_DEFAULT_REGION")
        return env_region()  # type: ignore[return-value]
    regions = sorted({m.model.spec.region for m in loaded.manifests if m.model.spec.region})
    if len(regions) == 1:
        return regions[0]
    if len(regions) > 1:
        raise UserError(f"the manifests name several regions ({', '.join(regions)}); "
                        "plan and apply one region at a time: pass --region")
    if target.sandbox:
        return SANDBOX_DEFAULT_REGION
    raise UserError("no AWS region: pass --region, set AWS_REGION, or set spec.region in the manifests")


def check_endpoint_url(endpoint_url: str | None) -> None:
    """An endpoint is an http(s) URL with a host: anything else fails deep inside botocore."""
    from urllib.parse import urlsplit

    if not endpoint_url:
        return
    try:
        parts = urlsplit(endpoint_url)
        parts.port  # noqa: B018 - raises ValueError for a port that is not a number
    except ValueError:
        parts = None
    if parts is None or parts.scheme not in ("http", "https") or not parts.hostname:
        from reconciler.display import printable

        raise UserError(f"--endpoint-url {printable(endpoint_url)!r} is not an endpoint URL; use http(s)://HOST[:PORT], "
                        "e.g. https://kms.us-east-1.amazonaws.com or http://127.0.0.1:4566")


def make_target(profile: str | None, region: str | None, endpoint_url: str | None, sandbox: bool,
                sandbox_dir: str | None) -> Target:
    """The target of the connection flags (``--sandbox`` ignores the AWS ones)."""
    if not sandbox:
        check_endpoint_url(endpoint_url)
    return Target(profile=None if sandbox else profile, region=region,
                  endpoint_url=None if sandbox else endpoint_url, sandbox=sandbox, sandbox_dir=sandbox_dir)


def sandbox_location(sandbox_dir: str | None) -> str:
    """The embedded sandbox's directory, as Connection.identity records it (resolved)."""
    from reconciler.sandbox.embedded import sandbox_dir as directory

    return str(directory(sandbox_dir).resolve())
