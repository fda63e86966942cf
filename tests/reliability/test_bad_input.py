"""Bad input: a clean error, never a traceback, never an action nobody asked for.

What already covers the rest: tests/manifest/test_manifest_fuzz.py (the loader on random bytes,
YAML-like text and generated documents), tests/manifest/test_manifest_loader.py (YAML tags that
build objects are refused: safe loading only), tests/manifest/test_manifest_secrets.py (fromFile
outside the root, in process), tests/e2e/test_apply_lifecycle.py (a tampered or truncated plan).
Here: the same through the CLI, plan files mutated at random, and a plan file whose steps were
edited and whose digest was recomputed (the digest is a checksum, not a signature).
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from reconciler.errors import UserError
from reconciler.plan.model import plan_digest
from reconciler.plan.files import load_plan_file
from tests.e2e.helpers import xks_manifest
from tests.reliability.forked import ForkedCli
from tests.reliability.harness import property_examples, world, xks_doc

NASTY_MANIFESTS = {
    "binary.yaml": bytes(range(256)) * 4,
    "python-object.yaml": b"apiVersion: !!python/object/apply:os.system ['echo pwned > pwned']\n",
    "python-name.yaml": b"kind: !!python/name:os.system\n",
    "laughs.yaml": b"a: &a [x,x,x,x,x,x,x,x,x]\nb: &b [*a,*a,*a,*a,*a,*a,*a,*a,*a]\nc: &c [*b,*b,*b,*b,*b,*b,*b,*b,*b]\n"
                   b"d: &d [*c,*c,*c,*c,*c,*c,*c,*c,*c]\ne: &e [*d,*d,*d,*d,*d,*d,*d,*d,*d]\nf: [*e,*e,*e,*e,*e,*e]\n",
    "deep.yaml": b"[" * 5000 + b"]" * 5000,
    "utf16.yaml": "apiVersion: reconciler/v1\n".encode("utf-16"),
    "tabs.yaml": b"apiVersion: reconciler/v1\n\tkind: KeyStore\n",
    "duplicate-keys.yaml": b"apiVersion: reconciler/v1\napiVersion: reconciler/v2\nkind: KeyStore\n",
}


@pytest.mark.e2e
@pytest.mark.parametrize("name", sorted(NASTY_MANIFESTS))
def test_nasty_manifests_get_a_clean_error_from_every_command(tmp_path, name):
    cli = ForkedCli(tmp_path)
    (tmp_path / "m").mkdir()
    (tmp_path / "m" / name).write_bytes(NASTY_MANIFESTS[name])
    for args in (["validate", "m"], ["plan", "--sandbox", "m"], ["apply", "--sandbox", "--auto-approve", "m"]):
        run = cli(*args)
        assert run.code == 1, (args, run.both)
        assert "Traceback" not in run.both and run.err.strip(), (args, run.both)
    assert not (tmp_path / "pwned").exists()
    assert not (tmp_path / "plans" / "journal.jsonl").exists()  # nothing was applied


@pytest.mark.e2e
def test_from_file_outside_the_root_is_refused_unless_allowed(tmp_path):
    cli = ForkedCli(tmp_path)
    secret = "c2VjcmV0LW91dHNpZGUtdGhlLXJvb3Qtc2VjcmV0LW91dHNpZGU="
    (tmp_path / "outside.key").write_text(secret)
    manifest = xks_manifest().replace("{fromEnv: XKS_SECRET_ACCESS_KEY}", "{fromFile: ../outside.key}")
    cli.write("m/payments.yaml", manifest)
    # a symlink inside the root that points outside it is outside too
    cli.write("l/payments.yaml", xks_manifest(name="linked").replace(
        "{fromEnv: XKS_SECRET_ACCESS_KEY}", "{fromFile: link.key}"))
    (tmp_path / "l" / "link.key").symlink_to(tmp_path / "outside.key")

    for args in (["validate", "--check-secrets", "m"], ["apply", "--sandbox", "--auto-approve", "m"]):
        refused = cli(*args)
        assert refused.code == 1 and "outside the manifests root" in refused.err, refused.both
        assert "--allow-outside-root" in refused.err or "allow secret files outside" in refused.err
        assert secret not in refused.both
    with cli.kms() as kms:
        assert kms.describe_custom_key_stores()["CustomKeyStores"] == []  # refused before any change
    symlinked = cli("validate", "--check-secrets", "l")
    assert symlinked.code == 1 and "outside the manifests root" in symlinked.err
    assert cli("validate", "--check-secrets", "--allow-outside-root", "m").code == 0
    allowed = cli("apply", "--sandbox", "--auto-approve", "--allow-outside-root", "m")
    assert allowed.code == 0, allowed.both
    assert secret not in allowed.both


# -- plan files ----------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def plan_text(tmp_path_factory) -> str:
    root = tmp_path_factory.mktemp("plan")
    with world(root) as w:
        w.write("stores.yaml", xks_doc("pay", keys=[{"xksKeyId": "pay-1", "alias": "alias/pay-1"}]))
        plan, _ = w.plan()
    return plan.to_json()


def _load(tmp_dir: Path, text: bytes):
    path = tmp_dir / f"p-{hashlib.sha256(text).hexdigest()[:16]}.json"
    path.write_bytes(text)
    try:
        return load_plan_file(str(path))
    finally:
        path.unlink()


@settings(max_examples=property_examples(), deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(cut=st.integers(0, 10_000), flip=st.integers(0, 10_000), value=st.integers(0, 255),
       how=st.sampled_from(["truncate", "flip", "insert", "delete"]))
def test_a_damaged_plan_file_is_refused_never_a_traceback(plan_text, tmp_path, cut, flip, value, how):
    data = plan_text.encode()
    if how == "truncate":
        damaged = data[:cut % len(data)]
    elif how == "flip":
        i = flip % len(data)
        damaged = data[:i] + bytes([value]) + data[i + 1:]
    elif how == "insert":
        i = flip % len(data)
        damaged = data[:i] + bytes([value]) + data[i:]
    else:
        i = flip % len(data)
        damaged = data[:i] + data[i + 1:]
    try:
        plan = _load(tmp_path, damaged)
    except UserError as exc:
        assert "\n" not in str(exc).split(":", 1)[0] and str(exc)
        return
    # accepted: only if the damage did not change what the file says (e.g. whitespace)
    assert plan.to_dict() == json.loads(plan_text)


@settings(max_examples=property_examples(), deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.data())
def test_any_edit_without_the_digest_is_refused(plan_text, tmp_path, data):
    document = json.loads(plan_text)
    node, path = document, []
    while isinstance(node, (dict, list)) and node:
        keys = sorted(node) if isinstance(node, dict) else list(range(len(node)))
        key = data.draw(st.sampled_from(keys))
        if key == "planDigest" or not isinstance(node[key], (dict, list)) or data.draw(st.booleans()):
            path.append(key)
            break
        path.append(key)
        node = node[key]
    parent = document
    for key in path[:-1]:
        parent = parent[key]
    old = parent[path[-1]]
    new = data.draw(st.one_of(st.none(), st.booleans(), st.integers(), st.text(max_size=10)).filter(lambda v: v != old))
    parent[path[-1]] = new
    with pytest.raises(UserError):
        _load(tmp_path, json.dumps(document).encode())


@pytest.mark.e2e
def test_edited_steps_with_a_recomputed_digest_are_refused(tmp_path):
    """Someone edits a saved plan to schedule the deletion of a key in a store that is not
    decommissioned, and recomputes the digest: apply refuses before any change."""
    cli = ForkedCli(tmp_path)
    cli.write("m/payments.yaml", xks_manifest())
    assert cli("apply", "--sandbox", "--auto-approve", "m").code == 0
    cli.write("m/payments.yaml", xks_manifest(keys="""
        - alias: alias/payments-primary
          xksKeyId: ext-key-0001
          description: Payments data key, renamed
          tags: {team: payments}
        - alias: alias/payments-secondary
          xksKeyId: ext-key-0002
          description: Payments backup key
    """))
    assert cli("plan", "--sandbox", "--out", "plans/p.json", "m").code == 2
    document = json.loads((tmp_path / "plans/p.json").read_text())
    (step,) = document["steps"]
    assert step["action"] == "update_key"
    forged = {**step, "id": step["id"].replace("update_key", "schedule_key_deletion"),
              "action": "schedule_key_deletion", "destructive": True,
              "params": {"keyId": step["params"]["keyId"], "pendingWindowInDays": 7}}
    document["steps"] = [forged]
    document["planDigest"] = plan_digest(document)
    (tmp_path / "plans/forged.json").write_text(json.dumps(document, indent=2))
    refused = cli("apply", "--sandbox", "--allow-destroy", "plans/forged.json")
    assert refused.code == 1, refused.both
    assert "not the ones its manifests and the live state give" in refused.err
    with cli.kms() as kms:
        states = [kms.describe_key(KeyId=k["KeyId"])["KeyMetadata"]["KeyState"] for k in kms.list_keys()["Keys"]]
    assert states == ["Enabled", "Enabled"]
    # the untouched plan still applies
    assert cli("apply", "--sandbox", "plans/p.json").code == 0
    assert os.path.exists(tmp_path / "plans/journal.jsonl")


@pytest.mark.e2e
def test_an_untouched_saved_decommission_plan_passes_the_steps_check(tmp_path):
    """The steps check re-plans at the plan's creation time, which the file keeps in whole seconds
    while the deferred date was computed from the exact instant: a genuine plan must still pass."""
    cli = ForkedCli(tmp_path)
    cli.write("m/payments.yaml", xks_manifest())
    assert cli("apply", "--sandbox", "--auto-approve", "m").code == 0
    cli.write("m/payments.yaml", xks_manifest(state="absent"))
    for attempt in range(2):  # two plans, two different sub-second instants
        out = f"plans/d{attempt}.json"
        assert cli("plan", "--sandbox", "--out", out, "m").code == 2
        shown = cli("show", "--format", "json", out)
        assert json.loads(shown.out)["steps"][-1]["deferredUntil"]
        checked = cli("apply", "--sandbox", out)  # no --allow-destroy: refused after every check
        assert checked.code == 1 and "--allow-destroy" in checked.err, checked.both
    run = cli("apply", "--sandbox", "--allow-destroy", "plans/d1.json")
    assert run.code == 2, run.both
