"""Signing-key lifecycle end to end (issue 3): real ``authserver serve`` instances sharing one
keys folder and one database, driven by the real ``authserver keys ...`` commands.

Every server is a granian process group on a free loopback port, stopped in teardown. All
waits are bounded polls; the durations are the short, configurable ones the issue asks for.
"""

from __future__ import annotations

import base64
import json
import shutil
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import jwt
import pytest
import requests

from authserver.security.keys import KeyStore
from tests.support.cli import assert_one_line_error, ok, ok_json, sqlite_env
from tests.support.cli_in_process import run_in_process
from tests.support.postgres import PostgresServer
from tests.support.server import Server, Servers, serve_to_exit
from tests.support.waiting import holds_throughout, wait_until

ISSUER = "https://auth.example.test"
KEY_SUFFIX = ".key.json"
#: The contract: every CLI change reaches all workers of a running server within 2 s.
PROPAGATION_SECONDS = 2.0
#: Slack for the test's own polling and process scheduling on a busy 2-core machine.
SLACK_SECONDS = 0.5


# --- helpers: environment, CLI, waiting -------------------------------------------------


def rotation_env(tmp_path: Path, **extra: str) -> dict[str, str]:
    """SQLite and keys inside ``tmp_path``, and a fixed issuer (several servers share it)."""
    return sqlite_env(tmp_path, AUTHSERVER_ISSUER=ISSUER, **extra)


def cli_json(env: dict[str, str], *args: str) -> Any:
    return ok_json(run_in_process(env, *args))


def parse_time(value: str) -> float:
    return datetime.fromisoformat(value.replace("Z", "+00:00")).timestamp()


def kid_of(token: str) -> str:
    return str(jwt.get_unverified_header(token)["kid"])


@dataclass(frozen=True)
class Client:
    client_id: str
    client_secret: str


def create_client(env: dict[str, str], *extra: str) -> Client:
    view = cli_json(env, "clients", "create", "--name", "rotation", "--scope", "api", *extra)
    return Client(view["client_id"], view["client_secret"])


def verify(token: str, jwks: dict[str, Any]) -> dict[str, Any]:
    """What a resource server does: pick the JWK by ``kid`` and verify signature and claims."""
    kid = kid_of(token)
    matching = [k for k in jwks["keys"] if k["kid"] == kid]
    assert matching, f"kid {kid} is not in the JWKS {[k['kid'] for k in jwks['keys']]}"
    jwk = jwt.PyJWK.from_dict(matching[0])
    claims: dict[str, Any] = jwt.decode(
        token, jwk.key, algorithms=[matching[0]["alg"]], audience=ISSUER, issuer=ISSUER
    )
    return claims


# --- servers --------------------------------------------------------------------------


@dataclass
class Instance:
    """A started server, and the session the test talks to it with."""

    server: Server
    session: requests.Session

    @property
    def url(self) -> str:
        return self.server.url

    def wait_healthy(self) -> None:
        self.server.wait_until_healthy()

    def token_response(self, client: Client, session: requests.Session | None = None) -> Any:
        return (session or self.session).post(
            f"{self.url}/oauth2/token",
            data={"grant_type": "client_credentials"},
            auth=(client.client_id, client.client_secret),
            timeout=10,
        )

    def token(self, client: Client) -> str:
        response = self.token_response(client)
        assert response.status_code == 200, response.text
        return str(response.json()["access_token"])

    def kids_signing(self, client: Client, count: int = 6) -> set[str]:
        """The kids of ``count`` fresh tokens: with 2 workers, both are very likely hit."""
        return {kid_of(self.token(client)) for _ in range(count)}

    def jwks(self) -> dict[str, Any]:
        response = self.session.get(f"{self.url}/.well-known/jwks.json", timeout=10)
        assert response.status_code == 200, response.text
        document: dict[str, Any] = response.json()
        return document

    def jwks_kids(self) -> list[str]:
        return [k["kid"] for k in self.jwks()["keys"]]


Launch = Callable[..., Instance]


@pytest.fixture
def launch(tmp_path: Path) -> Iterator[Launch]:
    """Start ``authserver serve`` (not waiting for it); every instance is killed at teardown."""
    with Servers(tmp_path) as servers, requests.Session() as session:

        def start(env: dict[str, str], workers: int = 2) -> Instance:
            return Instance(servers.start(env, workers=workers, wait=False), session)

        yield start


