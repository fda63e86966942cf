"""AWS Signature Version 4 for the XKS proxy API: signing (the client) and verifying (the proxy).

KMS signs every proxy request with the store's XksProxyAuthenticationCredential, used directly as
an access key id and secret access key, for the service ``kms-xks-proxy`` in KMS's region.
The proxy rebuilds the canonical request over whatever headers ``SignedHeaders`` lists (KMS signs
``host;x-amz-date``, curl's ``--aws-sigv4`` also ``content-type``), checks the payload hash and
that the request time is within five minutes of its own clock, and compares signatures in
constant time. botocore signs but has no verifier, hence this module (tests check both
directions against botocore's ``SigV4Auth`` and curl).
"""

from __future__ import annotations

import hashlib
import hmac
import re
from datetime import datetime, timedelta, timezone
from typing import Mapping, Sequence
from urllib.parse import parse_qsl, quote

from pydantic import SecretStr

from reconciler.sandbox.xks_proxy.errors import XksError

SERVICE = "kms-xks-proxy"
ALGORITHM = "AWS4-HMAC-SHA256"
MAX_SKEW = timedelta(minutes=5)
AMZ_DATE_FORMAT = "%Y%m%dT%H%M%SZ"

Headers = Sequence[tuple[str, str]]

_AUTHORIZATION = re.compile(r"AWS4-HMAC-SHA256\s+(?P<params>.*)", re.DOTALL)
_SCOPE = re.compile(r"(?P<akid>[^/]+)/(?P<date>\d{8})/(?P<region>[^/]+)/(?P<service>[^/]+)/aws4_request")


