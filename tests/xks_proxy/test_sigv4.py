"""SigV4 verification against botocore's signer: what KMS signs, what curl signs, what must fail."""

from __future__ import annotations

import json
from datetime import timedelta

import pytest

from reconciler.sandbox.xks_proxy import Request, XksProxy, sigv4
from tests.xks_proxy.helpers import (AKID, AKID_2, NOW, SECRET, SECRET_64, URI_PATH, botocore_headers,
                                     handle_signed, make_config, signing_at)

HEALTH = {"requestMetadata": {"kmsRequestId": "r-1", "kmsOperation": "KmsHealthCheck"}}


@pytest.fixture
def proxy() -> XksProxy:
    return XksProxy(make_config(), clock=lambda: NOW)


def auth_error(response) -> str:
    assert response.status == 401, response.body
    body = response.json()
    assert body["errorName"] == "AuthenticationFailedException"
    return body["errorMessage"]


def test_a_request_signed_by_botocore_is_accepted(proxy: XksProxy) -> None:
    response = handle_signed(proxy, "/health", HEALTH)
    assert response.status == 200, response.body
    assert proxy.calls[-1].access_key_id == AKID


def test_kms_style_signing_of_host_and_x_amz_date_only(proxy: XksProxy) -> None:
    """KMS signs host;x-amz-date: the proxy verifies exactly the headers SignedHeaders lists."""
    body = json.dumps(HEALTH).encode()
    with signing_at(NOW):
        headers = botocore_headers(f"https://xks.example.com{URI_PATH}/health", body, headers={})
    assert "SignedHeaders=host;x-amz-date," in dict(headers)["Authorization"]
    headers.append(("Content-Type", "application/json"))  # sent, not signed
    response = proxy.handle(Request("POST", URI_PATH + "/health", tuple(headers), body))
    assert response.status == 200, response.body


def test_two_credentials_are_live_at_once_one_with_a_64_character_secret(proxy: XksProxy) -> None:
    assert len(SECRET_64) == 64 and len(AKID_2) == 30
    assert handle_signed(proxy, "/health", HEALTH, akid=AKID, secret=SECRET).status == 200
    assert handle_signed(proxy, "/health", HEALTH, akid=AKID_2, secret=SECRET_64).status == 200
    assert [c.access_key_id for c in list(proxy.calls)[-2:]] == [AKID, AKID_2]
    # each secret works with its own access key id only
    assert "signature does not match" in auth_error(handle_signed(proxy, "/health", HEALTH, akid=AKID,
                                                                  secret=SECRET_64))


def test_a_rotation_at_runtime(proxy: XksProxy) -> None:
    proxy.set_credentials([(AKID_2, SECRET_64)])
    assert "access key id ABCDEFGHIJKLMNOPQRST2345 is not one the proxy accepts" in auth_error(
        handle_signed(proxy, "/health", HEALTH))
    assert handle_signed(proxy, "/health", HEALTH, akid=AKID_2, secret=SECRET_64).status == 200


@pytest.mark.parametrize("offset, accepted", [
    (timedelta(minutes=4, seconds=59), True),
    (-timedelta(minutes=4, seconds=59), True),
    (timedelta(minutes=5, seconds=1), False),
    (-timedelta(minutes=5, seconds=1), False),
    (timedelta(hours=3), False),
])
def test_clock_skew_of_at_most_five_minutes(proxy: XksProxy, offset: timedelta, accepted: bool) -> None:
    response = handle_signed(proxy, "/health", HEALTH, when=NOW + offset)
    if accepted:
        assert response.status == 200, response.body
    else:
        assert "seconds from the proxy's clock" in auth_error(response)


def test_the_proxy_clock_is_injected_not_the_wall_clock() -> None:
    clock = [NOW - timedelta(days=400)]
    proxy = XksProxy(make_config(), clock=lambda: clock[0])
    assert handle_signed(proxy, "/health", HEALTH, when=NOW).status == 401
    clock[0] = NOW + timedelta(seconds=30)
    assert handle_signed(proxy, "/health", HEALTH, when=NOW).status == 200


