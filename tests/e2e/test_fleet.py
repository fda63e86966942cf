"""Fleets on the sandbox: two accounts x two regions in one plan and one apply.

STS AssumeRole (API Reference): "Returns a set of temporary security credentials that you can use
to access Amazon Web Services resources" -- of the role's account; the emulator lets the caller
assume only the roles it knows (docs/emulator.md), and refuses any other with AccessDenied.
"""

from __future__ import annotations

import json

import pytest

from tests.e2e.helpers import SECRET

pytestmark = pytest.mark.e2e

A, B, C = "111111111111", "222222222222", "333333333333"
EAST, WEST = "us-east-1", "eu-west-1"
CONFIG = f"""\
    defaultRegion: {EAST}
    accounts:
      "{A}": {{roleArn: "arn:aws:iam::{A}:role/reconciler", externalId: ext-{A}}}
      "{B}": {{roleArn: "arn:aws:iam::{B}:role/reconciler", sessionName: ci}}
"""


def store(account: str, region: str | None, *, state: str = "present", description: str = "data key") -> str:
    region_line = f"\n          region: {region}" if region else ""
    return f"""\
        apiVersion: reconciler/v1
        kind: KeyStore
        metadata:
          name: xks-main
        spec:
          account: "{account}"{region_line}
          type: EXTERNAL_KEY_STORE
          state: {state}
          xks:
            connectivity: PUBLIC_ENDPOINT
            uriEndpoint: https://xks-{account}.example.com
            uriPath: /kms/xks/v1
            credential:
              accessKeyId: {{fromEnv: XKS_ACCESS_KEY_ID}}
              secretAccessKey: {{fromEnv: XKS_SECRET_ACCESS_KEY}}
          deletion: {{pendingWindowDays: 7}}
          keys:
            - alias: alias/main
              xksKeyId: key-{account}-{region or EAST}
              description: {description}
    """


def fleet(cli, config: str = CONFIG) -> None:
    cli.write("m/reconciler.yaml", config)
    for account in (A, B):
        cli.write(f"m/{account}-east.yaml", store(account, None))  # defaultRegion
        cli.write(f"m/{account}-west.yaml", store(account, WEST))
    assert cli("sandbox", "init", "m").code == 0


def live(cli, account: str, region: str) -> dict[str, dict]:
    """Store name -> {state, keys: {xksKeyId: description}} in one account and region, read with the
    account's role (as a pipeline would)."""
    from reconciler.aws.reach import AccountAccess, Reach
    from reconciler.aws.targets import make_target

    role = f"arn:aws:iam::{account}:role/reconciler"
    with Reach(make_target(None, None, None, True, str(cli.sandbox_dir))) as reach:
        conn = reach.connection(region, AccountAccess(role_arn=role, external_id=f"ext-{A}" if account == A else None))
        assert conn.account_id() == account
        found = {}
        for s in conn.kms.describe_custom_key_stores()["CustomKeyStores"]:
            keys = {}
            for k in conn.kms.list_keys()["Keys"]:
                meta = conn.kms.describe_key(KeyId=k["KeyId"])["KeyMetadata"]
                if meta.get("CustomKeyStoreId") == s["CustomKeyStoreId"] and meta["KeyState"] != "PendingDeletion":
                    keys[meta["XksKeyConfiguration"]["Id"]] = meta["Description"]
            found[s["CustomKeyStoreName"]] = {"state": s["ConnectionState"], "keys": keys}
        return found