@dataclass(frozen=True)
class Template:
    database: Path
    client: Client


@pytest.fixture(scope="module")
def template(tmp_path_factory: pytest.TempPathFactory) -> Template:
    """A migrated SQLite database with one client, made once with the CLI and copied per test."""
    directory = tmp_path_factory.mktemp("rotation-template")
    env = rotation_env(directory)
    ok(run_in_process(env, "db", "upgrade"))
    return Template(directory / "authserver.db", create_client(env, "--json"))


def copied_env(tmp_path: Path, template: Template, **extra: str) -> dict[str, str]:
    shutil.copyfile(template.database, tmp_path / "authserver.db")
    return rotation_env(tmp_path, **extra)


def start_all(launch: Launch, env: dict[str, str], count: int, workers: int = 2) -> list[Instance]:
    instances = [launch(env, workers) for _ in range(count)]
    for instance in instances:
        instance.wait_healthy()
    return instances


def two_instances_on_one_key(
    tmp_path: Path, template: Template, keys_dir: Path, launch: Launch
) -> tuple[dict[str, str], list[Instance], str]:
    """Two healthy instances on a keys folder that already holds one key (two instances
    starting at once on an empty folder would each create a first key, which is not what
    these tests are about): their environment, the instances, and the kid both sign with."""
    env = copied_env(tmp_path, template, AUTHSERVER_KEYS_DIR=str(keys_dir))
    instances = start_all(launch, env, 2)
    (old_kid,) = set.union(*(i.kids_signing(template.client) for i in instances))
    return env, instances, old_kid


# --- 1. staged rotation under load, two instances, PostgreSQL --------------------------


@dataclass(frozen=True)
class Issued:
    instance: int
    sent_at: float
    status: int
    body: str
    token: str | None


MAX_AGE = 2
DELAY = 3
#: Tokens each instance issues with a key before the load may move on (to the rotation, to
#: the end of the test): the load spans the hand-over by a count of requests, not a duration.
LOAD_TOKENS = 10


