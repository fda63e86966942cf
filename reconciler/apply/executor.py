"""The executor: the only module that writes to AWS.

It runs a plan's steps in dependency order. Stores are independent of each other, so each store's
steps run in order on a worker of their own, bounded by the per-operation rate limiter; inside a
store, a step runs only when every step it depends on succeeded (a failed step skips its
dependents; a deferred one defers them).

Creates are made safe to retry: CreateCustomKeyStore and CreateKey are not idempotent in KMS, so
they go through a client with botocore's retries switched off, and before any retry the executor
looks for what a lost response may have created (the store by name; the key by XksKeyId, or by
the tag it sets on every key it creates).

Every other write is made idempotent in effect, because botocore retries it after a lost response
(KMSInternalException is an HTTP 500): a Disconnect refused because the store is already
disconnecting, a Delete answered "not found" after the store was described, a Connect refused
because the first attempt's connection already ended FAILED, a ScheduleKeyDeletion or
CancelKeyDeletion refused because the first attempt already did it, and a CreateAlias answered
AlreadyExists are each checked against the live state and accepted when it shows the step done.

A step never raises out of the executor: every error becomes a failed step whose message went
through the redactor, so the journal records it and the other stores carry on. ``stop()`` (on
SIGINT or SIGTERM) lets every store finish the step it is in and start no other.
"""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Any, Callable, Protocol

from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError, HTTPClientError
from botocore.exceptions import ConnectionError as BotoConnectionError

from reconciler.apply.quarantine import run_quarantine_step
from reconciler.apply.waiters import Backoff, ConnectionFailed, WaitTimeout, wait_for_state
from reconciler.aws.connection import Connection
from reconciler.aws.connection_errors import fix_for
from reconciler.errors import UserError
from reconciler.live.model import aware_utc
from reconciler.plan.model import Plan, Step, ceil_seconds, iso
from reconciler.plan.matching import MANAGED_TAG
from reconciler.aws.ratelimit import RateLimiter

RETRYABLE = {"ThrottlingException", "KMSInternalException", "DependencyTimeoutException",
             "ServiceUnavailableException", "RequestLimitExceeded", "InternalFailure"}


class StoreInputs(Protocol):
    """Values only the manifests hold, resolved when a step needs them."""

    def secret_access_key(self, store: str) -> str: ...
    def key_store_password(self, store: str) -> str: ...
    def trust_anchor(self, store: str) -> str: ...


class StepError(Exception):
    def __init__(self, message: str, code: str | None = None) -> None:
        super().__init__(message)
        self.code = code


class Deferred(Exception):
    def __init__(self, until: datetime | None, message: str) -> None:
        super().__init__(message)
        self.until = until


@dataclass
class StepResult:
    step: Step
    outcome: str  # ok | failed | skipped | deferred
    message: str = ""
    error_code: str | None = None
    elapsed: float = 0.0
    deferred_until: datetime | None = None


@dataclass
class ApplyResult:
    results: list[StepResult] = field(default_factory=list)

    def by_outcome(self, outcome: str) -> list[StepResult]:
        return [r for r in self.results if r.outcome == outcome]

    @property
    def failed(self) -> bool:
        return bool(self.by_outcome("failed") or self.by_outcome("skipped"))

    @property
    def deferred(self) -> list[StepResult]:
        return self.by_outcome("deferred")

    def rerun_after(self) -> datetime | None:
        dates = [r.deferred_until for r in self.deferred if r.deferred_until]
        return max(dates) if dates else None


class Redactor:
    """Replaces every secret value the run resolved with "(sensitive)"."""

    def __init__(self) -> None:
        self._values: set[str] = set()
        self._lock = threading.Lock()

    def add(self, value: str) -> str:
        if value:
            with self._lock:
                self._values.add(value)
        return value

    def __call__(self, text: str) -> str:
        for value in sorted(self._values, key=len, reverse=True):
            text = text.replace(value, "(sensitive)")
        return text


@dataclass
class ExecutorOptions:
    timeout_seconds: float = 20 * 60
    limiter: RateLimiter = field(default_factory=RateLimiter)
    create_attempts: int = 6
    # every store's chain of steps on a worker of its own (the limiter keeps the shared quotas);
    # a store's steps mostly wait (for a connection, a disconnection, a rate-limited call), so
    # workers cost nothing while idle, and 20 stores take about as long as the busiest one
    # unless a shared quota (e.g. ScheduleKeyDeletion's 15 per second) is the limit
    max_parallel_stores: int = 64
    backoff: Backoff = field(default_factory=Backoff)