def test_two_accounts_two_regions_created_changed_and_decommissioned_in_one_plan_and_apply_each(cli):
    fleet(cli)
    made = cli("plan", "--sandbox", "m", "--out", "plans/fleet.json")
    assert made.code == 2, made.both
    data = json.loads((cli.workdir / "plans/fleet.json").read_text())
    assert [t["id"] for t in data["targets"]] == [f"{A}/{WEST}", f"{A}/{EAST}", f"{B}/{WEST}", f"{B}/{EAST}"]
    assert data["planDigest"].startswith("sha256:") and "planDigest" not in json.dumps(data["targets"])
    assert SECRET not in made.both and SECRET not in json.dumps(data)
    for fmt in ("markdown", "text"):  # a section per target in every format
        shown = cli("show", "plans/fleet.json", "--format", fmt)
        assert shown.code == 0 and all(f"{a}/{r}" in shown.out for a in (A, B) for r in (EAST, WEST))
    assert "apply it with: reconciler apply --sandbox plans/fleet.json" in made.err

    applied = cli("apply", "--sandbox", "plans/fleet.json")
    assert applied.code == 0, applied.both
    for account in (A, B):
        for region in (EAST, WEST):
            assert live(cli, account, region) == {
                "xks-main": {"state": "CONNECTED", "keys": {f"key-{account}-{region}": "data key"}}}
    with cli.kms() as kms:  # the sandbox's own credentials: account 123456789012, which no manifest names
        assert kms.describe_custom_key_stores()["CustomKeyStores"] == []
    assert cli("plan", "--sandbox", "m").code == 0

    # one change in A/us-east-1, a decommission of B/eu-west-1: one plan, one apply
    cli.write(f"m/{A}-east.yaml", store(A, None, description="rotated data key"))
    cli.write(f"m/{B}-west.yaml", store(B, WEST, state="absent"))
    changed = cli("apply", "--sandbox", "--auto-approve", "--allow-destroy", "m")
    assert changed.code == 2, changed.both  # the store's deletion waits for its key's 7 days
    assert f"{B}/{WEST}: deferred" in changed.out and f"{A}/{EAST}: converged" in changed.out
    assert live(cli, A, EAST)["xks-main"]["keys"] == {f"key-{A}-{EAST}": "rotated data key"}
    assert live(cli, A, WEST)["xks-main"]["keys"] == {f"key-{A}-{WEST}": "data key"}
    cli("sandbox", "advance", "8d")
    assert cli("apply", "--sandbox", "--auto-approve", "--allow-destroy", "m").code == 0
    assert live(cli, B, WEST) == {}
    assert set(live(cli, B, EAST)) == {"xks-main"}
    assert cli("plan", "--sandbox", "m").code == 0


def test_a_target_whose_role_cannot_be_assumed_fails_alone_while_the_others_converge(cli):
    fleet(cli)
    cli.write("m/reconciler.yaml", CONFIG + f'      "{C}": {{roleArn: "arn:aws:iam::{C}:role/not-seeded"}}\n')
    cli.write(f"m/{C}-east.yaml", store(C, None))
    planned = cli("plan", "--sandbox", "m")
    assert planned.code == 1
    assert f"cannot assume arn:aws:iam::{C}:role/not-seeded for account {C}" in planned.out
    assert "AccessDenied" in planned.out and "Traceback" not in planned.both

    applied = cli("apply", "--sandbox", "--auto-approve", "m")
    assert applied.code == 1, applied.both
    assert f"{C}/{EAST}: FAILED" in applied.out and "cannot assume" in applied.out
    assert applied.out.count(": converged") == 4
    assert set(live(cli, A, EAST)) == {"xks-main"} and set(live(cli, B, WEST)) == {"xks-main"}

    # as JSON (and so through reconciler.api) each target ends with a target-end event saying why;
    # stdout holds JSON lines only
    again = cli("apply", "--sandbox", "--auto-approve", "--format", "json", "m")
    assert again.code == 1, again.both
    events = [json.loads(line) for line in again.out.splitlines()]
    ends = {e["target"]: e for e in events if e["event"] == "target-end"}
    assert ends[f"{C}/{EAST}"]["exitCode"] == 1 and "cannot assume" in ends[f"{C}/{EAST}"]["message"]
    assert ends[f"{A}/{EAST}"] == {**ends[f"{A}/{EAST}"], "exitCode": 0, "message": None}


