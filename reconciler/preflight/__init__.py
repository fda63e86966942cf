"""Preflight: check the XKS proxies a plan will make KMS call, before KMS is asked to.

For every external key store whose steps create it, connect it, or change its endpoint, path or
credential, :func:`annotate` checks, as KMS would find out minutes later: DNS; TLS (1.2 or later,
the chain, the host name, an expiry within 30 days warns); health signed with the manifest's
credential (for a rotation: the new credential, before the update is sent); latency against
KMS's 250 ms (median and worst of several calls); the EKM fleet (all UNAVAILABLE fails, DEGRADED
warns); GetKeyMetadata of every declared xksKeyId. Each result names the ConnectionErrorCode or
exception KMS would give and its fix. A proxy the runner cannot reach by design (a VPC endpoint
service) is "not checked", not failed.

The results annotate the plan (``Plan.preflight``), computed outside the planner; apply refuses a
plan with a failed check unless ``--skip-preflight`` (:mod:`reconciler.apply.guards`). A plan
whose steps need no check costs nothing: no connection, no import of the client.
"""

from reconciler.preflight.run import annotate, check_all, stores_to_check

__all__ = ["annotate", "check_all", "stores_to_check"]
