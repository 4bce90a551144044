"""A stand-in for the platforms whose workload tokens a trust accepts: Kubernetes, GitHub
Actions and SPIFFE, on a real HTTP server on a free loopback port (a thread, for the length of
a ``with`` block).

The tokens have the claims and headers the real platforms put in them (as of 2026):

- Kubernetes projected service-account tokens: header ``{"alg", "kid"}`` (no ``typ``); ``aud``
  a list; ``sub`` ``system:serviceaccount:NS:SA``; a ``kubernetes.io`` object naming the
  namespace, node, pod and service account; ``jti``; an hour by default.
- GitHub Actions OIDC tokens: header ``{"typ": "JWT", "alg", "x5t", "kid"}``; ``aud`` a
  string; ``sub`` ``repo:OWNER/REPO:ref:REF`` (or ``:environment:ENV``); the repository,
  run and workflow claims as strings; ``exp`` five minutes after ``iat``, ``nbf`` before it.
  A job asks for one at ``ACTIONS_ID_TOKEN_REQUEST_URL`` (+ ``&audience=``) with the bearer
  ``ACTIONS_ID_TOKEN_REQUEST_TOKEN``: served here too.
- SPIFFE JWT-SVIDs: header ``{"alg", "kid", "typ": "JWT"}``; ``sub`` the SPIFFE ID, ``aud`` a
  list, ``exp``, ``iat``, and no ``jti`` (SVIDs are reused until they expire). SPIRE sets
  ``iss`` only when configured with ``jwt_issuer``; a trust needs it, so it is set here unless
  a test passes ``iss=None``. SPIFFE has no discovery: the keys are in a trust bundle (a JWK
  Set with ``use: jwt-svid`` keys, an ``x509-svid`` CA entry, ``spiffe_sequence`` and
  ``spiffe_refresh_hint``) at ``bundle_uri``.

Kubernetes and GitHub publish OpenID discovery (``{issuer}/.well-known/openid-configuration``,
whose ``jwks_uri`` is the key set), served here with ``Cache-Control: max-age`` as they do, so
a verifier's caching shows in ``fetches``.

Any claim given as a keyword overrides the platform's; a claim given as ``None`` is left out
(a token without ``jti``, ``exp``...). ``sign()`` signs anything; ``rotate()`` publishes a new
key next to the old one and signs with it from then on.
"""

from __future__ import annotations

import base64
import datetime
import hashlib
import json
import secrets
import threading
import time
import uuid
from collections import Counter
from collections.abc import Iterable, Mapping
from contextlib import ExitStack
from dataclasses import dataclass
from types import TracebackType
from typing import Any, Self
from urllib.parse import quote

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from joserfc import jws
from joserfc.jwk import ECKey, RSAKey
from werkzeug.wrappers import Request, Response

from tests.support.wsgi import serving

#: The algorithms an issuer can sign with, and the key each needs.
KEY_TYPES: dict[str, str] = {"RS256": "RSA", "PS256": "RSA", "ES256": "EC"}
#: ``Cache-Control: max-age`` of the discovery document, the JWKS and the bundle.
DEFAULT_MAX_AGE = 300
#: Where a GitHub Actions job asks for its token (the real URL carries an api-version too,
#: which is why a client appends ``&audience=``).
ACTIONS_TOKEN_PATH = "/actions-token"
BUNDLE_PATH = "/bundle"
DISCOVERY_SUFFIX = "/.well-known/openid-configuration"
#: GitHub's own key set path; Kubernetes serves ``/openid/v1/jwks``: any path works.
JWKS_SUFFIX = "/.well-known/jwks"
#: GitHub Actions tokens live five minutes; ``nbf`` is backdated as GitHub's are.
GITHUB_LIFETIME = 300
GITHUB_NBF_BACKDATE = 600
SPIFFE_REFRESH_HINT = 300


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


