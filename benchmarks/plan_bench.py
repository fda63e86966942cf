"""Benchmark of `reconciler plan` on large fleets, against the KMS sandbox with per-call latency
and KMS's per-operation request quotas switched on.

    python benchmarks/plan_bench.py                       # both fleets, prints the table
    python benchmarks/plan_bench.py --markdown docs/performance.md   # ...and writes the doc
    python benchmarks/plan_bench.py --fleet-row-only [--markdown docs/performance.md]   # the fleet row alone

For each fleet (S stores x K keys + U keys outside any custom key store) it starts the emulator in
a process of its own (benchmarks/fleet_server.py), writes manifests that declare every store and
key exactly as they are (so the plan has no changes), and runs `reconciler plan` in a fresh
process three times: with an empty origin cache, again with the cache the first run left, and
with the naive reader (benchmarks/naive_reader.py) in place of the product's. Then the fleet row
(benchmarks/plan_bench_fleet.py): one plan over several accounts and regions at once. See
docs/performance.md for what each figure means.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(ROOT))

from benchmarks.fleet_server import (  # noqa: E402
    REGION, XKS_ACCESS_KEY_ID, XKS_SECRET, key_alias, store_name, xks_key_id)

SHORT = {"DescribeKey": "DescribeKey", "ListResourceTags": "ListResourceTags", "ListKeys": "ListKeys",
         "ListAliases": "ListAliases", "DescribeCustomKeyStores": "DescribeCustomKeyStores"}
RESERVED_ALIASES = 14  # the aws/ aliases moto lists in every region


@dataclass(frozen=True)
class Fleet:
    stores: int
    keys: int
    unrelated: int

    @classmethod
    def parse(cls, text: str) -> "Fleet":
        sk, _, u = text.partition("+")
        s, _, k = sk.partition("x")
        return cls(int(s), int(k), int(u or 0))

    def __str__(self) -> str:
        return f"{self.stores}x{self.keys} + {self.unrelated:,}"

    @property
    def total_keys(self) -> int:
        return self.stores * self.keys + self.unrelated

    @property
    def aliases(self) -> int:
        return self.stores * self.keys + (self.unrelated + 1) // 2 + RESERVED_ALIASES


# -- the emulator process ------------------------------------------------------------------------

class Server:
    def __init__(self, fleet: Fleet, targets: tuple[str, ...] = ()) -> None:
        """``targets``: ACCOUNTS and REGIONS (comma-separated) to build the fleet in each of."""
        self.proc = subprocess.Popen(
            [sys.executable, str(HERE / "fleet_server.py"), str(fleet.stores), str(fleet.keys), str(fleet.unrelated),
             *targets],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, env=_env())
        line = self.proc.stdout.readline()
        if not line:
            raise SystemExit("the emulator process did not start")
        info = json.loads(line)
        self.url, self.built = info["url"], info["built"]

    def bench(self, verb: str, payload: dict | None = None) -> dict:
        data = None if payload is None else json.dumps(payload).encode()
        request = urllib.request.Request(f"{self.url}/_bench/{verb}", data=data, method="GET" if data is None else "POST")
        with urllib.request.urlopen(request) as response:
            return json.loads(response.read())

    def close(self) -> None:
        self.proc.stdin.close()
        self.proc.wait(timeout=30)


def _env(**extra: str) -> dict[str, str]:
    env = dict(os.environ)
    env.update(AWS_ACCESS_KEY_ID="testing", AWS_SECRET_ACCESS_KEY="testing", AWS_DEFAULT_REGION=REGION,
               XKS_SECRET_ACCESS_KEY=XKS_SECRET, PYTHONPATH=str(ROOT) + os.pathsep + env.get("PYTHONPATH", ""))
    env.pop("AWS_PROFILE", None)
    env.pop("AWS_ENDPOINT_URL", None)
    env.pop("AWS_ENDPOINT_URL_KMS", None)
    env.update(extra)
    return env


# -- manifests -----------------------------------------------------------------------------------

def write_manifests(fleet: Fleet, directory: Path, *, account: str | None = None, region: str = REGION,
                    prefix: str = "bench") -> None:
    for s in range(fleet.stores):
        lines = [
            "apiVersion: reconciler/v1", "kind: KeyStore", f"metadata: {{name: {store_name(s, prefix)}}}", "spec:",
            *([f'  account: "{account}"'] if account else []),
            f"  region: {region}", "  type: EXTERNAL_KEY_STORE", "  connection: connected", "  xks:",
            "    connectivity: PUBLIC_ENDPOINT", f"    uriEndpoint: https://xks-{s:03d}.bench.example.com",
            "    uriPath: /kms/xks/v1", "    credential:", f"      accessKeyId: {XKS_ACCESS_KEY_ID}",
            "      secretAccessKey: {fromEnv: XKS_SECRET_ACCESS_KEY}", "  keys:",
        ]
        for k in range(fleet.keys):
            lines.append(f"    - {{alias: {key_alias(s, k, prefix)}, xksKeyId: {xks_key_id(s, k, prefix)}, "
                         f"description: bench key {k}, tags: {{team: team-{s % 7}}}}}")
        (directory / f"{store_name(s, prefix)}.yaml").write_text("\n".join(lines) + "\n")


# -- one plan, in a process of its own -----------------------------------------------------------

def _rss() -> int:
    with open("/proc/self/statm") as fh:
        return int(fh.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def worker(spec: dict[str, Any]) -> None:
    """Runs `reconciler plan` in this process and prints what it measured as one JSON line."""
    import contextlib
    import io

    from reconciler import cli
    from reconciler.live import reader

    result: dict[str, Any] = {"mode": spec["mode"]}
    if spec["mode"] == "naive":
        from benchmarks.naive_reader import naive_read

        def read(kms, region, *, now=None, desired=None):
            started = time.monotonic()
            timing: dict[str, list[float]] = {}
            try:
                return naive_read(kms, region, now=now, desired=desired, phase_budget=spec.get("budget"),
                                  timing=timing)
            finally:
                result["read_seconds"] = time.monotonic() - started
                result["timing"] = timing

        reader.read_live_cli = read
    else:
        original = reader.read_live

        def read(kms, region, *, options=None, now=None):
            options.stats = reader.ReadStats()
            started = time.monotonic()
            try:
                return original(kms, region, options=options, now=now)
            finally:
                result["read_seconds"] = time.monotonic() - started
                result["stats"] = options.stats.__dict__
                # a fleet's targets are read at once, each on a thread of its own: one entry each
                result.setdefault("reads", []).append({"region": region, "seconds": result["read_seconds"],
                                                       "stats": options.stats.__dict__})

        reader.read_live = read
    import boto3  # noqa: F401  (imported before the baseline, like the plan's own imports)
    import botocore.session

    botocore.session.get_session().get_service_model("kms")
    baseline = _rss()
    started = time.perf_counter()
    out = io.StringIO()
    code: Any = 0
    try:
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(out):
            # a fleet's regions come from its manifests (and its reconciler.yaml's defaultRegion)
            region = [] if spec.get("fleet") else ["--region", REGION]
            cli.cli.main(["plan", "--endpoint-url", spec["url"], *region, "--no-step-summary",
                          spec["manifests"]], standalone_mode=False)
    except SystemExit as exc:
        code = exc.code
    except Exception as exc:  # noqa: BLE001 - reported, not hidden
        code = f"{type(exc).__name__}: {exc}"
    result["wall"] = time.perf_counter() - started
    result["exit"] = code
    result["peak_rss_growth"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024 - baseline
    result["output_tail"] = out.getvalue()[-400:]
    print(json.dumps(result), flush=True)


def run_worker(spec: dict[str, Any], env: dict[str, str], script: str = "plan_bench.py") -> dict[str, Any]:
    """``script --worker SPEC`` in a fresh process; the JSON line it prints last."""
    done = subprocess.run([sys.executable, str(HERE / script), "--worker", json.dumps(spec)],
                          capture_output=True, text=True, env=env)
    lines = [line for line in done.stdout.splitlines() if line.startswith("{")]
    if done.returncode != 0 or not lines:
        raise SystemExit(f"the {script} process failed:\n{done.stdout[-2000:]}\n{done.stderr[-3000:]}")
    return json.loads(lines[-1])


# -- calibration, floor, quota scaling ---------------------------------------------------------

def calibrate(server: Server, samples: int = 300, *, region: str = REGION,
              credentials: dict[str, str] | None = None) -> dict[str, float]:
    """CPU seconds per call, in this (client) process and in the emulator, with no latency
    (``credentials``: an assumed role's, for a fleet's account)."""
    import boto3
    from botocore.config import Config

    server.bench("faults", {"latency_ms": 0, "quotas_enabled": False})
    keys = credentials or {"aws_access_key_id": "testing", "aws_secret_access_key": "testing"}
    kms = boto3.client("kms", endpoint_url=server.url, region_name=region, **keys,
                       config=Config(retries={"total_max_attempts": 1}))
    key_ids = [k["KeyId"] for k in kms.list_keys(Limit=samples)["Keys"]]
    for key_id in key_ids[:20]:
        kms.describe_key(KeyId=key_id)  # warm up both sides
    server_cpu, client_cpu = server.bench("stats")["cpu"], time.process_time()
    for key_id in key_ids:
        kms.describe_key(KeyId=key_id)
        kms.list_resource_tags(KeyId=key_id)
    calls = 2 * len(key_ids)
    return {"client": (time.process_time() - client_cpu) / calls,
            "server": (server.bench("stats")["cpu"] - server_cpu) / calls}


def choose_scale(fleet: Fleet, cpu: dict[str, float], utilisation: float = 0.6) -> float:
    """The factor all quotas are multiplied by so that, at the scaled quotas, neither the plan's
    process nor the emulator's needs more than ``utilisation`` of a core (each is one Python
    interpreter: one core at most) when the reader runs its concurrent operations (DescribeKey and
    ListResourceTags) both at their quotas. 1.0 when the real quotas are within reach."""
    from reconciler.live.reader import POOLED_OPERATIONS
    from reconciler.kms_quotas import KMS_DEFAULT_QUOTAS

    rate = sum(KMS_DEFAULT_QUOTAS[op] for op in POOLED_OPERATIONS)
    scale = min(1.0, utilisation / (rate * max(cpu["client"], cpu["server"])))
    digits = 10 ** (math.floor(math.log10(scale)) - 1)
    return math.floor(scale / digits) * digits


def floor_of(calls: dict[str, int], quotas: dict[str, float], latency: float, fleet: Fleet) -> dict[str, float]:
    """The least time these calls can take: the busiest operation's calls / its quota, or the
    chain of calls that must follow one another, whichever is longer. An operation's quota
    bucket starts full, with one second's worth of calls, which take no time to get: so the
    calls beyond that first second's worth, divided by the quota."""
    by_quota = max((max(0.0, n - max(quotas[op], 1.0)) / quotas[op] for op, n in calls.items() if op in quotas),
                   default=0.0)
    stores_pages = math.ceil(max(fleet.stores, 1) / 1000)
    keys_chain = stores_pages + calls.get("ListKeys", 0) + 1 + (1 if fleet.stores * fleet.keys else 0)
    aliases_chain = stores_pages + calls.get("ListAliases", 0)
    chain = latency * max(keys_chain, aliases_chain)
    return {"floor": max(by_quota, chain), "by_quota": by_quota, "chain": chain}


