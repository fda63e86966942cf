"""Plan files: written atomically by ``plan --out``, read back by ``apply`` and ``show`` only when
they are whole, of this format version, and unedited (the digest is a checksum of the content;
apply also re-plans to check the steps, see :mod:`reconciler.apply.guards`)."""

from __future__ import annotations

import json
import os
import stat
from pathlib import Path

from reconciler import __version__
from reconciler.errors import RefusedError, UserError, why_not_written
from reconciler.plan.fleet_model import FleetPlan, is_fleet_data
from reconciler.plan.model import FORMAT_VERSION, Plan, plan_digest

MAX_PLAN_FILE_BYTES = 256 * 1024 * 1024  # a plan of 50,000 keys is a few tens of MB


def is_plan_file(args: list[str]) -> bool:
    """One ``.json`` argument is a plan file (one that does not exist: "no such plan file"), unless
    it is a directory of manifests."""
    if len(args) != 1 or not args[0].endswith(".json"):
        return False
    return not Path(args[0]).is_dir()


def save_plan(plan: Plan, path: str) -> None:
    """Write the plan file atomically (a temporary file beside it, then a rename)."""
    target = Path(path)
    tmp = target.with_suffix(target.suffix + ".tmp")
    try:
        if target.exists() and not target.is_file():
            raise IsADirectoryError(21, "not a regular file")
        target.parent.mkdir(parents=True, exist_ok=True)
        tmp.write_text(plan.to_json(), encoding="utf-8")
        os.replace(tmp, target)
    except OSError as exc:
        try:
            tmp.unlink()
        except OSError:
            pass
        raise UserError(f"cannot write the plan to {path} ({why_not_written(path, exc)}); choose another --out path, "
                        "e.g. plans/plan.json") from None


def load_plan_file(path: str) -> Plan:
    """The plan in ``path`` (a :class:`FleetPlan` for a plan of several targets), or one clear refusal: missing, not a regular file, too large, not JSON,
    another format version, edited after it was written, or malformed."""
    try:
        if not stat.S_ISREG(os.stat(path).st_mode):  # before open: opening a FIFO would block
            raise UserError(f"{path} is not a plan file (not a regular file)")
        with open(path, "rb") as fh:
            raw = fh.read(MAX_PLAN_FILE_BYTES + 1)
        if len(raw) > MAX_PLAN_FILE_BYTES:
            raise RefusedError(f"{path}: larger than {MAX_PLAN_FILE_BYTES // (1024 * 1024)} MiB, so not a plan file "
                               "reconciler wrote; make a new plan")
        text = raw.decode("utf-8")
    except FileNotFoundError:
        raise UserError(f"{path}: no such plan file") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise UserError(f"{path}: cannot read the plan file ({exc.__class__.__name__})") from None
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise RefusedError(f"{path}: not a valid plan file (JSON error at line {exc.lineno}); "
                           "it may be truncated: make a new one with 'reconciler plan --out'") from None
    if not isinstance(data, dict) or "formatVersion" not in data:
        raise RefusedError(f"{path}: not a reconciler plan file (no formatVersion)")
    if data.get("formatVersion") != FORMAT_VERSION:
        raise RefusedError(f"{path}: plan formatVersion {data.get('formatVersion')!r} is not supported by "
                           f"reconciler {__version__} (expects {FORMAT_VERSION}); make a new plan")
    if data.get("planDigest") != plan_digest(data):
        raise RefusedError(f"{path}: the plan file's digest does not match its content: it was edited or "
                           "damaged after 'reconciler plan' wrote it; make a new plan")
    try:
        if is_fleet_data(data):
            return FleetPlan.from_dict(data)  # type: ignore[return-value]
        return Plan.from_dict(data)
    except (KeyError, TypeError, ValueError) as exc:
        raise RefusedError(f"{path}: malformed plan file ({exc.__class__.__name__}: {exc}); make a new plan") from None