def test_staged_rotation_under_load_on_two_instances_only_issues_verifiable_tokens(
    tmp_path: Path, keys_dir: Path, postgres: PostgresServer, launch: Launch
) -> None:
    env = rotation_env(
        tmp_path,
        AUTHSERVER_DATABASE_URL=postgres.create_database(f"rot_{uuid.uuid4().hex[:12]}"),
        AUTHSERVER_KEYS_DIR=str(keys_dir),
        AUTHSERVER_KEY_PROPAGATION_DELAY=str(DELAY),
        AUTHSERVER_JWKS_MAX_AGE=str(MAX_AGE),
    )
    ok(run_in_process(env, "db", "upgrade"))
    instances = [launch(env, 2) for _ in range(2)]
    client = create_client(env, "--json")
    for instance in instances:
        instance.wait_healthy()

    stop = threading.Event()
    lock = threading.Lock()
    issued: list[Issued] = []
    first_seen: list[dict[str, float]] = [{}, {}]
    watched: set[str] = set()
    polled_without: list[dict[str, float]] = [{}, {}]  # last poll still lacking a kid
    jwks_failures: list[str] = []
    signing_kids: list[set[str]] = [set(), set()]

    def poll_jwks(index: int) -> None:
        url = f"{instances[index].url}/.well-known/jwks.json"
        with requests.Session() as session:
            session.trust_env = False  # no os.environ: the in-process CLI changes it meanwhile
            while not stop.wait(0.1):
                try:
                    response = session.get(url, timeout=5)
                except requests.RequestException as exc:
                    jwks_failures.append(f"instance {index}: {exc!r}")
                    continue
                seen_at = time.time()  # an upper bound on when the kid was published
                if response.status_code != 200:
                    jwks_failures.append(f"instance {index}: {response.status_code}")
                    continue
                published = {key["kid"] for key in response.json()["keys"]}
                for kid in published:
                    first_seen[index].setdefault(kid, seen_at)
                for kid in watched - published:
                    polled_without[index][kid] = seen_at

    def load(index: int) -> None:
        instance = instances[index]
        with requests.Session() as session:
            session.trust_env = False  # no os.environ: the in-process CLI changes it meanwhile
            while not stop.is_set():
                sent_at = time.time()
                try:
                    response = instance.token_response(client, session)
                except requests.RequestException as exc:
                    with lock:
                        issued.append(Issued(index, sent_at, -1, repr(exc), None))
                    continue
                token = response.json().get("access_token") if response.ok else None
                if token:
                    signing_kids[index].add(kid_of(token))
                with lock:
                    issued.append(Issued(index, sent_at, response.status_code, "", token))

    def tokens_from(index: int, kid: str | None = None) -> int:
        """Tokens instance ``index`` has issued so far (signed with ``kid``, if given)."""
        with lock:
            tokens = [i.token for i in issued if i.instance == index and i.token]
        return sum(1 for token in tokens if kid is None or kid_of(token) == kid)

    # One poller and one load thread per instance: light enough that on a busy 2-core machine
    # the pollers are not starved (a late poll would only make the check stricter).
    pollers = [threading.Thread(target=poll_jwks, args=(i,), daemon=True) for i in range(2)]
    for poller in pollers:
        poller.start()
    workers = [threading.Thread(target=load, args=(i,), daemon=True) for i in range(2)]
    try:
        wait_until(lambda: all(first_seen), 5, "JWKS polled from both instances", interval=0.1)
        for worker in workers:
            worker.start()
        wait_until(
            lambda: all(tokens_from(i) >= LOAD_TOKENS for i in range(2)),
            10,
            f"{LOAD_TOKENS} tokens from each instance before the rotation",
            interval=0.1,
        )
        rotate_started = time.time()
        staged = cli_json(env, "keys", "rotate", "--json")
        rotated_at = time.time()
        assert staged["state"] == "next", staged
        new_kid = staged["kid"]
        watched.add(new_kid)  # from now on the poller notes each JWKS still lacking it
        wait_until(
            lambda: all(new_kid in kids for kids in signing_kids),
            DELAY + PROPAGATION_SECONDS + 3,
            "the staged key signing on both instances",
            interval=0.1,
        )
        wait_until(  # the load goes on across the hand-over
            lambda: all(tokens_from(i, new_kid) >= LOAD_TOKENS for i in range(2)),
            10,
            f"{LOAD_TOKENS} tokens with the staged key from each instance",
            interval=0.1,
        )
    finally:
        stop.set()
        for worker in workers:
            worker.join(timeout=15)
        for poller in pollers:
            poller.join(timeout=15)

    failures = [(i.instance, i.status, i.body) for i in issued if i.status != 200]
    assert not failures, f"{len(failures)} failed token requests, e.g. {failures[:5]}"
    assert not jwks_failures, jwks_failures[:5]
    tokens = [i for i in issued if i.token]
    kids = {kid_of(i.token) for i in tokens if i.token}
    assert new_kid in kids
    assert len(kids) == 2, f"expected the old and the staged kid, got {kids}"

    for item in tokens:
        assert item.token
        kid = kid_of(item.token)
        published_at = first_seen[item.instance].get(kid)
        assert published_at is not None, f"instance {item.instance} signed with unpublished {kid}"
        if kid != new_kid:
            continue  # the first key signs from start-up, before anyone could cache a JWKS
        iat = jwt.decode(item.token, options={"verify_signature": False})["iat"]
        issued_no_earlier_than = max(iat, item.sent_at)
        lead = issued_no_earlier_than - published_at
        lacking = polled_without[item.instance].get(kid, rotate_started)
        assert lead >= MAX_AGE - 1.0, (
            f"instance {item.instance} signed with {kid} {lead:.2f}s after first serving it "
            f"in its JWKS; resource servers may cache the JWKS for {MAX_AGE}s. Seconds after "
            f"`keys rotate` started/returned: last JWKS without it "
            f"{lacking - rotate_started:.2f}/{lacking - rotated_at:.2f}, first with it "
            f"{published_at - rotate_started:.2f}/{published_at - rotated_at:.2f}, token sent "
            f"{item.sent_at - rotate_started:.2f}/{item.sent_at - rotated_at:.2f}"
        )

    def verify_all(jwks_by_instance: list[dict[str, Any]]) -> None:
        for item in tokens:
            assert item.token
            claims = verify(item.token, jwks_by_instance[item.instance])
            assert claims["client_id"] == client.client_id

    verify_all([instance.jwks() for instance in instances])

    # Resource servers keep verifying these tokens later on: the kids stay published, checked
    # until 10 s (five JWKS max-ages) after the hand-over, so a retention that left out the
    # tokens' lifetime (or used the propagation delay) would show.
    handover = parse_time(staged["activates_at"])
    holds_throughout(
        lambda: all(kids <= set(instance.jwks_kids()) for instance in instances),
        handover + 5 * MAX_AGE - time.time(),
        "every kid that signed a token still published",
        interval=1,
    )
    verify_all([instance.jwks() for instance in instances])


