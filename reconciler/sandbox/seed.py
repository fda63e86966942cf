"""Sandbox fixtures in moto's other backends: CloudHSM clusters and VPC endpoint services.

KMS checks a CloudHSM key store against its cluster (moto's cloudhsmv2 backend) and an external
key store with VPC_ENDPOINT_SERVICE connectivity against its VPC endpoint service (the sandbox's
own small backend, :mod:`reconciler.sandbox.vpce`). moto's own CreateCluster makes ids KMS rejects (uuids, where KMS wants
``cluster-[2-7a-zA-Z]{11,16}``), no HSMs and no trust anchor, so these helpers build the
objects directly. Ids come from the sandbox's seeded rng, so a seed gives the same ids.
"""

from __future__ import annotations

import datetime as _dt
from dataclasses import dataclass
from typing import Any, Sequence

from reconciler.sandbox.settings import current

_BASE32 = "abcdefghijklmnopqrstuvwxyz234567"
_HEX = "0123456789abcdef"


def _random(alphabet: str, length: int) -> str:
    rng = current().rng
    return "".join(rng.choice(alphabet) for _ in range(length))


def new_cluster_id() -> str:
    """``cluster-`` + 11 characters of [2-7a-z]: 19 characters, matching the KMS model's
    CloudHsmClusterIdType (min 19, max 24, pattern ``cluster-[2-7a-zA-Z]{11,16}``)."""
    return "cluster-" + _random(_BASE32, 11)


