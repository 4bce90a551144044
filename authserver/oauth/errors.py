"""OAuth error responses that Authlib lacks or that the contract shapes differently."""

from __future__ import annotations

from authlib.oauth2.rfc6749 import errors as rfc6749

REALM = "authserver"


class InvalidClientError(rfc6749.InvalidClientError):
    """Client authentication failed (RFC 6749 §5.2).

    Always 401. "If the client attempted to authenticate via the Authorization request header
    field, the authorization server MUST respond with an HTTP 401 (Unauthorized) status code
    and include the WWW-Authenticate response header field matching the authentication scheme
    used by the client." Authlib's own class puts the error text in that header; ours names
    the realm, as RFC 7617 asks.
    """

    status_code = 401

    def __init__(self, description: str, *, challenge: bool) -> None:
        super().__init__(description=description, status_code=401)
        self.challenge = challenge

    def get_headers(self) -> list[tuple[str, str]]:
        headers: list[tuple[str, str]] = rfc6749.OAuth2Error.get_headers(self)
        if self.challenge:
            headers.append(("WWW-Authenticate", f'Basic realm="{REALM}"'))
        return headers


class InvalidTargetError(rfc6749.OAuth2Error):
    """RFC 8707 §2: "The requested resource is invalid, missing, unknown, or malformed." """

    error = "invalid_target"


class _RetryLaterError(rfc6749.OAuth2Error):
    """An error that may say when to try again: RFC 9110 §10.2.3 ``Retry-After`` (seconds)."""

    retry_after: int | None = None

    def get_headers(self) -> list[tuple[str, str]]:
        headers: list[tuple[str, str]] = rfc6749.OAuth2Error.get_headers(self)
        if self.retry_after is not None:
            headers.append(("Retry-After", str(self.retry_after)))
        return headers


class TemporarilyUnavailableError(_RetryLaterError):
    """The server cannot serve the request right now (no signing key loaded yet, every
    Argon2id turn of this worker taken, or a database outage it cannot answer through);
    clients may retry."""

    error = "temporarily_unavailable"
    status_code = 503

    def __init__(self, description: str, *, retry_after: int | None = None) -> None:
        super().__init__(description=description, status_code=503)
        self.retry_after = retry_after


class TooManyRequestsError(_RetryLaterError):
    """Too many failed client authentications (the contract's limits); retry later."""

    error = "too_many_requests"
    status_code = 429

    def __init__(self, retry_after: int) -> None:
        super().__init__(
            description="Too many failed client authentications; retry later.", status_code=429
        )
        self.retry_after = retry_after


class QuotaExceededError(TooManyRequestsError):
    """The client has had the tokens its quota allows this hour (``max_tokens_per_hour``)."""

    def __init__(self, per_hour: int, retry_after: int) -> None:
        super().__init__(retry_after)
        self.description = (
            f"This client may get {per_hour} tokens an hour and has had them; "
            f"retry after {retry_after} s, and reuse each token until shortly before it expires."
        )
