"""KMS's default request quotas: requests per second per account and Region, per operation.

From the KMS Developer Guide's "Request quotas" table (docs/kms-rules.md, "Request quotas").
Operations not listed are not limited here. A tiny neutral module: the product's rate limiter
(reconciler.aws.ratelimit) and the emulator (reconciler.sandbox.settings) both read it, and it imports
nothing, so neither depends on the other through it.
"""

from __future__ import annotations

KMS_DEFAULT_QUOTAS: dict[str, float] = {
    "DescribeKey": 2000,
    "ListKeys": 500,
    "ListAliases": 500,
    "ListResourceTags": 2000,
    "GetKeyPolicy": 1000,
    "DescribeCustomKeyStores": 5,
    "CreateCustomKeyStore": 5,
    "ConnectCustomKeyStore": 5,
    "DisconnectCustomKeyStore": 5,
    "UpdateCustomKeyStore": 5,
    "DeleteCustomKeyStore": 5,
    "CreateKey": 5,
    "ScheduleKeyDeletion": 15,
    "CancelKeyDeletion": 5,
    "CreateAlias": 5,
    "UpdateAlias": 5,
    "DeleteAlias": 15,
    "TagResource": 10,
    "UntagResource": 5,
    "EnableKey": 5,
    "DisableKey": 5,
    "UpdateKeyDescription": 5,
}
