"""Apply locks: two applies against the same account and region never interleave.

Two kinds, both held from before the live state is read until the last step has run:

* a DynamoDB lock table (``apply --lock-table NAME``), the convention of Terraform's S3 backend:
  a table whose partition key is the string ``LockID``; the lock is one item,
  ``LockID = "<account>/<region>"``, written with a conditional put (``attribute_not_exists``)
  and deleted, only by the run that wrote it, when the apply ends. The item's ``Info`` attribute
  says who holds it (run id, user, host, pid, version, since when).
* a local lock file for the embedded sandbox (``--sandbox``): ``<sandbox dir>/apply-<region>.lock``,
  held with ``fcntl.flock``; the kernel releases it when the process ends, however it ends.

A second apply waits up to ``--lock-timeout`` (default 0s: fail at once, like Terraform's
``-lock-timeout``), then fails naming the holder. A DynamoDB lock left behind by a killed process
stays until ``reconciler force-unlock`` removes it (the message says how).
"""

from __future__ import annotations

import errno
import fcntl
import getpass
import json
import os
import socket
import time
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Callable, Iterator, Protocol

from reconciler import __version__
from reconciler.errors import UserError

OPERATION = "apply"


class LockHeld(UserError):
    """Another run holds the lock and did not release it within the timeout."""

    def __init__(self, message: str, holder: "LockInfo | None") -> None:
        super().__init__(message)
        self.holder = holder


@dataclass(frozen=True)
class LockInfo:
    """Who holds a lock. Serialised with Terraform's field names, plus Host and PID."""

    ID: str  # the run id (also in the journal's "run" field)
    Path: str  # the LockID, or the lock file
    Operation: str = OPERATION
    Who: str = ""
    Host: str = ""
    PID: int = 0
    Version: str = __version__
    Created: str = ""

    @classmethod
    def for_this_process(cls, run_id: str, path: str) -> "LockInfo":
        try:
            user = getpass.getuser()
        except Exception:  # no user name in some containers
            user = str(os.getuid())
        host = socket.gethostname()
        created = datetime.now(timezone.utc).isoformat(timespec="seconds").replace("+00:00", "Z")
        return cls(ID=run_id, Path=path, Who=f"{user}@{host}", Host=host, PID=os.getpid(), Created=created)

    def to_json(self) -> str:
        return json.dumps(asdict(self), sort_keys=True)

    @classmethod
    def from_json(cls, text: str, path: str) -> "LockInfo | None":
        try:
            data = json.loads(text)
            if not isinstance(data, dict):
                return None
            known = {k: data[k] for k in cls.__dataclass_fields__ if k in data}
            known.setdefault("Path", path)
            known.setdefault("ID", "?")
            return cls(**known)
        except (ValueError, TypeError):
            return None

    def describe(self) -> str:
        return (f"run {self.ID} ({self.Operation} by {self.Who or 'unknown'}, pid {self.PID or '?'}, "
                f"reconciler {self.Version or '?'}, since {self.Created or '?'})")


class LockBackend(Protocol):
    name: str  # what is locked, for messages

    def try_acquire(self, info: LockInfo) -> LockInfo | None:
        """Take the lock; None on success, else who holds it (a placeholder if unknown)."""

    def release(self, info: LockInfo) -> None: ...

    def unlock_hint(self, holder: LockInfo | None) -> str: ...


class FileLock:
    """An exclusive ``flock`` on a file; the holder's info is written into the file."""

    def __init__(self, path: str | os.PathLike) -> None:
        self.path = Path(path)
        self.name = str(self.path)
        self._fd: int | None = None

    def try_acquire(self, info: LockInfo) -> LockInfo | None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as exc:
            os.close(fd)
            if exc.errno not in (errno.EWOULDBLOCK, errno.EAGAIN, errno.EACCES):
                raise
            return self._holder()
        data = info.to_json().encode()
        os.ftruncate(fd, 0)
        os.pwrite(fd, data + b"\n", 0)
        os.fsync(fd)
        self._fd = fd
        return None

    def _holder(self) -> LockInfo:
        try:
            text = self.path.read_text(encoding="utf-8")
        except OSError:
            text = ""
        return LockInfo.from_json(text, self.name) or LockInfo(ID="?", Path=self.name)

    def release(self, info: LockInfo) -> None:
        if self._fd is None:
            return
        try:
            os.ftruncate(self._fd, 0)
        finally:
            fcntl.flock(self._fd, fcntl.LOCK_UN)
            os.close(self._fd)
            self._fd = None

    def unlock_hint(self, holder: LockInfo | None) -> str:
        return ("the lock is released as soon as that process ends; if it is stopped, end it "
                f"(pid {holder.PID})" if holder and holder.PID else "the lock is released when that process ends")


