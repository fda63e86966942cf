"""Benchmark of `reconciler apply` at fleet scale, against the KMS sandbox with per-call latency,
KMS's connection delays and per-operation request quotas switched on.

    python benchmarks/apply_bench.py                                  # prints the table (about 50 minutes)
    python benchmarks/apply_bench.py --markdown docs/performance.md   # ...and writes its section
    python benchmarks/apply_bench.py --quick --connect-delay 5        # a small fleet, a few minutes (its fixed
                                                                      # costs weigh more: higher ratios)

The naive executor waits for KMS's real connect delay (five minutes by default) once per store, in
real time: about ten minutes of the full run's fifty.

For each fault setting (none, then --throttle-rate of all calls answered ThrottlingException) it
starts an empty emulator in a process of its own (benchmarks/fleet_server.py) and runs the real
`reconciler apply --endpoint-url ...` in a fresh process: create S stores x K keys from nothing
(each key with an alias and two tags), then decommission them (every key scheduled for deletion,
the stores disconnected; the emulator clock moved past the waiting period; the stores deleted).
Then the same with the naive executor (benchmarks/naive_executor.py) in the product's place, on a
smaller fleet at KMS's real quotas and latency, its time projected to the full one (it is
sequential). See docs/performance.md.
"""

from __future__ import annotations

import argparse
import json
import math
import shutil
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

from benchmarks.fleet_server import REGION, XKS_ACCESS_KEY_ID  # noqa: E402
from benchmarks.markdown import write_section  # noqa: E402
from benchmarks import plan_bench  # noqa: E402
from benchmarks.plan_bench import Fleet, Server, _env  # noqa: E402

SECTION = "apply-bench"
WINDOW_DAYS = 7
# the operations the executor runs at their quotas at once: CreateKey and CreateAlias while
# creating, ScheduleKeyDeletion while decommissioning (what the CPU must keep up with)
# CloudTrail's LookupEvents (2 a second per account and Region): a decommission's plan reads each
# key's evidence of use with it, before the execution
OTHER_QUOTAS = {"LookupEvents": 2.0}
CONCURRENT = (("CreateKey", "CreateAlias"), ("ScheduleKeyDeletion",))


@dataclass(frozen=True)
class Shape:
    stores: int
    keys: int

    @classmethod
    def parse(cls, text: str) -> "Shape":
        s, _, k = text.partition("x")
        return cls(int(s), int(k))

    def __str__(self) -> str:
        return f"{self.stores}x{self.keys}"


def store_name(s: int) -> str:
    return f"apply-{s:03d}"


# -- manifests -----------------------------------------------------------------------------------

def write_manifests(shape: Shape, directory: Path, state: str) -> None:
    shutil.rmtree(directory, ignore_errors=True)
    directory.mkdir(parents=True)
    for s in range(shape.stores):
        lines = [
            "apiVersion: reconciler/v1", "kind: KeyStore", f"metadata: {{name: {store_name(s)}}}", "spec:",
            f"  region: {REGION}", "  type: EXTERNAL_KEY_STORE", f"  state: {state}", "  connection: connected",
            f"  deletion: {{pendingWindowDays: {WINDOW_DAYS}}}", "  xks:",
            "    connectivity: PUBLIC_ENDPOINT", f"    uriEndpoint: https://xks-{s:03d}.apply.example.com",
            "    uriPath: /kms/xks/v1", "    credential:", f"      accessKeyId: {XKS_ACCESS_KEY_ID}",
            "      secretAccessKey: {fromEnv: XKS_SECRET_ACCESS_KEY}", "  keys:",
        ]
        for k in range(shape.keys):
            lines.append(f"    - {{alias: alias/apply-{s:03d}/key-{k:05d}, xksKeyId: apply-{s:03d}-{k:05d}, "
                         f"description: bench key {k}, tags: {{team: team-{s % 7}, tier: tier-{k % 3}}}}}")
        (directory / f"{store_name(s)}.yaml").write_text("\n".join(lines) + "\n")


# -- one apply, in a process of its own ----------------------------------------------------------

def _get(url: str) -> dict:
    with urllib.request.urlopen(url) as response:
        return json.loads(response.read())


