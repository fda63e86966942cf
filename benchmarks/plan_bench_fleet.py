"""The plan benchmark's fleet row: one `reconciler plan` over every account and region of a fleet.

    python benchmarks/plan_bench.py --fleet-row-only                  # this row alone
    python benchmarks/plan_bench.py --fleet-row-only --markdown docs/performance.md

A x R x S x K: A accounts, R regions each, S connected external key stores with K keys each in every
account and region (every key with an alias and a tag), built in the emulator's own process
(benchmarks/fleet_server.py) with a role per account that its STS lets the runner assume. The
manifests give each store its ``spec.account`` and ``spec.region``, and a ``reconciler.yaml`` maps
each account to its role (with an external id), so the real `reconciler plan` command, in a fresh
process, assumes every role and reads every target at once, each within its own quotas (KMS's are
per account and region, and so are the emulator's). See docs/performance.md.
"""

from __future__ import annotations

import argparse
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from benchmarks.fleet_server import ROLE_EXTERNAL_ID, role_arn, target_prefix
from benchmarks.plan_bench import (
    Fleet, Server, _calls_text, _env, calibrate, choose_scale, floor_of, measure, write_manifests)

ACCOUNTS = ("111111111111", "222222222222", "333333333333", "444444444444", "555555555555", "666666666666")
REGIONS = ("us-east-1", "eu-west-1", "ap-southeast-2", "us-west-2", "eu-central-1", "ap-northeast-1")
TARGET_FACTOR = 1.3  # the target: wall <= 1.3 x the slowest target's floor


@dataclass(frozen=True)
class FleetRow:
    accounts: int
    regions: int
    stores: int
    keys: int

    @classmethod
    def parse(cls, text: str) -> "FleetRow":
        parts = [int(p) for p in text.lower().split("x")]
        if len(parts) != 4 or not (1 <= parts[0] <= len(ACCOUNTS) and 1 <= parts[1] <= len(REGIONS)):
            raise SystemExit(f"--fleet-row {text!r}: expected ACCOUNTSxREGIONSxSTORESxKEYS, at most "
                             f"{len(ACCOUNTS)} accounts and {len(REGIONS)} regions, e.g. 4x3x10x50")
        return cls(*parts)

    def __str__(self) -> str:
        return f"{self.accounts} accounts x {self.regions} regions x {self.stores}x{self.keys}"

    @property
    def per_target(self) -> Fleet:
        return Fleet(self.stores, self.keys, 0)

    @property
    def account_ids(self) -> tuple[str, ...]:
        return ACCOUNTS[:self.accounts]

    @property
    def region_names(self) -> tuple[str, ...]:
        return REGIONS[:self.regions]

    @property
    def targets(self) -> int:
        return self.accounts * self.regions


def write_fleet_repository(row: FleetRow, directory: Path) -> None:
    """Every target's manifests (under ACCOUNT/REGION/) and the reconciler.yaml that reaches them."""
    config = [f"defaultRegion: {row.region_names[0]}", "accounts:"]
    for a, account in enumerate(row.account_ids):
        config += [f'  "{account}":', f"    roleArn: {role_arn(account)}", f"    externalId: {ROLE_EXTERNAL_ID}"]
        for r, region in enumerate(row.region_names):
            where = directory / account / region
            where.mkdir(parents=True)
            write_manifests(row.per_target, where, account=account, region=region, prefix=target_prefix(a, r))
    (directory / "reconciler.yaml").write_text("\n".join(config) + "\n")


def assumed_credentials(server: Server, account: str, region: str) -> dict[str, str]:
    import boto3

    sts = boto3.client("sts", endpoint_url=server.url, region_name=region, aws_access_key_id="testing",
                       aws_secret_access_key="testing")
    creds = sts.assume_role(RoleArn=role_arn(account), RoleSessionName="plan-bench",
                            ExternalId=ROLE_EXTERNAL_ID)["Credentials"]
    return {"aws_access_key_id": creds["AccessKeyId"], "aws_secret_access_key": creds["SecretAccessKey"],
            "aws_session_token": creds["SessionToken"]}


def run_fleet_row(row: FleetRow, args: argparse.Namespace, log) -> dict[str, Any]:
    from reconciler.kms_quotas import KMS_DEFAULT_QUOTAS

    log(f"fleet row {row}: building it in the emulator...")
    server = Server(row.per_target, (",".join(row.account_ids), ",".join(row.region_names)))
    work = Path(tempfile.mkdtemp(prefix="plan-bench-fleet-"))
    try:
        account, region = row.account_ids[0], row.region_names[0]
        log(f"  built {server.built['keys']:,} keys in {server.built['seconds']} s; measuring CPU per call...")
        cpu = calibrate(server, region=region, credentials=assumed_credentials(server, account, region))
        # every target is read at once by the one plan process (and served by the one emulator):
        # the same rule as the other rows, with all the targets' pooled operations at their quotas
        # within 60% of a core
        scale = (choose_scale(row.per_target, cpu, utilisation=0.6 / row.targets)
                 if args.quota_scale == "auto" else float(args.quota_scale))
        quotas = {op: q * scale for op, q in KMS_DEFAULT_QUOTAS.items()}
        latency_ms = args.latency_ms / scale if args.dilate else args.latency_ms
        latency = latency_ms / 1000.0
        server.bench("faults", {"latency_ms": latency_ms, "quotas_enabled": True, "quota_overrides": quotas})
        repository = work / "fleet"
        write_fleet_repository(row, repository)
        env = _env(RECONCILER_KMS_QUOTAS=",".join(f"{op}={q:g}" for op, q in quotas.items()),
                   RECONCILER_CACHE_DIR=str(work / "cache"), RECONCILER_CACHE="on")
        log(f"  CPU per call: plan process {cpu['client'] * 1000:.2f} ms, emulator {cpu['server'] * 1000:.2f} ms; "
            f"quotas x {scale:g}; plan (empty cache, {row.targets} targets at once)...")
        run = measure(server, {"url": server.url, "manifests": str(repository), "mode": "cold", "fleet": True}, env)
        floors = {target: floor_of(calls, quotas, latency, row.per_target)
                  for target, calls in sorted(run["target_calls"].items())}
        slowest = max(floors, key=lambda t: floors[t]["floor"]) if floors else None
        result = {"row": row, "scale": scale, "cpu": cpu, "latency_ms": args.latency_ms,
                  "emulated_latency_ms": latency_ms, "wall": run["wall"], "exit": run["exit"],
                  "calls": run["calls"], "throttled": run["throttled"], "memory": run["peak_rss_growth"],
                  "reads": run.get("reads", []), "floors": floors, "slowest": slowest,
                  "calls_of_slowest": run["target_calls"].get(slowest, {}),
                  "target_calls": run["target_calls"],
                  "output_tail": run["output_tail"]}
        result.update(floors[slowest] if slowest else {"floor": float("nan"), "by_quota": 0.0, "chain": 0.0})
        return result
    finally:
        server.close()
        shutil.rmtree(work, ignore_errors=True)


