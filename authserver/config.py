"""Settings read once from ``AUTHSERVER_*`` variables and validated before anything starts.

Every default lives here, so an operator can read one file to know what the server does
when a variable is unset. A bad value raises :class:`ConfigError` naming the variable; the CLI
turns it into one line on stderr and exit status 1.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TypeVar

from sqlalchemy.engine import URL, make_url
from sqlalchemy.exc import ArgumentError

from authserver.errors import ConfigError
from authserver.wellknown import JWKS_PATH

T = TypeVar("T", int, None)

DEFAULT_ISSUER = "http://localhost:8080"
DEFAULT_DATABASE_URL = "sqlite:///instance/authserver.db"
#: RFC 9068 §2.1 makes RS256 the algorithm every resource server must support.
DEFAULT_ALG = "RS256"
SUPPORTED_ALGS = ("RS256", "ES256", "EdDSA")
RSA_SIZES = (2048, 3072, 4096)
#: The longest access-token lifetime anyone may configure (a day): longer tokens cannot be
#: taken back in practice, and larger numbers overflow date arithmetic on key retention.
MAX_ACCESS_TOKEN_TTL = 86_400
#: RFC 6749 requests are a handful of short parameters; anything bigger is refused with 413.
MAX_BODY_BYTES = 64 * 1024
#: Upper bounds on the key schedule's settings: beyond them nothing sensible remains, and
#: date arithmetic on key lifetimes would overflow (a start-up error instead of a crash later).
MAX_JWKS_MAX_AGE = 86_400
MAX_KEY_PROPAGATION_DELAY = 30 * 86_400
MAX_KEY_ROTATION_DAYS = 3650
#: A passphrase file larger than this is the wrong file (``/dev/zero`` would never end).
MAX_PASSPHRASE_FILE_BYTES = 4096
#: Read by prometheus_client: where the server's worker processes share their metrics.
PROMETHEUS_MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"
#: Seconds a client has to send a request's whole body once its head has arrived: a token
#: request is a few hundred bytes, and a client that stops sending must not hold anything long.
DEFAULT_REQUEST_BODY_TIMEOUT = 10
MAX_REQUEST_BODY_TIMEOUT = 300
#: Set by ``authserver serve`` for its workers (not an operator setting): the file through
#: which all workers of one instance share their failed-authentication counters.
SHARED_COUNTERS_ENV = "AUTHSERVER_SHARED_COUNTERS_FILE"


@dataclass(frozen=True)
class Settings:
    """The validated configuration; immutable so every part of the app sees the same values."""

    database_url: str = DEFAULT_DATABASE_URL
    issuer: str = DEFAULT_ISSUER
    keys_dir: Path = field(default_factory=lambda: Path("keys"))
    key_passphrase: str | None = field(default=None, repr=False)
    access_token_ttl: int = 1800
    default_audience: str = DEFAULT_ISSUER
    jwks_max_age: int = 300
    key_propagation_delay: int = 900
    signing_alg: str = DEFAULT_ALG
    rsa_bits: int = 2048
    key_rotation_days: int | None = None
    trusted_proxies: int = 0
    ratelimit_enabled: bool = True
    ratelimit_storage_url: str = "memory://"
    request_body_timeout: int = DEFAULT_REQUEST_BODY_TIMEOUT

    @property
    def token_endpoint(self) -> str:
        return f"{self.issuer}/oauth2/token"

    @property
    def introspection_endpoint(self) -> str:
        return f"{self.issuer}/oauth2/introspect"

    @property
    def revocation_endpoint(self) -> str:
        return f"{self.issuer}/oauth2/revoke"

    @property
    def jwks_uri(self) -> str:
        return f"{self.issuer}{JWKS_PATH}"

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> Settings:
        """Build settings from the environment, failing on the first bad variable."""
        env = os.environ if environ is None else environ
        issuer = _url(env, "AUTHSERVER_ISSUER", DEFAULT_ISSUER).rstrip("/")
        jwks_max_age = _bounded_int(env, "AUTHSERVER_JWKS_MAX_AGE", 300, MAX_JWKS_MAX_AGE)
        propagation_delay = _bounded_int(
            env, "AUTHSERVER_KEY_PROPAGATION_DELAY", 900, MAX_KEY_PROPAGATION_DELAY
        )
        if propagation_delay < jwks_max_age:
            # A key that signs before resource servers' cached JWKS can hold it makes tokens
            # they cannot verify.
            raise ConfigError(
                f"AUTHSERVER_KEY_PROPAGATION_DELAY ({propagation_delay}) must be at least "
                f"AUTHSERVER_JWKS_MAX_AGE ({jwks_max_age})"
            )
        return cls(
            database_url=_database_url(env),
            issuer=issuer,
            keys_dir=Path(env.get("AUTHSERVER_KEYS_DIR") or "keys"),
            key_passphrase=_key_passphrase(env),
            access_token_ttl=_bounded_int(
                env, "AUTHSERVER_ACCESS_TOKEN_TTL", 1800, MAX_ACCESS_TOKEN_TTL
            ),
            default_audience=_url(env, "AUTHSERVER_DEFAULT_AUDIENCE", issuer),
            jwks_max_age=jwks_max_age,
            key_propagation_delay=propagation_delay,
            signing_alg=_choice(env, "AUTHSERVER_SIGNING_ALG", SUPPORTED_ALGS, DEFAULT_ALG),
            rsa_bits=int(_choice(env, "AUTHSERVER_RSA_BITS", tuple(map(str, RSA_SIZES)), "2048")),
            key_rotation_days=_bounded_int(
                env, "AUTHSERVER_KEY_ROTATION_DAYS", None, MAX_KEY_ROTATION_DAYS
            ),
            trusted_proxies=_non_negative_int(env, "AUTHSERVER_TRUSTED_PROXIES"),
            ratelimit_enabled=_choice(env, "AUTHSERVER_RATELIMIT", ("on", "off"), "on") == "on",
            ratelimit_storage_url=env.get("AUTHSERVER_RATELIMIT_STORAGE_URL") or "memory://",
            request_body_timeout=_bounded_int(
                env,
                "AUTHSERVER_REQUEST_BODY_TIMEOUT",
                DEFAULT_REQUEST_BODY_TIMEOUT,
                MAX_REQUEST_BODY_TIMEOUT,
            ),
        )


def _database_url(env: Mapping[str, str]) -> str:
    raw = env.get("AUTHSERVER_DATABASE_URL") or DEFAULT_DATABASE_URL
    try:
        url: URL = make_url(raw)
    except ArgumentError:
        raise ConfigError(
            f"AUTHSERVER_DATABASE_URL is not a database URL (e.g. {DEFAULT_DATABASE_URL})"
        ) from None
    if not url.drivername:
        raise ConfigError("AUTHSERVER_DATABASE_URL has no database driver")
    return raw


def _key_passphrase(env: Mapping[str, str]) -> str | None:
    """The passphrase from ``AUTHSERVER_KEY_PASSPHRASE`` or from the file named by
    ``AUTHSERVER_KEY_PASSPHRASE_FILE``.

    The file keeps the secret out of ``/proc/PID/environ``, which the process's user and
    root can read, and out of every child process's environment. Messages never quote
    the file's content, not even a byte of it.
    """
    inline = env.get("AUTHSERVER_KEY_PASSPHRASE") or None
    file_name = env.get("AUTHSERVER_KEY_PASSPHRASE_FILE") or None
    if file_name is None:
        return inline
    if inline is not None:
        raise ConfigError(
            "AUTHSERVER_KEY_PASSPHRASE_FILE and AUTHSERVER_KEY_PASSPHRASE are both set; "
            "set only one"
        )
    try:
        with open(file_name, "rb") as handle:
            raw = handle.read(MAX_PASSPHRASE_FILE_BYTES + 1)
    except OSError as exc:
        raise ConfigError(
            f"AUTHSERVER_KEY_PASSPHRASE_FILE: cannot read {file_name}: {exc.strerror}"
        ) from None
    if len(raw) > MAX_PASSPHRASE_FILE_BYTES:
        raise ConfigError(
            f"AUTHSERVER_KEY_PASSPHRASE_FILE: {file_name} is longer than "
            f"{MAX_PASSPHRASE_FILE_BYTES} bytes"
        )
    try:
        passphrase = raw.decode().removesuffix("\n")
    except UnicodeDecodeError:
        raise ConfigError(
            f"AUTHSERVER_KEY_PASSPHRASE_FILE: {file_name} is not UTF-8 text"
        ) from None
    if not passphrase:
        raise ConfigError(f"AUTHSERVER_KEY_PASSPHRASE_FILE: {file_name} is empty")
    return passphrase


def _url(env: Mapping[str, str], name: str, default: str) -> str:
    value = env.get(name) or default
    scheme, sep, rest = value.partition("://")
    if not sep or scheme not in ("http", "https") or not rest.strip("/") or " " in value:
        raise ConfigError(f"{name} must be an http(s) URL, got {value!r}")
    return value


def _positive_int(env: Mapping[str, str], name: str, default: T) -> int | T:
    raw = env.get(name)
    if raw is None or raw == "":
        return default
    try:
        value = int(raw)
    except ValueError:
        raise ConfigError(f"{name} must be a whole number of seconds, got {raw!r}") from None
    if value <= 0:
        raise ConfigError(f"{name} must be greater than 0, got {value}")
    return value


def _bounded_int(env: Mapping[str, str], name: str, default: T, maximum: int) -> int | T:
    value = _positive_int(env, name, default)
    if value is not None and value > maximum:
        raise ConfigError(f"{name} must be at most {maximum}, got {value}")
    return value


def _choice(env: Mapping[str, str], name: str, allowed: tuple[str, ...], default: str) -> str:
    value = env.get(name) or default
    if value not in allowed:
        raise ConfigError(f"{name} must be one of {', '.join(allowed)}, got {value!r}")
    return value


def _non_negative_int(env: Mapping[str, str], name: str) -> int:
    raw = env.get(name) or "0"
    if not raw.isdigit():
        raise ConfigError(f"{name} must be a whole number (0 or more), got {raw!r}")
    return int(raw)
