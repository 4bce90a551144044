"""Settings read once from ``AUTHSERVER_*`` variables and validated before anything starts.

Every default lives here, so an operator can read one file to know what the server does
when a variable is unset. A bad value raises :class:`ConfigError` naming the variable; the CLI
turns it into one line on stderr and exit status 1.
"""

from __future__ import annotations

import ipaddress
import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from authserver.errors import ConfigError

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
#: Set by ``authserver serve`` for its workers (not an operator setting): the file through
#: which they see each other's load (``authserver.http.worker_loads``).
WORKER_LOADS_ENV = "AUTHSERVER_WORKER_LOADS_FILE"
#: Where signing keys live: a folder on each host, or the database all instances share.
KEY_STORES = ("files", "database")
#: The database key store encrypts every private key under the passphrase; anything shorter
#: than this is too easy to guess offline from a stolen database dump.
MIN_DATABASE_PASSPHRASE_LENGTH = 16
#: How long a worker keeps issuing tokens from registrations it read before the database
#: became unreachable (seconds), and the longest that may be configured (a week).
DEFAULT_DATABASE_OUTAGE_GRACE = 900
MAX_DATABASE_OUTAGE_GRACE = 7 * 86_400

ProxyNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network


@dataclass(frozen=True)
class Settings:
    """The validated configuration; immutable so every part of the app sees the same values.

    The field defaults are the defaults: :meth:`from_env` passes only the variables that are
    set, so each default is written once, here.
    """

    database_url: str = DEFAULT_DATABASE_URL
    issuer: str = DEFAULT_ISSUER
    keys_dir: Path = Path("keys")
    key_store: str = "files"
    key_passphrase: str | None = field(default=None, repr=False)
    #: Tried on keys the passphrase does not open, so it can change without downtime.
    key_passphrase_previous: str | None = field(default=None, repr=False)
    access_token_ttl: int = 1800
    #: Empty means the issuer (resolved on construction, so ``Settings(issuer=...)`` works).
    default_audience: str = ""
    jwks_max_age: int = 300
    key_propagation_delay: int = 900
    signing_alg: str = DEFAULT_ALG
    rsa_bits: int = 2048
    key_rotation_days: int | None = None
    #: Proxies in front, by count (the Nth X-Forwarded-For entry from the right is the
    #: client) or, when ``trusted_proxy_networks`` is set, by address.
    trusted_proxies: int = 0
    #: X-Forwarded-* is believed only from peers in these networks.
    trusted_proxy_networks: tuple[ProxyNetwork, ...] = ()
    ratelimit_enabled: bool = True
    ratelimit_storage_url: str = "memory://"
    request_body_timeout: int = DEFAULT_REQUEST_BODY_TIMEOUT
    database_outage_grace: int = DEFAULT_DATABASE_OUTAGE_GRACE
    #: The admin HTTP API under ``/admin/v1/``; off, its paths answer 404 and it is left out
    #: of ``/openapi.json``.
    admin_api: bool = True

    def __post_init__(self) -> None:
        if not self.default_audience:
            object.__setattr__(self, "default_audience", self.issuer)
        if self.key_propagation_delay < self.jwks_max_age:
            # A key that signs before resource servers' cached JWKS can hold it makes tokens
            # they cannot verify.
            raise ConfigError(
                f"AUTHSERVER_KEY_PROPAGATION_DELAY ({self.key_propagation_delay}) must be at "
                f"least AUTHSERVER_JWKS_MAX_AGE ({self.jwks_max_age})"
            )
        if self.key_store == "database" and (
            self.key_passphrase is None or len(self.key_passphrase) < MIN_DATABASE_PASSPHRASE_LENGTH
        ):
            # Every instance reads the private keys from the shared database: they must be
            # encrypted there, under a secret that is not in the database.
            raise ConfigError(
                "AUTHSERVER_KEY_STORE=database needs AUTHSERVER_KEY_PASSPHRASE (or _FILE) of at "
                f"least {MIN_DATABASE_PASSPHRASE_LENGTH} characters"
            )

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> Settings:
        """Build settings from the environment, failing on the first bad variable.

        An empty variable counts as unset.
        """
        env = os.environ if environ is None else environ
        values: dict[str, Any] = {}
        for name, (field_name, parse) in _VARIABLES.items():
            raw = env.get(name)
            if raw:
                values[field_name] = parse(name, raw)
        passphrase = _key_passphrase(env)
        if passphrase is not None:
            values["key_passphrase"] = passphrase
        proxies = values.pop("trusted_proxies", 0)
        if isinstance(proxies, tuple):
            values["trusted_proxy_networks"] = proxies
            values["trusted_proxies"] = 0
        else:
            values["trusted_proxies"] = proxies
        return cls(**values)


def _database_url(name: str, raw: str) -> str:
    """A URL SQLAlchemy can open: its form, its dialect and its driver's module are checked.

    The driver is imported here so that a missing one (``psycopg`` without the ``postgres``
    extra) is one line naming the variable, not a traceback at the first query. SQLAlchemy
    itself is imported only here: this module's constants are read by parts (the OAuth
    layer, the key store) that must not load it.
    """
    from sqlalchemy.engine import make_url
    from sqlalchemy.exc import ArgumentError, NoSuchModuleError

    try:
        url = make_url(raw)
    except ArgumentError:
        raise ConfigError(f"{name} is not a database URL (e.g. {DEFAULT_DATABASE_URL})") from None
    if not url.drivername:
        raise ConfigError(f"{name} has no database driver")
    try:
        url.get_dialect().import_dbapi()
    except NoSuchModuleError:
        raise ConfigError(f"{name} names an unknown database: {url.drivername}") from None
    except ImportError as exc:
        hint = (
            " (pip install 'authserver[server,postgres]')"
            if url.get_backend_name() == "postgresql"
            else ""
        )
        raise ConfigError(
            f"{name}: the driver for {url.drivername} is not installed: {exc.name}{hint}"
        ) from None
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