def test_an_external_id_other_than_the_roles_is_refused(cli):
    fleet(cli)
    cli.write("m/reconciler.yaml", CONFIG.replace(f"ext-{A}", "ext-wrong"))
    run = cli("plan", "--sandbox", "m", "--target", f"{A}/{EAST}")
    assert run.code == 1 and "AccessDenied" in run.out and "externalId" in run.out


def test_locks_are_per_target_and_target_limits_the_run(cli):
    from reconciler.apply.lock import FileLock, LockInfo, held, sandbox_lock_path

    fleet(cli)
    # another apply holds A/us-east-1: that target fails, every other one converges
    path = sandbox_lock_path(cli.sandbox_dir, EAST, A)
    with held(FileLock(path), LockInfo.for_this_process("other-run", str(path)), timeout_seconds=0):
        run = cli("apply", "--sandbox", "--auto-approve", "m")
    assert run.code == 1, run.both
    assert f"{A}/{EAST}: FAILED" in run.out and "other-run" in run.out
    assert run.out.count(": converged") == 3
    assert live(cli, A, EAST) == {}
    # --target: only A/us-east-1 is planned and applied
    only = cli("apply", "--sandbox", "--auto-approve", "--target", f"{A}/{EAST}", "m")
    assert only.code == 0, only.both
    assert f"{A}/{EAST}: converged" in only.out and f"{B}/{EAST}" not in only.out
    assert set(live(cli, A, EAST)) == {"xks-main"}


def test_a_saved_fleet_plan_refuses_a_target_whose_manifests_changed(cli):
    fleet(cli)
    assert cli("plan", "--sandbox", "m", "--out", "plans/fleet.json").code == 2
    cli.write(f"m/{B}-west.yaml", store(B, WEST, description="edited after the plan"))
    run = cli("apply", "--sandbox", "plans/fleet.json")
    assert run.code == 1
    assert f"{B}/{WEST}: FAILED" in run.out and "changed since plans/fleet.json was made" in run.out
    assert live(cli, B, WEST) == {} and set(live(cli, A, WEST)) == {"xks-main"}
    # a target the plan does not cover refuses the whole apply
    cli.write("m/reconciler.yaml", CONFIG + f'      "{C}": {{roleArn: "arn:aws:iam::{C}:role/reconciler"}}\n')
    cli.write(f"m/{C}-east.yaml", store(C, None))
    refused = cli("apply", "--sandbox", "plans/fleet.json")
    assert refused.code == 1 and f"{C}/{EAST}, which plans/fleet.json does not cover" in refused.err


def test_a_plan_saved_with_target_applies_that_target_with_the_command_it_prints(cli):
    """`plan --target X --out F` records X; the `apply F` it prints applies X, as Terraform's
    `plan -target -out` does, and refuses a --target the plan was not made for."""
    fleet(cli)
    run = cli("plan", "--sandbox", "m", "--target", f"{A}/{WEST}", "--out", "plans/t.json")
    assert run.code == 2, run.both
    printed = run.err.split("apply it with: ", 1)[1].split()
    assert printed[:2] == ["reconciler", "apply"] and printed[-1] == "plans/t.json"
    other = cli(*printed[1:-1], "--target", f"{B}/{WEST}", "plans/t.json")
    assert other.code == 1 and f"made for {A}/{WEST} only, not {B}/{WEST}" in other.err
    applied = cli(*printed[1:])
    assert applied.code == 0, applied.both
    assert f"{A}/{WEST}: converged" in applied.out and f"{B}/{WEST}" not in applied.out
    assert set(live(cli, A, WEST)) == {"xks-main"} and live(cli, B, WEST) == {} and live(cli, A, EAST) == {}


def test_a_bad_reconciler_yaml_is_one_message_with_the_fix(cli):
    fleet(cli)
    cli.write("m/reconciler.yaml", f'accounts:\n  "{A}": {{roleArn: "arn:aws:iam::{B}:role/x", color: red}}\n')
    run = cli("plan", "--sandbox", "m")
    assert run.code == 1 and "Traceback" not in run.both
    assert "color: unknown field" in run.err
    bad = cli("plan", "--sandbox", "m", "--target", "nope")
    assert bad.code == 1 and "expected ACCOUNT/REGION" in bad.err