def naive_expected_calls(fleet: Fleet) -> dict[str, int]:
    return {"DescribeCustomKeyStores": 1 + fleet.stores, "ListKeys": math.ceil(fleet.total_keys / 100),
            "DescribeKey": fleet.total_keys, "ListResourceTags": fleet.stores * fleet.keys,
            "ListAliases": math.ceil(fleet.aliases / 50)}


# -- the run -------------------------------------------------------------------------------------

def measure(server: Server, spec: dict[str, Any], env: dict[str, str]) -> dict[str, Any]:
    server.bench("reset")
    time.sleep(1.1)  # every quota bucket full again, as after a quiet second
    result = run_worker(spec, env)
    stats = server.bench("stats")
    result["calls"] = stats["calls"]
    result["throttled"] = sum(stats["throttled"].values())
    result["target_calls"] = stats.get("target_calls", {})
    return result


def run_fleet(fleet: Fleet, args: argparse.Namespace, log, *, only_cold: bool = False) -> dict[str, Any]:
    from reconciler.kms_quotas import KMS_DEFAULT_QUOTAS

    log(f"fleet {fleet}: building it in the emulator...")
    server = Server(fleet)
    work = Path(tempfile.mkdtemp(prefix="plan-bench-"))
    try:
        log(f"  built {server.built['keys']:,} keys in {server.built['seconds']} s; measuring CPU per call...")
        cpu = calibrate(server)
        scale = choose_scale(fleet, cpu) if args.quota_scale == "auto" else float(args.quota_scale)
        quotas = {op: q * scale for op, q in KMS_DEFAULT_QUOTAS.items()}
        # time dilation: with the quotas scaled by `scale`, the latency is divided by it, so the
        # whole world runs 1/scale times slower and every ratio (wall / floor, quota-bound vs
        # latency-bound readers) stays what it is at KMS's real quotas and the given latency
        latency_ms = args.latency_ms / scale if args.dilate else args.latency_ms
        latency = latency_ms / 1000.0
        server.bench("faults", {"latency_ms": latency_ms, "quotas_enabled": True, "quota_overrides": quotas})
        manifests = work / "manifests"
        manifests.mkdir()
        write_manifests(fleet, manifests)
        env = _env(RECONCILER_KMS_QUOTAS=",".join(f"{op}={q:g}" for op, q in quotas.items()),
                   RECONCILER_CACHE_DIR=str(work / "cache"), RECONCILER_CACHE="on")
        base = {"url": server.url, "manifests": str(manifests)}
        log(f"  CPU per call: plan process {cpu['client'] * 1000:.2f} ms, emulator {cpu['server'] * 1000:.2f} ms; "
            f"quotas x {scale:g}")
        runs = {}
        modes = [("cold", "plan (empty cache)")] + ([] if only_cold else [("warm", "plan (cache from the run above)")])
        for mode, label in modes:
            log(f"  {label}...")
            runs[mode] = measure(server, {**base, "mode": mode}, env)
        if not only_cold:
            budget = None if args.naive_full else args.naive_budget
            log(f"  naive reader{'' if budget is None else f' (at most {budget:g} s per phase, then projected)'}...")
            runs["naive"] = measure(server, {**base, "mode": "naive", "budget": budget}, env)
        rows = []
        for mode in runs:
            r = runs[mode]
            row = {"mode": mode, "wall": r["wall"], "read": r.get("read_seconds"), "calls": r["calls"],
                   "throttled": r["throttled"], "exit": r["exit"], "memory": r["peak_rss_growth"],
                   "projected": False, "stats": r.get("stats")}
            if mode == "naive" and _truncated(fleet, r):
                row.update(project_naive(fleet, r, runs["cold"]))
            elif r["exit"] not in (0, "0"):
                row["error"] = f"plan exit {r['exit']}: {r['output_tail'][-300:]}"
            row.update(floor_of(row["calls"], quotas, latency, fleet))
            rows.append(row)
        return {"fleet": fleet, "scale": scale, "cpu": cpu, "rows": rows, "latency_ms": args.latency_ms,
                "emulated_latency_ms": latency_ms,
                "naive_budget": args.naive_budget}
    finally:
        server.close()
        shutil.rmtree(work, ignore_errors=True)


