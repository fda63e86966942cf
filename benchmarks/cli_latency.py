"""How fast each command answers, as a user feels it: every run a fresh `reconciler` process, from
start to exit, on the embedded sandbox with the example manifests.

    python benchmarks/cli_latency.py                                   # prints the table
    python benchmarks/cli_latency.py --markdown docs/performance.md    # ...and writes its section

In a scratch directory it copies manifests/, runs `sandbox init`, loads the env file it writes and
applies the manifests (so plan and apply have nothing to do), saves a plan for `show`, then runs
each command once to warm the caches and --runs times more, measured. The table shows the median,
the fastest and the slowest wall time against the targets: --help and --version under 0.3 s,
every other command under 1.0 s.

Sandbox commands are measured as a user gets them, with the sandbox accelerator
(reconciler/cli/accel.py: the first sandbox command starts a server that has the emulator
loaded, and the next ones are run by a child of it; the warm-up run starts it), and again with
RECONCILER_SANDBOX_ACCEL=off, each in its own process. The benchmark's server lives in a directory
of its own and is stopped at the end.

The commands run with the environment a user's shell would give them: no AWS_* variables, and
Python's bytecode cache on (PYTHONDONTWRITEBYTECODE, which CI sets to keep checkouts clean, is
removed for them; --keep-env keeps it, and shows what compiling every module at each start costs).
"""

from __future__ import annotations

import argparse
import os
import platform
import resource
import shlex
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(ROOT))

from benchmarks.markdown import write_section  # noqa: E402
from reconciler.cli.accel import DIR_ENV, SWITCH# noqa: E402

QUICK, COMMAND = 0.3, 1.0  # the targets, in seconds of wall time


@dataclass(frozen=True)
class Case:
    args: tuple[str, ...]
    target: float
    ok_codes: tuple[int, ...] = (0,)

    @property
    def sandbox(self) -> bool:
        from reconciler.cli.accel import wanted

        return wanted(list(self.args))

    @property
    def shown(self) -> str:
        return shlex.join(["reconciler", *self.args])


CASES = (
    Case(("--version",), QUICK),
    Case(("--help",), QUICK),
    Case(("validate", "manifests"), COMMAND),
    Case(("plan", "--sandbox", "manifests"), COMMAND),
    Case(("apply", "--sandbox", "--auto-approve", "manifests"), COMMAND),
    Case(("status", "--sandbox", "manifests"), COMMAND),
    Case(("show", "plans/plan.json"), COMMAND),
    Case(("sandbox", "seed-cluster"), COMMAND),
    Case(("sandbox", "advance", "1s"), COMMAND),
    Case(("sandbox", "init"), COMMAND),
)


def reconciler() -> list[str]:
    script = Path(sys.executable).with_name("reconciler")
    return [str(script)] if script.exists() else [sys.executable, "-m", "reconciler"]


def user_env(keep: bool) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "RECONCILER_", "GITHUB_"))}
    if not keep:
        env.pop("PYTHONDONTWRITEBYTECODE", None)
    env["NO_COLOR"] = "1"
    return env


