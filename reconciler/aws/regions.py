"""AWS region names, checked against botocore's partition data (``botocore/data/partitions.json``).

A region name that botocore does not know would reach an endpoint that does not exist (or, in the
sandbox, a region moto does not emulate) and fail far from its cause; it is refused where it is
given instead: a flag, an environment variable or ``spec.region``. The file is read directly (no
botocore import), so ``validate`` stays fast.
"""

from __future__ import annotations

import functools
import importlib.util
import json
import os


@functools.lru_cache(maxsize=1)
def known_regions() -> frozenset[str]:
    """Every region of every partition botocore knows (not the ``*-global`` pseudo-regions)."""
    spec = importlib.util.find_spec("botocore")
    locations = list(spec.submodule_search_locations or []) if spec else []
    for location in locations:
        path = os.path.join(location, "data", "partitions.json")
        try:
            with open(path, encoding="utf-8") as fh:
                data = json.load(fh)
        except (OSError, ValueError):
            continue
        return frozenset(name for partition in data.get("partitions", [])
                         for name in partition.get("regions", {}) if not name.endswith("-global"))
    return frozenset()


def region_problem(name: str) -> str | None:
    """Why ``name`` is not a region botocore knows, as "must be ..." with the fix; None when it is one."""
    regions = known_regions()
    if not regions or name in regions:  # no partition data to check against: let AWS answer
        return None
    import difflib

    close = difflib.get_close_matches(name, sorted(regions), n=1, cutoff=0.6)
    hint = f" (did you mean {close[0]}?)" if close else ""
    return (f"must be an AWS region that this installation of botocore knows, such as us-east-1{hint}; "
            "if the region is new, upgrade boto3")


def check_region(name: str, where: str) -> None:
    """Raise :class:`UserError` naming ``where`` (``--region``, ``AWS_REGION``...) for an unknown region."""
    from reconciler.errors import UserError

    problem = region_problem(name)
    if problem:
        from reconciler.display import printable

        raise UserError(f"{where} {printable(name)!r} {problem}")
