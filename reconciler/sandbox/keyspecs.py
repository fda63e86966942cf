"""Key specs, key usages and the algorithms each allows (CreateKey KeySpec and KeyUsage docs).

What a key may be used for decides both what DescribeKey reports (EncryptionAlgorithms,
SigningAlgorithms, MacAlgorithms, KeyAgreementAlgorithms) and what the cryptographic operations
accept (:mod:`reconciler.sandbox.guards`). docs/kms-rules.md, "Key specs and key usages".
"""

from __future__ import annotations

from reconciler.sandbox import exceptions as exc

SYMMETRIC_DEFAULT = "SYMMETRIC_DEFAULT"
ENCRYPT_DECRYPT = "ENCRYPT_DECRYPT"
SIGN_VERIFY = "SIGN_VERIFY"
GENERATE_VERIFY_MAC = "GENERATE_VERIFY_MAC"
KEY_AGREEMENT = "KEY_AGREEMENT"

RSA_SPECS = ("RSA_2048", "RSA_3072", "RSA_4096")
NIST_ECC_SPECS = ("ECC_NIST_P256", "ECC_NIST_P384", "ECC_NIST_P521")
ECC_SPECS = NIST_ECC_SPECS + ("ECC_SECG_P256K1",)
HMAC_SPECS = ("HMAC_224", "HMAC_256", "HMAC_384", "HMAC_512")

# KeyUsage doc: "For symmetric encryption KMS keys, omit the parameter or specify ENCRYPT_DECRYPT.
# For HMAC KMS keys (symmetric), specify GENERATE_VERIFY_MAC. For asymmetric KMS keys with RSA key
# pairs, specify ENCRYPT_DECRYPT or SIGN_VERIFY. For asymmetric KMS keys with NIST-standard
# elliptic curve key pairs, specify SIGN_VERIFY or KEY_AGREEMENT. For asymmetric KMS keys with
# ECC_SECG_P256K1 key pairs, specify SIGN_VERIFY."
USAGES: dict[str, frozenset[str]] = {
    SYMMETRIC_DEFAULT: frozenset({ENCRYPT_DECRYPT}),
    **{spec: frozenset({GENERATE_VERIFY_MAC}) for spec in HMAC_SPECS},
    **{spec: frozenset({ENCRYPT_DECRYPT, SIGN_VERIFY}) for spec in RSA_SPECS},
    **{spec: frozenset({SIGN_VERIFY, KEY_AGREEMENT}) for spec in NIST_ECC_SPECS},
    "ECC_SECG_P256K1": frozenset({SIGN_VERIFY}),
}

# Key specs of the model the emulator does not generate (docs/emulator.md, "What it does not
# do"): ML-DSA, ML-KEM and Ed25519 key pairs, and SM2 ("China Regions only").
UNSUPPORTED_SPECS = frozenset(
    {"SM2", "ECC_NIST_EDWARDS25519", "ML_DSA_44", "ML_DSA_65", "ML_DSA_87", "ML_KEM_512", "ML_KEM_768", "ML_KEM_1024"}
)

_RSA_SIGNING = [
    "RSASSA_PSS_SHA_256",
    "RSASSA_PSS_SHA_384",
    "RSASSA_PSS_SHA_512",
    "RSASSA_PKCS1_V1_5_SHA_256",
    "RSASSA_PKCS1_V1_5_SHA_384",
    "RSASSA_PKCS1_V1_5_SHA_512",
]
_ECC_SIGNING = {
    "ECC_NIST_P256": ["ECDSA_SHA_256"],
    "ECC_NIST_P384": ["ECDSA_SHA_384"],
    "ECC_NIST_P521": ["ECDSA_SHA_512"],
    "ECC_SECG_P256K1": ["ECDSA_SHA_256"],
}


def algorithms(spec: str, usage: str) -> dict[str, list[str]]:
    """The KeyMetadata algorithm members of a key of this spec and usage."""
    if usage == ENCRYPT_DECRYPT:
        if spec == SYMMETRIC_DEFAULT:
            return {"EncryptionAlgorithms": ["SYMMETRIC_DEFAULT"]}
        return {"EncryptionAlgorithms": ["RSAES_OAEP_SHA_1", "RSAES_OAEP_SHA_256"]}
    if usage == SIGN_VERIFY:
        return {"SigningAlgorithms": list(_ECC_SIGNING.get(spec, _RSA_SIGNING))}
    if usage == GENERATE_VERIFY_MAC:
        return {"MacAlgorithms": [f"HMAC_SHA_{spec.split('_')[1]}"]}
    if usage == KEY_AGREEMENT:
        return {"KeyAgreementAlgorithms": ["ECDH"]}
    return {}


def is_symmetric(spec: str) -> bool:
    return spec == SYMMETRIC_DEFAULT or spec in HMAC_SPECS


def check_spec_and_usage(
    key_spec: str | None, customer_master_key_spec: str | None, key_usage: str | None, origin: str | None
) -> tuple[str, str]:
    """CreateKey: the (KeySpec, KeyUsage) the new key gets, or the error KMS answers."""
    if key_spec and customer_master_key_spec and key_spec != customer_master_key_spec:
        raise exc.ValidationException(
            "KeySpec and CustomerMasterKeySpec have different values; specify only KeySpec "
            "(CustomerMasterKeySpec is deprecated)."
        )
    spec = key_spec or customer_master_key_spec or SYMMETRIC_DEFAULT
    if spec in UNSUPPORTED_SPECS:
        raise exc.UnsupportedOperationException(f"KeySpec {spec} is not supported by the KMS emulator.")
    allowed = USAGES[spec]
    # KeyUsage: "This parameter is optional when you are creating a symmetric encryption KMS key;
    # otherwise, it is required."
    if key_usage is None:
        if spec != SYMMETRIC_DEFAULT:
            raise exc.ValidationException(f"KeyUsage is required for a KMS key with KeySpec {spec}.")
        key_usage = ENCRYPT_DECRYPT
    if key_usage not in allowed:
        raise exc.ValidationException(
            f"KeyUsage {key_usage} is not valid for KeySpec {spec}; valid: {', '.join(sorted(allowed))}."
        )
    # Origin: "The EXTERNAL origin value is valid only for symmetric KMS keys."
    if origin == "EXTERNAL" and spec != SYMMETRIC_DEFAULT:
        raise exc.UnsupportedOperationException(
            "The EXTERNAL origin value is valid only for symmetric encryption KMS keys."
        )
    return spec, key_usage