def _diff(after: dict[str, int], before: dict[str, int]) -> dict[str, int]:
    return {op: n - before.get(op, 0) for op, n in after.items() if n - before.get(op, 0)}


def worker(spec: dict[str, Any]) -> None:
    """Runs `reconciler apply` in this process; prints what its execution cost as one JSON line."""
    import contextlib
    import io

    from reconciler import cli
    from reconciler.apply import executor as executor_module
    from reconciler.apply.retries import RetryPolicy
    from reconciler.apply.waiters import Backoff

    factor = spec["time_factor"]  # the emulated world runs this many times faster than KMS
    result: dict[str, Any] = {}
    if spec["mode"] == "naive":  # always at KMS's real quotas and latency (factor 1)
        from benchmarks.naive_executor import NaiveExecutor

        base: Any = NaiveExecutor
    else:
        base = executor_module.Executor

    class Measured(base):  # type: ignore[misc, valid-type]
        def __init__(self, conn, plan, inputs, *, emit, options=None, redactor=None) -> None:
            if options is not None and spec["mode"] != "naive":  # every wait of the client, dilated
                options.backoff = Backoff(first=1.0 / factor, cap=15.0 / factor)
                options.retry = RetryPolicy(error_base=0.25 / factor, cap=20.0 / factor)
            super().__init__(conn, plan, inputs, emit=emit, options=options, redactor=redactor)

        def run(self):
            before, cpu = _get(f"{spec['url']}/_bench/stats"), time.process_time()
            started = time.perf_counter()
            try:
                outcome = super().run()
            finally:
                result["wall"] = time.perf_counter() - started
                result["cpu"] = time.process_time() - cpu
                after = _get(f"{spec['url']}/_bench/stats")
                result["calls"] = _diff(after["calls"], before["calls"])
                result["throttled"] = sum(_diff(after["throttled"], before["throttled"]).values())
                result["quota_throttled"] = _diff(after["quota_throttled"], before["quota_throttled"])
                result["server_cpu"] = after["cpu"] - before["cpu"]
            counts: dict[str, int] = {}
            for r in outcome.results:
                counts[r.outcome] = counts.get(r.outcome, 0) + 1
            result["outcomes"] = counts
            result["failures"] = [f"{r.step.id}: {r.message}" for r in outcome.results if r.outcome == "failed"][:5]
            return outcome

    executor_module.Executor = Measured
    from reconciler.live import usage

    read_evidence = usage.read_evidence

    def timed_evidence(client, arns, *args, **kwargs):  # the plan's CloudTrail read, before the execution
        arns = list(arns)
        started = time.perf_counter()
        try:
            return read_evidence(client, arns, *args, **kwargs)
        finally:
            result["evidence"] = {"wall": time.perf_counter() - started, "keys": len(set(arns))}

    usage.read_evidence = timed_evidence
    out = io.StringIO()
    code: Any = 0
    try:
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(out):
            cli.cli.main(["apply", "--endpoint-url", spec["url"], "--region", REGION, "--auto-approve",
                          "--allow-destroy", "--journal", spec["journal"], spec["manifests"]], standalone_mode=False)
    except SystemExit as exc:
        code = exc.code
    except Exception as exc:  # noqa: BLE001 - reported, not hidden
        code = f"{type(exc).__name__}: {exc}"
    result["exit"] = code
    result["output_tail"] = out.getvalue()[-600:]
    print(json.dumps(result), flush=True)


def run_worker(spec: dict[str, Any], env: dict[str, str]) -> dict[str, Any]:
    result = plan_bench.run_worker(spec, env, "apply_bench.py")
    if "wall" not in result:
        raise SystemExit(f"the apply did not execute (exit {result['exit']}):\n{result['output_tail']}")
    return result


# -- the world: quotas, latency, delays, faults ----------------------------------------------------

