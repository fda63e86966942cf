"""Property: a store declared for one target (account, region) never causes a step in another.

Manifests are generated over two accounts (and none: the default credentials' account), two
regions (and none: the default region) and a few store names that repeat across targets; every
target's section is planned against a live state that holds, under the same names, the stores of
every other target (what a mix-up between targets would act on).
"""

from __future__ import annotations

import tempfile
from datetime import datetime, timezone
from pathlib import Path

from hypothesis import given, settings
from hypothesis import strategies as st

from reconciler.live.model import LiveState, LiveStore, LiveXks
from reconciler.plan.fleet import desired_of, group_targets
from reconciler.plan.make import load_manifests
from reconciler.plan.planner import diff

NOW = datetime(2026, 12, 1, tzinfo=timezone.utc)
DEFAULT_REGION = "us-east-1"
declaration = st.tuples(st.sampled_from(["111111111111", "222222222222", None]),
                        st.sampled_from(["us-east-1", "eu-west-1", None]),
                        st.sampled_from(["pay", "orders", "legacy"]),
                        st.sampled_from(["present", "absent"]))


def manifest(account, region, name, state) -> str:
    spec = [f'  account: "{account}"' if account else "", f"  region: {region}" if region else ""]
    return "\n".join(line for line in [
        "apiVersion: reconciler/v1",
        "kind: KeyStore",
        f"metadata: {{name: {name}}}",
        "spec:",
        *spec,
        "  type: EXTERNAL_KEY_STORE",
        f"  state: {state}",
        "  xks:",
        "    connectivity: PUBLIC_ENDPOINT",
        f"    uriEndpoint: https://{name}.example.com",
        "    uriPath: /kms/xks/v1",
        "    credential: {accessKeyId: AKIAXKSPROXYEXAMPLE2, secretAccessKey: {fromEnv: XKS_SECRET}}",
        "  keys:",
        f"    - {{alias: alias/{name}, xksKeyId: {name}-key}}",
    ] if line) + "\n"


@settings(max_examples=30, deadline=None)
@given(st.lists(declaration, min_size=1, max_size=8,
                unique_by=lambda d: (d[0], d[1] or DEFAULT_REGION, d[2])))
def test_a_store_declared_for_one_target_never_causes_a_step_in_another(declared):
    with tempfile.TemporaryDirectory() as tmp:
        for index, item in enumerate(declared):
            Path(tmp, f"{index}.yaml").write_text(manifest(*item))
        loaded = load_manifests([tmp], default_region=DEFAULT_REGION)
        groups = group_targets(loaded, DEFAULT_REGION)
        # the partition: every manifest in exactly the group of its own account and region
        assert sorted(len(g.manifests) for g in groups) and sum(len(g.manifests) for g in groups) == len(declared)
        for group in groups:
            for entry in group.manifests:
                assert (entry.model.spec.account, entry.model.spec.region or DEFAULT_REGION) == \
                    (group.account, group.region)
        for group in groups:
            mine = {e.name for e in group.manifests}
            others = {e.name for g in groups if g is not group for e in g.manifests} - mine
            # the live state of this target holds stores named like the other targets' ones
            live = LiveState(region=group.region, read_at=NOW, stores={
                name: LiveStore(id=f"cks-{name}", name=name, type="EXTERNAL_KEY_STORE", connection_state="CONNECTED",
                                xks=LiveXks(connectivity="PUBLIC_ENDPOINT", uri_endpoint=f"https://{name}.example.com",
                                            uri_path="/kms/xks/v1", access_key_id="AKIAXKSPROXYEXAMPLE2"))
                for name in others})
            steps, findings = diff(desired_of(group, [tmp], False).state, live, NOW)
            assert {step.store for step in steps} <= mine
            present = {e.name for e in group.manifests if e.model.spec.state == "present"}
            assert present <= {step.store for step in steps}  # each is created here, in its own target
            assert {f.store for f in findings if f.kind == "unmanaged_store"} == others
