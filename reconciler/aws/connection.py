"""Sessions and clients: the standard boto3 chain, or the embedded sandbox.

A :class:`Connection` is everything the reader and the executor need from "where AWS is": clients
for the chosen region, and the clock. Against real AWS the clock is the wall clock and waiting
sleeps; in the embedded sandbox the clock is the emulator's and waiting advances it, so a
connection that takes minutes in AWS takes milliseconds in the sandbox and tests stay
deterministic.
"""

from __future__ import annotations

import os
import time
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Any, Callable, Iterator

from reconciler.errors import UserError

if TYPE_CHECKING:  # boto3 is imported when a command connects, not when the CLI starts
    import boto3
    from botocore.config import Config


class ConnectionError_(UserError):
    """A user-fixable problem reaching AWS (no region, no credentials...)."""


@dataclass(frozen=True)
class Target:
    """Where to connect, from the CLI flags."""

    profile: str | None = None
    region: str | None = None
    endpoint_url: str | None = None
    sandbox: bool = False
    sandbox_dir: str | None = None


def env_region() -> str | None:
    return os.environ.get("AWS_REGION") or os.environ.get("AWS_DEFAULT_REGION")


def client_config(max_pool_connections: int = 128, *, retries: bool = True) -> "Config":
    """The configuration of every client this tool makes.

    ``max_pool_connections``: as many connections as the reader may have calls in flight
    (RateLimiter.concurrency's cap). ``retries``: botocore's "standard" mode, 8 attempts, for
    throttling and 5xx errors with jittered exponential backoff, per call (the reader, status,
    export, the lock). Not "adaptive": that mode slows the whole client down after any throttle,
    although KMS's quotas are per operation. ``retries=False``: one attempt, for the executor,
    whose :class:`reconciler.apply.retries.Caller` retries per operation (and whose creates must
    look before they retry).
    """
    from botocore.config import Config

    return Config(
        retries={"mode": "standard", "max_attempts": 8} if retries else {"mode": "standard", "total_max_attempts": 1},
        max_pool_connections=max_pool_connections,
        user_agent_appid="reconciler",
    )


@dataclass
class Connection:
    session: "boto3.Session"
    region: str
    endpoint_url: str | None = None
    now: Callable[[], datetime] = field(default=lambda: datetime.now(timezone.utc))
    sleep: Callable[[float], None] = field(default=time.sleep)
    sandbox: Any = None  # the EmbeddedSandbox when --sandbox
    _clients: dict[str, Any] = field(default_factory=dict)
    _account: str | None = None

    def client(self, service: str) -> Any:
        if service not in self._clients:
            kwargs: dict[str, Any] = {"region_name": self.region, "config": client_config()}
            if self.endpoint_url:
                kwargs["endpoint_url"] = self.endpoint_url
            self._clients[service] = self.session.client(service, **kwargs)
        return self._clients[service]

    @property
    def kms(self) -> Any:
        return self.client("kms")

    def account_id(self) -> str:
        if self._account is None:
            self._account = self.client("sts").get_caller_identity()["Account"]
        return self._account

    def identity(self) -> dict[str, Any]:
        """Where this connection reaches, as a plan file records it: a saved plan is applied only
        to the same account, region and endpoint (or the same embedded sandbox) it was made for."""
        return {
            "account": self.account_id(),
            "region": self.region,
            "endpoint": self.endpoint_url.rstrip("/") if self.endpoint_url else None,
            "sandbox": str(self.sandbox.directory.resolve()) if self.sandbox is not None else None,
        }


@contextmanager
def connect(target: Target, region: str) -> Iterator[Connection]:
    """Open a connection for ``region`` (already resolved by the caller)."""
    if target.sandbox:
        from reconciler.sandbox.embedded import EmbeddedSandbox, boto3_session

        with EmbeddedSandbox(target.sandbox_dir) as sandbox:
            yield Connection(
                session=boto3_session(),
                region=region,
                now=sandbox.now,
                sleep=lambda seconds: sandbox.advance(seconds),
                sandbox=sandbox,
            )
        return
    import boto3

    try:
        session = boto3.Session(profile_name=target.profile, region_name=region)
    except Exception as exc:  # botocore.exceptions.ProfileNotFound and friends
        raise ConnectionError_(f"{exc}; check --profile / AWS_PROFILE") from None
    yield Connection(session=session, region=region, endpoint_url=target.endpoint_url)