@dataclass
class World:
    factor: float  # quotas multiplied by it...
    time_factor: float  # ...and every duration divided by this (the factor, or 1 with --no-dilate)
    latency: float  # seconds per call, emulated
    connect_delay: float  # seconds, emulated
    disconnect_delay: float
    quotas: dict[str, float]

    @classmethod
    def make(cls, factor: float, args: argparse.Namespace) -> "World":
        from reconciler.kms_quotas import KMS_DEFAULT_QUOTAS

        time_factor = factor if args.dilate else 1.0
        return cls(factor=factor, time_factor=time_factor, latency=args.latency_ms / 1000.0 / time_factor,
                   connect_delay=args.connect_delay / time_factor, disconnect_delay=args.disconnect_delay / time_factor,
                   quotas={op: q * factor for op, q in {**KMS_DEFAULT_QUOTAS, **OTHER_QUOTAS}.items()})

    def start(self, stores: int, throttle_rate: float, seed: int) -> Server:
        server = Server(Fleet(0, 0, 0))
        server.bench("faults", {"latency_ms": self.latency * 1000.0, "quotas_enabled": True,
                                "quota_overrides": self.quotas, "throttle_rate": throttle_rate, "seed": seed,
                                "connect_delay_seconds": self.connect_delay,
                                "disconnect_delay_seconds": self.disconnect_delay,
                                "custom_key_store_quota": stores + 10})
        return server

    def env(self, work: Path) -> dict[str, str]:
        return _env(RECONCILER_KMS_QUOTAS=",".join(f"{op}={q:g}" for op, q in self.quotas.items()),
                    RECONCILER_CACHE_DIR=str(work / "cache"))


def floor_of(calls: dict[str, int], world: World, pre: float, post: float,
             refused: dict[str, int] | None = None) -> dict[str, float]:
    """The least time these calls can take: the busiest operation's calls over its quota (less the
    first second's worth, which KMS's full bucket lets through at once), plus the waits that must
    come before (``pre``) and after (``post``) that stream. Calls ``refused`` for being over the
    quota took nothing from it, and do not count."""
    q = world.quotas
    calls = _add(calls, {op: -n for op, n in (refused or {}).items()})
    by_quota = max((max(0.0, n - max(q[op], 1.0)) / q[op] for op, n in calls.items() if op in q), default=0.0)
    return {"floor": pre + by_quota + post, "by_quota": by_quota, "busiest": max(
        (op for op in calls if op in q), key=lambda op: calls[op] / q[op], default="")}


def _add(a: dict[str, int], b: dict[str, int]) -> dict[str, int]:
    return {op: a.get(op, 0) + b.get(op, 0) for op in sorted(set(a) | set(b))}


def lifecycle(world: World, shape: Shape, mode: str, throttle_rate: float, args: argparse.Namespace,
              log) -> dict[str, Any]:
    """Create ``shape`` from nothing, then decommission it; the two measured rows."""
    work = Path(tempfile.mkdtemp(prefix="apply-bench-"))
    server = world.start(shape.stores, throttle_rate, args.seed)
    try:
        env = world.env(work)
        manifests = work / "manifests"
        spec = {"url": server.url, "manifests": str(manifests), "mode": mode, "journal": str(work / "journal.jsonl"),
                "time_factor": world.time_factor}
        L = world.latency
        write_manifests(shape, manifests, "present")
        log(f"  {mode}: create {shape}...")
        create = run_worker(spec, env)
        created = server.bench("inventory")
        write_manifests(shape, manifests, "absent")
        log(f"  {mode}: decommission {shape}: schedule and disconnect...")
        first = run_worker(spec, env)
        server.bench("advance", {"seconds": (WINDOW_DAYS + 1) * 86400})
        log(f"  {mode}: decommission {shape}: delete...")
        second = run_worker(spec, env)
        left = server.bench("inventory")
    finally:
        server.close()
        shutil.rmtree(work, ignore_errors=True)
    rows = []
    row = {"scenario": "create", "mode": mode, "shape": shape, "throttle_rate": throttle_rate,
           "wall": create["wall"], "calls": create["calls"], "throttled": create["throttled"],
           "cpu": create["cpu"], "server_cpu": create["server_cpu"], "runs": [create],
           "duplicates": created["duplicate_stores"] + created["duplicate_keys"],
           "converged": created["stores"] == shape.stores and created["store_keys"] == shape.stores * shape.keys
           and created["aliases"] == shape.stores * shape.keys and create["exit"] in (0, "0")}
    row.update(floor_of(create["calls"], world, pre=2 * L + world.connect_delay, post=L,
                        refused=create["quota_throttled"]))
    rows.append(row)
    one = floor_of(first["calls"], world, pre=0.0, post=L + world.disconnect_delay, refused=first["quota_throttled"])
    two = floor_of(second["calls"], world, pre=0.0, post=L, refused=second["quota_throttled"])
    rows.append({"scenario": "decommission", "mode": mode, "shape": shape, "throttle_rate": throttle_rate,
                 "wall": first["wall"] + second["wall"], "calls": _add(first["calls"], second["calls"]),
                 "throttled": first["throttled"] + second["throttled"], "cpu": first["cpu"] + second["cpu"],
                 "server_cpu": first["server_cpu"] + second["server_cpu"], "runs": [first, second],
                 "duplicates": 0, "floor": one["floor"] + two["floor"], "by_quota": one["by_quota"] + two["by_quota"],
                 "busiest": one["busiest"],
                 "converged": left["stores"] == 0 and left["store_keys"] == 0 and first["exit"] in (2, "2")
                 and second["exit"] in (0, "0")})
    for r in rows:
        r["world"] = world
        r["quota_throttled"] = sum(n for run in r["runs"] for n in run["quota_throttled"].values())
        r["errors"] = sum(run["outcomes"].get("failed", 0) + run["outcomes"].get("skipped", 0) for run in r["runs"])
        r["throttle_errors"] = sum(1 for run in r["runs"] for f in run["failures"] if "Throttl" in f)
    return {r["scenario"]: r for r in rows}


