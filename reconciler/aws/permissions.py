"""``reconciler iam-policy``: the least-privilege IAM policy each mode of the tool needs.

The policy is derived from :data:`PERMISSIONS`, a table of every AWS call the tool makes (and
the two permissions KMS checks on the caller's behalf for CloudHSM key stores), which mode makes
it, and what it may be restricted to. ``tests/day2/test_iam_policy.py`` keeps the table honest:
it runs plan and apply through every kind of change against the emulator, records each call,
and fails if a call is missing from the policy of its mode.

* ``plan`` (also ``status`` and ``export``) only reads: DescribeCustomKeyStores, ListKeys,
  ListAliases, DescribeKey, ListResourceTags, sts:GetCallerIdentity (the plan file records
  the account it was made for; apply's account guard checks ``spec.account`` with it), and
  cloudtrail:LookupEvents (the last use of the keys a decommission would delete).
* ``apply`` reads the same, then writes: the custom key store operations, CreateKey and the key
  and alias operations.

Resource scoping follows what KMS supports: the custom key store operations, CreateKey, ListKeys
and ListAliases are not resource-scoped (KMS defines no custom key store resource type, and a
key does not exist before CreateKey), so they take ``"Resource": "*"``. Key operations are
scoped to the key ARNs of the account and region, and the writes to keys are further limited
with ``kms:KeyOrigin`` to keys in custom key stores (origin ``EXTERNAL_KEY_STORE`` or
``AWS_CLOUDHSM``), so the policy cannot change any other KMS key. CreateKey carries the same
condition: the tool can only create keys in custom key stores. DescribeKey stays unconditioned
because the reader must describe every key in the region to learn which store it belongs to
(KMS has no per-store listing). TagResource is scoped to key ARNs but not by origin: CreateKey
with tags is authorised with TagResource on the account's keys before the key exists.

Keys the tool creates get KMS's default key policy, which lets IAM policies of the account
grant access; keys created by hand with a custom key policy must allow the same actions there.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

PLAN, APPLY = "plan", "apply"
MODES = (PLAN, APPLY)

# Resource kinds
ANY = "*"
KEY = "key"
ALIAS_AND_KEY = "alias+key"
SERVICE_LINKED_ROLE = "service-linked-role"
LOCK_TABLE = "lock-table"

CUSTOM_KEY_STORE_ORIGINS = ["AWS_CLOUDHSM", "EXTERNAL_KEY_STORE"]
ORIGIN_CONDITION = {"StringEquals": {"kms:KeyOrigin": CUSTOM_KEY_STORE_ORIGINS}}
CKS_SERVICE = "cks.kms.amazonaws.com"
CKS_ROLE = "AWSServiceRoleForKeyManagementServiceCustomKeyStores"


@dataclass(frozen=True)
class Permission:
    action: str  # service:Operation
    mode: str  # the least mode that needs it: plan (reads, so apply too) or apply
    statement: str  # Sid of the statement it goes in
    resource: str  # ANY | KEY | ALIAS_AND_KEY | SERVICE_LINKED_ROLE | LOCK_TABLE
    why: str
    condition: dict[str, Any] | None = None
    recorded: bool = True  # False: KMS checks it on the caller's behalf; no call of the tool shows it


PERMISSIONS: tuple[Permission, ...] = (
    # -- reading the live state: plan, status, export, and apply (which plans first) -----------
    Permission("kms:DescribeCustomKeyStores", PLAN, "ReadCustomKeyStores", ANY,
               "every custom key store, in one paged call; apply also polls connection states"),
    Permission("kms:ListKeys", PLAN, "ReadCustomKeyStores", ANY,
               "KMS has no per-store listing, so the keys of the region are listed"),
    Permission("kms:ListAliases", PLAN, "ReadCustomKeyStores", ANY, "the aliases of the keys"),
    Permission("kms:DescribeKey", PLAN, "ReadKeys", KEY,
               "which store each key belongs to, its state and XksKeyId (every key of the region)"),
    Permission("kms:ListResourceTags", PLAN, "ReadKeys", KEY, "the tags of the keys in custom key stores"),
    Permission("cloudtrail:LookupEvents", PLAN, "ReadKeyUse", ANY,
               "evidence of use before a decommission schedules a key's deletion: each key's last "
               "cryptographic use, by its ARN, over CloudTrail's 90 days (LookupEvents supports no "
               "resource-level permissions)"),
    Permission("sts:GetCallerIdentity", PLAN, "ReadCallerIdentity", ANY,
               "the account a plan is made for (a saved plan is applied only there), and the account "
               "guard: apply refuses to run in an account other than spec.account (STS allows this call "
               "to every principal; listed for completeness)"),
    # -- apply ---------------------------------------------------------------------------------
    Permission("kms:CreateCustomKeyStore", APPLY, "ManageCustomKeyStores", ANY, "create_store"),
    Permission("kms:ConnectCustomKeyStore", APPLY, "ManageCustomKeyStores", ANY, "connect_store, repairs"),
    Permission("kms:DisconnectCustomKeyStore", APPLY, "ManageCustomKeyStores", ANY,
               "disconnect_store: offline updates, repairs, decommission"),
    Permission("kms:UpdateCustomKeyStore", APPLY, "ManageCustomKeyStores", ANY, "update_store"),
    Permission("kms:DeleteCustomKeyStore", APPLY, "ManageCustomKeyStores", ANY, "delete_store (decommission)"),
    Permission("kms:CreateKey", APPLY, "CreateKeysInCustomKeyStores", ANY,
               "create_key, only with origin EXTERNAL_KEY_STORE or AWS_CLOUDHSM", ORIGIN_CONDITION),
    Permission("kms:TagResource", APPLY, "TagKeys", KEY,
               "create_key tags the new key (authorised on the account's keys), update_key sets tags, "
               "start_quarantine tags each key of a quarantined store with the quarantine's start"),
    Permission("kms:UntagResource", APPLY, "ManageKeysInCustomKeyStores", KEY, "update_key removes tags, "
               "end_quarantine removes the quarantine's tag", ORIGIN_CONDITION),
    Permission("kms:EnableKey", APPLY, "ManageKeysInCustomKeyStores", KEY, "update_key, rescue", ORIGIN_CONDITION),
    Permission("kms:DisableKey", APPLY, "ManageKeysInCustomKeyStores", KEY, "create_key (enabled: false), update_key",
               ORIGIN_CONDITION),
    Permission("kms:UpdateKeyDescription", APPLY, "ManageKeysInCustomKeyStores", KEY, "update_key",
               ORIGIN_CONDITION),
    Permission("kms:ScheduleKeyDeletion", APPLY, "ManageKeysInCustomKeyStores", KEY,
               "schedule_key_deletion (decommission, with --allow-destroy)", ORIGIN_CONDITION),
    Permission("kms:CancelKeyDeletion", APPLY, "ManageKeysInCustomKeyStores", KEY,
               "cancel_key_deletion: rescue of a declared key pending deletion", ORIGIN_CONDITION),
    Permission("kms:CreateAlias", APPLY, "ManageAliases", ALIAS_AND_KEY,
               "create_alias (authorised on the alias and on the key)"),
    Permission("kms:UpdateAlias", APPLY, "ManageAliases", ALIAS_AND_KEY,
               "create_alias moving an alias between keys of a store"),
    # -- checked by KMS on the caller's behalf (CloudHSM key stores) ----------------------------
    Permission("cloudhsm:DescribeClusters", APPLY, "CloudHsmKeyStores", ANY,
               "KMS checks it when CreateCustomKeyStore or UpdateCustomKeyStore names a CloudHSM cluster",
               recorded=False),
    Permission("iam:CreateServiceLinkedRole", APPLY, "CloudHsmServiceLinkedRole", SERVICE_LINKED_ROLE,
               f"the first CloudHSM key store of an account creates the {CKS_ROLE} role",
               {"StringEquals": {"iam:AWSServiceName": CKS_SERVICE}}, recorded=False),
)

# With --lock-table NAME: the DynamoDB lock that keeps two applies from running at once.
LOCK_PERMISSIONS: tuple[Permission, ...] = tuple(
    Permission(f"dynamodb:{op}", APPLY, "ApplyLock", LOCK_TABLE, "the apply lock (--lock-table): a conditional put, read to name the holder, delete")
    for op in ("GetItem", "PutItem", "DeleteItem")
)


def permissions_for(mode: str, *, lock_table: str | None = None) -> list[Permission]:
    if mode not in MODES:
        raise ValueError(f"mode must be one of {', '.join(MODES)}")
    chosen = [p for p in PERMISSIONS if p.mode == PLAN or mode == APPLY]
    if lock_table and mode == APPLY:
        chosen += LOCK_PERMISSIONS
    return chosen


def actions_for(mode: str, *, lock_table: str | None = None) -> set[str]:
    return {p.action for p in permissions_for(mode, lock_table=lock_table)}


@dataclass(frozen=True)
class Scope:
    partition: str = "aws"
    region: str = "*"
    account: str = "*"
    lock_table: str | None = None

    def resources(self, kind: str) -> str | list[str]:
        kms = f"arn:{self.partition}:kms:{self.region}:{self.account}"
        if kind == ANY:
            return "*"
        if kind == KEY:
            return f"{kms}:key/*"
        if kind == ALIAS_AND_KEY:
            return [f"{kms}:alias/*", f"{kms}:key/*"]
        if kind == SERVICE_LINKED_ROLE:
            return f"arn:{self.partition}:iam::{self.account}:role/aws-service-role/{CKS_SERVICE}/{CKS_ROLE}"
        if kind == LOCK_TABLE:
            return f"arn:{self.partition}:dynamodb:{self.region}:{self.account}:table/{self.lock_table}"
        raise ValueError(kind)


def policy(mode: str, scope: Scope | None = None) -> dict[str, Any]:
    """The IAM policy document for ``mode``."""
    scope = scope or Scope()
    statements: dict[str, dict[str, Any]] = {}
    for perm in permissions_for(mode, lock_table=scope.lock_table):
        statement = statements.get(perm.statement)
        if statement is None:
            statement = {"Sid": perm.statement, "Effect": "Allow", "Action": [],
                         "Resource": scope.resources(perm.resource)}
            if perm.condition:
                statement["Condition"] = perm.condition
            statements[perm.statement] = statement
        elif statement.get("Condition") != perm.condition or statement["Resource"] != scope.resources(perm.resource):
            raise AssertionError(f"{perm.action}: statement {perm.statement} mixes resources or conditions")
        statement["Action"].append(perm.action)
    return {"Version": "2012-10-17", "Statement": list(statements.values())}


def render_json(mode: str, scope: Scope) -> str:
    return json.dumps(policy(mode, scope), indent=2) + "\n"


def render_text(mode: str, scope: Scope) -> str:
    rows = []
    for perm in permissions_for(mode, lock_table=scope.lock_table):
        resource = scope.resources(perm.resource)
        resource = ", ".join(resource) if isinstance(resource, list) else resource
        cond = ""
        if perm.condition:
            ((op, body),) = perm.condition.items()
            cond = "; ".join(f"{k} {op} {', '.join(v) if isinstance(v, list) else v}" for k, v in body.items())
        rows.append((perm.action, resource + (f" ({cond})" if cond else ""), perm.why))
    width = max(len(r[0]) for r in rows)
    lines = [f"Permissions of 'reconciler {mode}'" + (" (also status and export)" if mode == PLAN else "") + ":", ""]
    lines += [f"{action.ljust(width)}  {resource}\n{'':{width}}  - {why}" for action, resource, why in rows]
    return "\n".join(lines) + "\n"


RENDERERS = {"json": render_json, "text": render_text}
