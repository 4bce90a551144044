"""Client authentication as the OAuth layer does it for every endpoint: the auth-method lists
Authlib hands to ``authenticate_client``, and the failed-authentication lock (429 with
``Retry-After``) as the Backend protocol reports it, lifted by moving the fake clock."""

from __future__ import annotations

import pytest
from authlib.oauth2.rfc6749.errors import InvalidRequestError

from authserver.oauth.clients import (
    AUTH_METHODS,
    CLIENT_SECRET_BASIC,
    GRANT_TYPE,
    SECRET_METHODS,
)
from authserver.oauth.endpoints import IntrospectionEndpoint, RevocationEndpoint
from authserver.oauth.errors import InvalidClientError
from authserver.oauth.grants import ClientCredentialsGrant
from authserver.oauth.requests import OAuthFormRequest
from authserver.oauth.server import (
    INTROSPECTION_ENDPOINT,
    REVOCATION_ENDPOINT,
    TOKEN_ENDPOINT,
    AuthorizationServer,
    Response,
)
from tests.support.clock import ManualClock
from tests.support.memory_backend import (
    CLIENT_ADDRESS,
    LOCK_THRESHOLD,
    LOCK_WINDOW_SECONDS,
    MemoryBackend,
    MemoryClient,
    form_request,
    header,
    issue,
    post_as,
)

GRANT = {"grant_type": GRANT_TYPE}
ENDPOINTS = [TOKEN_ENDPOINT, INTROSPECTION_ENDPOINT, REVOCATION_ENDPOINT]


def credentials_request(
    server: AuthorizationServer, client: MemoryClient, method: str
) -> OAuthFormRequest:
    """A token request carrying ``client``'s right credentials by ``method``."""
    if method == CLIENT_SECRET_BASIC:
        request = form_request(
            server, TOKEN_ENDPOINT, GRANT, basic=(client.client_id, client.secret)
        )
    else:
        form = {**GRANT, "client_id": client.client_id, "client_secret": client.secret}
        request = form_request(server, TOKEN_ENDPOINT, form)
    return server.create_oauth2_request(request)


# --- the auth-method seam ------------------------------------------------------------------


@pytest.mark.parametrize("method", SECRET_METHODS)
def test_authenticate_client_returns_the_client_when_its_method_is_in_the_list(
    server: AuthorizationServer, client: MemoryClient, method: str
) -> None:
    request = credentials_request(server, client, method)

    authenticated = server.authenticate_client(request, [method])

    assert authenticated.client_id == client.client_id
    assert request.auth_method == method


@pytest.mark.parametrize("method", SECRET_METHODS)
def test_authenticate_client_refuses_right_credentials_sent_by_a_method_not_in_the_list(
    server: AuthorizationServer, client: MemoryClient, method: str
) -> None:
    request = credentials_request(server, client, method)
    others = [m for m in SECRET_METHODS if m != method]

    with pytest.raises(InvalidClientError) as refused:
        server.authenticate_client(request, others)

    assert method in refused.value.description
    assert refused.value.status_code == 401
    assert refused.value.challenge is (method == CLIENT_SECRET_BASIC)


def test_authenticate_client_with_an_empty_list_refuses_every_method(
    server: AuthorizationServer, client: MemoryClient
) -> None:
    for method in SECRET_METHODS:
        with pytest.raises(InvalidClientError):
            server.authenticate_client(credentials_request(server, client, method), [])


def test_authenticate_client_answers_both_methods_at_once_with_invalid_request(
    server: AuthorizationServer, client: MemoryClient
) -> None:
    form = {**GRANT, "client_secret": client.secret}
    request = server.create_oauth2_request(
        form_request(server, TOKEN_ENDPOINT, form, basic=(client.client_id, client.secret))
    )

    with pytest.raises(InvalidRequestError):
        server.authenticate_client(request, list(AUTH_METHODS))


@pytest.mark.parametrize(
    ("owner", "attribute", "endpoint"),
    [
        (ClientCredentialsGrant, "TOKEN_ENDPOINT_AUTH_METHODS", TOKEN_ENDPOINT),
        (IntrospectionEndpoint, "CLIENT_AUTH_METHODS", INTROSPECTION_ENDPOINT),
        (RevocationEndpoint, "CLIENT_AUTH_METHODS", REVOCATION_ENDPOINT),
    ],
    ids=["token", "introspection", "revocation"],
)
@pytest.mark.parametrize("method", SECRET_METHODS)
def test_each_endpoint_honours_its_own_auth_method_list(
    server: AuthorizationServer,
    client: MemoryClient,
    monkeypatch: pytest.MonkeyPatch,
    owner: type,
    attribute: str,
    endpoint: str,
    method: str,
) -> None:
    """The grant and both endpoints pass their list through Authlib to our seam: narrowing
    one refuses the other method there with the right secret."""
    form = GRANT if endpoint == TOKEN_ENDPOINT else {"token": issue(server, client)}
    assert post_as(server, endpoint, client, form, method)[0] == 200
    monkeypatch.setattr(owner, attribute, [m for m in AUTH_METHODS if m != method])

    status, body, _ = post_as(server, endpoint, client, form, method)

    assert (status, body["error"]) == (401, "invalid_client")