def project(naive: dict[str, Any], shape: Shape, world: World) -> dict[str, Any]:
    """The naive executor is sequential and every store's work is the same: its time and calls
    grow with the number of stores."""
    ratio = shape.stores / naive["shape"].stores
    refused: dict[str, int] = {}
    for run in naive["runs"]:
        refused = _add(refused, run["quota_throttled"])
    out = dict(naive)
    out.update(wall=naive["wall"] * ratio, measured_wall=naive["wall"], shape=shape, projected=ratio != 1,
               calls={op: round(n * ratio) for op, n in naive["calls"].items()},
               measured_calls=sum(naive["calls"].values()), measured_shape=naive["shape"])
    pre = 2 * world.latency + world.connect_delay if naive["scenario"] == "create" else 0.0
    post = world.latency + (world.disconnect_delay if naive["scenario"] == "decommission" else 0.0)
    floor = floor_of(out["calls"], world, pre=pre, post=post,
                     refused={op: round(n * ratio) for op, n in refused.items()})
    if naive["scenario"] == "decommission":
        floor["floor"] += world.latency  # the second apply's last call
    out.update(floor)
    return out


def at_kms(row: dict[str, Any], value: float) -> float:
    """Seconds of the emulated world as seconds at KMS's real quotas and latency."""
    return value * row["world"].time_factor


# -- calibration -----------------------------------------------------------------------------------

def calibrate(args: argparse.Namespace, log) -> dict[str, float]:
    """CPU seconds per call of a real apply (create, then schedule every key's deletion), in the
    apply's process and in the emulator's, with no latency and no quotas."""
    from reconciler.kms_quotas import KMS_DEFAULT_QUOTAS

    world = World(factor=1.0, time_factor=1.0, latency=0.0, connect_delay=0.0, disconnect_delay=0.0,
                  quotas={op: q * 1000 for op, q in {**KMS_DEFAULT_QUOTAS, **OTHER_QUOTAS}.items()})
    shape = Shape(4, 60)
    work = Path(tempfile.mkdtemp(prefix="apply-bench-calibrate-"))
    server = world.start(shape.stores, 0.0, args.seed)
    try:
        spec = {"url": server.url, "manifests": str(work / "m"), "mode": "product", "journal": str(work / "j.jsonl"),
                "time_factor": 1.0}
        runs = []
        for state in ("present", "absent"):
            write_manifests(shape, work / "m", state)
            runs.append(run_worker(spec, world.env(work)))
    finally:
        server.close()
        shutil.rmtree(work, ignore_errors=True)
    calls = sum(sum(r["calls"].values()) for r in runs)
    return {"client": sum(r["cpu"] for r in runs) / calls, "server": sum(r["server_cpu"] for r in runs) / calls}