def test_validate_checks_reconciler_yaml_given_or_found_beside_the_manifests(cli):
    """`validate` checks the repository configuration offline, as plan would read it: given as a
    file (what the pre-commit hook passes when a commit changes it) it is the configuration, not a
    manifest; found beside the manifests it is checked with them."""
    fleet(cli)
    files = sorted(str(p.relative_to(cli.workdir)) for p in (cli.workdir / "m").glob("*.yaml"))
    assert "m/reconciler.yaml" in files
    good = cli("validate", *files)
    assert good.code == 0 and "m/reconciler.yaml: valid (the repository configuration)" in good.out, good.both
    cli.write("m/reconciler.yaml", f'defaultRegion: us-east-9\naccounts:\n  "{A}": {{profile: a, roleArn: x}}\n')
    for args in (["m"], ["m/reconciler.yaml"], files):
        bad = cli("validate", *args)
        assert bad.code == 1, bad.both
        assert "m/reconciler.yaml:1:16: defaultRegion: must be an AWS region" in bad.err
        assert f"m/reconciler.yaml:3:3: accounts.{A}: give profile or roleArn, not both" in bad.err
        assert "problem(s) in the repository configuration" in bad.err and "Traceback" not in bad.both
    # a duplicate account would silently keep the last entry (another role): refused, with its place
    cli.write("m/reconciler.yaml", f'accounts:\n  "{A}": {{roleArn: "arn:aws:iam::{A}:role/good"}}\n'
                                   f'  "{A}": {{roleArn: "arn:aws:iam::{A}:role/other"}}\n  "{B}": {{colour: red}}\n')
    dup = cli("validate", "m")
    assert dup.code == 1, dup.both
    assert f"m/reconciler.yaml:3:3: duplicate key '{A}' (first at line 2)" in dup.err
    assert f"m/reconciler.yaml:4:20: accounts.{B}.colour: unknown field" in dup.err
    assert cli("plan", "--sandbox", "m").code == 1
    # a merge key could give an account a second entry that wins silently: refused too
    cli.write("m/reconciler.yaml", f'accounts: {{"{A}": {{roleArn: "arn:aws:iam::{A}:role/prod"}}, '
                                   f'<<: {{"{A}": {{profile: staging}}}}}}\n')
    merged = cli("validate", "m")
    assert merged.code == 1 and "merge keys (<<) are not allowed here" in merged.err, merged.both
    cli.write("m/reconciler.yaml", "accounts: [\n")
    broken = cli("validate", "m")
    assert broken.code == 1 and "m/reconciler.yaml:2:1: not valid YAML" in broken.err, broken.both


def test_status_export_and_iam_policy_understand_targets(cli):
    fleet(cli)
    assert cli("apply", "--sandbox", "--auto-approve", "m").code == 0
    status = cli("status", "--sandbox", "m", "--format", "json")
    assert status.code == 0, status.both
    report = {t["id"]: t["status"] for t in json.loads(status.out)["targets"]}
    assert sorted(report) == sorted(f"{a}/{r}" for a in (A, B) for r in (EAST, WEST))
    assert all([s["name"] for s in r["stores"]] == ["xks-main"] for r in report.values())

    exported = cli("export", "--sandbox", "--target", f"{B}/{WEST}", "--config", "m/reconciler.yaml", "--out", "ad")
    assert exported.code == 0, exported.both
    text = (cli.workdir / f"ad/{B}/{WEST}/xks-main.yaml").read_text()
    assert f'account: "{B}"' in text and f"region: {WEST}" in text
    (cli.workdir / "ad/reconciler.yaml").write_text((cli.workdir / "m/reconciler.yaml").read_text())
    replan = cli("plan", "--sandbox", "ad", env={"XKS_MAIN_SECRET_ACCESS_KEY": SECRET})
    assert replan.code == 0, replan.both  # the exported manifests describe the live store exactly

    policy = cli("iam-policy", "--config", "m/reconciler.yaml", "--trust-principal", "arn:aws:iam::123456789012:role/ci")
    assert policy.code == 0
    doc = json.loads(policy.out)
    trust = doc["accounts"][A]["trustPolicy"]["Statement"][0]
    assert trust["Principal"] == {"AWS": "arn:aws:iam::123456789012:role/ci"}
    assert trust["Condition"] == {"StringEquals": {"sts:ExternalId": f"ext-{A}"}}
    assert "Condition" not in doc["accounts"][B]["trustPolicy"]["Statement"][0]
    resources = json.dumps(doc["accounts"][B]["permissionsPolicy"])
    assert f":{B}:" in resources and f":{A}:" not in resources
    assert doc["runnerPolicy"]["Statement"][0]["Resource"] == [f"arn:aws:iam::{a}:role/reconciler" for a in (A, B)]