def _sha256_hex(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _hmac(key: bytes, text: str) -> bytes:
    return hmac.new(key, text.encode("utf-8"), hashlib.sha256).digest()


def header_values(headers: Headers, name: str) -> list[str]:
    """Every value of header ``name`` (case-insensitive), in the order received."""
    lowered = name.lower()
    return [value for key, value in headers if key.lower() == lowered]


def canonical_uri(path: str) -> str:
    """The path as botocore and KMS canonicalise it for services other than S3."""
    return quote(path or "/", safe="/~")


def canonical_query(query: str) -> str:
    pairs = parse_qsl(query, keep_blank_values=True)
    encoded = sorted((quote(k, safe="-_.~"), quote(v, safe="-_.~")) for k, v in pairs)
    return "&".join(f"{k}={v}" for k, v in encoded)


def canonical_request(method: str, path: str, query: str, headers: Headers, signed_headers: Sequence[str],
                      payload_hash: str) -> str:
    lines = [method.upper(), canonical_uri(path), canonical_query(query)]
    for name in signed_headers:
        values = (" ".join(v.split()) for v in header_values(headers, name))
        lines.append(f"{name}:{','.join(values)}")
    lines += ["", ";".join(signed_headers), payload_hash]
    return "\n".join(lines)


def signature(secret: str, amz_date: str, region: str, service: str, canonical: str) -> str:
    date = amz_date[:8]
    scope = f"{date}/{region}/{service}/aws4_request"
    to_sign = "\n".join([ALGORITHM, amz_date, scope, _sha256_hex(canonical.encode("utf-8"))])
    key = _hmac(("AWS4" + secret).encode("utf-8"), date)
    for part in (region, service, "aws4_request"):
        key = _hmac(key, part)
    return hmac.new(key, to_sign.encode("utf-8"), hashlib.sha256).hexdigest()


def sign(method: str, path: str, headers: Headers, body: bytes, *, access_key_id: str, secret: SecretStr | str,
         region: str, now: datetime, query: str = "", service: str = SERVICE) -> list[tuple[str, str]]:
    """The headers to add to a request (``X-Amz-Date``, ``Authorization``) to sign it as KMS does.

    ``headers`` must hold ``Host``; every header given (and ``x-amz-date``) is signed.
    """
    amz_date = now.astimezone(timezone.utc).strftime(AMZ_DATE_FORMAT)
    all_headers = [*headers, ("X-Amz-Date", amz_date)]
    signed = sorted({name.lower() for name, _ in all_headers})
    canonical = canonical_request(method, path, query, all_headers, signed, _sha256_hex(body))
    raw_secret = secret.get_secret_value() if isinstance(secret, SecretStr) else secret
    sig = signature(raw_secret, amz_date, region, service, canonical)
    scope = f"{access_key_id}/{amz_date[:8]}/{region}/{service}/aws4_request"
    authorization = f"{ALGORITHM} Credential={scope}, SignedHeaders={';'.join(signed)}, Signature={sig}"
    return [("X-Amz-Date", amz_date), ("Authorization", authorization)]


def _fail(message: str) -> XksError:
    return XksError("AuthenticationFailedException", message)


def _parse_authorization(headers: Headers) -> dict[str, str]:
    values = header_values(headers, "authorization")
    if not values:
        raise _fail("the request is not signed: it has no Authorization header")
    if len(values) > 1:
        raise _fail("the request has more than one Authorization header")
    match = _AUTHORIZATION.fullmatch(values[0].strip())
    if match is None:
        raise _fail("the Authorization header is not an AWS Signature Version 4 (AWS4-HMAC-SHA256) header")
    params: dict[str, str] = {}
    for part in match.group("params").split(","):
        name, sep, value = part.strip().partition("=")
        if not sep or name in params:
            raise _fail("the Authorization header is malformed: expected Credential=..., SignedHeaders=..., "
                        "Signature=...")
        params[name] = value.strip()
    missing = [n for n in ("Credential", "SignedHeaders", "Signature") if n not in params]
    if missing:
        raise _fail(f"the Authorization header has no {', '.join(missing)}")
    return params


def verify(method: str, path: str, query: str, headers: Headers, body: bytes,
           secrets: Mapping[str, SecretStr], now: datetime) -> str:
    """Check a request's SigV4 signature; return the access key id that signed it.

    ``secrets`` maps each accepted access key id to its secret; ``now`` is the proxy's clock.
    Raises :class:`XksError` ``AuthenticationFailedException`` saying what is wrong (never a secret).
    """
    params = _parse_authorization(headers)
    scope = _SCOPE.fullmatch(params["Credential"])
    if scope is None:
        raise _fail("the Credential of the Authorization header is not ACCESS_KEY_ID/YYYYMMDD/REGION/SERVICE/"
                    "aws4_request")
    if scope["service"] != SERVICE:
        raise _fail(f"the request is signed for the service {scope['service']!r}; the proxy expects {SERVICE!r}")
    signed_headers = params["SignedHeaders"].split(";")
    if signed_headers != sorted({h.lower() for h in signed_headers}) or "" in signed_headers:
        raise _fail("SignedHeaders must be lowercase header names, sorted, separated by ';'")
    for required in ("host", "x-amz-date"):
        if required not in signed_headers:
            raise _fail(f"SignedHeaders must include {required}")
    absent = [name for name in signed_headers if not header_values(headers, name)]
    if absent:
        raise _fail(f"signed header(s) {', '.join(absent)} are not in the request")
    amz_date = header_values(headers, "x-amz-date")[0].strip()
    try:
        when = datetime.strptime(amz_date, AMZ_DATE_FORMAT).replace(tzinfo=timezone.utc)
    except ValueError:
        raise _fail("X-Amz-Date is not a UTC time of the form YYYYMMDDTHHMMSSZ") from None
    if scope["date"] != amz_date[:8]:
        raise _fail(f"the credential scope's date {scope['date']} is not the date of X-Amz-Date {amz_date}")
    skew = abs((when - now).total_seconds())
    if skew > MAX_SKEW.total_seconds():
        raise _fail(f"the request was signed at {amz_date}, {skew:.0f} seconds from the proxy's clock "
                    f"({now.astimezone(timezone.utc).strftime(AMZ_DATE_FORMAT)}); at most "
                    f"{MAX_SKEW.total_seconds():.0f} are allowed")
    payload_hash = _sha256_hex(body)
    declared = header_values(headers, "x-amz-content-sha256")
    if declared and declared[0].strip() != payload_hash:
        raise _fail("x-amz-content-sha256 is not the SHA-256 of the body (unsigned payloads are not accepted)")
    secret = secrets.get(scope["akid"])
    if secret is None:
        raise _fail(f"the access key id {scope['akid']} is not one the proxy accepts")
    canonical = canonical_request(method, path, query, headers, signed_headers, payload_hash)
    expected = signature(secret.get_secret_value(), amz_date, scope["region"], SERVICE, canonical)
    if not hmac.compare_digest(expected.encode(), params["Signature"].lower().encode()):
        raise _fail(f"the signature does not match for access key id {scope['akid']}: a wrong secret access key, "
                    "or the request changed after it was signed")
    return scope["akid"]