def choose_factor(cpu: dict[str, float], utilisation: float) -> float:
    """Every quota is multiplied by this factor (and every duration divided by it) so that the
    operations the executor runs at their quotas at once need ``utilisation`` of a core in the
    busier process (each is one Python interpreter). The apply's quotas are low (5 to 15 a second),
    so this speeds the world up; plan_bench.py's rule is the same, where it slows it down."""
    from reconciler.kms_quotas import KMS_DEFAULT_QUOTAS

    rate = max(sum(KMS_DEFAULT_QUOTAS[op] for op in ops) for ops in CONCURRENT)
    factor = utilisation / (rate * max(cpu["client"], cpu["server"]))
    digits = 10 ** (math.floor(math.log10(factor)) - 1)
    return math.floor(factor / digits) * digits


# -- output ----------------------------------------------------------------------------------------

def _calls_text(calls: dict[str, int]) -> str:
    return ", ".join(f"{op} {n:,}" for op, n in sorted(calls.items(), key=lambda item: -item[1]))


def _faults(rate: float) -> str:
    return f"{rate:.0%} throttled" if rate else "none"


def _naive_for(result: dict[str, Any], row: dict[str, Any]) -> dict[str, Any] | None:
    return next((n for n in result["rows"] if n["mode"] == "naive" and n["scenario"] == row["scenario"]
                 and n["throttle_rate"] == row["throttle_rate"]), None)


def table(result: dict[str, Any]) -> list[str]:
    lines = ["| scenario | executor | faults | wall s | floor s | wall / floor | vs naive | measured s | throttled | "
             "errors | duplicates | API calls |",
             "|---|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---|"]
    for r in result["rows"]:
        naive = _naive_for(result, r)
        wall = at_kms(r, r["wall"])
        speed = "" if r["mode"] == "naive" or naive is None else f"{at_kms(naive, naive['wall']) / wall:.1f}x"
        if r["mode"] == "product":
            who, measured = "apply", f"{r['wall']:.1f}"
        else:
            who = (f"naive, projected from {r['measured_shape']} (x{r['shape'].stores // r['measured_shape'].stores})"
                   if r.get("projected") else "naive")
            measured = f"{r['measured_wall']:.1f}"
        lines.append(f"| {r['scenario']} {r['shape']} | {who} | {_faults(r['throttle_rate'])} | {wall:,.0f} | "
                     f"{at_kms(r, r['floor']):,.0f} | {r['wall'] / r['floor']:.2f} | {speed} | {measured} | "
                     f"{r['throttled']:,} | {r['errors']:,} | {r['duplicates']} | {_calls_text(r['calls'])} |")
    return lines