def ok_exit(code: Any) -> bool:
    return code in (0, "0")


def _rows(res: Any) -> list[dict[str, Any]]:
    return [res] if isinstance(res, dict) else list(res)


def _latency_label(res: dict[str, Any]) -> str:
    if res["emulated_latency_ms"] == res["latency_ms"]:
        return f"latency {res['latency_ms']:g} ms, as KMS's"
    return f"latency dilated to {res['emulated_latency_ms']:.0f} ms"


def table(results: Any) -> list[str]:
    lines = ["| fleet | reader | wall s | floor s (slowest target) | wall / floor | throttled | peak MB | API calls |",
             "|---|---|---:|---:|---:|---:|---:|---|"]
    for res in _rows(results):
        floor = f"{res['floor']:.1f}" + (" (chain)" if res["chain"] >= res["by_quota"] else "")
        lines.append(f"| {res['row']} | plan ({res['row'].targets} targets at once; {_latency_label(res)}) | "
                     f"{res['wall']:.1f} | {floor} | {res['wall'] / res['floor']:.2f} | {res['throttled']} | "
                     f"{res['memory'] / 2**20:.0f} | {_calls_text(res['calls'])} |")
    return lines


def notes(results: Any) -> list[str]:
    out: list[str] = []
    verdicts = [""]
    for res in _rows(results):
        row, cpu, floors = res["row"], res["cpu"], res["floors"]
        dilated = res["emulated_latency_ms"] != res["latency_ms"]
        out.append(
            f"- {row}, {_latency_label(res)}: {row.targets} targets (accounts {', '.join(row.account_ids)}; regions "
            f"{', '.join(row.region_names)}), each with {row.stores} stores of {row.keys} keys "
            f"({row.targets * row.stores * row.keys:,} keys in all); KMS's latency {res['latency_ms']:g} ms per call; "
            f"CPU per call measured at {cpu['client'] * 1000:.2f} ms in the plan's process and "
            f"{cpu['server'] * 1000:.2f} ms in the emulator; every quota multiplied by {res['scale']:g} (DescribeKey "
            f"{2000 * res['scale']:g}/s per account and region), so that all {row.targets} targets' reads at their "
            f"quotas need at most 60% of a core in each process"
            + (f", and the latency divided by it ({res['emulated_latency_ms']:.0f} ms per call: as many calls in "
               f"flight as at KMS's quotas and latency)." if dilated else
               " (the latency as KMS's: the calls in flight are the quotas' at this scale, not KMS's)."))
        if floors:
            values = sorted(f["floor"] for f in floors.values())
            out.append(f"  - floor per target {values[0]:.1f} to {values[-1]:.1f} s; the slowest, {res['slowest']}: "
                       f"{_calls_text(res['calls_of_slowest'])}")
        if res["reads"]:
            seconds = [r["seconds"] for r in res["reads"]]
            workers = [r["stats"]["workers"] for r in res["reads"]]
            out.append(f"  - {len(seconds)} reads, {min(seconds):.1f} to {max(seconds):.1f} s each, "
                       f"{min(workers)} to {max(workers)} workers each; wall {res['wall']:.1f} s")
        if not ok_exit(res["exit"]):
            out.append(f"  - plan exit {res['exit']}: {res['output_tail'][-300:]}")
        ratio = res["wall"] / res["floor"]
        verdicts.append(f"Target ({_latency_label(res)}): wall / slowest target's floor {ratio:.2f} <= "
                        f"{TARGET_FACTOR}: " + ("met" if ratio <= TARGET_FACTOR and ok_exit(res["exit"]) else "NOT MET"))
    return out + verdicts


def write_markdown(path: Path, res: Any, command: str) -> None:
    """Rewrite the fleet row's section of ``path`` (the plan-bench section stays as it is)."""
    import time

    from benchmarks.markdown import write_section

    body = (f"Generated on {time.strftime('%Y-%m-%d')} on the project's 2-core machine by:\n\n```sh\n{command}\n```\n\n"
            + "\n".join(table(res)) + "\n\n" + "\n".join(notes(res)))
    write_section(path, "plan-bench-fleet", body)
