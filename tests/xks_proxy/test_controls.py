"""Runtime controls: EKM fleet health, latency and injected errors."""

from __future__ import annotations

import pytest

from reconciler.sandbox.xks_proxy import XksProxy
from tests.xks_proxy.helpers import NOW, handle_signed, make_config, metadata

HEALTH = {"requestMetadata": {"kmsRequestId": "r", "kmsOperation": "KmsHealthCheck"}}
DESCRIBE = {"requestMetadata": metadata("DescribeKey")}


@pytest.fixture
def slept() -> list[float]:
    return []


@pytest.fixture
def proxy(slept: list[float]) -> XksProxy:
    return XksProxy(make_config(latencyMs={"encrypt": 40}), clock=lambda: NOW, sleep=slept.append)


def statuses(proxy: XksProxy) -> list[str]:
    return [m["healthStatus"] for m in handle_signed(proxy, "/health", HEALTH).json()["ekmFleetDetails"]]


def test_fleet_health_changes_per_member_and_for_all(proxy: XksProxy) -> None:
    proxy.controls.set_health("DEGRADED", "hsm-2")
    assert statuses(proxy) == ["ACTIVE", "DEGRADED"]
    proxy.controls.set_health("UNAVAILABLE")
    assert statuses(proxy) == ["UNAVAILABLE", "UNAVAILABLE"]
    with pytest.raises(ValueError, match="no EKM fleet member 'hsm-9'; the fleet is hsm-1, hsm-2"):
        proxy.controls.set_health("ACTIVE", "hsm-9")
    with pytest.raises(ValueError, match="unknown health status 'DOWN'"):
        proxy.controls.set_health("DOWN")


def test_a_fleet_entirely_unavailable_fails_key_calls_but_answers_health(proxy: XksProxy) -> None:
    proxy.controls.set_health("UNAVAILABLE", "hsm-1")
    assert handle_signed(proxy, "/keys/aes-key/metadata", DESCRIBE).status == 200  # one member left
    proxy.controls.set_health("UNAVAILABLE", "hsm-2")
    response = handle_signed(proxy, "/keys/aes-key/metadata", DESCRIBE)
    assert (response.status, response.json()["errorName"]) == (500, "InternalException")
    assert handle_signed(proxy, "/health", HEALTH).status == 200


def test_the_fleet_from_the_configuration() -> None:
    proxy = XksProxy(make_config(ekm={"fleet": [{"id": "a", "healthStatus": "DEGRADED"}]}), clock=lambda: NOW)
    assert statuses(proxy) == ["DEGRADED"]


def test_latency_per_call_kind_from_the_configuration_and_at_runtime(proxy: XksProxy, slept: list[float]) -> None:
    handle_signed(proxy, "/health", HEALTH)
    assert slept == []
    handle_signed(proxy, "/keys/aes-key/encrypt", {})
    assert slept == [0.04]  # even a request that then fails validation waits
    proxy.controls.set_latency(300, "health")
    handle_signed(proxy, "/health", HEALTH)
    assert slept == [0.04, 0.3]
    proxy.controls.set_latency(0)
    handle_signed(proxy, "/keys/aes-key/encrypt", {})
    assert slept == [0.04, 0.3]
    with pytest.raises(ValueError, match="unknown call kind 'sign'"):
        proxy.controls.set_latency(5, "sign")


def test_an_injected_error_for_a_call_kind(proxy: XksProxy) -> None:
    proxy.controls.inject_error("ThrottlingException", kind="health")
    response = handle_signed(proxy, "/health", HEALTH)
    assert (response.status, response.json()["errorName"]) == (429, "ThrottlingException")
    assert handle_signed(proxy, "/keys/aes-key/metadata", DESCRIBE).status == 200
    proxy.controls.clear_errors()
    assert handle_signed(proxy, "/health", HEALTH).status == 200


def test_an_injected_error_for_a_key_leaves_other_keys_and_health_alone(proxy: XksProxy) -> None:
    proxy.controls.inject_error("AccessDeniedException", key_id="aes-key")
    assert handle_signed(proxy, "/keys/aes-key/metadata", DESCRIBE).status == 403
    assert handle_signed(proxy, "/keys/rsa-key/metadata", DESCRIBE).status == 200
    assert handle_signed(proxy, "/health", HEALTH).status == 200


def test_a_counted_injection_expires_and_the_latest_wins(proxy: XksProxy) -> None:
    forever = proxy.controls.inject_error("InternalException")
    proxy.controls.inject_error("DependencyTimeoutException", count=2)
    codes = [handle_signed(proxy, "/health", HEALTH).status for _ in range(3)]
    assert codes == [503, 503, 500]
    proxy.controls.clear_errors(forever)
    assert proxy.controls.injected_errors() == []
    assert handle_signed(proxy, "/health", HEALTH).status == 200


def test_injections_need_authentication_first(proxy: XksProxy) -> None:
    proxy.controls.inject_error("InternalException")
    response = handle_signed(proxy, "/health", HEALTH, secret="w" * 43)
    assert response.json()["errorName"] == "AuthenticationFailedException"


def test_injection_arguments_are_checked(proxy: XksProxy) -> None:
    with pytest.raises(ValueError, match="unknown errorName 'Boom'"):
        proxy.controls.inject_error("Boom")
    with pytest.raises(ValueError, match="count is a positive number"):
        proxy.controls.inject_error("InternalException", count=0)
