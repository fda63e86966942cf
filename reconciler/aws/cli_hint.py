"""An AWS CLI command to print as a next step, for where the tool is connected: with the endpoint
it used, and for the embedded sandbox, the `reconciler sandbox serve` that makes it reachable
(the AWS CLI cannot reach a sandbox that is not served), so that it works when pasted."""

from __future__ import annotations

import shlex
from typing import Any

SERVE_URL = "http://127.0.0.1:4566"  # `reconciler sandbox serve`'s default address


def aws_cli(words: list[str], region: str, where: dict[str, Any] | None = None) -> str:
    """``aws WORDS --region REGION`` for ``where`` (a plan's target: {"endpoint", "sandbox"})."""
    where = where or {}
    command = ["aws", *words, "--region", region]
    if where.get("sandbox"):
        serve = shlex.join(["reconciler", "sandbox", "serve", "--sandbox-dir", str(where["sandbox"])])
        return (f"{serve} (in another terminal), then "
                + shlex.join(["env", "AWS_ACCESS_KEY_ID=sandbox", "AWS_SECRET_ACCESS_KEY=sandbox", *command,
                              "--endpoint-url", SERVE_URL]))
    if where.get("endpoint"):
        command += ["--endpoint-url", str(where["endpoint"])]
    return shlex.join(command)
