"""A bucket operation's failure as a StorageError: a reason safe to show the customer, and whether
retrying can help."""

from __future__ import annotations

from botocore.exceptions import ClientError, HTTPClientError
from botocore.exceptions import ConnectionError as BotoConnectionError

from .guard import EndpointRedirected, EndpointRefused


class StorageError(Exception):
    """A bucket operation failed. `permanent` errors will not fix themselves by retrying."""

    def __init__(self, message: str, *, code: str, permanent: bool):
        super().__init__(message)
        self.message = message
        self.code = code
        self.permanent = permanent


MESSAGES = {
    "invalid_access_key": "The access key is not known to the storage service.",
    "signature_mismatch": "The secret key does not match the access key (bad signature).",
    "no_such_bucket": "The bucket does not exist at this endpoint.",
    "access_denied": "The key is valid but may not access this bucket.",
    "wrong_region": "The bucket is in another region than the binding's.",
}


def http_status(exc: ClientError) -> int:
    return int(exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode") or 0)


def error_code(exc: ClientError) -> str:
    return str(exc.response.get("Error", {}).get("Code") or "")


def classify(exc: Exception) -> StorageError:
    """Turn a boto3 error into a StorageError with a reason safe to show to the customer."""
    if isinstance(exc, HTTPClientError) and isinstance(exc.kwargs.get("error"), EndpointRefused):
        exc = exc.kwargs["error"]
    if isinstance(exc, EndpointRefused):
        return StorageError(f"The storage endpoint is not allowed: {exc}.", code="endpoint_not_allowed", permanent=True)
    if isinstance(exc, EndpointRedirected):
        region = exc.kwargs.get("region")
        if region:
            return StorageError(
                f"{MESSAGES['wrong_region']} The bucket is in {region}.", code="wrong_region", permanent=True
            )
        return StorageError(
            f"The storage endpoint answered with a redirect (HTTP {exc.kwargs['status']}); Deplite does not follow "
            "redirects. Set the endpoint to the address that serves the bucket.",
            code="endpoint_redirect",
            permanent=True,
        )
    if isinstance(exc, ClientError):
        code, status = error_code(exc), http_status(exc)
        if code == "InvalidAccessKeyId":
            return StorageError(MESSAGES["invalid_access_key"], code="invalid_access_key", permanent=True)
        if code == "SignatureDoesNotMatch":
            return StorageError(MESSAGES["signature_mismatch"], code="signature_mismatch", permanent=True)
        if code == "NoSuchBucket" or (status == 404 and code in ("404", "NotFound")):
            return StorageError(MESSAGES["no_such_bucket"], code="no_such_bucket", permanent=True)
        if code in ("AccessDenied", "403", "AllAccessDisabled") or status == 403:
            return StorageError(MESSAGES["access_denied"], code="access_denied", permanent=True)
        if code in ("PermanentRedirect", "AuthorizationHeaderMalformed", "301") or status == 301:
            return StorageError(MESSAGES["wrong_region"], code="wrong_region", permanent=True)
        if status >= 500 or code in ("SlowDown", "RequestTimeout", "ServiceUnavailable", "InternalError"):
            return StorageError(
                f"The storage service answered HTTP {status or code}; try again later.",
                code="storage_unavailable",
                permanent=False,
            )
        return StorageError(
            f"The storage service refused the request ({code or status}).", code="storage_error", permanent=True
        )
    if isinstance(exc, BotoConnectionError | HTTPClientError):
        return StorageError(
            "The storage endpoint could not be reached (connection failed or timed out).",
            code="endpoint_unreachable",
            permanent=False,
        )
    return StorageError(f"The storage request failed ({type(exc).__name__}).", code="storage_error", permanent=False)