def _url(name: str, raw: str) -> str:
    scheme, sep, rest = raw.partition("://")
    if not sep or scheme not in ("http", "https") or not rest.strip("/") or " " in raw:
        raise ConfigError(f"{name} must be an http(s) URL, got {raw!r}")
    return raw


def _issuer(name: str, raw: str) -> str:
    return _url(name, raw).rstrip("/")


def _at_most(maximum: int, unit: str = "seconds", minimum: int = 1) -> Callable[[str, str], int]:
    """A whole number of ``unit`` from ``minimum`` (1 unless said) to ``maximum``."""

    def parse(name: str, raw: str) -> int:
        try:
            value = int(raw)
        except ValueError:
            raise ConfigError(f"{name} must be a whole number of {unit}, got {raw!r}") from None
        if value < minimum:
            bound = "greater than 0" if minimum == 1 else f"at least {minimum}"
            raise ConfigError(f"{name} must be {bound}, got {value}")
        if value > maximum:
            raise ConfigError(f"{name} must be at most {maximum}, got {value}")
        return value

    return parse


def _one_of(*allowed: str) -> Callable[[str, str], str]:
    def parse(name: str, raw: str) -> str:
        if raw not in allowed:
            raise ConfigError(f"{name} must be one of {', '.join(allowed)}, got {raw!r}")
        return raw

    return parse


def _rsa_bits(name: str, raw: str) -> int:
    return int(_one_of(*map(str, RSA_SIZES))(name, raw))


def _on_off(name: str, raw: str) -> bool:
    return _one_of("on", "off")(name, raw) == "on"


def _trusted_proxies(name: str, raw: str) -> int | tuple[ProxyNetwork, ...]:
    """A number of proxies, or the proxies' addresses and networks, comma-separated.

    Addresses are the safer form: with a count, a client that reaches an instance directly
    chooses its own address for the failed-authentication limits.
    """
    if raw.isdigit():
        return int(raw)
    networks = []
    for item in raw.split(","):
        try:
            networks.append(ipaddress.ip_network(item.strip(), strict=False))
        except ValueError:
            raise ConfigError(
                f"{name} must be a number of proxies or a comma-separated list of their "
                f"addresses or networks (e.g. 10.0.0.5,10.1.0.0/16), got {item.strip()!r}"
            ) from None
    return tuple(networks)


def _text(name: str, raw: str) -> str:
    return raw


def _path(name: str, raw: str) -> Path:
    return Path(raw)


#: Each variable: the field it sets and how its text becomes the value (or a ConfigError
#: naming the variable). The passphrase, which two variables can give, is read apart.
_VARIABLES: dict[str, tuple[str, Callable[[str, str], Any]]] = {
    "AUTHSERVER_DATABASE_URL": ("database_url", _database_url),
    "AUTHSERVER_ISSUER": ("issuer", _issuer),
    "AUTHSERVER_KEYS_DIR": ("keys_dir", _path),
    "AUTHSERVER_KEY_STORE": ("key_store", _one_of(*KEY_STORES)),
    "AUTHSERVER_KEY_PASSPHRASE_PREVIOUS": ("key_passphrase_previous", _text),
    "AUTHSERVER_ACCESS_TOKEN_TTL": ("access_token_ttl", _at_most(MAX_ACCESS_TOKEN_TTL)),
    "AUTHSERVER_DEFAULT_AUDIENCE": ("default_audience", _url),
    "AUTHSERVER_JWKS_MAX_AGE": ("jwks_max_age", _at_most(MAX_JWKS_MAX_AGE)),
    "AUTHSERVER_KEY_PROPAGATION_DELAY": (
        "key_propagation_delay",
        _at_most(MAX_KEY_PROPAGATION_DELAY),
    ),
    "AUTHSERVER_SIGNING_ALG": ("signing_alg", _one_of(*SUPPORTED_ALGS)),
    "AUTHSERVER_RSA_BITS": ("rsa_bits", _rsa_bits),
    "AUTHSERVER_KEY_ROTATION_DAYS": ("key_rotation_days", _at_most(MAX_KEY_ROTATION_DAYS, "days")),
    "AUTHSERVER_TRUSTED_PROXIES": ("trusted_proxies", _trusted_proxies),
    "AUTHSERVER_RATELIMIT": ("ratelimit_enabled", _on_off),
    "AUTHSERVER_RATELIMIT_STORAGE_URL": ("ratelimit_storage_url", _text),
    "AUTHSERVER_ADMIN_API": ("admin_api", _on_off),
    "AUTHSERVER_REQUEST_BODY_TIMEOUT": (
        "request_body_timeout",
        _at_most(MAX_REQUEST_BODY_TIMEOUT),
    ),
    "AUTHSERVER_DATABASE_OUTAGE_GRACE": (
        "database_outage_grace",
        # 0: no outage mode, every token request needs the database.
        _at_most(MAX_DATABASE_OUTAGE_GRACE, minimum=0),
    ),
}