def run(args: list[str], cwd: Path, env: dict[str, str]) -> tuple[float, float, int, str]:
    """Wall seconds, CPU seconds (of the process itself, not of a server's child), exit code and
    output of one process."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.perf_counter()
    proc = subprocess.run(args, cwd=cwd, env=env, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                          stderr=subprocess.STDOUT, text=True)
    wall = time.perf_counter() - started
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return wall, cpu, proc.returncode, proc.stdout


def setup(work: Path, env: dict[str, str]) -> None:
    """The example manifests, applied on a fresh sandbox, and a saved plan (what a user has)."""
    from reconciler.sandbox.fixtures import read_env_file

    shutil.copytree(ROOT / "manifests", work / "manifests")
    cli = reconciler()
    for args in (["sandbox", "init"], None, ["apply", "--sandbox", "--auto-approve", "manifests"],
                 ["plan", "--sandbox", "manifests", "--out", "plans/plan.json"]):
        if args is None:
            env.update(read_env_file(work / ".reconciler" / "sandbox" / "env.sh"))
            continue
        _, _, code, out = run(cli + args, work, env)
        if code != 0:
            raise SystemExit(f"setup failed: reconciler {shlex.join(args)} exited {code}:\n{out}")


def timed(case: Case, runs: int, cwd: Path, env: dict[str, str]) -> list[float]:
    walls = []
    for attempt in range(runs + 1):  # the first run warms the caches (and starts the server) uncounted
        wall, _, code, out = run(reconciler() + list(case.args), cwd, env)
        if code not in case.ok_codes:
            raise SystemExit(f"{case.shown} exited {code}:\n{out}")
        if attempt:
            walls.append(wall)
        elif case.sandbox and env.get(SWITCH) != "off":
            wait_for_server(Path(env[DIR_ENV]))
    return walls


def wait_for_server(directory: Path) -> None:
    from reconciler.cli.accel import _answers

    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if any(_answers(p) for p in directory.glob("sandbox-*.sock")):
            return
        time.sleep(0.1)
    raise SystemExit("the sandbox server did not start")


def measure(cases: tuple[Case, ...], runs: int, keep_env: bool, log) -> list[dict]:
    from reconciler.cli.accel import stop_servers

    env = user_env(keep_env)
    rows = []
    with tempfile.TemporaryDirectory(prefix="reconciler-latency-") as scratch, \
            tempfile.TemporaryDirectory(prefix="acc-") as sockets:
        work = Path(scratch)
        Path(sockets).chmod(0o700)
        env.update({SWITCH: "off", DIR_ENV: sockets})
        setup(work, env)
        try:
            for case in cases:
                walls = timed(case, runs, work, {**env, SWITCH: "on"})
                row = {"case": case, "median": statistics.median(walls), "min": min(walls), "max": max(walls),
                       "off": statistics.median(timed(case, runs, work, env)) if case.sandbox else None}
                rows.append(row)
                log(f"{case.shown}: median {row['median']:.2f}s"
                    + (f" ({SWITCH}=off: {row['off']:.2f}s)" if row["off"] is not None else ""))
        finally:
            stop_servers(Path(sockets))
    return rows


def table(rows: list[dict]) -> list[str]:
    out = ["| command | target s | median s | fastest s | slowest s | | median s, accelerator off |",
           "|---|---:|---:|---:|---:|---|---:|"]
    for row in rows:
        case = row["case"]
        verdict = "met" if row["median"] < case.target else "NOT MET"
        off = f"{row['off']:.2f}" if row["off"] is not None else ""
        out.append(f"| `{case.shown}` | < {case.target:.1f} | {row['median']:.2f} | {row['min']:.2f} | "
                   f"{row['max']:.2f} | {verdict} | {off} |")
    return out


def conditions(runs: int, keep_env: bool, load: tuple[float, float]) -> list[str]:
    cache = ("off (PYTHONDONTWRITEBYTECODE kept: every module compiled at each start)" if keep_env and
             os.environ.get("PYTHONDONTWRITEBYTECODE") else "on, as for a user")
    return [f"- {runs} measured runs per command (after one warm-up run), each a fresh process; median, fastest "
            "and slowest wall time. Sandbox commands with the accelerator (the default), and their median with "
            f"{SWITCH}=off (each in a process of its own, importing the emulator).",
            f"- {os.cpu_count()} CPUs, Python {platform.python_version()}, load average "
            f"{load[0]:.2f} before and {load[1]:.2f} after (other work on the machine slows the wall times); "
            "bytecode cache " + cache + "."]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=7, help="measured runs per command (default: %(default)s)")
    parser.add_argument("--only", help="measure only the commands containing this text")
    parser.add_argument("--keep-env", action="store_true", help="keep PYTHONDONTWRITEBYTECODE if it is set")
    parser.add_argument("--markdown", type=Path, help="also write the table into this file's cli-latency section")
    args = parser.parse_args()
    started = time.monotonic()

    def log(message: str) -> None:
        print(f"[{time.monotonic() - started:6.1f}s] {message}", file=sys.stderr, flush=True)

    cases = tuple(c for c in CASES if not args.only or args.only in c.shown)
    load_before = os.getloadavg()[0]
    rows = measure(cases, args.runs, args.keep_env, log)
    lines = table(rows) + [""] + conditions(args.runs, args.keep_env, (load_before, os.getloadavg()[0]))
    print("\n".join(lines))
    if args.markdown:
        command = "python benchmarks/cli_latency.py" + "".join(f" {shlex.quote(a)}" for a in sys.argv[1:])
        body = (f"Generated on {time.strftime('%Y-%m-%d')} on the project's {os.cpu_count()}-core machine by:\n\n"
                f"```sh\n{command}\n```\n\n" + "\n".join(lines))
        write_section(args.markdown, "cli-latency", body)
        log(f"wrote {args.markdown}")


if __name__ == "__main__":
    main()
