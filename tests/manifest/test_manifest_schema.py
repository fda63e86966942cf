"""The JSON Schema: generated from the models, committed, and usable by editors."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import yaml

from reconciler.manifest import manifest_json_schema, manifest_json_schema_text
from reconciler.manifest.schema import REGENERATE_COMMAND, SCHEMA_PATH

REPO = Path(__file__).resolve().parents[2]
EXAMPLES = sorted((REPO / "manifests").rglob("*.yaml"))


def test_committed_schema_matches_the_models() -> None:
    committed = SCHEMA_PATH.read_text(encoding="utf-8")
    assert committed == manifest_json_schema_text(), (
        f"{SCHEMA_PATH.relative_to(REPO)} is out of date with the models; regenerate it with "
        f"`{REGENERATE_COMMAND}` (or `python -m reconciler.manifest.schema > "
        "reconciler/manifest/keystore.schema.json`) and commit it")


def test_schema_header_and_descriptions() -> None:
    schema = manifest_json_schema()
    assert schema["$schema"] == "https://json-schema.org/draft/2020-12/schema"
    assert schema["title"] and schema["description"]
    assert schema["required"] == ["apiVersion", "kind", "metadata", "spec"]
    # every field of every model says what it is for
    undocumented = [f"{name}.{field}" for name, definition in schema["$defs"].items()
                    for field, prop in definition.get("properties", {}).items() if not prop.get("description")]
    undocumented += [field for field, prop in schema["properties"].items() if not prop.get("description")]
    assert undocumented == []
    assert all(d.get("additionalProperties") is False for d in schema["$defs"].values())


def _validator() -> Any:
    jsonschema = pytest.importorskip("jsonschema")
    schema = manifest_json_schema()
    jsonschema.Draft202012Validator.check_schema(schema)
    return jsonschema.Draft202012Validator(schema)


@pytest.mark.parametrize("path", EXAMPLES, ids=lambda p: p.name)
def test_examples_are_valid_against_the_schema(path: Path) -> None:
    validator = _validator()
    for document in yaml.safe_load_all(path.read_text()):
        errors = [e.message for e in validator.iter_errors(document)]
        assert errors == []


def _example() -> dict[str, Any]:
    return yaml.safe_load((REPO / "manifests" / "payments-xks.yaml").read_text())


@pytest.mark.parametrize(("change", "why"), [
    (lambda d: d["spec"]["xks"]["credential"].update(secretAccessKey="inline"), "inline secret"),
    (lambda d: d["spec"].update(cloudHsm={"clusterId": "cluster-jxhlf7644ne"}), "cloudHsm on an XKS store"),
    (lambda d: d["spec"]["xks"].update(connectivity="VPC_ENDPOINT_SERVICE"), "VPC without service name"),
    (lambda d: d["spec"]["xks"].update(vpcEndpointServiceName="com.amazonaws.vpce.us-east-1.vpce-svc-1"),
     "service name on a public store"),
    (lambda d: d["spec"]["keys"][0].pop("xksKeyId"), "XKS key without xksKeyId"),
    (lambda d: d["spec"]["xks"].update(uriPath="/foo"), "bad path"),
    (lambda d: d["spec"]["xks"].pop("uriEndpoint"), "missing endpoint"),
    (lambda d: d["spec"]["keys"][0].update(alias="alias/aws/x"), "reserved alias"),
    (lambda d: d["spec"]["keys"][0]["tags"].update({"aws:x": "y"}), "reserved tag key"),
    (lambda d: d["spec"]["deletion"].update(pendingWindowDays=31), "window"),
    (lambda d: d["spec"].update(type="AWS_CLOUDHSM"), "xks on a CloudHSM store"),
    (lambda d: d["spec"].update(surprise=1), "unknown field"),
])
def test_schema_rejects_what_the_models_reject(change: Any, why: str) -> None:
    validator = _validator()
    document = _example()
    change(document)
    assert list(validator.iter_errors(document)), why


def test_schema_accepts_a_minimal_absent_store() -> None:
    validator = _validator()
    document = {"apiVersion": "reconciler/v1", "kind": "KeyStore", "metadata": {"name": "x"},
                "spec": {"type": "EXTERNAL_KEY_STORE", "state": "absent"}}
    assert list(validator.iter_errors(document)) == []


def test_schema_text_is_stable_json() -> None:
    assert json.loads(manifest_json_schema_text()) == manifest_json_schema()
    assert manifest_json_schema_text() == manifest_json_schema_text()
