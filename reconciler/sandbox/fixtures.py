"""What manifests need from outside KMS, provided in the sandbox (``reconciler sandbox init``).

In AWS, a CloudHSM key store's cluster, an external key store's VPC endpoint service and the
secrets its manifest references ({fromEnv: NAME}) exist before the tool runs. In the sandbox,
:func:`needs` reads them off the manifests, :func:`seed` creates the cluster and endpoint service
(leaving ones that exist as they are, so running it twice is harmless) and :func:`write_env_file`
writes sandbox-only values for the variables, in a file to source, private to the user (0600).
``reconciler demo`` uses the same code.
"""

from __future__ import annotations

import os
import re
import shlex
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from reconciler.sandbox.control import ClusterSeed, EndpointServiceSeed, SandboxControl

# Made-up values in the shapes KMS requires, for the sandbox only: it accepts any well-formed
# credential. Keyed by the manifest field that references the variable.
SANDBOX_VALUES = {
    "accessKeyId": "AKIADEMOXKSPROXY2345",
    "secretAccessKey": "ZGVtby1vbmx5LXhrcy1zZWNyZXQtbm90LWZvci1wcm9kdWN0aW9uLTAwMDA=",
    "keyStorePassword": "demo-kmsuser-pw",
}
DEFAULT_REGION = "us-east-1"
ENV_FILE = "env.sh"


@dataclass
class Needs:
    """The fixtures and variables a set of manifests needs, store by store."""

    clusters: list[tuple[str, ClusterSeed]] = field(default_factory=list)  # (store, seed)
    endpoint_services: list[tuple[str, EndpointServiceSeed]] = field(default_factory=list)
    env: dict[str, str] = field(default_factory=dict)  # variable -> sandbox-only value


def _env_name(value: Any) -> str | None:
    return getattr(value, "fromEnv", None) if value is not None and not isinstance(value, str) else None


def needs(loaded: Any) -> Needs:
    """What the (valid) manifests of ``loaded`` need; stores declared absent need nothing."""
    out = Needs()
    for entry in loaded.manifests:
        spec = entry.model.spec
        if spec.state != "present":
            continue
        region = spec.region or entry.region or DEFAULT_REGION
        if spec.xks is not None:
            credential = spec.xks.credential
            for name in ("accessKeyId", "secretAccessKey"):
                variable = _env_name(getattr(credential, name, None))
                if variable:
                    out.env.setdefault(variable, SANDBOX_VALUES[name])
            if spec.xks.vpcEndpointServiceName:
                host = re.sub(r"^https://", "", spec.xks.uriEndpoint or "") or None
                out.endpoint_services.append((entry.name, EndpointServiceSeed(
                    service_name=spec.xks.vpcEndpointServiceName, private_dns_name=host, region=region)))
        if spec.cloudHsm is not None:
            variable = _env_name(spec.cloudHsm.keyStorePassword)
            if variable:
                out.env.setdefault(variable, SANDBOX_VALUES["keyStorePassword"])
            if spec.cloudHsm.clusterId:
                out.clusters.append((entry.name, ClusterSeed(
                    cluster_id=spec.cloudHsm.clusterId, region=region,
                    trust_anchor_pem=_trust_anchor(entry, out.env))))
    return out


def _trust_anchor(entry: Any, env: dict[str, str]) -> str | None:
    """The manifest's trust anchor, for the cluster to have the same one: written in the manifest,
    read from its file, or (from an environment variable) one made up here and put in ``env``."""
    anchor = entry.model.spec.cloudHsm.trustAnchorCertificate
    variable = _env_name(anchor)
    if variable:
        if variable not in env:
            from reconciler.sandbox.seed import new_trust_anchor

            env[variable] = new_trust_anchor(entry.model.spec.cloudHsm.clusterId)
        return env[variable]
    if anchor is None:
        return None
    resolved = entry.resolve("spec.cloudHsm.trustAnchorCertificate")  # a certificate: public, not secret
    return resolved.reveal() if resolved is not None else None


def seed(control: SandboxControl, wanted: Needs) -> list[str]:
    """Create what ``wanted`` lists through ``control``; one line per fixture, saying what was done."""
    lines = []
    for store, cluster in wanted.clusters:
        made = control.seed_cluster(cluster)
        what = "created" if made.created else "exists already, left as it is"
        lines.append(f"CloudHSM cluster {made.id} ({cluster.region}, for {store}): {what}")
    for store, service in wanted.endpoint_services:
        made = control.seed_endpoint_service(service)
        what = "created" if made.created else "set up again"
        lines.append(f"VPC endpoint service {made.id} ({service.region}, for {store}, private DNS name "
                     f"{service.private_dns_name}): {what}")
    return lines


def env_file_text(env: dict[str, str]) -> str:
    lines = ["# Sandbox-only values for the manifests' {fromEnv: NAME} references, written by",
             "# 'reconciler sandbox init'. The sandbox accepts any well-formed value; never use these for",
             "# real key stores. Load them with: . THIS_FILE"]
    lines += [f"export {name}={shlex.quote(value)}" for name, value in sorted(env.items())]
    return "\n".join(lines) + "\n"


def write_env_file(path: Path, env: dict[str, str]) -> None:
    """Write the file atomically, readable by its owner only (it holds credential-shaped values)."""
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    tmp = path.with_name(path.name + ".tmp")
    try:
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(env_file_text(env))
        os.replace(tmp, path)
    except OSError:
        tmp.unlink(missing_ok=True)
        raise


def read_env_file(path: Path) -> dict[str, str]:
    """The variables an env file written by :func:`write_env_file` sets (what '. FILE' does)."""
    env = {}
    for line in path.read_text(encoding="utf-8").splitlines():
        if line.startswith("export "):
            name, _, value = shlex.split(line[len("export "):])[0].partition("=")
            env[name] = value
    return env
