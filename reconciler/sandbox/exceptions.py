"""The KMS errors the emulator raises, as moto JSON errors.

Each class is named exactly as the KMS exception shape in the API model, so the JSON error body
carries ``"__type": "<Name>"`` and botocore raises ``client.exceptions.<Name>``. Default messages
paraphrase the exception's documentation in the API model; callers add specifics (ids, names,
states) but never a secret (``KeyStorePassword``, ``RawSecretAccessKey``).
"""

from __future__ import annotations

from moto.core.exceptions import JsonRESTError


class KmsError(JsonRESTError):
    """Base of every error the sandbox raises. ``code`` is the HTTP status."""

    code = 400
    default_message = "The request was rejected."

    def __init__(self, message: str | None = None) -> None:
        super().__init__(type(self).__name__, message or self.default_message)


# --- the protocol (common errors of the AWS JSON protocol, not in KMS's error lists) -----------


class SerializationException(KmsError):
    default_message = "The request body could not be deserialized."


class UnknownOperationException(KmsError):
    default_message = "The requested operation is not recognized by the service."


class MissingAuthenticationTokenException(KmsError):
    code = 403
    default_message = "Missing Authentication Token"


class IncompleteSignatureException(KmsError):
    default_message = "The request signature does not conform to AWS standards."


# --- generic ---------------------------------------------------------------------------------


class ValidationException(KmsError):
    default_message = "The request was rejected because it was not valid."


class NotFoundException(KmsError):
    default_message = (
        "The request was rejected because the specified entity or resource could not be found."
    )


class InvalidAliasNameException(KmsError):
    default_message = "The request was rejected because the specified alias name is not valid."


class InvalidMarkerException(KmsError):
    default_message = (
        "The request was rejected because the marker that specifies where pagination should "
        "next begin is not valid."
    )


class KMSInternalException(KmsError):
    code = 500
    default_message = (
        "The request was rejected because an internal exception occurred. "
        "The request can be retried."
    )


class ThrottlingException(KmsError):
    default_message = "Rate exceeded"


class LimitExceededException(KmsError):
    default_message = (
        "The request was rejected because a length constraint or quota was exceeded."
    )


class UnsupportedOperationException(KmsError):
    default_message = (
        "The request was rejected because a specified parameter is not supported or a "
        "specified resource is not valid for this operation."
    )


class KMSInvalidStateException(KmsError):
    default_message = (
        "The request was rejected because the state of the specified resource is not valid "
        "for this request."
    )


class InvalidKeyUsageException(KmsError):
    default_message = (
        "The request was rejected for one of the following reasons: the KeyUsage value of the "
        "KMS key is incompatible with the API operation, or the encryption algorithm or signing "
        "algorithm specified for the operation is incompatible with the type of key material in "
        "the KMS key."
    )


class DisabledException(KmsError):
    default_message = "The request was rejected because the specified KMS key is not enabled."


class InvalidArnException(KmsError):
    default_message = "The request was rejected because a specified ARN, or an ARN in a key policy, is not valid."


class InvalidCiphertextException(KmsError):
    default_message = (
        "From the Decrypt or ReEncrypt operation, the request was rejected because the specified "
        "ciphertext, or additional authenticated data incorporated into the ciphertext, such as "
        "the encryption context, is corrupted, missing, or otherwise invalid."
    )


class InvalidGrantTokenException(KmsError):
    default_message = "The request was rejected because the specified grant token is not valid."


class InvalidGrantIdException(KmsError):
    default_message = "The request was rejected because the specified GrantId is not valid."


class InvalidImportTokenException(KmsError):
    default_message = (
        "The request was rejected because the provided import token is invalid or is associated "
        "with a different KMS key."
    )


class ExpiredImportTokenException(KmsError):
    default_message = (
        "The request was rejected because the specified import token is expired. Use "
        "GetParametersForImport to get a new import token and public key, use the new public key "
        "to encrypt the key material, and then try the request again."
    )


class IncorrectKeyMaterialException(KmsError):
    default_message = (
        "The request was rejected because the key material in the request is, expired, invalid, "
        "or is not the same key material that was previously imported into this KMS key."
    )


class AlreadyExistsException(KmsError):
    default_message = "The request was rejected because it attempted to create a resource that already exists."


class DryRunOperationException(KmsError):
    code = 412
    default_message = "The request was rejected because the DryRun parameter was specified."


class KMSInvalidSignatureException(KmsError):
    default_message = (
        "The request was rejected because the signature verification failed. Signature "
        "verification fails when it cannot confirm that signature was produced by signing the "
        "specified message with the specified KMS key and signing algorithm."
    )


class KMSInvalidMacException(KmsError):
    default_message = (
        "The request was rejected because the HMAC verification failed. HMAC verification fails "
        "when the HMAC computed by using the specified message, HMAC KMS key, and MAC algorithm "
        "does not match the HMAC specified in the request."
    )


class TagException(KmsError):
    default_message = "The request was rejected because one or more tags are not valid."


class MalformedPolicyDocumentException(KmsError):
    default_message = "The request was rejected because the specified policy is not syntactically or semantically correct."