def _truncated(fleet: Fleet, run: dict[str, Any]) -> bool:
    timing = run.get("timing", {})
    return any(timing.get(op, [0])[0] < n for op, n in naive_expected_calls(fleet).items())


def project_naive(fleet: Fleet, run: dict[str, Any], cold: dict[str, Any]) -> dict[str, Any]:
    """The naive reader is sequential, so its read time is the sum of its calls' times. It runs
    each phase (the stores, the keys, the tags, the aliases) for at most --naive-budget seconds;
    the calls of a phase it did not get to are charged at the mean time of that operation's calls
    it made. The rest of the plan (manifests, diff, output) is charged at what the product's plan
    spent on it."""
    timing = run["timing"]
    expected = naive_expected_calls(fleet)
    read = 0.0
    for op, n in expected.items():
        made, seconds = timing.get(op, [0, 0.0])
        read += seconds + max(0, n - made) * (seconds / made if made else 0.0)
    rest = cold["wall"] - cold["read_seconds"]
    return {"wall": read + rest, "read": read, "calls": dict(expected), "projected": True,
            "measured_calls": int(sum(c for c, _ in timing.values())),
            "measured_seconds": sum(t for _, t in timing.values())}


# -- output --------------------------------------------------------------------------------------

def _calls_text(calls: dict[str, int]) -> str:
    order = ["DescribeKey", "ListResourceTags", "ListKeys", "ListAliases", "DescribeCustomKeyStores"]
    ops = [op for op in order if calls.get(op)] + sorted(op for op in calls if op not in order and calls[op])
    return ", ".join(f"{op} {calls[op]:,}" for op in ops)