class DynamoDBLock:
    """One item in a DynamoDB table keyed by the string attribute ``LockID``."""

    def __init__(self, client: Any, table: str, lock_id: str, *, profile: str | None = None,
                 endpoint_url: str | None = None) -> None:
        self.client = client
        self.table = table
        self.lock_id = lock_id
        # repeated in the force-unlock command the messages print: the same credentials, and the
        # same endpoint for the account id (STS) as the apply used
        self.profile = profile
        self.endpoint_url = endpoint_url
        self.name = f"{lock_id} in DynamoDB table {table}"

    def _missing_table(self) -> UserError:
        return UserError(
            f"the lock table {self.table} does not exist in {self.client.meta.region_name}; create it with a string "
            f"partition key LockID (aws dynamodb create-table --table-name {self.table} --attribute-definitions "
            "AttributeName=LockID,AttributeType=S --key-schema AttributeName=LockID,KeyType=HASH "
            "--billing-mode PAY_PER_REQUEST), or leave out --lock-table")

    def try_acquire(self, info: LockInfo) -> LockInfo | None:
        from botocore.exceptions import ClientError

        try:
            self.client.put_item(
                TableName=self.table,
                Item={"LockID": {"S": self.lock_id}, "Info": {"S": info.to_json()}, "RunId": {"S": info.ID}},
                ConditionExpression="attribute_not_exists(LockID)",
            )
            return None
        except ClientError as exc:
            code = exc.response.get("Error", {}).get("Code")
            if code == "ResourceNotFoundException":
                raise self._missing_table() from None
            if code != "ConditionalCheckFailedException":
                raise
        return self.holder() or LockInfo(ID="?", Path=self.lock_id)

    def holder(self) -> LockInfo | None:
        from botocore.exceptions import ClientError

        try:
            item = self.client.get_item(TableName=self.table, Key={"LockID": {"S": self.lock_id}},
                                        ConsistentRead=True).get("Item")
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") == "ResourceNotFoundException":
                raise self._missing_table() from None
            raise
        if not item:
            return None
        info = LockInfo.from_json(item.get("Info", {}).get("S", ""), self.lock_id)
        if info is None:
            return LockInfo(ID=item.get("RunId", {}).get("S", "?"), Path=self.lock_id)
        return info

    def release(self, info: LockInfo) -> None:
        from botocore.exceptions import ClientError

        try:
            self.client.delete_item(
                TableName=self.table, Key={"LockID": {"S": self.lock_id}},
                ConditionExpression="RunId = :run", ExpressionAttributeValues={":run": {"S": info.ID}},
            )
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") != "ConditionalCheckFailedException":
                raise
            # someone force-unlocked it (and maybe another run took it since): not ours to delete

    def force_unlock(self, run_id: str) -> LockInfo:
        """Delete the lock item if (and only if) ``run_id`` holds it; returns the removed holder."""
        from botocore.exceptions import ClientError

        holder = self.holder()
        if holder is None:
            raise UserError(f"no lock is held on {self.name}")
        if holder.ID != run_id:
            raise UserError(f"the lock on {self.name} is held by {holder.describe()}, not by run {run_id}; "
                            "nothing was removed")
        try:
            self.client.delete_item(
                TableName=self.table, Key={"LockID": {"S": self.lock_id}},
                ConditionExpression="RunId = :run", ExpressionAttributeValues={":run": {"S": run_id}},
            )
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") == "ConditionalCheckFailedException":
                raise UserError(f"the lock on {self.name} changed hands meanwhile; nothing was removed") from None
            raise
        return holder

    def unlock_hint(self, holder: LockInfo | None) -> str:
        import shlex

        run = holder.ID if holder else "RUN_ID"
        words = ["reconciler", "force-unlock", "--lock-table", self.table, "--region", self.client.meta.region_name]
        words += ["--profile", self.profile] if self.profile else []
        words += ["--endpoint-url", self.endpoint_url] if self.endpoint_url else []
        return ("if that run is no longer running (a killed job leaves its lock behind), remove the lock with: "
                + shlex.join([*words, run]))


def lock_id(account: str, region: str) -> str:
    """The LockID of an account and region: ``<account>/<region>``."""
    return f"{account}/{region}"


def sandbox_lock_path(sandbox_dir: str | os.PathLike, region: str, account: str | None = None) -> Path:
    """The sandbox's lock file of a region (``account``: of one account's region, for a fleet)."""
    return Path(sandbox_dir) / (f"apply-{account}-{region}.lock" if account else f"apply-{region}.lock")


def _format_seconds(seconds: float) -> str:
    return f"{seconds:g}s"


@contextmanager
def held(backend: LockBackend, info: LockInfo, *, timeout_seconds: float,
         on_wait: Callable[[LockInfo], None] | None = None,
         clock: Callable[[], float] = time.monotonic, sleep: Callable[[float], None] = time.sleep,
         poll_seconds: float = 0.25, max_poll_seconds: float = 2.0) -> Iterator[LockInfo]:
    """Hold ``backend``'s lock for the body; wait up to ``timeout_seconds`` for it (real time)."""
    deadline = clock() + max(0.0, timeout_seconds)
    announced = False
    delay = poll_seconds
    while True:
        holder = backend.try_acquire(info)
        if holder is None:
            break
        remaining = deadline - clock()
        if remaining <= 0:
            waited = f"waited {_format_seconds(timeout_seconds)} (--lock-timeout)" if timeout_seconds > 0 else \
                "--lock-timeout is 0s"
            raise LockHeld(
                f"another apply holds the lock on {backend.name}: {holder.describe()}; {waited}, nothing was "
                f"changed. Re-run when it has finished, or raise --lock-timeout to wait for it; "
                f"{backend.unlock_hint(holder)}", holder)
        if not announced and on_wait is not None:
            on_wait(holder)
            announced = True
        sleep(min(delay, remaining))
        delay = min(max_poll_seconds, delay * 1.5)
    try:
        yield info
    finally:
        backend.release(info)
