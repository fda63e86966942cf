"""What a scheduled pipeline may apply of a plan on its own: the rest of a decommission under way.

    python3 -m reconciler.plan.scheduled plans/plan.json     # prints due=true or due=false

The daily deferred job of the CI examples (``examples/github-actions/reconciler-deferred.yml``,
the ``deferred`` job of ``examples/gitlab-ci/.gitlab-ci.yml``; docs/ci.md) plans on the default
branch and runs this on the plan file (or on ``reconciler show PLANFILE --format json``; a fleet
plan's steps are read from each target's plan). Nobody reviews what it applies, so it applies
only what a reviewed apply already set in motion when the store was declared absent:

* ``delete_store``: a store declared absent, deleted once its last key is gone;
* ``schedule_key_deletion`` of a key whose quarantine already began (``params.quarantine.started``:
  the tag the first, reviewed apply put on the key; see :mod:`reconciler.plan.decommission`):
  deferred until the quarantine ends, then due.

It prints ``due=true`` when one of them is due (not deferred, or its date has passed by the plan's
own clock, ``createdAt``) and ``due=false`` when they all wait: the line the workflows append to
``$GITHUB_OUTPUT`` or test in the shell. Any other step (a change the branch and the account
disagree on; the start of a decommission; a key deletion without a quarantine that began), a
refusal, or a target that could not be planned is an error (exit 1): such changes go through a
reviewed pull or merge request.

Only the standard library: the plan's JSON is the published format (docs/schemas/plan.schema.json).
"""

from __future__ import annotations

import json
import os
import sys
from datetime import datetime
from typing import Any, Iterator

USAGE = "usage: python3 -m reconciler.plan.scheduled PLANFILE (a saved plan, or - for its JSON on stdin)"


class NotScheduled(Exception):
    """The plan holds something a scheduled run must not apply; the message says what and why."""


def _plans(data: dict[str, Any]) -> Iterator[tuple[str, dict[str, Any]]]:
    """(prefix for step ids, plan) for a one-target plan, or for each target of a fleet plan."""
    if data.get("kind") != "fleet":
        yield "", data
        return
    failed = [str(t.get("id")) for t in data.get("targets") or [] if t.get("plan") is None]
    if failed:
        raise NotScheduled(f"target(s) that could not be planned: {', '.join(failed)}; fix their access first "
                           "(see the plan's log)")
    for target in data.get("targets") or []:
        yield f"{target.get('id')}: ", target["plan"]


def _time(value: Any) -> datetime | None:
    if not isinstance(value, str):
        return None
    try:
        return datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None


def allowed(step: dict[str, Any]) -> bool:
    """Whether a scheduled run may apply ``step``: a store deletion, or a key deletion of a quarantine
    that already began."""
    if step.get("action") == "delete_store":
        return True
    if step.get("action") == "schedule_key_deletion":
        quarantine = (step.get("params") or {}).get("quarantine") or {}
        return bool(quarantine.get("started"))
    return False


def check(data: Any) -> bool:
    """Whether a step of the plan ``data`` (its JSON) is due; :class:`NotScheduled` when the plan
    holds anything a scheduled run must not apply."""
    if not isinstance(data, dict) or not ("steps" in data or data.get("kind") == "fleet"):
        raise NotScheduled("not a reconciler plan (no steps, and not a fleet plan): pass the plan file that "
                           "'reconciler plan --out' wrote")
    due, other, refused = False, [], []
    for prefix, plan in _plans(data):
        now = _time(plan.get("createdAt"))
        refused += [f"{prefix}{f.get('store')}: {f.get('message')}" for f in plan.get("findings") or []
                    if f.get("kind") == "refused"]
        for step in plan.get("steps") or []:
            if not allowed(step):
                other.append(f"{prefix}{step.get('id')}")
                continue
            until = _time(step.get("deferredUntil"))
            if step.get("deferredUntil") is None or (until is not None and now is not None and until <= now):
                due = True
    if other:
        raise NotScheduled(
            f"the plan has changes that a scheduled run does not apply: {', '.join(other)}. It finishes only "
            "decommissions under way (delete_store, and schedule_key_deletion once a quarantine has begun); "
            "review and apply these through a pull or merge request")
    if refused:
        raise NotScheduled(f"the plan refuses a change: {'; '.join(refused)}")
    return due


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    # a GitHub Actions annotation, as the workflows' own errors are
    prefix = "::error::" if os.environ.get("GITHUB_ACTIONS") == "true" else ""
    if len(args) != 1 or (args[0].startswith("-") and args[0] != "-"):
        print(f"{prefix}Error: {USAGE}", file=sys.stderr)
        return 1
    path = args[0]
    try:
        text = sys.stdin.read() if path == "-" else open(path, encoding="utf-8").read()
        due = check(json.loads(text))
    except OSError as exc:
        print(f"{prefix}Error: cannot read the plan {path} ({exc.strerror or exc}); save it with "
              "'reconciler plan ... --out PLANFILE' first", file=sys.stderr)
        return 1
    except ValueError:
        print(f"{prefix}Error: {path} is not JSON: pass the plan file 'reconciler plan --out' wrote", file=sys.stderr)
        return 1
    except NotScheduled as exc:
        print(f"{prefix}Error: {exc}", file=sys.stderr)
        return 1
    print("due=" + ("true" if due else "false"))
    return 0


if __name__ == "__main__":
    sys.exit(main())