LABELS = {"cold": "plan", "warm": "plan, 2nd run (cache)", "naive": "naive reader"}


def table(results: list[dict[str, Any]]) -> list[str]:
    lines = ["| fleet | reader | wall s | floor s | wall / floor | vs naive | throttled | peak MB | API calls |",
             "|---|---|---:|---:|---:|---:|---:|---:|---|"]
    for res in results:
        naive = next((r for r in res["rows"] if r["mode"] == "naive"), None)
        for r in res["rows"]:
            wall = f"{r['wall']:.1f}" + (" (projected)" if r["projected"] else "")
            speed = "" if r["mode"] == "naive" or naive is None else f"{naive['wall'] / r['wall']:.0f}x"
            memory = "" if r["projected"] else f"{r['memory'] / 2**20:.0f}"
            floor = f"{r['floor']:.1f}" + (" (chain)" if r["chain"] >= r["by_quota"] else "")
            lines.append(f"| {res['fleet']} | {LABELS[r['mode']]} | {wall} | {floor} | {r['wall'] / r['floor']:.2f} | "
                         f"{speed} | {r['throttled']} | {memory} | {_calls_text(r['calls'])} |")
    return lines


def notes(results: list[dict[str, Any]]) -> list[str]:
    out = []
    for res in results:
        cpu = res["cpu"]
        line = (f"- {res['fleet']}: latency {res['latency_ms']:g} ms per call; CPU per call measured at "
                f"{cpu['client'] * 1000:.2f} ms in the plan's process and {cpu['server'] * 1000:.2f} ms in the emulator")
        if res["scale"] < 1:
            line += (f"; at KMS's real quotas that CPU, not the quotas, would be the limit on this machine, so every "
                     f"quota was multiplied by {res['scale']:g} (in the emulator and in the plan's limiter alike; "
                     f"DescribeKey {2000 * res['scale']:g}/s, DescribeCustomKeyStores {5 * res['scale']:g}/s)")
            if res["emulated_latency_ms"] != res["latency_ms"]:
                line += (f" and the latency divided by it ({res['emulated_latency_ms']:.0f} ms per call): time runs "
                         f"{1 / res['scale']:.1f}x slower than at KMS, every ratio is the same (seconds at KMS's "
                         f"real quotas would be {res['scale']:g}x these)")
        else:
            line += "; KMS's real quotas"
        out.append(line + ".")
        for r in res["rows"]:
            if r.get("projected"):
                out.append(f"  - the naive reader made {r['measured_calls']:,} of its {sum(r['calls'].values()):,} calls "
                           f"({r['measured_seconds']:.0f} s, at most {res['naive_budget']:g} s per phase); the rest "
                           f"is projected at its mean time per call of each operation (it is sequential). "
                           f"Throttles are those of the calls it made. `--naive-full` runs it to the end.")
            if r.get("error"):
                out.append(f"  - {LABELS[r['mode']]}: {r['error']}")
            if r.get("stats"):
                s = r["stats"]
                out.append(f"  - {LABELS[r['mode']]}: {s['keys_listed']:,} keys listed, {s['keys_described']:,} described, "
                           f"{s['keys_skipped_cached']:,} skipped from the cache, {s['workers']} workers "
                           f"(first call {s['latency_seconds'] * 1000:.0f} ms); read {r['read']:.1f} s of {r['wall']:.1f} s")
    return out


