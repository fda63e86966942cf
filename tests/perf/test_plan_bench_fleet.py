"""The plan benchmark's fleet row (issue 16), run small: the served emulator holds the fleet in every
account and region, the repository the benchmark writes (manifests with spec.account and spec.region,
a reconciler.yaml with a role and external id per account) matches it, and the real `reconciler
plan`, in a process of its own, assumes every role and plans every target with no changes, each
target's calls counted against its own account and region. Quotas at KMS's real values, 1 ms of
latency: a few seconds."""

from __future__ import annotations

import argparse
import math

import pytest

from benchmarks.plan_bench_fleet import FleetRow, notes, run_fleet_row, table, write_fleet_repository

pytestmark = pytest.mark.e2e


def test_fleet_row_repository_is_a_fleet_of_every_account_and_region(tmp_path):
    from reconciler.manifest.repo_config import load_repo_config
    from reconciler.plan.fleet import group_targets
    from reconciler.plan.make import load_manifests

    row = FleetRow.parse("2x3x2x4")
    write_fleet_repository(row, tmp_path)
    config = load_repo_config([str(tmp_path)])
    assert {a: (acc.role_arn, acc.external_id) for a, acc in config.accounts.items()} == {
        a: (f"arn:aws:iam::{a}:role/reconciler", "plan-bench") for a in row.account_ids}
    groups = group_targets(load_manifests([str(tmp_path)], default_region=config.default_region), None)
    assert [(g.account, g.region) for g in groups] == sorted(
        (a, r) for a in row.account_ids for r in row.region_names)
    assert all(len(g.manifests) == row.stores for g in groups)


def test_fleet_row_parse_refuses_what_it_cannot_build():
    with pytest.raises(SystemExit, match="ACCOUNTSxREGIONSxSTORESxKEYS"):
        FleetRow.parse("4x3x10")
    with pytest.raises(SystemExit, match="at most"):
        FleetRow.parse("9x3x10x50")


def test_fleet_row_plans_every_target_with_no_changes_each_within_its_own_quotas():
    """KMS request quotas are per account and region: each target's calls are counted, and its
    floor computed, on its own; the row's floor is the slowest target's."""
    row = FleetRow.parse("2x2x2x3")
    args = argparse.Namespace(quota_scale="1", latency_ms=1.0, dilate=True)
    res = run_fleet_row(row, args, lambda message: None)
    assert res["exit"] in (0, "0"), res["output_tail"]  # no changes: the manifests match every target
    assert sorted(res["floors"]) == sorted(f"{a}/{r}" for a in row.account_ids for r in row.region_names)
    keys = row.stores * row.keys
    for target, calls in res["target_calls"].items():  # each target read its own stores' keys, once
        assert (calls["DescribeKey"], calls["ListResourceTags"]) == (keys, keys), target
    assert res["calls_of_slowest"]["DescribeKey"] == keys
    assert res["calls_of_slowest"]["ListResourceTags"] == keys
    assert res["calls"]["DescribeKey"] == row.targets * keys
    assert len(res["reads"]) == row.targets
    assert res["floor"] == max(f["floor"] for f in res["floors"].values())
    assert res["throttled"] == 0
    assert not math.isnan(res["wall"] / res["floor"])
    assert "2 accounts x 2 regions x 2x3" in table(res)[2]
    assert notes(res)[-1].startswith("Target (latency 1 ms, as KMS's): wall / slowest target's floor")