def test_the_fleet_example_plans_two_accounts_and_two_regions_as_the_readme_says(cli):
    import shutil
    from pathlib import Path

    shutil.copytree(Path(__file__).resolve().parents[2] / "examples" / "fleet", cli.workdir / "fleet")
    assert cli("sandbox", "init", "fleet").code == 0
    run = cli("plan", "--sandbox", "fleet", "--out", "plans/fleet.json")
    assert run.code == 2, run.both
    assert "Fleet plan: 4 target(s): 12 to create, 4 to change, 0 to destroy." in run.out
    assert cli("apply", "--sandbox", "plans/fleet.json").code == 0


def test_the_api_plans_applies_and_reads_a_fleet_as_the_cli_does(cli, monkeypatch):
    """reconciler.api follows reconciler.yaml as the CLI does: a FleetPlan with a section per
    target, applied target by target (each run-start names its account and region), a FleetStatus;
    and load() reports the configuration's problems. (It planned a fleet as one account and region,
    and could create a store in another region than its manifest's.)"""
    from reconciler import api

    fleet(cli)
    for name, value in cli.env.items():
        monkeypatch.setenv(name, value)
    where = api.target(sandbox=True, sandbox_dir=str(cli.sandbox_dir))
    targets = sorted(f"{a}/{r}" for a in (A, B) for r in (EAST, WEST))

    planned = api.plan(cli.workdir / "m", target=where)
    assert isinstance(planned, api.FleetPlan) and sorted(s.id for s in planned.sections) == targets
    printed = json.loads(cli("plan", "--sandbox", "--format", "json", "m").out)
    ours = planned.to_dict()
    for data in (ours, printed):
        for key in ("createdAt", "planDigest", "manifests"):
            data.pop(key)
        for section in data["targets"]:
            for key in ("createdAt", "planDigest", "manifests"):
                section["plan"].pop(key, None)
    assert ours == printed

    result = api.apply(planned, target=where)
    assert result.exit_code == 0, result.of("failed")
    assert sorted(f"{e['account']}/{e['region']}" for e in result.of("run-start")) == targets
    assert all(set(live(cli, a, r)) == {"xks-main"} for a in (A, B) for r in (EAST, WEST))
    assert not api.plan(cli.workdir / "m", target=where).has_changes

    report = api.status(cli.workdir / "m", target=where)
    assert isinstance(report, api.FleetStatus) and not report.failed
    shown = json.loads(cli("status", "--sandbox", "--format", "json", "m").out)
    ours = report.to_dict()
    for data in (ours, shown):
        for entry in data["targets"]:
            entry["status"].pop("readAt")
    assert ours == shown

    only = api.plan(cli.workdir / "m", target=where, targets=f"{B}/{WEST}")
    assert [s.id for s in only.sections] == [f"{B}/{WEST}"]

    cli.write("m/reconciler.yaml", CONFIG + f'      "{A}": {{profile: other}}\n')
    problems = [str(p) for p in api.load(cli.workdir / "m").problems]
    assert any(f"reconciler.yaml:5:3: duplicate key '{A}' (first at line 3)" in p for p in problems), problems