EventSink = Callable[[dict[str, Any]], None]


def _retryable(exc: ClientError) -> bool:
    status = exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 400)
    return _code(exc) in RETRYABLE or status >= 500


def _code(exc: ClientError) -> str:
    return exc.response.get("Error", {}).get("Code", "")


def _message(exc: ClientError) -> str:
    return exc.response.get("Error", {}).get("Message", "") or str(exc)


class Executor:
    def __init__(self, conn: Connection, plan: Plan, inputs: StoreInputs, *, emit: EventSink,
                 options: ExecutorOptions | None = None, redactor: Redactor | None = None) -> None:
        self.conn = conn
        self.plan = plan
        self.inputs = inputs
        self.emit = emit
        self.options = options or ExecutorOptions()
        self.redact = redactor or Redactor()
        self.kms = conn.kms
        # creates: no botocore retries, our own lookup-before-retry loop instead
        kwargs: dict[str, Any] = {"region_name": conn.region,
                                  "config": Config(retries={"total_max_attempts": 1})}
        if conn.endpoint_url:
            kwargs["endpoint_url"] = conn.endpoint_url
        self.kms_once = conn.session.client("kms", **kwargs)
        self._store_ids: dict[str, str] = {}
        self._key_ids: dict[tuple[str, str], str] = {}  # (store, ident) -> KeyId
        # store -> the latest DeletionDate KMS gave a key this run scheduled (whole seconds, up)
        self._deletions: dict[str, datetime] = {}
        self._failed_updates: set[str] = set()  # stores whose update_store failed in this run
        self._lock = threading.Lock()
        self._stop = threading.Event()

    def stop(self) -> None:
        """Start no new step (each store finishes the step it is running); safe from a signal handler."""
        self._stop.set()

    @property
    def stopped(self) -> bool:
        return self._stop.is_set()

    # -- calls ----------------------------------------------------------------------------
    def call(self, operation: str, method: str, client: Any = None, **kwargs: Any) -> dict:
        self.options.limiter.acquire(operation)
        return getattr(client or self.kms, method)(**kwargs)

    def describe_store(self, store: str) -> dict | None:
        try:
            entries = self.call("DescribeCustomKeyStores", "describe_custom_key_stores",
                                CustomKeyStoreName=store)["CustomKeyStores"]
        except ClientError as exc:
            if _code(exc) == "CustomKeyStoreNotFoundException":
                return None
            raise
        if entries:
            with self._lock:
                self._store_ids[store] = entries[0]["CustomKeyStoreId"]
            return entries[0]
        return None

    def store_id(self, store: str) -> str:
        with self._lock:
            known = self._store_ids.get(store)
        if known:
            return known
        entry = self.describe_store(store)
        if entry is None:
            raise StepError(f"store {store} does not exist", "CustomKeyStoreNotFoundException")
        return entry["CustomKeyStoreId"]

    def wait(self, store: str, want: set[str], fail: set[str], step: Step) -> dict:
        def describe() -> dict:
            entry = self.describe_store(store)
            if entry is None:
                raise StepError(f"store {store} disappeared while waiting", "CustomKeyStoreNotFoundException")
            return entry

        def on_poll(state: str, waited: float) -> None:
            if self.stopped:
                raise StepError(f"apply was interrupted while the store was {state}; KMS carries on, and the "
                                "next apply picks it up from there", "Interrupted")
            self.emit({"event": "wait", "step": step.id, "state": state, "waited": round(waited, 1)})

        return wait_for_state(describe, want=want, fail=fail, now=self.conn.now, sleep=self.conn.sleep,
                              timeout_seconds=self.options.timeout_seconds, backoff=self.options.backoff,
                              on_poll=on_poll)

    def settle(self, store: str, step: Step) -> dict:
        """Wait out a transitional state (CONNECTING, DISCONNECTING) and return the entry."""
        entry = self.describe_store(store)
        if entry is None:
            raise StepError(f"store {store} does not exist", "CustomKeyStoreNotFoundException")
        if entry["ConnectionState"] == "DISCONNECTING":
            entry = self.wait(store, {"DISCONNECTED"}, set(), step)
        elif entry["ConnectionState"] == "CONNECTING":
            entry = self.wait(store, {"CONNECTED", "FAILED"}, set(), step)
        return entry

    def create_with_lookup(self, operation: str, method: str, lookup: Callable[[], Any],
                           kwargs: dict[str, Any], *, look_first: bool = True) -> tuple[Any, bool]:
        """Call a non-idempotent create; before every retry, look for what it may have created.

        ``look_first=False`` skips the lookup before the first attempt, for creates whose lookup
        is costly and whose absence the plan has just seen (CreateKey scans the region's keys).
        Returns (result, created_now): the create's response, or what the lookup found.
        """
        delays = self.options.backoff.delays()
        last: Exception | None = None
        for attempt in range(self.options.create_attempts):
            found = lookup() if attempt or look_first else None
            if found is not None:
                return found, False
            try:
                return self.call(operation, method, client=self.kms_once, **kwargs), True
            except ClientError as exc:
                if not _retryable(exc):
                    found = lookup()  # e.g. NameInUse after a lost response: adopt what exists
                    if found is not None:
                        return found, False
                    raise
                last = exc
            except (HTTPClientError, BotoConnectionError) as exc:
                # a timeout or a dropped connection: the create may or may not have happened
                last = exc
            self.conn.sleep(min(next(delays), 5.0))
        assert last is not None
        raise last

    # -- steps ----------------------------------------------------------------------------
    def run_step(self, step: Step) -> str:
        handler = getattr(self, f"_{step.action.value}", None) or (lambda s: run_quarantine_step(self, s))
        return handler(step) or "done"

    def _create_store(self, step: Step) -> str:
        p = step.params
        kwargs: dict[str, Any] = {"CustomKeyStoreName": step.store}
        if p["type"] == "EXTERNAL_KEY_STORE":
            kwargs.update(CustomKeyStoreType="EXTERNAL_KEY_STORE",
                          XksProxyConnectivity=p["connectivity"],
                          XksProxyUriEndpoint=p["uriEndpoint"], XksProxyUriPath=p["uriPath"],
                          XksProxyAuthenticationCredential={
                              "AccessKeyId": p["accessKeyId"],
                              "RawSecretAccessKey": self.redact.add(self.inputs.secret_access_key(step.store)),
                          })
            if p.get("vpcEndpointServiceName"):
                kwargs["XksProxyVpcEndpointServiceName"] = p["vpcEndpointServiceName"]
            if p.get("vpcEndpointServiceOwner"):
                kwargs["XksProxyVpcEndpointServiceOwner"] = p["vpcEndpointServiceOwner"]
        else:
            kwargs.update(CustomKeyStoreType="AWS_CLOUDHSM", CloudHsmClusterId=p["clusterId"],
                          TrustAnchorCertificate=self.inputs.trust_anchor(step.store),
                          KeyStorePassword=self.redact.add(self.inputs.key_store_password(step.store)))

        def lookup():
            entry = self.describe_store(step.store)
            if entry is not None and entry.get("CustomKeyStoreType", "AWS_CLOUDHSM") != p["type"]:
                raise StepError(f"a {entry.get('CustomKeyStoreType')} store named {step.store} already exists",
                                "CustomKeyStoreNameInUseException")
            return entry

        result, created = self.create_with_lookup("CreateCustomKeyStore", "create_custom_key_store", lookup, kwargs)
        store_id = result["CustomKeyStoreId"]
        with self._lock:
            self._store_ids[step.store] = store_id
        return f"created {store_id}" if created else f"found {store_id} (created by an earlier attempt)"

    def _connect_store(self, step: Step) -> str:
        message = self._connect(step)
        with self._lock:
            restored = step.store in self._failed_updates
        if restored:
            message += " on the store's previous settings (the update failed; the store is as it was)"
        return message + self._set_hidden_enabled(step)

    def _set_hidden_enabled(self, step: Step) -> str:
        """Once CONNECTED, give the keys whose enabled state KMS hid while the store was not
        connected (``keysEnabled``) the state their manifest declares."""
        changed = []
        for key_id, enabled in (step.params.get("keysEnabled") or {}).items():
            state = self.call("DescribeKey", "describe_key", KeyId=key_id)["KeyMetadata"].get("KeyState")
            if enabled and state == "Disabled":
                self.call("EnableKey", "enable_key", KeyId=key_id)
                changed.append(f"enabled {key_id}")
            elif not enabled and state == "Enabled":
                self.call("DisableKey", "disable_key", KeyId=key_id)
                changed.append(f"disabled {key_id}")
        return "; " + ", ".join(changed) + " as declared" if changed else ""

    def _connect(self, step: Step) -> str:
        entry = self.settle(step.store, step)
        if entry["ConnectionState"] == "CONNECTED":
            return "already CONNECTED"
        if entry["ConnectionState"] == "FAILED":
            code = entry.get("ConnectionErrorCode")
            raise StepError(f"the store is FAILED ({code}): {fix_for(code)}", code)
        try:
            self.call("ConnectCustomKeyStore", "connect_custom_key_store", CustomKeyStoreId=entry["CustomKeyStoreId"])
        except ClientError as exc:
            # refused in FAILED or DISCONNECTING: a retry after a lost response can find the first
            # attempt's connection already ended FAILED; report its ConnectionErrorCode
            if _code(exc) != "CustomKeyStoreInvalidStateException":
                raise
            now = self.describe_store(step.store)
            if now is None or now["ConnectionState"] not in ("FAILED", "CONNECTING", "CONNECTED"):
                raise
            if now["ConnectionState"] == "FAILED":
                code = now.get("ConnectionErrorCode")
                raise StepError(f"the connection ended FAILED with {code}: {fix_for(code)}", code) from None
        try:
            self.wait(step.store, {"CONNECTED"}, {"FAILED"}, step)
        except ConnectionFailed as failed:
            raise StepError(f"the connection ended FAILED with {failed.code}: {fix_for(failed.code)}",
                            failed.code) from None
        return "CONNECTED"

    def _disconnect_store(self, step: Step) -> str:
        entry = self.describe_store(step.store)
        if entry is None:
            raise StepError(f"store {step.store} does not exist", "CustomKeyStoreNotFoundException")
        if entry["ConnectionState"] == "CONNECTING":
            entry = self.wait(step.store, {"CONNECTED", "FAILED"}, set(), step)
        if entry["ConnectionState"] not in ("DISCONNECTED", "DISCONNECTING"):
            try:
                self.call("DisconnectCustomKeyStore", "disconnect_custom_key_store",
                          CustomKeyStoreId=entry["CustomKeyStoreId"])
            except ClientError as exc:
                # refused in DISCONNECTING or DISCONNECTED: after a lost response, botocore's retry
                # finds the first attempt's disconnection under way; that is this step done
                if _code(exc) != "CustomKeyStoreInvalidStateException":
                    raise
                now = self.describe_store(step.store)
                if now is None or now["ConnectionState"] not in ("DISCONNECTED", "DISCONNECTING"):
                    raise
                entry = now
        if entry["ConnectionState"] != "DISCONNECTED":
            self.wait(step.store, {"DISCONNECTED"}, set(), step)
        return "DISCONNECTED"

    def _update_store(self, step: Step) -> str:
        p = step.params
        entry = self.settle(step.store, step)
        kwargs: dict[str, Any] = {"CustomKeyStoreId": entry["CustomKeyStoreId"]}
        names = {"connectivity": "XksProxyConnectivity", "uriEndpoint": "XksProxyUriEndpoint",
                 "uriPath": "XksProxyUriPath", "vpcEndpointServiceName": "XksProxyVpcEndpointServiceName",
                 "vpcEndpointServiceOwner": "XksProxyVpcEndpointServiceOwner", "clusterId": "CloudHsmClusterId"}
        for name, api_name in names.items():
            if p.get(name):  # a field being cleared (VPC service name on a switch to PUBLIC) is omitted
                kwargs[api_name] = p[name]
        if "secretAccessKey" in p:
            kwargs["XksProxyAuthenticationCredential"] = {
                "AccessKeyId": p["accessKeyId"],
                "RawSecretAccessKey": self.redact.add(self.inputs.secret_access_key(step.store)),
            }
        if "keyStorePassword" in p:
            kwargs["KeyStorePassword"] = self.redact.add(self.inputs.key_store_password(step.store))
        self.call("UpdateCustomKeyStore", "update_custom_key_store", **kwargs)
        return "updated " + ", ".join(sorted(p.get("changes", {}))) if p.get("changes") else "updated"

    def _find_key(self, store: str, store_id: str, ident: str, xks_key_id: str | None) -> str | None:
        """Find a key of the store by XksKeyId, or by the tag this tool sets on keys it creates."""
        kwargs: dict[str, Any] = {"Limit": 1000}
        while True:
            page = self.call("ListKeys", "list_keys", **kwargs)
            for entry in page.get("Keys", []):
                try:
                    meta = self.call("DescribeKey", "describe_key", KeyId=entry["KeyId"])["KeyMetadata"]
                except ClientError as exc:
                    if _code(exc) == "NotFoundException":
                        continue
                    raise
                if meta.get("CustomKeyStoreId") != store_id:
                    continue
                if meta.get("KeyState") == "PendingDeletion":
                    continue  # never what this run created
                if xks_key_id and (meta.get("XksKeyConfiguration") or {}).get("Id") == xks_key_id:
                    return meta["KeyId"]
                if not xks_key_id:
                    tags = self.call("ListResourceTags", "list_resource_tags", KeyId=meta["KeyId"]).get("Tags", [])
                    if any(t["TagKey"] == MANAGED_TAG and t["TagValue"] == ident for t in tags):
                        return meta["KeyId"]
            if not page.get("Truncated"):
                return None
            kwargs["Marker"] = page["NextMarker"]

    def _create_key(self, step: Step) -> str:
        p = step.params
        store_id = self.store_id(step.store)
        tags = [{"TagKey": k, "TagValue": v} for k, v in sorted(p.get("tags", {}).items())]
        tags.append({"TagKey": MANAGED_TAG, "TagValue": step.key})
        kwargs: dict[str, Any] = {"CustomKeyStoreId": store_id, "Origin": p["origin"],
                                  "KeySpec": "SYMMETRIC_DEFAULT", "KeyUsage": "ENCRYPT_DECRYPT",
                                  "Description": p.get("description", ""), "Tags": tags}
        if p.get("xksKeyId"):
            kwargs["XksKeyId"] = p["xksKeyId"]
        def lookup():
            key_id = self._find_key(step.store, store_id, step.key, p.get("xksKeyId"))
            return {"KeyMetadata": {"KeyId": key_id}} if key_id else None

        result, created = self.create_with_lookup("CreateKey", "create_key", lookup, kwargs, look_first=False)
        key_id = result["KeyMetadata"]["KeyId"]
        with self._lock:
            self._key_ids[(step.store, step.key)] = key_id
        if not p.get("enabled", True):
            self.call("DisableKey", "disable_key", KeyId=key_id)
        return f"created {key_id}" if created else f"found {key_id} (created by an earlier attempt)"

    def _key_id(self, step: Step, ident: str | None = None) -> str:
        if step.params.get("keyId"):
            return step.params["keyId"]
        with self._lock:
            key_id = self._key_ids.get((step.store, ident or step.key))
        if key_id is None:
            key_id = self._find_key(step.store, self.store_id(step.store), ident or step.key,
                                    ident if step.params.get("origin") == "EXTERNAL_KEY_STORE" else None)
        if key_id is None:
            raise StepError(f"cannot find key {ident or step.key} in store {step.store}", "NotFoundException")
        return key_id

    def _create_alias(self, step: Step) -> str:
        p = step.params
        key_id = p.get("keyId") or self._key_id(step, p["targetKey"])
        if p.get("update"):
            self.call("UpdateAlias", "update_alias", AliasName=p["alias"], TargetKeyId=key_id)
            return f"{p['alias']} -> {key_id}"
        try:
            self.call("CreateAlias", "create_alias", AliasName=p["alias"], TargetKeyId=key_id)
        except ClientError as exc:
            if _code(exc) != "AlreadyExistsException":
                raise
            aliases = self.call("ListAliases", "list_aliases", KeyId=key_id).get("Aliases", [])
            if not any(a["AliasName"] == p["alias"] for a in aliases):
                raise
        return f"{p['alias']} -> {key_id}"

    def _update_key(self, step: Step) -> str:
        p = step.params
        key_id = p["keyId"]
        done = []
        if "enabled" in p:
            if p["enabled"]:
                self.call("EnableKey", "enable_key", KeyId=key_id)
            else:
                self.call("DisableKey", "disable_key", KeyId=key_id)
            done.append("enabled" if p["enabled"] else "disabled")
        if "description" in p:
            self.call("UpdateKeyDescription", "update_key_description", KeyId=key_id, Description=p["description"])
            done.append("description")
        if p.get("setTags"):
            self.call("TagResource", "tag_resource", KeyId=key_id,
                      Tags=[{"TagKey": k, "TagValue": v} for k, v in sorted(p["setTags"].items())])
            done.append("tags set")
        if p.get("removeTags"):
            self.call("UntagResource", "untag_resource", KeyId=key_id, TagKeys=list(p["removeTags"]))
            done.append("tags removed")
        return ", ".join(done)

    def _schedule_key_deletion(self, step: Step) -> str:
        p = step.params
        try:
            result = self.call("ScheduleKeyDeletion", "schedule_key_deletion", KeyId=p["keyId"],
                               PendingWindowInDays=int(p["pendingWindowInDays"]))
        except ClientError as exc:
            if _code(exc) == "KMSInvalidStateException":
                meta = self.call("DescribeKey", "describe_key", KeyId=p["keyId"])["KeyMetadata"]
                if meta.get("KeyState") == "PendingDeletion":
                    return f"already pending deletion until {self._deletion(step.store, meta.get('DeletionDate'))}"
            raise
        return f"pending deletion until {self._deletion(step.store, result.get('DeletionDate'))}"

    def _deletion(self, store: str, date: Any) -> str | None:
        """Note a key's DeletionDate for the store's deferred delete_store; printed rounded up to
        the second, as every date the tool prints (the key is not gone before it)."""
        when = aware_utc(date)
        if when is None:
            return None
        when = ceil_seconds(when)
        with self._lock:
            if store not in self._deletions or when > self._deletions[store]:
                self._deletions[store] = when
        return iso(when)

    def _cancel_key_deletion(self, step: Step) -> str:
        try:
            self.call("CancelKeyDeletion", "cancel_key_deletion", KeyId=step.params["keyId"])
        except ClientError as exc:
            if _code(exc) != "KMSInvalidStateException":
                raise
            meta = self.call("DescribeKey", "describe_key", KeyId=step.params["keyId"])["KeyMetadata"]
            if meta.get("KeyState") == "PendingDeletion":
                raise
            return f"not pending deletion ({meta.get('KeyState')})"
        return "rescued: deletion cancelled, the key is Disabled until enabled"

    def _delete_store(self, step: Step) -> str:
        entry = self.describe_store(step.store)
        if entry is None:
            return "already deleted"
        if entry["ConnectionState"] == "DISCONNECTING":
            entry = self.wait(step.store, {"DISCONNECTED"}, set(), step)
        if entry["ConnectionState"] != "DISCONNECTED":
            raise StepError(f"the store is {entry['ConnectionState']}; KMS deletes only a DISCONNECTED store",
                            "CustomKeyStoreInvalidStateException")
        try:
            self.call("DeleteCustomKeyStore", "delete_custom_key_store", CustomKeyStoreId=entry["CustomKeyStoreId"])
        except ClientError as exc:
            if _code(exc) == "CustomKeyStoreNotFoundException":
                # it was there a moment ago: botocore's retry after a lost response finds it deleted
                return f"deleted {entry['CustomKeyStoreId']}"
            if _code(exc) != "CustomKeyStoreHasCMKsException":
                raise
            until = self._latest_deletion_date(entry["CustomKeyStoreId"])
            until = ceil_seconds(until) if until else None
            raise Deferred(until, "the store still holds keys; KMS deletes it only after its last key is gone") from None
        return f"deleted {entry['CustomKeyStoreId']}"

    def _latest_deletion_date(self, store_id: str) -> datetime | None:
        latest = None
        kwargs: dict[str, Any] = {"Limit": 1000}
        while True:
            page = self.call("ListKeys", "list_keys", **kwargs)
            for entry in page.get("Keys", []):
                try:
                    meta = self.call("DescribeKey", "describe_key", KeyId=entry["KeyId"])["KeyMetadata"]
                except ClientError:
                    continue
                if meta.get("CustomKeyStoreId") == store_id:
                    date = aware_utc(meta.get("DeletionDate"))
                    if date is None:
                        return None  # a key not pending deletion: no date to wait for
                    latest = date if latest is None or date > latest else latest
            if not page.get("Truncated"):
                return latest
            kwargs["Marker"] = page["NextMarker"]

    # -- the run --------------------------------------------------------------------------
    def _event(self, step: Step, event: str, **extra: Any) -> None:
        payload = {"event": event, "step": step.id, "action": step.action.value, "store": step.store,
                   "key": step.key, **extra}
        if "message" in payload and payload["message"]:
            payload["message"] = self.redact(str(payload["message"]))
        self.emit(payload)

    def _execute(self, step: Step) -> StepResult:
        self._event(step, "start")
        # on the connection's clock, like the waits: in the sandbox, time spent waiting for a
        # connection passes on the emulator's clock, not the wall clock
        started = self.conn.now()
        try:
            message = self.run_step(step)
            result = StepResult(step, "ok", message)
        except Deferred as deferred:
            result = StepResult(step, "deferred", str(deferred), deferred_until=deferred.until)
        except StepError as exc:
            result = StepResult(step, "failed", str(exc), error_code=exc.code)
        except WaitTimeout as exc:
            result = StepResult(step, "failed",
                                f"timed out after {self.options.timeout_seconds:.0f}s ({exc}); raise --timeout "
                                "or re-run apply later", error_code="Timeout")
        except ClientError as exc:
            code = _code(exc)
            result = StepResult(step, "failed", f"{code}: {_message(exc)}", error_code=code)
        except UserError as exc:  # a secret reference that cannot be resolved any more
            result = StepResult(step, "failed", str(exc), error_code="InputError")
        except BotoCoreError as exc:  # parameter validation, timeouts, connection errors
            result = StepResult(step, "failed", f"{type(exc).__name__}: {exc}", error_code=type(exc).__name__)
        except Exception as exc:  # noqa: BLE001 - a bug must not take the other stores' steps with it
            result = StepResult(step, "failed", f"unexpected error ({type(exc).__name__}: {exc})",
                                error_code="InternalError")
        result.message = self.redact(result.message)
        if result.outcome == "failed" and step.action.value == "update_store":
            with self._lock:
                self._failed_updates.add(step.store)
        result.elapsed = max(0.0, (self.conn.now() - started).total_seconds())
        self._event(step, result.outcome, message=result.message, errorCode=result.error_code,
                    elapsed=round(result.elapsed, 3), deferredUntil=iso(result.deferred_until))
        return result

    def _run_store(self, steps: list[Step], outcomes: dict[str, StepResult]) -> list[StepResult]:
        results = []
        now = self.conn.now()
        for step in steps:
            blockers = [outcomes[d] for d in step.depends_on if d in outcomes and outcomes[d].outcome != "ok"]
            if self.stopped:
                result = StepResult(step, "skipped", "not started: apply was interrupted")
                self._event(step, "skipped", message=result.message)
            elif step.deferred_until is not None and step.deferred_until > now:
                until = self._deferred_date(step)
                result = StepResult(step, "deferred", f"deferred until {iso(until)}", deferred_until=until)
                self._event(step, "deferred", message=result.message, deferredUntil=iso(until))
            elif blockers:
                first = blockers[0]
                if all(b.outcome == "deferred" for b in blockers):
                    until = max((b.deferred_until for b in blockers if b.deferred_until), default=None)
                    if step.action.value == "delete_store" and until is not None:
                        until = self._deferred_date(replace(step, deferred_until=until))
                    result = StepResult(step, "deferred", f"waits for {first.step.id}", deferred_until=until)
                    self._event(step, "deferred", message=result.message, deferredUntil=iso(until))
                else:
                    result = StepResult(step, "skipped", f"skipped: {first.step.id} did not succeed")
                    self._event(step, "skipped", message=result.message)
            else:
                result = self._execute(step)
            with self._lock:
                outcomes[step.id] = result
            results.append(result)
        return results

    def _deferred_date(self, step: Step) -> datetime:
        """The plan's date, or later when the keys this run scheduled are due later (the plan
        estimated their dates when it was made; KMS set them when the steps ran)."""
        with self._lock:
            scheduled = self._deletions.get(step.store)
        return max(step.deferred_until, scheduled) if scheduled else step.deferred_until  # type: ignore[type-var]

    def run(self) -> ApplyResult:
        by_store: dict[str, list[Step]] = {}
        for step in self.plan.steps:
            by_store.setdefault(step.store, []).append(step)
        outcomes: dict[str, StepResult] = {}
        if len(by_store) <= 1 or self.options.max_parallel_stores <= 1:
            chains = [self._run_store(steps, outcomes) for steps in by_store.values()]
        else:
            with ThreadPoolExecutor(max_workers=min(self.options.max_parallel_stores, len(by_store))) as pool:
                chains = list(pool.map(lambda steps: self._run_store(steps, outcomes), by_store.values()))
        order = {step.id: i for i, step in enumerate(self.plan.steps)}
        results = sorted((r for chain in chains for r in chain), key=lambda r: order[r.step.id])
        return ApplyResult(results)