def notes(result: dict[str, Any]) -> list[str]:
    w, cpu = result["world"], result["cpu"]
    f = w.factor
    out = [f"- Latency {result['latency_ms']:g} ms per call; KMS connects a store in {result['connect_delay']:g} s and "
           f"disconnects it in {result['disconnect_delay']:g} s. CPU per call (a real apply, no latency, no quotas): "
           f"{cpu['client'] * 1000:.2f} ms in the apply's process, {cpu['server'] * 1000:.2f} ms in the emulator."]
    if f != 1:
        out.append(f"- apply rows: every quota multiplied by {f:g} (in the emulator and in the apply's limiter alike; "
                   f"CreateKey {5 * f:g}/s, ScheduleKeyDeletion {15 * f:g}/s), so that the executor's busiest "
                   f"operations at their quotas need {result['utilisation']:.0%} of a core in the busier process"
                   + (f", and every duration divided by it (latency {w.latency * 1000:.2f} ms, connect "
                      f"{w.connect_delay:.2f} s, the executor's waits and backoffs): the world ran {f:g}x faster than "
                      f"KMS; wall and floor are shown at KMS's scale ({f:g}x the measured seconds), every ratio is "
                      f"as measured." if result["dilate"] else "; durations as given (--no-dilate): seconds as measured."))
    out.append("- naive rows: at KMS's real quotas, latency and delays (not dilated: the naive executor is bound by "
               "its latency and CPU as much as by the quotas, and CPU cannot be dilated), on a smaller fleet; its time "
               "and calls are multiplied by the ratio of the stores (it is sequential, every store's work the same). "
               "The emulator's CPU adds to its latency (a few ms a call).")
    for r in result["rows"]:
        label = f"{r['scenario']}, {'apply' if r['mode'] == 'product' else 'naive'}, {_faults(r['throttle_rate'])}"
        runs = r["runs"]
        text = (f"  - {label}: floor = {'2 latencies + the connect delay + ' if r['scenario'] == 'create' else ''}"
                f"{r['busiest']} calls / quota ({at_kms(r, r['by_quota']):,.0f} s) + the last call"
                f"{' and disconnect delay, + the deletes' if r['scenario'] == 'decommission' else ''}; "
                f"measured {', '.join('%.1f s' % run['wall'] for run in runs)}; CPU {r['cpu']:.1f} s in the "
                f"apply's process, {r['server_cpu']:.1f} s in the emulator; {r['quota_throttled']:,} of the "
                f"throttles for going over a quota")
        evidence = runs[0].get("evidence") if r["scenario"] == "decommission" else None
        if evidence:
            ratio = r["shape"].stores / r["measured_shape"].stores if r.get("projected") else 1
            keys, quota = evidence["keys"] * ratio, w.quotas["LookupEvents"] if r["mode"] == "product" else 2.0
            text += (f"; before the execution (not in wall), the plan read CloudTrail's evidence of use of "
                     f"{keys:,.0f} keys (one LookupEvents each) in {at_kms(r, evidence['wall'] * ratio):,.0f} s "
                     f"(floor {at_kms(r, keys / quota):,.0f} s)")
        if not r["converged"]:
            failures = [f for run in runs for f in run["failures"]]
            text += (f"; did not converge (exit codes {', '.join(str(run['exit']) for run in runs)}): "
                     f"{'; '.join(failures[:2])}")
        out.append(text)
    return out


def verdicts(result: dict[str, Any]) -> list[str]:
    ok = lambda flag: "met" if flag else "NOT MET"  # noqa: E731
    rows = {(r["scenario"], r["mode"], r["throttle_rate"]): r for r in result["rows"]}
    out = ["", f"Targets at {result['shape']}:"]
    for scenario in ("create", "decommission"):
        for rate, limit in ((0.0, 1.2), (result["throttle_rate"], 1.5)):
            r = rows.get((scenario, "product", rate))
            if r is not None:
                ratio = r["wall"] / r["floor"]
                out.append(f"- {scenario}, faults {_faults(rate)}: wall / floor {ratio:.2f} <= {limit}: {ok(ratio <= limit)}")
    for rate in (0.0, result["throttle_rate"]):
        mine, naive = rows.get(("create", "product", rate)), rows.get(("create", "naive", rate))
        if mine and naive:
            speed = at_kms(naive, naive["wall"]) / at_kms(mine, mine["wall"])
            bound = at_kms(naive, naive["wall"]) / at_kms(mine, mine["floor"])
            out.append(f"- create, faults {_faults(rate)}: {speed:.1f}x faster than the naive executor (>= 10x): "
                       f"{ok(speed >= 10)} (an executor exactly at this row's floor would be {bound:.1f}x faster)")
    product = [r for r in result["rows"] if r["mode"] == "product"]
    surfaced = sum(r["throttle_errors"] for r in product)
    errors = sum(r["errors"] for r in product)
    out.append(f"- throttling errors surfaced to the user: {surfaced} (failed or skipped steps of any kind: {errors}; "
               f"throttles received and retried: {sum(r['throttled'] for r in product):,}): {ok(surfaced == 0 and errors == 0)}")
    dup = sum(r["duplicates"] for r in product)
    converged = all(r["converged"] for r in product)
    out.append(f"- duplicate stores or keys: {dup}; every run converged: {'yes' if converged else 'NO'}: "
               f"{ok(dup == 0 and converged)}")
    naive_errors = sum(r["errors"] for r in result["rows"] if r["mode"] == "naive")
    if naive_errors:
        out.append(f"- (the naive executor surfaced {naive_errors} failed or skipped steps on its smaller fleet)")
    return out