@dataclass(frozen=True)
class SigningKey:
    """One published key: its kid, the private JWK, and a self-signed certificate (GitHub
    publishes ``x5c`` and names the certificate by ``x5t`` in each token's header)."""

    kid: str
    key: RSAKey | ECKey
    algorithm: str
    certificate: x509.Certificate

    @property
    def x5t(self) -> str:
        return _b64url(self.certificate.fingerprint(hashes.SHA1()))  # noqa: S303 (x5t is SHA-1 by definition, RFC 7515 §4.1.7)

    @property
    def x5c(self) -> str:
        return base64.b64encode(self.certificate.public_bytes(serialization.Encoding.DER)).decode()

    def public_jwk(self, **members: Any) -> dict[str, Any]:
        return {**self.key.as_dict(private=False), "kid": self.kid, **members}


def _certificate(private_key: Any, common_name: str, *, ca: bool = False) -> x509.Certificate:
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])
    now = datetime.datetime.now(datetime.UTC)
    builder = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(private_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
    )
    if ca:
        builder = builder.add_extension(
            x509.SubjectAlternativeName([x509.UniformResourceIdentifier(common_name)]),
            critical=False,
        )
    return builder.sign(private_key, hashes.SHA256())


def new_signing_key(algorithm: str) -> SigningKey:
    """A fresh key for ``algorithm`` (RSA 2048 or EC P-256); kid the RFC 7638 thumbprint."""
    key: RSAKey | ECKey
    if KEY_TYPES[algorithm] == "RSA":
        key = RSAKey.generate_key(2048, private=True)
    else:
        key = ECKey.generate_key("P-256", private=True)
    certificate = _certificate(key.private_key, "workload-issuer")
    return SigningKey(key.thumbprint(), key, algorithm, certificate)


