"""The naive executor the apply benchmark compares against: what a tool that applies one resource
at a time does. Sequential (one step after another, in the plan's order), no rate limiter, botocore's
default retries (a client made with no retry configuration: in botocore 1.44, standard mode, 3
attempts), and each wait polls its own store (DescribeCustomKeyStores with the store's id) every
second.

It has the product executor's interface (``run()`` -> ApplyResult, ``stop()``), so the benchmark
puts it in the executor's place in a real ``reconciler apply``: the plan, its checks and the
output are the product's; only the execution differs.
"""

from __future__ import annotations

import time
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from reconciler.apply.executor import ApplyResult, Deferred, StepResult
from reconciler.plan.model import Step
from reconciler.plan.matching import MANAGED_TAG

POLL_SECONDS = 1.0


class NaiveExecutor:
    def __init__(self, conn: Any, plan: Any, inputs: Any, *, emit: Any, options: Any = None,
                 redactor: Any = None) -> None:
        self.conn = conn
        self.plan = plan
        self.inputs = inputs
        self.emit = emit
        kwargs: dict[str, Any] = {"region_name": conn.region}
        if conn.endpoint_url:
            kwargs["endpoint_url"] = conn.endpoint_url
        self.kms = conn.session.client("kms", **kwargs)  # botocore's default retries
        self.store_ids: dict[str, str] = {s["name"]: s["id"] for s in (plan.observed or {}).get("stores", [])}
        self.key_ids: dict[tuple[str, str], str] = {}
        self.stopped = False

    def stop(self) -> None:
        self.stopped = True

    def store_id(self, name: str) -> str:
        if name not in self.store_ids:
            entries = self.kms.describe_custom_key_stores(CustomKeyStoreName=name)["CustomKeyStores"]
            self.store_ids[name] = entries[0]["CustomKeyStoreId"]
        return self.store_ids[name]

    def poll(self, name: str, want: set[str]) -> str:
        while True:
            entry = self.kms.describe_custom_key_stores(CustomKeyStoreId=self.store_id(name))["CustomKeyStores"][0]
            if entry["ConnectionState"] in want:
                return entry["ConnectionState"]
            time.sleep(POLL_SECONDS)

    def step(self, step: Step) -> str:
        p, action = step.params, step.action.value
        if action == "create_store":
            credential = {"AccessKeyId": p["accessKeyId"], "RawSecretAccessKey": self.inputs.secret_access_key(step.store)}
            self.store_ids[step.store] = self.kms.create_custom_key_store(
                CustomKeyStoreName=step.store, CustomKeyStoreType="EXTERNAL_KEY_STORE",
                XksProxyConnectivity=p["connectivity"], XksProxyUriEndpoint=p["uriEndpoint"],
                XksProxyUriPath=p["uriPath"], XksProxyAuthenticationCredential=credential)["CustomKeyStoreId"]
        elif action == "connect_store":
            self.kms.connect_custom_key_store(CustomKeyStoreId=self.store_id(step.store))
            return self.poll(step.store, {"CONNECTED", "FAILED"})
        elif action == "create_key":
            tags = [{"TagKey": k, "TagValue": v} for k, v in sorted(p.get("tags", {}).items())]
            key = self.kms.create_key(CustomKeyStoreId=self.store_id(step.store), Origin=p["origin"],
                                      XksKeyId=p["xksKeyId"], Description=p.get("description", ""),
                                      Tags=tags + [{"TagKey": MANAGED_TAG, "TagValue": step.key}])
            self.key_ids[(step.store, step.key)] = key["KeyMetadata"]["KeyId"]
        elif action == "create_alias":
            key_id = p.get("keyId") or self.key_ids[(step.store, p["targetKey"])]
            self.kms.create_alias(AliasName=p["alias"], TargetKeyId=key_id)
        elif action == "schedule_key_deletion":
            self.kms.schedule_key_deletion(KeyId=p["keyId"], PendingWindowInDays=int(p["pendingWindowInDays"]))
        elif action == "disconnect_store":
            self.kms.disconnect_custom_key_store(CustomKeyStoreId=self.store_id(step.store))
            return self.poll(step.store, {"DISCONNECTED"})
        elif action == "delete_store":
            try:
                self.kms.delete_custom_key_store(CustomKeyStoreId=self.store_id(step.store))
            except ClientError as exc:
                if exc.response["Error"]["Code"] == "CustomKeyStoreHasCMKsException":
                    raise Deferred(None, "the store still holds keys") from None
                raise
        else:
            raise NotImplementedError(action)
        return "done"

    def run(self) -> ApplyResult:
        results: list[StepResult] = []
        outcomes: dict[str, str] = {}
        now = self.conn.now()
        for step in self.plan.steps:
            blocked = [d for d in step.depends_on if outcomes.get(d, "ok") != "ok"]
            if step.deferred_until is not None and step.deferred_until > now:
                result = StepResult(step, "deferred", "deferred", deferred_until=step.deferred_until)
            elif blocked:
                result = StepResult(step, "deferred" if all(outcomes[d] == "deferred" for d in blocked) else "skipped",
                                    f"waits for {blocked[0]}")
            else:
                try:
                    result = StepResult(step, "ok", self.step(step))
                except Deferred as deferred:
                    result = StepResult(step, "deferred", str(deferred))
                except (ClientError, BotoCoreError) as exc:
                    result = StepResult(step, "failed", f"{type(exc).__name__}: {exc}")
            outcomes[step.id] = result.outcome
            self.emit({"event": result.outcome, "step": step.id, "action": step.action.value,
                       "store": step.store, "key": step.key, "message": result.message})
            results.append(result)
        return ApplyResult(results)