class IncorrectKeyException(KmsError):
    default_message = (
        "The request was rejected because the specified KMS key cannot decrypt the data. The "
        "KeyId in a Decrypt request and the SourceKeyId in a ReEncrypt request must identify the "
        "same KMS key that was used to encrypt the ciphertext."
    )


# --- custom key stores -----------------------------------------------------------------------


class CustomKeyStoreNotFoundException(KmsError):
    default_message = (
        "The request was rejected because KMS cannot find a custom key store with the "
        "specified key store name or ID."
    )


class CustomKeyStoreNameInUseException(KmsError):
    default_message = (
        "The request was rejected because the specified custom key store name is already "
        "assigned to another custom key store in the account."
    )


class CustomKeyStoreInvalidStateException(KmsError):
    default_message = (
        "The request was rejected because of the ConnectionState of the custom key store."
    )


class CustomKeyStoreHasCMKsException(KmsError):
    default_message = (
        "The request was rejected because the custom key store contains KMS keys. After "
        "verifying that you do not need to use the KMS keys, use the ScheduleKeyDeletion "
        "operation to delete the KMS keys. After they are deleted, you can delete the custom "
        "key store."
    )


# --- CloudHSM key stores ---------------------------------------------------------------------


class CloudHsmClusterNotFoundException(KmsError):
    default_message = (
        "The request was rejected because KMS cannot find the CloudHSM cluster with the "
        "specified cluster ID."
    )


class CloudHsmClusterNotActiveException(KmsError):
    default_message = (
        "The request was rejected because the CloudHSM cluster associated with the CloudHSM "
        "key store is not active."
    )


class CloudHsmClusterInUseException(KmsError):
    default_message = (
        "The request was rejected because the specified CloudHSM cluster is already "
        "associated with a CloudHSM key store in the account, or it shares a backup history "
        "with a CloudHSM key store in the account."
    )


class CloudHsmClusterInvalidConfigurationException(KmsError):
    default_message = (
        "The request was rejected because the associated CloudHSM cluster did not meet the "
        "configuration requirements for a CloudHSM key store."
    )


class CloudHsmClusterNotRelatedException(KmsError):
    default_message = (
        "The request was rejected because the specified CloudHSM cluster has a different "
        "cluster certificate than the original cluster."
    )


class IncorrectTrustAnchorException(KmsError):
    default_message = (
        "The request was rejected because the trust anchor certificate in the request is not "
        "the trust anchor certificate for the specified CloudHSM cluster."
    )


# --- external key stores ---------------------------------------------------------------------


class XksProxyUriInUseException(KmsError):
    default_message = (
        "The request was rejected because the concatenation of the XksProxyUriEndpoint and "
        "XksProxyUriPath is already associated with another external key store in this "
        "Region."
    )


class XksProxyUriEndpointInUseException(KmsError):
    default_message = (
        "The request was rejected because the XksProxyUriEndpoint is already associated with "
        "another external key store in this Region."
    )


class XksProxyVpcEndpointServiceInUseException(KmsError):
    default_message = (
        "The request was rejected because the specified Amazon VPC endpoint service is "
        "already associated with another external key store in this Region."
    )


class XksProxyVpcEndpointServiceNotFoundException(KmsError):
    default_message = (
        "The request was rejected because KMS could not find the specified VPC endpoint "
        "service."
    )


class XksProxyVpcEndpointServiceInvalidConfigurationException(KmsError):
    default_message = (
        "The request was rejected because the Amazon VPC endpoint service configuration does "
        "not fulfill the requirements for an external key store."
    )


class XksProxyUriUnreachableException(KmsError):
    default_message = "KMS was unable to reach the specified XksProxyUriPath."


class XksProxyIncorrectAuthenticationCredentialException(KmsError):
    default_message = (
        "The request was rejected because the proxy credentials failed to authenticate to the "
        "specified external key store proxy."
    )


class XksProxyInvalidResponseException(KmsError):
    default_message = (
        "KMS cannot interpret the response it received from the external key store proxy."
    )


class XksProxyInvalidConfigurationException(KmsError):
    default_message = (
        "The request was rejected because the external key store proxy is not configured "
        "correctly."
    )


class XksKeyAlreadyInUseException(KmsError):
    default_message = (
        "The request was rejected because the XksKeyId is already associated with another "
        "KMS key in this external key store."
    )


class XksKeyNotFoundException(KmsError):
    default_message = (
        "The request was rejected because the external key store proxy could not find the "
        "external key."
    )


class XksKeyInvalidConfigurationException(KmsError):
    default_message = (
        "The request was rejected because the external key specified by the XksKeyId "
        "parameter did not meet the configuration requirements for an external key store."
    )


def exception_class(name: str) -> type[KmsError]:
    """The error class called ``name`` (e.g. a ``Faults.proxy_errors`` value)."""
    cls = globals().get(name)
    if not (isinstance(cls, type) and issubclass(cls, KmsError)):
        raise ValueError(f"unknown KMS sandbox exception {name!r}")
    return cls
