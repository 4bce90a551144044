"""Domain errors shared by the CLI and HTTP layers; none of them knows about HTTP status codes."""


class AuthServerError(Exception):
    """Base class: the message is written for the person who has to fix the problem."""


class ConfigError(AuthServerError):
    """An ``AUTHSERVER_*`` variable has a value the server cannot run with."""


class ClientNotFound(AuthServerError):
    """No registered client has the given id."""

    def __init__(self, client_id: str) -> None:
        super().__init__(f"no client with id {client_id!r}")
        self.client_id = client_id


class InvalidClientData(AuthServerError):
    """A client field given by an admin is not acceptable (empty scope, bad audience URI, ...)."""


class KeyStoreError(AuthServerError):
    """The signing-key folder or one of its files cannot be used."""


class KeyNotFound(AuthServerError):
    """No signing key has the given kid."""

    def __init__(self, kid: str) -> None:
        super().__init__(f"no signing key with kid {kid!r}")
        self.kid = kid


class TrustNotFound(AuthServerError):
    """No trust has the given id."""

    def __init__(self, trust_id: str) -> None:
        super().__init__(f"no trust with id {trust_id!r}")
        self.trust_id = trust_id