def _certificate_pair(common_name: str) -> tuple[str, str]:
    """A self-signed CA (the trust anchor, customerCA.crt) and a cluster certificate signed by it."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    start = current().clock.now().astimezone(_dt.timezone.utc)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, f"{common_name} customer CA")])
    ca = (
        x509.CertificateBuilder()
        .subject_name(ca_name)
        .issuer_name(ca_name)
        .public_key(ca_key.public_key())
        .serial_number(current().rng.getrandbits(64) | 1)
        .not_valid_before(start - _dt.timedelta(days=1))
        .not_valid_after(start + _dt.timedelta(days=3650))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(ca_key, hashes.SHA256())
    )
    cluster_key = ec.generate_private_key(ec.SECP256R1())
    cluster_cert = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)]))
        .issuer_name(ca_name)
        .public_key(cluster_key.public_key())
        .serial_number(current().rng.getrandbits(64) | 1)
        .not_valid_before(start - _dt.timedelta(days=1))
        .not_valid_after(start + _dt.timedelta(days=3650))
        .sign(ca_key, hashes.SHA256())
    )
    pem = serialization.Encoding.PEM
    return ca.public_bytes(pem).decode(), cluster_cert.public_bytes(pem).decode()


def new_trust_anchor(common_name: str) -> str:
    """A made-up trust anchor (customerCA.crt) PEM."""
    return _certificate_pair(common_name)[0]


def _cloudhsm_backend(account_id: str, region: str) -> Any:
    from moto.cloudhsmv2.models import cloudhsmv2_backends

    return cloudhsmv2_backends[account_id][region]


def _hsm(cluster_id: str, zone: str, subnet_id: str, state: str) -> dict[str, Any]:
    return {
        "AvailabilityZone": zone,
        "ClusterId": cluster_id,
        "SubnetId": subnet_id,
        "EniId": "eni-" + _random(_HEX, 17),
        "EniIp": f"10.0.{current().rng.randint(0, 255)}.{current().rng.randint(4, 254)}",
        "HsmId": "hsm-" + _random(_BASE32, 11),
        "HsmType": "hsm1.medium",
        "State": state,
        "StateMessage": "HSM is ready." if state == "ACTIVE" else state,
    }


def create_cloudhsm_cluster(
    account_id: str,
    region: str,
    cluster_id: str | None = None,
    *,
    hsm_count: int = 2,
    state: str = "ACTIVE",
    trust_anchor_pem: str | None = None,
    related_to: str | None = None,
    availability_zones: Sequence[str] | None = None,
) -> str:
    """Create an initialized CloudHSM cluster in moto's cloudhsmv2 backend; returns its id.

    ``hsm_count`` ACTIVE HSMs are spread over ``availability_zones`` (default ``<region>a``,
    ``<region>b``; one private subnet each). The trust anchor (``customerCA.crt``) is kept on
    moto's Cluster object as ``cluster.trust_anchor``; the cluster certificate it signs is in
    ``cluster.certificates["ClusterCertificate"]``. ``related_to=<cluster id>`` makes a cluster
    that shares that cluster's backup lineage (created from a backup of it): same cluster
    certificate and trust anchor, as CloudHsmClusterNotRelatedException describes.
    """
    from moto.cloudhsmv2.models import Backup, Cluster

    backend = _cloudhsm_backend(account_id, region)
    if cluster_id is None:
        cluster_id = new_cluster_id()
        while cluster_id in backend.clusters:  # the rng starts again from its seed in every process
            cluster_id = new_cluster_id()
    elif cluster_id in backend.clusters:
        raise ValueError(f"CloudHSM cluster {cluster_id} already exists")
    zones = list(availability_zones or (f"{region}a", f"{region}b"))
    subnets = {zone: "subnet-" + _random(_HEX, 17) for zone in zones}
    cluster = Cluster(
        backup_retention_policy={"Type": "DAYS", "Value": "90"},
        hsm_type="hsm1.medium",
        source_backup_id=None,
        subnet_ids=list(subnets.values()),
        region_name=region,
    )
    cluster.cluster_id = cluster_id
    cluster.state = state
    cluster.state_message = "The cluster is ready for use." if state == "ACTIVE" else state
    cluster.subnet_mapping = dict(subnets)
    cluster.vpc_id = "vpc-" + _random(_HEX, 17)
    cluster.create_timestamp = current().clock.now()

    if related_to is not None:
        source = backend.clusters[related_to]
        backup = Backup(
            cluster_id=related_to,
            hsm_type=source.hsm_type,
            mode=getattr(source, "mode", "DEFAULT"),
            tag_list=None,
            region_name=region,
        )
        backend.backups[backup.backup_id] = backup
        cluster.source_backup_id = backup.backup_id
        cluster.certificates = dict(source.certificates)
        cluster.trust_anchor = getattr(source, "trust_anchor", None)
        if trust_anchor_pem is not None:
            cluster.trust_anchor = trust_anchor_pem
    else:
        anchor, cluster_certificate = _certificate_pair(cluster_id)
        cluster.trust_anchor = trust_anchor_pem or anchor
        cluster.certificates = dict(cluster.certificates)
        cluster.certificates["ClusterCertificate"] = cluster_certificate

    cluster.hsms = [
        _hsm(cluster_id, zones[i % len(zones)], subnets[zones[i % len(zones)]], "ACTIVE")
        for i in range(hsm_count)
    ]
    backend.clusters[cluster_id] = cluster
    return cluster_id


def find_cloudhsm_cluster(account_id: str, region: str, cluster_id: str) -> Any | None:
    return _cloudhsm_backend(account_id, region).clusters.get(cluster_id)


def get_cloudhsm_cluster(account_id: str, region: str, cluster_id: str) -> Any:
    """moto's Cluster object (to change ``state``, ``hsms`` ... in a test)."""
    return _cloudhsm_backend(account_id, region).clusters[cluster_id]


def trust_anchor(account_id: str, region: str, cluster_id: str) -> str:
    """The cluster's trust anchor certificate (PEM), what CreateCustomKeyStore needs."""
    return get_cloudhsm_cluster(account_id, region, cluster_id).trust_anchor


def set_active_hsms(account_id: str, region: str, cluster_id: str, count: int) -> None:
    """Make the cluster have exactly ``count`` ACTIVE HSMs (spread over its subnets)."""
    cluster = get_cloudhsm_cluster(account_id, region, cluster_id)
    zones = list(cluster.subnet_mapping) or [f"{region}a"]
    cluster.hsms = [
        _hsm(cluster_id, zones[i % len(zones)], cluster.subnet_mapping.get(zones[i % len(zones)], ""), "ACTIVE")
        for i in range(count)
    ]


def delete_cloudhsm_cluster(account_id: str, region: str, cluster_id: str) -> None:
    _cloudhsm_backend(account_id, region).clusters.pop(cluster_id, None)