# --- 2. rotate --now ------------------------------------------------------------------


def test_rotate_now_signs_with_the_new_key_on_both_instances_within_two_seconds(
    tmp_path: Path, template: Template, keys_dir: Path, launch: Launch
) -> None:
    env, instances, old_kid = two_instances_on_one_key(tmp_path, template, keys_dir, launch)
    client = template.client

    new = cli_json(env, "keys", "rotate", "--now", "--json")
    changed_at = time.monotonic()
    assert new["state"] == "active", new
    assert new["kid"] != old_kid

    wait_until(
        lambda: all(i.kids_signing(client) == {new["kid"]} for i in instances),
        PROPAGATION_SECONDS + SLACK_SECONDS,
        "both instances signing only with the new key",
        interval=0.05,
    )
    assert time.monotonic() - changed_at <= PROPAGATION_SECONDS + SLACK_SECONDS
    for instance in instances:
        assert instance.kids_signing(client, 10) == {new["kid"]}
        assert {old_kid, new["kid"]} <= set(instance.jwks_kids())
        for _ in range(3):
            verify(instance.token(client), instance.jwks())


# --- 3. revoke ------------------------------------------------------------------------


def test_revoke_takes_the_key_out_of_signing_and_jwks_on_both_instances(
    tmp_path: Path, template: Template, keys_dir: Path, launch: Launch
) -> None:
    env, instances, old_kid = two_instances_on_one_key(tmp_path, template, keys_dir, launch)
    client = template.client

    staged = cli_json(env, "keys", "rotate", "--json")
    assert staged["state"] == "next", staged
    staged_kid = staged["kid"]
    wait_until(
        lambda: all(staged_kid in i.jwks_kids() for i in instances),
        PROPAGATION_SECONDS + SLACK_SECONDS,
        "the staged key in both JWKS",
        interval=0.1,
    )
    assert all(i.kids_signing(client) == {old_kid} for i in instances)

    # Revoking the active key: the staged key (the newest other published one) signs at once.
    ok(run_in_process(env, "keys", "revoke", "--", old_kid))
    wait_until(
        lambda: all(
            old_kid not in i.jwks_kids() and i.kids_signing(client) == {staged_kid}
            for i in instances
        ),
        PROPAGATION_SECONDS + SLACK_SECONDS,
        "revoked key gone from both instances, the staged key signing",
        interval=0.05,
    )
    listed = cli_json(env, "keys", "list", "--json")
    assert [(k["kid"], k["state"]) for k in listed] == [(staged_kid, "active")]

    # Revoking the only key: a new one is generated and signs at once.
    ok(run_in_process(env, "keys", "revoke", "--", staged_kid))
    listed = cli_json(env, "keys", "list", "--json")
    assert len(listed) == 1, listed
    assert listed[0]["state"] == "active", listed
    fresh_kid = listed[0]["kid"]
    assert fresh_kid not in (old_kid, staged_kid)
    wait_until(
        lambda: all(
            i.jwks_kids() == [fresh_kid] and i.kids_signing(client) == {fresh_kid}
            for i in instances
        ),
        PROPAGATION_SECONDS + SLACK_SECONDS,
        "the generated key alone in both JWKS and signing",
        interval=0.05,
    )
    for instance in instances:
        verify(instance.token(client), instance.jwks())


def test_revoke_of_an_unknown_kid_exits_1_with_one_stderr_line(
    tmp_path: Path, template: Template, keys_dir: Path
) -> None:
    env = copied_env(tmp_path, template, AUTHSERVER_KEYS_DIR=str(keys_dir))
    before = sorted(p.name for p in keys_dir.glob("*" + KEY_SUFFIX))
    result = run_in_process(env, "keys", "revoke", "no-such-kid")
    assert "no-such-kid" in assert_one_line_error(result)
    assert sorted(p.name for p in keys_dir.glob("*" + KEY_SUFFIX)) == before


