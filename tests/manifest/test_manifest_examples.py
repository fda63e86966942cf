"""The example manifests users copy from load cleanly and show what they claim to show."""

from __future__ import annotations

from pathlib import Path

import pytest

from reconciler.manifest import load
from reconciler.manifest.loader import check_secrets

REPO = Path(__file__).resolve().parents[2]
MANIFESTS = REPO / "manifests"


def test_all_examples_load_without_problems() -> None:
    result = load([MANIFESTS])
    assert [str(p) for p in result.problems] == []
    names = {m.path.relative_to(MANIFESTS).as_posix(): m.name for m in result.manifests}
    assert names == {"payments-xks.yaml": "payments-xks", "vpc-xks.yaml": "ledger-vpc-xks",
                     "cloudhsm.yaml": "records-cloudhsm", "decommission/legacy-xks.yaml": "legacy-xks"}
    assert all(m.region == "us-east-1" for m in result.manifests)


@pytest.mark.parametrize("name", ["payments-xks.yaml", "vpc-xks.yaml", "cloudhsm.yaml",
                                  "decommission/legacy-xks.yaml"])
def test_each_example_loads_on_its_own(name: str) -> None:
    result = load([MANIFESTS / name])
    assert result.ok, [str(p) for p in result.problems]


def by_name() -> dict[str, object]:
    return {m.name: m for m in load([MANIFESTS]).manifests}


def test_payments_example() -> None:
    spec = by_name()["payments-xks"].model.spec  # type: ignore[attr-defined]
    assert spec.type == "EXTERNAL_KEY_STORE" and spec.xks.connectivity == "PUBLIC_ENDPOINT"
    assert [k.alias for k in spec.keys] == ["alias/payments-primary", "alias/payments-archive"]
    assert spec.deletion.pendingWindowDays == 7
    assert spec.xks.credential.secretAccessKey.fromEnv == "XKS_SECRET_ACCESS_KEY"


def test_vpc_example() -> None:
    spec = by_name()["ledger-vpc-xks"].model.spec  # type: ignore[attr-defined]
    assert spec.xks.connectivity == "VPC_ENDPOINT_SERVICE" and spec.xks.vpcEndpointServiceName


def test_cloudhsm_example_trust_anchor_resolves_from_the_committed_certificate(
        monkeypatch: pytest.MonkeyPatch) -> None:
    manifest = by_name()["records-cloudhsm"]
    value = manifest.resolve("spec.cloudHsm.trustAnchorCertificate")  # type: ignore[attr-defined]
    assert value.reveal().startswith("-----BEGIN CERTIFICATE-----")
    assert value.reveal() == (MANIFESTS / "certs" / "customerCA.crt").read_text().rstrip("\n")
    monkeypatch.setenv("KMSUSER_PASSWORD", "example-pass")
    assert check_secrets([manifest]) == []  # type: ignore[list-item]


def test_certificate_is_a_parsable_self_signed_pem() -> None:
    x509 = pytest.importorskip("cryptography.x509")
    cert = x509.load_pem_x509_certificate((MANIFESTS / "certs" / "customerCA.crt").read_bytes())
    assert cert.issuer == cert.subject


def test_decommission_example_needs_no_settings_or_credentials(monkeypatch: pytest.MonkeyPatch) -> None:
    manifest = by_name()["legacy-xks"]
    spec = manifest.model.spec  # type: ignore[attr-defined]
    assert spec.state == "absent" and spec.xks is None and spec.keys == []
    for var in ("XKS_ACCESS_KEY_ID", "XKS_SECRET_ACCESS_KEY"):
        monkeypatch.delenv(var, raising=False)
    assert check_secrets([manifest]) == []  # type: ignore[list-item]


def test_examples_point_editors_at_the_committed_schema() -> None:
    for path in MANIFESTS.rglob("*.yaml"):
        first = path.read_text().splitlines()[0]
        assert first.startswith("# yaml-language-server: $schema=")
        target = (path.parent / first.split("$schema=", 1)[1]).resolve()
        assert target == (REPO / "reconciler" / "manifest" / "keystore.schema.json").resolve()