def _tamper(request: Request, **changes) -> Request:
    return Request(changes.get("method", request.method), changes.get("target", request.target),
                   changes.get("headers", request.headers), changes.get("body", request.body))


def _signed(body: bytes = json.dumps(HEALTH).encode(), **kwargs) -> Request:
    with signing_at(NOW):
        headers = botocore_headers(f"https://xks.example.com{URI_PATH}/health", body, **kwargs)
    return Request("POST", URI_PATH + "/health", tuple(headers), body)


def _replace_header(request: Request, name: str, value: str | None) -> Request:
    headers = tuple((k, v) for k, v in request.headers if k.lower() != name.lower())
    return _tamper(request, headers=headers + (((name, value),) if value is not None else ()))


@pytest.mark.parametrize("change, message", [
    (lambda r: _tamper(r, body=r.body.replace(b"r-1", b"r-2")), "signature does not match"),
    (lambda r: _replace_header(r, "Host", "other.example.com"), "signature does not match"),
    (lambda r: _replace_header(r, "Content-Type", "text/plain"), "signature does not match"),
    (lambda r: _replace_header(r, "Authorization", None), "it has no Authorization header"),
    (lambda r: _replace_header(r, "Authorization", "Basic dXNlcjpwYXNz"), "not an AWS Signature Version 4"),
    (lambda r: _replace_header(r, "Authorization", "AWS4-HMAC-SHA256 garbage"), "malformed"),
    (lambda r: _replace_header(r, "Authorization",
                               dict(r.headers)["Authorization"].replace(AKID, "UNKNOWNUNKNOWNUNKNOWN")),
     "access key id UNKNOWNUNKNOWNUNKNOWN is not one the proxy accepts"),
    (lambda r: _replace_header(r, "Authorization", dict(r.headers)["Authorization"].replace("host;", "")),
     "SignedHeaders must include host"),
    (lambda r: _replace_header(r, "X-Amz-Date", None), "signed header(s) x-amz-date are not in the request"),
    (lambda r: _replace_header(r, "X-Amz-Date", "yesterday"), "X-Amz-Date is not a UTC time"),
    (lambda r: _replace_header(r, "X-Amz-Date", "20251231T120000Z"), "is not the date of X-Amz-Date"),
    (lambda r: _replace_header(r, "X-Amz-Content-SHA256", "UNSIGNED-PAYLOAD"), "unsigned payloads are not accepted"),
    (lambda r: _tamper(r, headers=r.headers + (("Authorization", dict(r.headers)["Authorization"]),)),
     "more than one Authorization header"),
])
def test_garbled_or_tampered_requests_fail_authentication(proxy: XksProxy, change, message: str) -> None:
    response = proxy.handle(change(_signed()))
    assert message in auth_error(response)


def test_a_request_signed_for_another_service_fails(proxy: XksProxy) -> None:
    assert "signed for the service 'kms'" in auth_error(proxy.handle(_signed(service="kms")))


def test_any_region_is_accepted_since_kms_signs_with_its_own(proxy: XksProxy) -> None:
    assert proxy.handle(_signed(region="eu-west-1")).status == 200


def test_no_secret_in_any_answer_or_call_record(proxy: XksProxy) -> None:
    responses = [handle_signed(proxy, "/health", HEALTH, secret=SECRET_64), handle_signed(proxy, "/health", HEALTH)]
    for text in [r.body.decode() for r in responses] + [repr(list(proxy.calls)), repr(proxy.config)]:
        assert SECRET not in text and SECRET_64 not in text


def test_the_client_signer_matches_botocore_byte_for_byte() -> None:
    body = json.dumps(HEALTH).encode()
    url = f"https://xks.example.com:8443{URI_PATH}/health"
    with signing_at(NOW):
        expected = dict(botocore_headers(url, body))
    ours = dict(sigv4.sign("POST", URI_PATH + "/health", [("Host", "xks.example.com:8443"),
                                                          ("Content-Type", "application/json")],
                           body, access_key_id=AKID, secret=SECRET, region="us-east-1", now=NOW))
    assert ours["Authorization"] == expected["Authorization"]
    assert ours["X-Amz-Date"] == expected["X-Amz-Date"] == "20260101T120000Z"
