"""ConnectionErrorCode values and their documented fixes (KMS API Reference,
CustomKeyStoresListEntry.ConnectionErrorCode)."""

from __future__ import annotations

FIXES: dict[str, str] = {
    "INTERNAL_ERROR": "KMS could not complete the request due to an internal error; retry (the store is disconnected before connecting again)",
    "NETWORK_ERRORS": "network errors are preventing KMS from connecting; check the cluster's or proxy's network configuration, then retry",
    "CLUSTER_NOT_FOUND": "KMS cannot find the CloudHSM cluster with the specified cluster ID; check spec.cloudHsm.clusterId",
    "INSUFFICIENT_CLOUDHSM_HSMS": "the CloudHSM cluster needs at least one active HSM (two in different Availability Zones to create keys); add HSMs, then retry",
    "INSUFFICIENT_FREE_ADDRESSES_IN_SUBNET": "a subnet of the cluster has no free IP address; delete unused network interfaces or use a larger subnet",
    "INVALID_CREDENTIALS": "for CloudHSM, the kmsuser password in KMS does not match the cluster: set spec.cloudHsm.keyStorePassword to the current password; for XKS, the proxy rejects the credential: set spec.xks.credential to a credential the proxy accepts",
    "SUBNET_NOT_FOUND": "a subnet of the CloudHSM cluster configuration was deleted; create a subnet in that Availability Zone and retry",
    "USER_LOCKED_OUT": "the kmsuser account is locked out of the CloudHSM cluster after too many failed password attempts; reset the kmsuser password in the cluster and update spec.cloudHsm.keyStorePassword",
    "USER_LOGGED_IN": "kmsuser is logged into the CloudHSM cluster; log kmsuser out of the cluster, then retry",
    "USER_NOT_FOUND": "KMS cannot find a kmsuser crypto user in the CloudHSM cluster; create kmsuser (CU) in the cluster, then retry",
    "XKS_PROXY_ACCESS_DENIED": "the external key store proxy denied access to KMS; check the proxy's authorization configuration",
    "XKS_PROXY_INVALID_CONFIGURATION": "a configuration error prevents the proxy from processing requests; check spec.xks.uriPath and the proxy configuration",
    "XKS_PROXY_INVALID_RESPONSE": "KMS cannot interpret the proxy's response; check the proxy and its logs",
    "XKS_PROXY_INVALID_TLS_CONFIGURATION": "the proxy's TLS configuration is not valid: it must support TLS 1.2 or 1.3 and present a valid certificate from a public CA that matches spec.xks.uriEndpoint",
    "XKS_PROXY_NOT_REACHABLE": "KMS cannot communicate with the external key store proxy; check spec.xks.uriEndpoint and uriPath, and that the proxy is up",
    "XKS_PROXY_TIMED_OUT": "KMS can reach the proxy but it does not answer in time; check the proxy's performance and network",
    "XKS_VPC_ENDPOINT_SERVICE_INVALID_CONFIGURATION": "the VPC endpoint service is misconfigured: a Network Load Balancer in at least two Availability Zones, the KMS service principal allowed, no acceptance required, and a verified private DNS name matching spec.xks.uriEndpoint",
    "XKS_VPC_ENDPOINT_SERVICE_NOT_FOUND": "KMS cannot find the VPC endpoint service; check spec.xks.vpcEndpointServiceName",
}


def fix_for(code: str | None) -> str:
    if not code:
        return "see the KMS documentation on connection errors"
    return FIXES.get(code, "see the KMS documentation for this ConnectionErrorCode")