def verdicts(results: list[dict[str, Any]]) -> list[str]:
    """The issue's targets, checked on the largest fleet (and the memory comparison)."""
    full = [r for r in results if any(row["mode"] == "naive" for row in r["rows"])]
    if not full:
        return []
    largest = max(full, key=lambda r: r["fleet"].total_keys)
    rows = {row["mode"]: row for row in largest["rows"]}
    cold, naive = rows["cold"], rows["naive"]
    ok = lambda flag: "met" if flag else "NOT MET"  # noqa: E731
    ratio, speed = cold["wall"] / cold["floor"], naive["wall"] / cold["wall"]
    surfaced = [LABELS[m] for m, row in rows.items() if m != "naive" and row["exit"] not in (0, "0")]
    out = ["", f"Targets at {largest['fleet']}:",
           f"- wall / floor {ratio:.2f} <= 1.5: {ok(ratio <= 1.5)} (2nd run: {rows['warm']['wall'] / rows['warm']['floor']:.2f})",
           f"- throttling errors surfaced to the user: {', '.join(surfaced) or 'none'} "
           f"(throttles received: {cold['throttled']} + {rows['warm']['throttled']}): {ok(not surfaced)}",
           f"- {speed:.0f}x faster than the naive reader (>= 10x): {ok(speed >= 10)}"]
    memory = [r for r in results if r["fleet"].stores == results[0]["fleet"].stores
              and r["fleet"].keys == results[0]["fleet"].keys]
    if len(memory) >= 2:
        small, big = memory[0], memory[-1]
        a = next(row for row in small["rows"] if row["mode"] == "cold")["memory"] / 2**20
        b = next(row for row in big["rows"] if row["mode"] == "cold")["memory"] / 2**20
        extra = big["fleet"].unrelated - small["fleet"].unrelated
        out.append(f"- memory with {extra:,} more unrelated keys ({small['fleet']} -> {big['fleet']}): "
                   f"{a:.0f} MB -> {b:.0f} MB ({(b - a) * 2**20 / extra:.0f} bytes per unrelated key)")
    return out