# ---------------------------------------------------------------------------------------------
# VPC endpoint services
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class VpcEndpointService:
    """What a test needs to create an external key store with VPC_ENDPOINT_SERVICE connectivity."""

    service_name: str  # XksProxyVpcEndpointServiceName
    service_id: str
    owner: str  # XksProxyVpcEndpointServiceOwner
    private_dns_name: str | None

    @property
    def uri_endpoint(self) -> str:
        """XksProxyUriEndpoint: https:// followed by the private DNS name."""
        return f"https://{self.private_dns_name}"


def _endpoint_services(account_id: str, region: str) -> dict[str, Any]:
    from reconciler.sandbox.vpce import endpoint_service_backends

    return endpoint_service_backends[account_id][region].configurations


def create_vpc_endpoint_service(
    account_id: str,
    region: str,
    service_name: str | None = None,
    *,
    private_dns_name: str | None = None,
    acceptance_required: bool = False,
    allowed_principals: Sequence[str] | None = None,
    availability_zones: Sequence[str] | None = None,
    private_dns_verified: bool = True,
    gateway: bool = False,
) -> VpcEndpointService:
    """Create a VPC endpoint service (:mod:`reconciler.sandbox.vpce`) that fulfils the external
    key store requirements (XKS_VPC_ENDPOINT_SERVICE_INVALID_CONFIGURATION lists them) unless
    told otherwise: an interface endpoint service (``gateway=False``) with a network load
    balancer in two Availability Zones, the KMS service principal
    ``cks.kms.<region>.amazonaws.com`` allowed (``allowed_principals``), no acceptance required,
    and a verified private DNS name (default ``<service id>.xks.example.com``; pass ``""`` for none).
    A service of that name that already exists is replaced.
    """
    from reconciler.sandbox.vpce import EndpointServiceConfiguration

    configurations = _endpoint_services(account_id, region)
    if service_name is not None:
        service_id = service_name.rsplit(".", 1)[-1]
    else:
        service_id = "vpce-svc-" + _random(_HEX, 17)
        while service_id in configurations:  # the rng starts again from its seed in every process
            service_id = "vpce-svc-" + _random(_HEX, 17)
        service_name = f"com.amazonaws.vpce.{region}.{service_id}"
    if private_dns_name is None:
        private_dns_name = f"{service_id}.xks.example.com"
    lb_arn = (
        f"arn:aws:elasticloadbalancing:{region}:{account_id}:loadbalancer/"
        f"{'gwy' if gateway else 'net'}/xks-proxy/{_random(_HEX, 16)}"
    )
    configurations[service_id] = EndpointServiceConfiguration(
        id=service_id,
        service_name=service_name,
        region=region,
        private_dns_name=private_dns_name or None,
        endpoint_dns_name=f"{service_id}.{region}.vpce.amazonaws.com",
        acceptance_required=acceptance_required,
        availability_zones=list(availability_zones or (f"{region}a", f"{region}b")),
        network_load_balancer_arns=[] if gateway else [lb_arn],
        gateway_load_balancer_arns=[lb_arn] if gateway else [],
        service_type="Gateway" if gateway else "Interface",
        principals=list(
            allowed_principals if allowed_principals is not None else [f"cks.kms.{region}.amazonaws.com"]
        ),
        private_dns_state="verified" if private_dns_verified else "pendingVerification",
    )
    return VpcEndpointService(
        service_name=service_name,
        service_id=service_id,
        owner=account_id,
        private_dns_name=private_dns_name or None,
    )


def find_vpc_endpoint_service(account_id: str, region: str, service_name: str) -> Any | None:
    from reconciler.sandbox.backend import find_vpc_endpoint_service as find

    return find(account_id, region, service_name)


def get_vpc_endpoint_service(account_id: str, region: str, service_id: str) -> Any:
    """The service's configuration object (to change it in a test)."""
    return _endpoint_services(account_id, region)[service_id]


def delete_vpc_endpoint_service(account_id: str, region: str, service_id: str) -> None:
    _endpoint_services(account_id, region).pop(service_id, None)
