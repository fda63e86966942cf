"""Whatever the input, load() returns problems; it never raises."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import Any

import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from reconciler.manifest import load

# more examples on demand: RECONCILER_PROPERTY_EXAMPLES=5000 (see docs/reliability.md)
EXTRA = int(os.environ.get("RECONCILER_PROPERTY_EXAMPLES", "0"))

VALID = (Path(__file__).resolve().parents[2] / "manifests" / "payments-xks.yaml").read_text()

FIELD_NAMES = ["apiVersion", "kind", "metadata", "name", "spec", "region", "account", "type", "state", "connection",
               "xks", "connectivity", "uriEndpoint", "uriPath", "vpcEndpointServiceName", "credential", "accessKeyId",
               "secretAccessKey", "fromEnv", "fromFile", "cloudHsm", "clusterId", "keys", "alias", "xksKeyId",
               "tags", "deletion", "pendingWindowDays", "enabled", "description"]
VALUES = ["reconciler/v1", "KeyStore", "EXTERNAL_KEY_STORE", "AWS_CLOUDHSM", "PUBLIC_ENDPOINT",
          "VPC_ENDPOINT_SERVICE", "https://xks.example.com", "/kms/xks/v1", "absent", "present", "alias/x"]

scalars = st.one_of(st.none(), st.booleans(), st.integers(), st.floats(allow_nan=False), st.text(max_size=20),
                    st.sampled_from(VALUES))
trees = st.recursive(scalars, lambda children: st.one_of(
    st.lists(children, max_size=4),
    st.dictionaries(st.one_of(st.sampled_from(FIELD_NAMES), st.text(max_size=8)), children, max_size=5)),
    max_leaves=30)


def load_bytes(data: bytes) -> Any:
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "m.yaml"
        path.write_bytes(data)
        result = load([path])
        for problem in result.problems:
            text = str(problem)
            assert text.startswith(str(path)) and "\n" not in problem.message and "Traceback" not in text
        assert result.ok == (not result.problems)
        return result


@settings(max_examples=max(300, EXTRA), deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.binary(max_size=400))
def test_random_bytes_never_raise(data: bytes) -> None:
    load_bytes(data)


@settings(max_examples=max(300, EXTRA), deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.sampled_from(list("abc:-[]{}&*!|>'\"#%@`,?\n\t ") + ["---\n", "!!python/object ", "<<: ",
                                                                           "&a ", "*a", "\x00", "\ufeff"]),
                max_size=80))
def test_yaml_like_text_never_raises(pieces: list[str]) -> None:
    load_bytes("".join(pieces).encode("utf-8"))


@settings(max_examples=max(200, EXTRA), deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(trees)
def test_generated_documents_never_raise(tree: Any) -> None:
    load_bytes(yaml.safe_dump(tree, allow_unicode=True).encode("utf-8"))


@settings(max_examples=max(200, EXTRA), deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.data())
def test_mutated_valid_manifest_never_raises(data: st.DataObject) -> None:
    document = yaml.safe_load(VALID)
    node: Any = document
    # walk to a random place in the valid manifest and replace it with something generated
    for _ in range(data.draw(st.integers(0, 4))):
        if isinstance(node, dict) and node:
            key = data.draw(st.sampled_from(sorted(node)))
            if not isinstance(node[key], (dict, list)):
                break
            node = node[key]
        elif isinstance(node, list) and node:
            index = data.draw(st.integers(0, len(node) - 1))
            if not isinstance(node[index], (dict, list)):
                break
            node = node[index]
    if isinstance(node, dict) and node:
        node[data.draw(st.sampled_from(sorted(node)))] = data.draw(trees)
    elif isinstance(node, list) and node:
        node[0] = data.draw(trees)
    load_bytes(yaml.safe_dump(document).encode("utf-8"))


@settings(max_examples=max(200, EXTRA), deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.integers(0, len(VALID)), st.text(max_size=10))
def test_valid_manifest_with_inserted_garbage_never_raises(position: int, garbage: str) -> None:
    load_bytes((VALID[:position] + garbage + VALID[position:]).encode("utf-8"))