# --- 4. retirement window -------------------------------------------------------------

SHORT_WINDOWS = {
    "AUTHSERVER_ACCESS_TOKEN_TTL": "2",
    "AUTHSERVER_JWKS_MAX_AGE": "1",
    "AUTHSERVER_KEY_PROPAGATION_DELAY": "1",
}


def seconds_until_gone(instance: Instance, kid: str, handover: float, timeout: float) -> float:
    """Seconds from ``handover`` (epoch) until ``kid`` is first missing from the JWKS."""
    wait_until(
        lambda: kid not in instance.jwks_kids(),
        timeout,
        f"retired key {kid} leaving the JWKS",
        interval=0.1,
    )
    return time.time() - handover


def test_retired_key_leaves_the_jwks_after_token_ttl_plus_max_age(
    tmp_path: Path, template: Template, launch: Launch
) -> None:
    env = copied_env(tmp_path, template, **SHORT_WINDOWS)
    (instance,) = start_all(launch, env, 1)
    (old_kid,) = instance.kids_signing(template.client)

    new = cli_json(env, "keys", "rotate", "--now", "--json")
    # Whole seconds: the real hand-over is in [handover, handover + 1).
    handover = parse_time(new["activates_at"])
    gone_after = seconds_until_gone(instance, old_kid, handover, timeout=10)
    # Expected: TTL 2 + max-age 1 = 3 s after the hand-over.
    assert 2.5 <= gone_after <= 6, f"old key left the JWKS {gone_after:.2f}s after hand-over"
    assert instance.jwks_kids() == [new["kid"]]


def test_longer_client_token_ttl_keeps_the_retired_key_published_longer(
    tmp_path: Path, template: Template, launch: Launch
) -> None:
    env = copied_env(tmp_path, template, **SHORT_WINDOWS)
    instance = launch(env, 2)
    long_lived = create_client(env, "--token-ttl", "6", "--json")
    instance.wait_healthy()
    (old_kid,) = instance.kids_signing(long_lived)

    new = cli_json(env, "keys", "rotate", "--now", "--json")
    handover = parse_time(new["activates_at"])
    listed = {k["kid"]: k for k in cli_json(env, "keys", "list", "--json")}
    assert listed[old_kid]["state"] == "retired", listed
    assert listed[old_kid]["retires_at"] == new["activates_at"]
    assert listed[new["kid"]]["state"] == "active"
    assert listed[new["kid"]]["retires_at"] is None

    gone_after = seconds_until_gone(instance, old_kid, handover, timeout=14)
    # Expected: the client's TTL 6 + max-age 1 = 7 s after the hand-over.
    assert 6 <= gone_after <= 10, f"old key left the JWKS {gone_after:.2f}s after hand-over"


# --- 5. scheduled rotation ------------------------------------------------------------


def test_scheduled_rotation_on_two_instances_stages_exactly_one_key(
    tmp_path: Path, template: Template, launch: Launch
) -> None:
    keys = tmp_path / "keys"
    old = KeyStore(keys).generate()
    path = keys / f"{old.kid}{KEY_SUFFIX}"
    document = json.loads(path.read_text())
    document["created_at"] = (datetime.now(UTC) - timedelta(days=2)).isoformat()
    path.write_text(json.dumps(document))
    path.chmod(0o600)
    env = copied_env(tmp_path, template, AUTHSERVER_KEY_ROTATION_DAYS="1")

    start_all(launch, env, 2)  # two instances x two workers, all checking at start-up

    def key_files() -> list[str]:
        return sorted(p.name for p in keys.glob("*" + KEY_SUFFIX))

    wait_until(lambda: len(key_files()) > 1, 10, "a scheduled successor key", interval=0.1)
    # No worker can tell that it has made its start-up check, so the claim "exactly one" is
    # held for a while: long enough for the other workers to have made theirs.
    holds_throughout(
        lambda: len(key_files()) == 2, 3, "exactly one successor key file", interval=0.2
    )
    listed = cli_json(env, "keys", "list", "--json")
    states = sorted((k["state"], k["kid"] == old.kid) for k in listed)
    assert states == [("active", True), ("next", False)], listed
    assert len(key_files()) == 2, key_files()


