"""VPC endpoint services as the emulator sees them: a small backend of its own.

An external key store with VPC_ENDPOINT_SERVICE connectivity names an Amazon VPC endpoint service,
and KMS checks it (the XKS_VPC_ENDPOINT_SERVICE_INVALID_CONFIGURATION requirements). The emulator
keeps those services here, in a moto ``BackendDict`` (so ``mock_aws`` resets them with every other
backend) instead of in moto's EC2 backend: importing and instantiating moto's EC2 emulation takes
seconds (it loads every instance type, region and AMI), which every ``--sandbox`` command would
pay. Only the fields KMS looks at are kept.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from moto.core.base_backend import BackendDict, BaseBackend


@dataclass
class EndpointServiceConfiguration:
    """The fields of an EC2 ServiceConfiguration that KMS's checks read."""

    id: str
    service_name: str
    region: str
    private_dns_name: str | None
    endpoint_dns_name: str
    acceptance_required: bool = False
    availability_zones: list[str] = field(default_factory=list)
    network_load_balancer_arns: list[str] = field(default_factory=list)
    gateway_load_balancer_arns: list[str] = field(default_factory=list)
    service_type: str = "Interface"  # Interface | Gateway
    principals: list[str] = field(default_factory=list)  # allowed principals
    private_dns_state: str = "verified"  # verified | pendingVerification | failed


class EndpointServicesBackend(BaseBackend):
    def __init__(self, region_name: str, account_id: str) -> None:
        super().__init__(region_name, account_id)
        self.configurations: dict[str, EndpointServiceConfiguration] = {}


# the regions are KMS's (asking botocore for EC2's would parse EC2's whole API model)
endpoint_service_backends = BackendDict(EndpointServicesBackend, "kms")
