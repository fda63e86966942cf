"""The CLI in a new process per command, fast: each command runs in a process forked from a
server that imported reconciler, boto3 and moto once (``multiprocessing``'s forkserver), so a
command costs its own work, not two seconds of imports. Otherwise it is ``python -m reconciler``:
its own pid, environment, working directory, stdout and stderr (files), exit code.

``start(..., stop_at=...)`` makes the command stop itself (SIGSTOP) right after it emitted a given
apply event, so the test can kill it with SIGKILL at an exact step boundary. The hook lives here,
in the tests, and patches the child's :class:`reconciler.apply.progress.Progress`: no test code
in the product.
"""

from __future__ import annotations

import multiprocessing
import os
import signal
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tests.e2e.helpers import Cli, Run

_context: Any = None
END_EVENTS = ("ok", "failed", "skipped", "deferred")


def context():
    global _context
    if _context is None:
        _context = multiprocessing.get_context("forkserver")
        _context.set_forkserver_preload(["tests.reliability.forked"])
    return _context


def _preload() -> None:
    """What the server imports once (this module is the preload)."""
    import boto3  # noqa: F401
    import moto.cloudhsmv2.models  # noqa: F401
    import moto.kms.models  # noqa: F401

    import reconciler.cli  # noqa: F401
    from reconciler.sandbox.install import install

    install()


_preload()  # in the forkserver (the point); in the test process these are imported anyway


def _install_stop(stop_at: tuple[str, int]) -> None:
    """SIGSTOP this process right after the stop_at[1]-th event of kind stop_at[0] was emitted:
    ("end", N) counts step ends (N=0: right after run-start); ("wait", N) counts wait events."""
    from reconciler.apply.progress import Progress

    kind, wanted = stop_at
    original = Progress.__call__
    seen = {"n": 0}

    def counts(event: dict) -> bool:
        if kind == "end":
            return event.get("event") in END_EVENTS and bool(event.get("step"))
        return event.get("event") == kind

    def emit(self, event):
        original(self, event)
        if kind == "end" and wanted == 0:
            if event.get("event") == "run-start":
                os.kill(os.getpid(), signal.SIGSTOP)
        elif counts(event):
            seen["n"] += 1
            if seen["n"] == wanted:
                os.kill(os.getpid(), signal.SIGSTOP)

    Progress.__call__ = emit


def _child(args: list[str], env: dict[str, str], cwd: str, out: str, err: str,
           stop_at: tuple[str, int] | None) -> None:
    os.chdir(cwd)
    os.environ.clear()
    os.environ.update(env)
    sys.stdout.flush()
    sys.stderr.flush()
    for fd, path in ((1, out), (2, err)):
        handle = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        os.dup2(handle, fd)
        os.close(handle)
    if stop_at is not None:
        _install_stop(stop_at)
    from reconciler.cli import cli

    try:
        cli.main(args=args, prog_name="reconciler", standalone_mode=True)
    finally:
        sys.stdout.flush()
        sys.stderr.flush()


def _state(pid: int) -> str:
    """The process state letter ("T": stopped), from /proc, or from ps where there is no /proc."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except FileNotFoundError:
        if Path("/proc/self/stat").exists():
            return "gone"
        import subprocess

        out = subprocess.run(["ps", "-o", "stat=", "-p", str(pid)], capture_output=True, text=True).stdout.strip()
        return out[:1] or "gone"
    except OSError:
        return "gone"
    return stat.rsplit(")", 1)[1].split()[0]


@dataclass
class Child:
    process: Any
    out: Path
    err: Path

    @property
    def pid(self) -> int:
        return self.process.pid

    def wait_stopped(self, timeout: float = 60) -> bool:
        """True once the child stopped itself; False if it ended first."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            state = _state(self.pid)
            if state == "T":
                return True
            if not self.process.is_alive():
                return False
            time.sleep(0.01)
        raise TimeoutError(f"the command neither stopped nor ended in {timeout}s")

    def kill(self) -> int:
        os.kill(self.pid, signal.SIGKILL)
        self.process.join(10)
        return self.process.exitcode

    def cont(self) -> None:
        os.kill(self.pid, signal.SIGCONT)

    def wait(self, timeout: float = 120) -> Run:
        self.process.join(timeout)
        if self.process.exitcode is None:
            self.process.kill()
            raise TimeoutError("the command did not end")
        return self.result()

    def result(self) -> Run:
        def text(path: Path) -> str:
            return path.read_text(errors="replace") if path.exists() else ""

        return Run(self.process.exitcode, text(self.out), text(self.err))


class ForkedCli(Cli):
    """Like :class:`tests.e2e.helpers.Cli`, with each command forked from the preloaded server."""

    _counter = 0

    def start(self, *args: str, env: dict | None = None, stop_at: tuple[str, int] | None = None) -> Child:
        ForkedCli._counter += 1
        logs = self.workdir / ".runs"
        logs.mkdir(exist_ok=True)
        out, err = logs / f"{ForkedCli._counter}.out", logs / f"{ForkedCli._counter}.err"
        process = context().Process(target=_child, args=(list(args), {**self.env, **(env or {})},
                                                         str(self.workdir), str(out), str(err), stop_at))
        process.start()
        return Child(process, out, err)

    def __call__(self, *args: str, env: dict | None = None, timeout: float = 120) -> Run:
        run = self.start(*args, env=env).wait(timeout)
        self.runs.append(run)
        return run
