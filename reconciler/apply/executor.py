"""The executor: the only module that writes to AWS.

It runs a plan's steps in dependency order. Stores are independent of each other, so each store's
steps run in order on a worker of their own, bounded by the per-operation rate limiter; inside a
store, a step runs only when every step it depends on succeeded (a failed step skips its
dependents; a deferred one defers them).

Every call goes through :class:`~reconciler.apply.retries.Caller` (botocore's own retries are off
in the executor's client): the operation's token from the rate limiter, and retries with backoff
per operation, a throttle lowering the rate of the operation throttled and no other. Every wait
for a store's state, and every read of one, goes through the apply's one
:class:`~reconciler.apply.watcher.StoreWatcher`, which reads all stores with one
DescribeCustomKeyStores chain per poll.

Creates are made safe to retry: CreateCustomKeyStore and CreateKey are not idempotent in KMS, so
after an error that may have had an effect (a 5xx, a timeout, a dropped connection) they are not
retried blindly: before any retry the executor looks for what a lost response may have created (the
store by name; the key by XksKeyId, or by the tag it sets on every key it creates). A throttled
create had no effect, and is simply retried.

Every other write is made idempotent in effect, because the Caller retries it after a lost response
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

import itertools
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timedelta
from typing import Any, Callable

from botocore.exceptions import BotoCoreError, ClientError

from reconciler.apply.key_steps import KeySteps
from reconciler.apply.lookups import KeyLookups
from reconciler.apply.quarantine import QuarantineSteps
from reconciler.apply.outcomes import (  # noqa: F401  (re-exported: the executor's interface)
    ApplyResult, Deferred, ExecutorOptions, Redactor, StepError, StepResult, StoreInputs)
from reconciler.apply.retries import Caller, error_code, is_throttle, is_transient
from reconciler.apply.waiters import (
    ConnectionFailed, StoreDisappeared, WaitInterrupted, WaitTimeout)
from reconciler.apply.watcher import StoreWatcher
from reconciler.aws.connection import Connection, client_config
from reconciler.aws.connection_errors import fix_for
from reconciler.errors import UserError
from reconciler.live.model import aware_utc
from reconciler.live.reader import read_stores
from reconciler.plan.model import Plan, Step, iso

EventSink = Callable[[dict[str, Any]], None]


def _message(exc: ClientError) -> str:
    return exc.response.get("Error", {}).get("Message", "") or str(exc)


class Executor(KeySteps, QuarantineSteps):
    def __init__(self, conn: Connection, plan: Plan, inputs: StoreInputs, *, emit: EventSink,
                 options: ExecutorOptions | None = None, redactor: Redactor | None = None) -> None:
        self.conn = conn
        self.plan = plan
        self.inputs = inputs
        self.emit = emit
        self.options = options or ExecutorOptions()
        self.redact = redactor or Redactor()
        # botocore's retries off: self.caller retries per operation (and creates look first)
        kwargs: dict[str, Any] = {"region_name": conn.region, "config": client_config(retries=False)}
        if conn.endpoint_url:
            kwargs["endpoint_url"] = conn.endpoint_url
        self.kms = conn.session.client("kms", **kwargs)
        self.caller = Caller(self.options.limiter, sleep=conn.sleep, policy=self.options.retry)
        self._stop = threading.Event()
        # in the embedded sandbox, waiting moves the emulator clock (conn.sleep); else real time
        self.watcher = StoreWatcher(lambda: read_stores(self.call), now=conn.now,
                                    sleep=None if conn.sleep is time.sleep else conn.sleep,
                                    stopped=self._stop.is_set, backoff=self.options.backoff)
        self._store_ids: dict[str, str] = {}
        self._key_ids: dict[tuple[str, str], str] = {}  # (store, ident) -> KeyId
        # KeyId -> CustomKeyStoreId of every key the run knows: the plan's observed keys and the
        # keys this run created (a key's store never changes), for the lookups to skip
        self._key_stores: dict[str, str] = {}
        for store in (plan.observed or {}).get("stores", []):
            self._store_ids[store["name"]] = store["id"]
            for key in store.get("keys", []):
                self._key_stores[key["keyId"]] = store["id"]
        self.lookups = KeyLookups(self.call, self._key_stores.get)
        # store -> {KeyId: the DeletionDate KMS gave it} for the keys this run scheduled: a
        # deferred delete_store waits for these, not for the date the plan estimated when it was made
        self._deletion_dates: dict[str, dict[str, datetime]] = {}
        self._quarantine_shifts: dict[str, timedelta] = {}  # stores whose quarantine this run began
        self._failed_updates: set[str] = set()  # stores whose update_store failed in this run
        self._created_entries: dict[str, dict] = {}  # stores this run created, until connected
        self._lock = threading.Lock()

    def stop(self) -> None:
        """Start no new step (each store finishes the step it is running); safe from a signal handler."""
        self._stop.set()

    @property
    def stopped(self) -> bool:
        return self._stop.is_set()

    # -- calls ----------------------------------------------------------------------------
    def call(self, operation: str, method: str, *, retry_errors: bool = True, **kwargs: Any) -> dict:
        """One KMS call, rate-limited and retried per operation (see retries.py); with
        ``retry_errors=False`` only throttles are retried (a create looks before it retries)."""
        return self.caller(operation, lambda: getattr(self.kms, method)(**kwargs), retry_errors=retry_errors)

    def describe_store(self, store: str) -> dict | None:
        """The store's entry, from a read of all stores started after this call (shared with the
        other steps asking meanwhile)."""
        entry = self.watcher.describe(store)
        if entry is not None:
            with self._lock:
                self._store_ids[store] = entry["CustomKeyStoreId"]
        return entry

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
        """Until the store is in ``want`` (the watcher polls every store at once)."""
        def on_poll(state: str, waited: float) -> None:
            self.emit({"event": "wait", "step": step.id, "state": state, "waited": round(waited, 1)})

        try:
            return self.watcher.wait(store, want, fail, timeout_seconds=self.options.timeout_seconds,
                                     on_poll=on_poll)
        except StoreDisappeared:
            raise StepError(f"store {store} disappeared while waiting", "CustomKeyStoreNotFoundException") from None
        except WaitInterrupted as stopped:
            raise StepError(f"apply was interrupted while the store was {stopped.state}; KMS carries on, and "
                            "the next apply picks it up from there", "Interrupted") from None

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
                # throttles are retried inside (a throttled request had no effect); anything that
                # may have had one comes back here, to look before the next attempt
                return self.call(operation, method, retry_errors=False, **kwargs), True
            except ClientError as exc:
                if not (is_throttle(exc) or is_transient(exc)):
                    found = lookup()  # e.g. NameInUse after a lost response: adopt what exists
                    if found is not None:
                        return found, False
                    raise
                last = exc
            except BotoCoreError as exc:
                if not is_transient(exc):
                    raise
                # a timeout or a dropped connection: the create may or may not have happened
                last = exc
            self.conn.sleep(min(next(delays), 5.0))
        assert last is not None
        raise last

    # -- steps ----------------------------------------------------------------------------
    def run_step(self, step: Step) -> str:
        handler = getattr(self, f"_{step.action.value}")
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
            if created:
                self._created_entries[step.store] = {"CustomKeyStoreId": store_id, "ConnectionState": "DISCONNECTED"}
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
        with self._lock:
            # a store this run just created is DISCONNECTED: no need to read it again (if someone
            # connected it meanwhile, the Connect below is refused and the store read)
            entry = self._created_entries.pop(step.store, None)
        if entry is None:
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
            if error_code(exc) != "CustomKeyStoreInvalidStateException":
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
                if error_code(exc) != "CustomKeyStoreInvalidStateException":
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
            if error_code(exc) == "CustomKeyStoreNotFoundException":
                # it was there a moment ago: botocore's retry after a lost response finds it deleted
                return f"deleted {entry['CustomKeyStoreId']}"
            if error_code(exc) != "CustomKeyStoreHasCMKsException":
                raise
            until = self._latest_deletion_date(step.store, entry["CustomKeyStoreId"])
            raise Deferred(until, "the store still holds keys; KMS deletes it only after its last key is gone") from None
        return f"deleted {entry['CustomKeyStoreId']}"

    def _latest_deletion_date(self, store: str, store_id: str) -> datetime | None:
        """The last DeletionDate of the store's keys; None if one of them is not pending deletion.

        What the run knows comes first: the dates KMS gave the keys this run scheduled; then the
        other keys the run knows in the store (the plan's, this run's), described together: one
        of them not pending deletion is the answer, without a scan; then the keys of the region
        the run cannot place (one may have been made in the store since the plan)."""
        with self._lock:
            dates = dict(self._deletion_dates.get(store, {}))
            known = {k for k, s in self._key_stores.items() if s == store_id}
        described = self.lookups.describe_many(sorted(known - set(dates)))
        for metas in itertools.chain([described], self.lookups.scan(store_id, skip=known | set(dates))):
            for meta in metas:
                if meta.get("CustomKeyStoreId") != store_id:
                    continue
                date = aware_utc(meta.get("DeletionDate"))
                if date is None:
                    return None  # a key not pending deletion: no date to wait for
                dates[meta["KeyId"]] = date
        return max(dates.values(), default=None)

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
            code = error_code(exc)
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
            deferred = None if self.stopped else self._still_deferred(step, now)
            if self.stopped:
                result = StepResult(step, "skipped", "not started: apply was interrupted")
                self._event(step, "skipped", message=result.message)
            elif deferred is not None:
                result = deferred
                self._event(step, "deferred", message=result.message, deferredUntil=iso(result.deferred_until))
            elif blockers:
                first = blockers[0]
                if all(b.outcome == "deferred" for b in blockers):
                    until = self._deferred_until(
                        step, max((b.deferred_until for b in blockers if b.deferred_until), default=None))
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

    def _still_deferred(self, step: Step, now: datetime) -> StepResult | None:
        """A step the plan deferred that this run does not execute (None: it runs): its date (moved
        by a quarantine this run began) has not come; or it schedules the deletion of a key in
        quarantine, which only a plan made after the quarantine ended may do, because that plan
        checks CloudTrail for attempts to use the key during it (a saved plan made before cannot
        have checked them)."""
        if step.deferred_until is None:
            return None
        until = self._deferred_until(step, step.deferred_until)
        if until is not None and until > now:
            return StepResult(step, "deferred", f"deferred until {iso(until)}", deferred_until=until)
        if not step.params.get("quarantine"):
            return None
        return StepResult(step, "deferred",
                          f"the quarantine ended {iso(until)}, after this plan was made: a new plan checks CloudTrail "
                          "for attempts to use the key during the quarantine before its deletion is scheduled; "
                          "plan and apply again", deferred_until=now)

    def run(self) -> ApplyResult:
        by_store: dict[str, list[Step]] = {}
        for step in self.plan.steps:
            by_store.setdefault(step.store, []).append(step)
        outcomes: dict[str, StepResult] = {}

        def chain(steps: list[Step]) -> list[StepResult]:
            with self.watcher.participant():
                return self._run_store(steps, outcomes)

        try:
            if len(by_store) <= 1 or self.options.max_parallel_stores <= 1:
                chains = []
                for steps in by_store.values():
                    self.watcher.expect(1)
                    chains.append(chain(steps))
            else:
                self.watcher.expect(len(by_store))
                with ThreadPoolExecutor(max_workers=min(self.options.max_parallel_stores, len(by_store))) as pool:
                    chains = list(pool.map(chain, by_store.values()))
        finally:
            self.watcher.close()
        order = {step.id: i for i, step in enumerate(self.plan.steps)}
        results = sorted((r for chain in chains for r in chain), key=lambda r: order[r.step.id])
        return ApplyResult(results)