def test_every_endpoint_accepts_every_method_by_default() -> None:
    assert ClientCredentialsGrant.TOKEN_ENDPOINT_AUTH_METHODS == list(AUTH_METHODS)
    assert IntrospectionEndpoint.CLIENT_AUTH_METHODS == list(AUTH_METHODS)
    assert RevocationEndpoint.CLIENT_AUTH_METHODS == list(AUTH_METHODS)


# --- the failed-authentication lock --------------------------------------------------------


def wrong(client: MemoryClient) -> MemoryClient:
    return MemoryClient(client.client_id, "ascs_wrong")


def form_for(endpoint: str) -> dict[str, str]:
    return GRANT if endpoint == TOKEN_ENDPOINT else {"token": "x"}


def assert_too_many_requests(response: Response) -> int:
    """A 429 ``too_many_requests`` with ``Retry-After`` within the window; its seconds."""
    status, body, headers = response
    assert (status, body.get("error")) == (429, "too_many_requests"), body
    assert body["error_description"]
    assert header(headers, "Cache-Control") == "no-store"
    retry_after = header(headers, "Retry-After")
    assert retry_after is not None
    assert 1 <= int(retry_after) <= LOCK_WINDOW_SECONDS
    return int(retry_after)


@pytest.mark.parametrize("endpoint", ENDPOINTS)
def test_the_eleventh_wrong_secret_is_429_and_the_right_generated_secret_still_works(
    server: AuthorizationServer, client: MemoryClient, endpoint: str
) -> None:
    """A generated secret cannot be guessed, so the lock need not refuse it: an attacker
    cannot lock its owner out."""
    form = form_for(endpoint)
    for _ in range(LOCK_THRESHOLD):
        assert post_as(server, endpoint, wrong(client), form)[0] == 401

    assert_too_many_requests(post_as(server, endpoint, wrong(client), form))
    assert post_as(server, endpoint, client, form)[0] == 200


def test_a_locked_client_with_a_chosen_secret_gets_429_even_with_the_right_one(
    server: AuthorizationServer, backend: MemoryBackend
) -> None:
    """README: the right and a wrong admin-chosen secret must look the same while locked, or
    the lock would tell a guesser when they had it."""
    chosen = backend.register("cli_chosen", "correct horse battery", chosen_secret=True)
    for _ in range(LOCK_THRESHOLD):
        assert post_as(server, TOKEN_ENDPOINT, wrong(chosen), GRANT)[0] == 401

    right = post_as(server, TOKEN_ENDPOINT, chosen, GRANT)
    assert_too_many_requests(right)
    assert "access_token" not in right[1]


def test_the_lock_lifts_once_the_clock_passes_retry_after(
    server: AuthorizationServer, backend: MemoryBackend, clock: ManualClock
) -> None:
    chosen = backend.register("cli_chosen", "correct horse battery", chosen_secret=True)
    for _ in range(LOCK_THRESHOLD):
        post_as(server, TOKEN_ENDPOINT, wrong(chosen), GRANT)
    clock.now += 20
    retry_after = assert_too_many_requests(post_as(server, TOKEN_ENDPOINT, chosen, GRANT))
    assert retry_after == LOCK_WINDOW_SECONDS - 20

    clock.now += retry_after - 1
    assert_too_many_requests(post_as(server, TOKEN_ENDPOINT, chosen, GRANT))
    clock.now += 1

    assert post_as(server, TOKEN_ENDPOINT, chosen, GRANT)[0] == 200
    assert post_as(server, TOKEN_ENDPOINT, wrong(chosen), GRANT)[0] == 401


def test_the_lock_holds_one_client_id_and_not_its_neighbours(
    server: AuthorizationServer, client: MemoryClient, other_client: MemoryClient
) -> None:
    for _ in range(LOCK_THRESHOLD + 1):
        post_as(server, TOKEN_ENDPOINT, wrong(client), GRANT)

    assert post_as(server, TOKEN_ENDPOINT, wrong(other_client), GRANT)[0] == 401
    assert post_as(server, TOKEN_ENDPOINT, other_client, GRANT)[0] == 200


def test_successful_authentications_are_never_counted(
    server: AuthorizationServer, backend: MemoryBackend, client: MemoryClient
) -> None:
    for _ in range(3 * LOCK_THRESHOLD):
        assert post_as(server, TOKEN_ENDPOINT, client, GRANT)[0] == 200

    assert backend.client_failures == {}
    assert not backend.address_failures
    assert post_as(server, TOKEN_ENDPOINT, wrong(client), GRANT)[0] == 401


@pytest.mark.parametrize("method", SECRET_METHODS)
def test_each_failure_is_counted_for_the_client_id_and_the_callers_address(
    server: AuthorizationServer, backend: MemoryBackend, client: MemoryClient, method: str
) -> None:
    post_as(server, TOKEN_ENDPOINT, wrong(client), GRANT, method)
    post_as(server, TOKEN_ENDPOINT, wrong(client), GRANT, method, remote_addr="198.51.100.7")

    assert backend.client_failures[client.client_id].count == 2
    assert backend.address_failures == {CLIENT_ADDRESS: 1, "198.51.100.7": 1}


def test_a_request_refused_for_its_parameters_is_not_an_authentication_failure(
    server: AuthorizationServer, backend: MemoryBackend, client: MemoryClient
) -> None:
    for form in ({**GRANT, "scope": "admin"}, {"grant_type": "password"}, {"scope": "read"}):
        assert post_as(server, TOKEN_ENDPOINT, client, form)[0] == 400

    assert backend.client_failures == {}
    assert not backend.address_failures