class WorkloadIssuer:
    """A platform's token issuer on ``http://127.0.0.1:PORT{path}``; use it in a ``with``.

    ``algorithm`` (``RS256``, ``PS256`` or ``ES256``) is what its keys sign; ``path`` puts the
    issuer below the host (EKS issuers look like ``https://oidc.eks.../id/ABC``). ``max_age``
    is the ``Cache-Control: max-age`` of what it publishes. ``actions_job`` holds the claims
    the GitHub Actions request endpoint signs (``repository``, ``ref``, any other).
    ``unavailable = True`` makes every path answer 503 (a platform outage).
    """

    def __init__(
        self, algorithm: str = "RS256", path: str = "", *, max_age: int = DEFAULT_MAX_AGE
    ) -> None:
        if algorithm not in KEY_TYPES:
            raise ValueError(f"algorithm must be one of {', '.join(KEY_TYPES)}")
        if path and (not path.startswith("/") or path.endswith("/")):
            raise ValueError("path starts with / and does not end with one")
        self.algorithm = algorithm
        self.path = path
        self.max_age = max_age
        self.keys: list[SigningKey] = [new_signing_key(algorithm)]
        #: How many times each URL path was served (whatever the answer).
        self.fetches: Counter[str] = Counter()
        self.actions_request_token = secrets.token_urlsafe(32)
        self.actions_job: dict[str, Any] = {"repository": "octo-org/octo-repo"}
        #: Every token the Actions request endpoint handed out, in order.
        self.actions_tokens: list[str] = []
        self.unavailable = False
        self.spiffe_sequence = 1
        self._x509_authority = ec.generate_private_key(ec.SECP256R1())
        self._lock = threading.Lock()
        self._stack = ExitStack()
        self._base: str | None = None

    # -- serving ----------------------------------------------------------------------------

    def __enter__(self) -> Self:
        self._base = self._stack.enter_context(serving(self._app))
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self._stack.close()
        self._base = None

    @property
    def base_url(self) -> str:
        if self._base is None:
            raise RuntimeError("the issuer serves only inside its with block")
        return self._base

    @property
    def issuer(self) -> str:
        return self.base_url + self.path

    @property
    def discovery_url(self) -> str:
        return self.issuer + DISCOVERY_SUFFIX

    @property
    def jwks_uri(self) -> str:
        return self.issuer + JWKS_SUFFIX

    @property
    def bundle_uri(self) -> str:
        return self.base_url + BUNDLE_PATH

    @property
    def actions_request_url(self) -> str:
        """``ACTIONS_ID_TOKEN_REQUEST_URL``: it already has a query, as GitHub's does."""
        return f"{self.base_url}{ACTIONS_TOKEN_PATH}?api-version=2.0"

    @property
    def kid(self) -> str:
        """The kid new tokens are signed with."""
        return self.keys[-1].kid

    def rotate(self) -> SigningKey:
        """A new signing key: published with the old ones, and signing from now on."""
        key = new_signing_key(self.algorithm)
        with self._lock:
            self.keys.append(key)
            self.spiffe_sequence += 1
        return key

    def discovery_document(self) -> dict[str, Any]:
        """What ``{issuer}/.well-known/openid-configuration`` says, as Kubernetes's API
        server and GitHub publish it."""
        return {
            "issuer": self.issuer,
            "jwks_uri": self.jwks_uri,
            "response_types_supported": ["id_token"],
            "subject_types_supported": ["public"],
            "id_token_signing_alg_values_supported": [self.algorithm],
            "claims_supported": ["sub", "aud", "exp", "iat", "iss", "jti", "nbf"],
        }

    def jwks(self) -> dict[str, Any]:
        """The published keys, each with kty, kid, use, alg (and x5t/x5c, as GitHub's)."""
        return {
            "keys": [
                key.public_jwk(use="sig", alg=key.algorithm, x5t=key.x5t, x5c=[key.x5c])
                for key in self.keys
            ]
        }

    def spiffe_bundle(self) -> dict[str, Any]:
        """A SPIFFE trust bundle (SPIFFE Trust Domain and Bundle §4): the JWT-SVID keys with
        ``use: jwt-svid`` and no ``alg``, the X.509 authority with ``use: x509-svid``."""
        authority = ECKey.import_key(self._x509_authority)
        certificate = _certificate(self._x509_authority, "spiffe://example.org", ca=True)
        der = certificate.public_bytes(serialization.Encoding.DER)
        return {
            "keys": [
                *(key.public_jwk(use="jwt-svid") for key in self.keys),
                {
                    **authority.as_dict(private=False),
                    "use": "x509-svid",
                    "x5c": [base64.b64encode(der).decode()],
                },
            ],
            "spiffe_sequence": self.spiffe_sequence,
            "spiffe_refresh_hint": SPIFFE_REFRESH_HINT,
        }

    def _app(self, environ: Any, start_response: Any) -> Iterable[bytes]:
        request = Request(environ)
        with self._lock:
            self.fetches[request.path] += 1
        response = self._answer(request)
        return response(environ, start_response)

    def _answer(self, request: Request) -> Response:
        if self.unavailable:
            return Response("unavailable", status=503)
        if request.method != "GET":
            return Response(status=405, headers={"Allow": "GET"})
        published = {
            self.path + DISCOVERY_SUFFIX: self.discovery_document,
            self.path + JWKS_SUFFIX: self.jwks,
            BUNDLE_PATH: self.spiffe_bundle,
        }
        if request.path in published:
            return self._json(published[request.path](), cache=True)
        if request.path == ACTIONS_TOKEN_PATH:
            return self._actions_token(request)
        return Response("not found", status=404)

    def _actions_token(self, request: Request) -> Response:
        expected = f"Bearer {self.actions_request_token}"
        if not secrets.compare_digest(request.headers.get("Authorization", ""), expected):
            return self._json({"message": "Bad credentials"}, status=401)
        job = dict(self.actions_job)
        repository = job.pop("repository")
        owner = repository.split("/", 1)[0]
        # Without ?audience=, GitHub addresses the token to the repository owner's URL.
        audience = request.args.get("audience") or f"https://github.com/{owner}"
        token = self.github_actions_token(repository, audience, **job)
        with self._lock:
            self.actions_tokens.append(token)
        return self._json({"count": 1, "value": token})

    def _json(self, body: Mapping[str, Any], *, status: int = 200, cache: bool = False) -> Response:
        headers = {"Cache-Control": f"public, max-age={self.max_age}"} if cache else {}
        return Response(json.dumps(body), status, headers, mimetype="application/json")

    # -- tokens -----------------------------------------------------------------------------

    def sign(
        self,
        claims: Mapping[str, Any],
        headers: Mapping[str, Any] | None = None,
        *,
        key: SigningKey | None = None,
    ) -> str:
        """A JWT with ``claims`` (a ``None`` value leaves the claim out), signed by ``key``
        (the newest by default). The header is ``{"alg", "kid"}`` plus ``headers`` (where a
        ``None`` value also removes a member)."""
        signing = key if key is not None else self.keys[-1]
        header = {"alg": signing.algorithm, "kid": signing.kid, **(headers or {})}
        header = {name: value for name, value in header.items() if value is not None}
        payload = {name: value for name, value in claims.items() if value is not None}
        # joserfc's jwt.encode adds "typ": "JWT", which Kubernetes does not send.
        body = json.dumps(payload, separators=(",", ":")).encode()
        return jws.serialize_compact(header, body, signing.key, algorithms=[header["alg"]])

    def kubernetes_token(
        self,
        namespace: str,
        service_account: str,
        audience: str | list[str],
        lifetime: int = 3600,
        **claims: Any,
    ) -> str:
        """A projected service-account token as the API server signs it for a pod."""
        now = int(time.time())
        pod = f"{service_account}-{secrets.token_hex(4)}-{secrets.token_hex(3)}"
        standard = {
            "aud": [audience] if isinstance(audience, str) else list(audience),
            "exp": now + lifetime,
            "iat": now,
            "iss": self.issuer,
            "jti": str(uuid.uuid4()),
            "kubernetes.io": {
                "namespace": namespace,
                "node": {"name": "node-1", "uid": str(uuid.uuid4())},
                "pod": {"name": pod, "uid": str(uuid.uuid4())},
                "serviceaccount": {"name": service_account, "uid": str(uuid.uuid4())},
            },
            "nbf": now,
            "sub": f"system:serviceaccount:{namespace}:{service_account}",
        }
        return self.sign({**standard, **claims})

    def github_actions_token(
        self,
        repository: str,
        audience: str,
        ref: str = "refs/heads/main",
        *,
        environment: str | None = None,
        **claims: Any,
    ) -> str:
        """A GitHub Actions OIDC token for a job of ``repository`` (``OWNER/REPO``) on
        ``ref``; with ``environment`` the subject names the environment instead, as
        GitHub's does for a job that deploys to one."""
        now = int(time.time())
        owner = repository.split("/", 1)[0]
        subject = f"repo:{repository}:" + (
            f"environment:{environment}" if environment is not None else f"ref:{ref}"
        )
        standard: dict[str, Any] = {
            "jti": str(uuid.uuid4()),
            "sub": subject,
            "aud": audience,
            "ref": ref,
            "sha": hashlib.sha1(secrets.token_bytes(8)).hexdigest(),  # noqa: S324 (a commit id's shape)
            "repository": repository,
            "repository_owner": owner,
            "repository_owner_id": str(_stable_id(owner)),
            "repository_id": str(_stable_id(repository)),
            "repository_visibility": "private",
            "run_id": str(secrets.randbelow(10**10)),
            "run_number": "7",
            "run_attempt": "1",
            "actor": "octocat",
            "actor_id": "583231",
            "workflow": "deploy",
            "head_ref": "",
            "base_ref": "",
            "event_name": "push",
            "ref_type": "tag" if ref.startswith("refs/tags/") else "branch",
            "workflow_ref": f"{repository}/.github/workflows/deploy.yml@{ref}",
            "job_workflow_ref": f"{repository}/.github/workflows/deploy.yml@{ref}",
            "runner_environment": "github-hosted",
            "iss": self.issuer,
            "nbf": now - GITHUB_NBF_BACKDATE,
            "exp": now + GITHUB_LIFETIME,
            "iat": now,
        }
        if environment is not None:
            standard["environment"] = environment
        signing = self.keys[-1]
        return self.sign({**standard, **claims}, {"typ": "JWT", "x5t": signing.x5t})

    def spiffe_svid(
        self, spiffe_id: str, audience: str | list[str], lifetime: int = 300, **claims: Any
    ) -> str:
        """A JWT-SVID for ``spiffe_id`` (``spiffe://trust-domain/path``)."""
        now = int(time.time())
        standard = {
            "sub": spiffe_id,
            "aud": [audience] if isinstance(audience, str) else list(audience),
            "exp": now + lifetime,
            "iat": now,
            "iss": self.issuer,
        }
        return self.sign({**standard, **claims}, {"typ": "JWT"})


def _stable_id(name: str) -> int:
    """A numeric id that stays the same for a name, as GitHub's owner and repository ids do."""
    return int.from_bytes(hashlib.sha256(quote(name).encode()).digest()[:4], "big")
