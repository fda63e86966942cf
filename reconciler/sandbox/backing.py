"""What a custom key store depends on outside KMS: CloudHSM clusters and VPC endpoint services.

The emulator reads them from moto's ``cloudhsmv2`` backend and from its own endpoint services
(:mod:`.vpce`; ``reconciler sandbox seed-cluster`` and ``seed-endpoint-service`` create them),
and checks them as KMS does when a store is created, updated or connected (docs/kms-rules.md,
"What a store depends on").
"""

from __future__ import annotations

from typing import Any


def find_cluster(account_id: str, region: str, cluster_id: str) -> Any | None:
    from moto.cloudhsmv2.models import cloudhsmv2_backends

    try:
        return cloudhsmv2_backends[account_id][region].clusters.get(cluster_id)
    except KeyError:
        return None


def active_hsms(cluster: Any) -> list[dict[str, Any]]:
    return [h for h in (cluster.hsms or []) if h.get("State", "ACTIVE") == "ACTIVE"]


def active_hsm_zones(cluster: Any) -> set[str]:
    return {h.get("AvailabilityZone", h.get("HsmId", "")) for h in active_hsms(cluster)}


def cluster_configuration_problem(cluster: Any, *, min_active_hsms: int) -> str | None:
    """CloudHsmClusterInvalidConfigurationException: "The CloudHSM cluster must be configured
    with private subnets in at least two different Availability Zones" and "For the
    CreateCustomKeyStore, UpdateCustomKeyStore, and CreateKey operations, the CloudHSM cluster
    must have at least two active HSMs, each in a different Availability Zone. For the
    ConnectCustomKeyStore operation, the CloudHSM must contain at least one active HSM."
    """
    if len(set((cluster.subnet_mapping or {}).keys())) < 2:
        return (
            f"CloudHSM cluster {cluster.cluster_id} must be configured with private subnets in "
            "at least two different Availability Zones in the Region."
        )
    if min_active_hsms >= 2 and len(active_hsm_zones(cluster)) < 2:
        return (
            f"CloudHSM cluster {cluster.cluster_id} must have at least two active HSMs, each in "
            "a different Availability Zone."
        )
    if len(active_hsms(cluster)) < min_active_hsms:
        return f"CloudHSM cluster {cluster.cluster_id} must contain at least one active HSM."
    return None


def cluster_certificate(cluster: Any) -> str | None:
    return (getattr(cluster, "certificates", None) or {}).get("ClusterCertificate") or None


def normalise_pem(text: str | None) -> str:
    return "\n".join(line.strip() for line in (text or "").strip().splitlines() if line.strip())


def find_vpc_endpoint_service(owner_account_id: str, region: str, service_name: str) -> Any | None:
    from reconciler.sandbox.vpce import endpoint_service_backends

    try:
        configurations = endpoint_service_backends[owner_account_id][region].configurations
    except KeyError:
        return None
    for configuration in configurations.values():
        if configuration.service_name == service_name:
            return configuration
    return None


def kms_service_principal(region: str) -> str:
    return f"cks.kms.{region}.amazonaws.com"


def vpc_service_visible_to_kms(configuration: Any, region: str) -> bool:
    """XksProxyVpcEndpointServiceNotFoundException: "confirm that the Allow principals list for the
    VPC endpoint service includes the KMS service principal for the Region"."""
    principals = set(configuration.principals)
    return "*" in principals or kms_service_principal(region) in principals


def vpc_service_configuration_problem(
    configuration: Any, uri_endpoint: str | None
) -> str | None:
    """The requirements listed under XKS_VPC_ENDPOINT_SERVICE_INVALID_CONFIGURATION
    (CustomKeyStoresListEntry.ConnectionErrorCode) and the XksProxyUriEndpoint doc ("specify
    https:// followed by the private DNS name of the VPC endpoint service")."""
    name = configuration.service_name
    if configuration.service_type != "Interface" or configuration.gateway_load_balancer_arns:
        return f"VPC endpoint service {name} must be an endpoint service for interface endpoints."
    zones = set(configuration.availability_zones)
    if not configuration.network_load_balancer_arns or len(zones) < 2:
        return (
            f"VPC endpoint service {name} must have a network load balancer connected to at "
            "least two subnets, each in a different Availability Zone."
        )
    if configuration.acceptance_required:
        return f"VPC endpoint service {name} must not require acceptance of connection requests."
    private_dns_name = configuration.private_dns_name
    if not private_dns_name:
        return f"VPC endpoint service {name} must have a private DNS name."
    if configuration.private_dns_state != "verified":
        return (
            f"The domain of the private DNS name of VPC endpoint service {name} must have a "
            "verification status of verified."
        )
    if uri_endpoint is not None and uri_endpoint.lower() != f"https://{private_dns_name}".lower():
        return (
            "The XksProxyUriEndpoint of an external key store with VPC_ENDPOINT_SERVICE "
            f"connectivity must be https:// followed by the private DNS name of VPC endpoint "
            f"service {name}."
        )
    return None