# --- 6. algorithms --------------------------------------------------------------------


@pytest.mark.parametrize(
    ("alg", "kty", "crv"), [("ES256", "EC", "P-256"), ("EdDSA", "OKP", "Ed25519")]
)
def test_signing_alg_setting_makes_serve_create_and_sign_with_that_key_type(
    tmp_path: Path, template: Template, launch: Launch, alg: str, kty: str, crv: str
) -> None:
    env = copied_env(tmp_path, template, AUTHSERVER_SIGNING_ALG=alg)
    assert not (tmp_path / "keys").exists()
    (instance,) = start_all(launch, env, 1)
    (jwk,) = instance.jwks()["keys"]
    assert (jwk["kty"], jwk["crv"], jwk["alg"], jwk["use"]) == (kty, crv, alg, "sig")
    token = instance.token(template.client)
    header = jwt.get_unverified_header(token)
    assert (header["alg"], header["kid"]) == (alg, jwk["kid"])
    assert verify(token, instance.jwks())["sub"] == template.client.client_id


def test_rsa_bits_3072_gives_a_3072_bit_modulus(
    tmp_path: Path, template: Template, launch: Launch
) -> None:
    env = copied_env(tmp_path, template, AUTHSERVER_RSA_BITS="3072")
    (instance,) = start_all(launch, env, 1)
    (jwk,) = instance.jwks()["keys"]
    assert (jwk["kty"], jwk["alg"]) == ("RSA", "RS256")
    modulus = base64.urlsafe_b64decode(jwk["n"] + "=" * (-len(jwk["n"]) % 4))
    assert int.from_bytes(modulus, "big").bit_length() == 3072
    token = instance.token(template.client)
    assert jwt.get_unverified_header(token)["alg"] == "RS256"
    verify(token, instance.jwks())


def test_unknown_signing_alg_stops_serve_with_exit_1_naming_the_variable(
    tmp_path: Path, template: Template
) -> None:
    env = copied_env(tmp_path, template, AUTHSERVER_SIGNING_ALG="HS256")
    result = serve_to_exit(env)
    assert "AUTHSERVER_SIGNING_ALG" in assert_one_line_error(result), result.stderr
    assert not (tmp_path / "keys").exists() or not list((tmp_path / "keys").iterdir())


# --- 7. corrupt key file --------------------------------------------------------------


def test_corrupt_key_file_in_a_running_server_is_a_readyz_warning_not_an_outage(
    tmp_path: Path, template: Template, launch: Launch
) -> None:
    """``/readyz`` warns without naming the file (anyone may ask it); the log names it."""
    env = copied_env(tmp_path, template)
    (instance,) = start_all(launch, env, 1)  # one instance, two workers
    client = template.client
    (kid,) = instance.kids_signing(client)
    corrupt = tmp_path / "keys" / f"corrupt{KEY_SUFFIX}"
    corrupt.write_text('{"kid": "corrupt", "private_key": "-----BEGIN')
    corrupt.chmod(0o600)
    written_at = time.monotonic()

    def ready_and_serving() -> list[str]:
        response = instance.session.get(f"{instance.url}/readyz", timeout=10)
        assert response.status_code == 200, response.text
        assert instance.kids_signing(client, 2) == {kid}
        warnings: list[str] = response.json()["warnings"]
        assert corrupt.name not in response.text
        return warnings

    wait_until(
        ready_and_serving,
        PROPAGATION_SECONDS + SLACK_SECONDS,
        "readyz warning about an unusable key file",
        interval=0.05,
    )
    warning = ["a signing key file could not be loaded (the server log names it)"]
    wait_until(  # every worker: still ready, still signing, now warning
        lambda: all(ready_and_serving() == warning for _ in range(10)),
        PROPAGATION_SECONDS + SLACK_SECONDS - (time.monotonic() - written_at),
        "ten warnings in a row (every worker reloaded)",
        interval=0.05,
    )
    assert instance.jwks_kids() == [kid]
    verify(instance.token(client), instance.jwks())
    logged = [
        json.loads(line)
        for line in instance.server.stderr().splitlines()
        if line.startswith("{") and "signing_key.unusable" in line
    ]
    assert logged, instance.server.stderr()
    assert all(str(corrupt) in line["message"] for line in logged)