def write_markdown(path: Path, result: dict[str, Any], command: str) -> None:
    """Rewrite this benchmark's section of ``path`` (the prose around it and the others' figures stay)."""
    body = (f"Generated on {time.strftime('%Y-%m-%d')} on the project's 2-core machine by:\n\n```sh\n{command}\n```\n\n"
            + "\n".join(table(result)) + "\n\n" + "\n".join(notes(result) + verdicts(result)))
    write_section(path, SECTION, body)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--fleet", default="50x200", help="STORESxKEYS (default: %(default)s)")
    parser.add_argument("--naive-fleet", default="1x200",
                        help="the naive executor's fleet, its time projected to --fleet (default: %(default)s)")
    parser.add_argument("--quick", action="store_true", help="--fleet 10x40 --naive-fleet 1x40")
    parser.add_argument("--throttle-rate", type=float, default=0.1,
                        help="fraction of calls answered ThrottlingException in the faults runs (default: %(default)s)")
    parser.add_argument("--latency-ms", type=float, default=20.0, help="per-call latency (default: %(default)s)")
    parser.add_argument("--connect-delay", type=float, default=300.0,
                        help="seconds KMS takes to connect a store (default: %(default)s; the KMS Developer Guide: "
                             "connecting an external key store to its proxy takes approximately five minutes)")
    parser.add_argument("--disconnect-delay", type=float, default=1.0, help="(default: %(default)s)")
    parser.add_argument("--quota-scale", default="auto",
                        help="multiply every quota by this; auto: as much as this machine's CPU allows")
    parser.add_argument("--utilisation", type=float, default=0.5,
                        help="with --quota-scale auto: the share of a core the busier process may need (default: %(default)s)")
    parser.add_argument("--no-dilate", dest="dilate", action="store_false",
                        help="keep latency, delays and waits as given when the quotas are scaled")
    parser.add_argument("--no-naive", action="store_true", help="skip the naive executor")
    parser.add_argument("--seed", type=int, default=7, help="the emulator's fault seed (default: %(default)s)")
    parser.add_argument("--markdown", type=Path, help="also write the section into this file")
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        worker(json.loads(args.worker))
        return
    if args.quick:
        args.fleet, args.naive_fleet = "10x40", "1x40"
    shape, naive_shape = Shape.parse(args.fleet), Shape.parse(args.naive_fleet)
    started = time.monotonic()

    def log(message: str) -> None:
        print(f"[{time.monotonic() - started:6.1f}s] {message}", file=sys.stderr, flush=True)

    log("measuring CPU per call (a small apply, no latency, no quotas)...")
    cpu = calibrate(args, log)
    factor = choose_factor(cpu, args.utilisation) if args.quota_scale == "auto" else float(args.quota_scale)
    world = World.make(factor, args)
    log(f"  CPU per call: apply {cpu['client'] * 1000:.2f} ms, emulator {cpu['server'] * 1000:.2f} ms; quotas x {factor:g}")
    real = World.make(1.0, args)  # the naive executor's: KMS's quotas, latency and delays
    rows = []
    for rate in (0.0, args.throttle_rate):
        log(f"faults: {_faults(rate)}")
        rows += lifecycle(world, shape, "product", rate, args, log).values()
        if not args.no_naive:
            rows += [project(r, shape, real) for r in lifecycle(real, naive_shape, "naive", rate, args, log).values()]
    result = {"rows": rows, "world": world, "cpu": cpu, "shape": shape, "naive_shape": naive_shape,
              "throttle_rate": args.throttle_rate, "latency_ms": args.latency_ms, "connect_delay": args.connect_delay,
              "disconnect_delay": args.disconnect_delay, "utilisation": args.utilisation, "dilate": args.dilate}
    print("\n".join(table(result)))
    print()
    print("\n".join(notes(result) + verdicts(result)))
    log("done")
    if args.markdown:
        command = "python benchmarks/apply_bench.py" + "".join(f" {a}" for a in sys.argv[1:])
        write_markdown(args.markdown, result, command)
        log(f"wrote {args.markdown}")


if __name__ == "__main__":
    main()