def write_markdown(path: Path, results: list[dict[str, Any]], command: str) -> None:
    """Rewrite this benchmark's section of ``path`` (the others' figures stay as they are)."""
    from benchmarks.markdown import write_section

    body = (f"Generated on {time.strftime('%Y-%m-%d')} on the project's 2-core machine by:\n\n```sh\n{command}\n```\n\n"
            + "\n".join(table(results)) + "\n\n" + "\n".join(notes(results) + verdicts(results)))
    write_section(path, "plan-bench", body)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--fleets", default="10x100+1000,50x200+10000",
                        help="comma-separated STORESxKEYS+UNRELATED (default: %(default)s)")
    parser.add_argument("--latency-ms", type=float, default=20.0, help="per-call latency (default: %(default)s)")
    parser.add_argument("--quota-scale", default="auto",
                        help="multiply every quota by this; auto: only as much as this machine's CPU needs")
    parser.add_argument("--naive-budget", type=float, default=15.0,
                        help="seconds each phase of the naive reader runs before the rest of it is projected "
                             "(default: %(default)s)")
    parser.add_argument("--memory-fleet", default="10x100+5000",
                        help="a fleet planned once (empty cache) to compare memory with the first fleet: the same "
                             "stores, more unrelated keys ('' to skip; default: %(default)s)")
    parser.add_argument("--no-dilate", dest="dilate", action="store_false",
                        help="when quotas are scaled, keep the latency as given instead of dividing it by the "
                             "same factor (the naive reader, bound by latency, then looks relatively faster)")
    parser.add_argument("--naive-full", action="store_true", help="run the naive reader to the end")
    parser.add_argument("--fleet-row", default="4x3x10x50",
                        help="the fleet row: ACCOUNTSxREGIONSxSTORESxKEYS, planned at once in one plan "
                             "('' to skip; default: %(default)s)")
    parser.add_argument("--fleet-row-only", action="store_true",
                        help="run only the fleet row (--markdown then rewrites only its section)")
    parser.add_argument("--markdown", type=Path, help="also write the table and notes into this file")
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        worker(json.loads(args.worker))
        return
    started = time.monotonic()

    def log(message: str) -> None:
        print(f"[{time.monotonic() - started:6.1f}s] {message}", file=sys.stderr, flush=True)

    import benchmarks.plan_bench_fleet as fleet_row

    row = fleet_row.FleetRow.parse(args.fleet_row) if args.fleet_row else None
    if args.fleet_row_only and row is None:
        parser.error("--fleet-row-only needs a --fleet-row")
    command = "python benchmarks/plan_bench.py" + "".join(f" {a}" for a in sys.argv[1:])
    if not args.fleet_row_only:
        results = [run_fleet(Fleet.parse(text), args, log) for text in args.fleets.split(",")]
        if args.memory_fleet:
            results.append(run_fleet(Fleet.parse(args.memory_fleet), args, log, only_cold=True))
        print("\n".join(table(results)))
        print()
        print("\n".join(notes(results) + verdicts(results)))
        if args.markdown:
            write_markdown(args.markdown, results, command)
    if row is not None:
        res = [fleet_row.run_fleet_row(row, args, log)]
        if args.dilate:  # and at KMS's latency: how much of the gap is the dilation's thread count
            res.append(fleet_row.run_fleet_row(row, argparse.Namespace(**{**vars(args), "dilate": False}), log))
        print()
        print("\n".join(fleet_row.table(res)))
        print()
        print("\n".join(fleet_row.notes(res)))
        if args.markdown:
            fleet_row.write_markdown(args.markdown, res, command)
    log("done")
    if args.markdown:
        log(f"wrote {args.markdown}")


if __name__ == "__main__":
    main()
