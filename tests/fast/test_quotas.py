"""Per-client token quotas as the grant applies them: the tokens a quota allows, then 429
``too_many_requests`` with ``Retry-After``; requests refused for another reason use none of
it, and clients without a quota are never counted."""

from __future__ import annotations

from authserver.oauth.clients import GRANT_TYPE
from authserver.oauth.server import AuthorizationServer
from tests.fast.conftest import SECRET
from tests.support.memory_backend import MemoryBackend, header, token

GRANT = {"grant_type": GRANT_TYPE}


def test_a_client_gets_its_quota_of_tokens_then_429_with_retry_after(
    server: AuthorizationServer, backend: MemoryBackend
) -> None:
    backend.register("cli_quota", SECRET, max_tokens_per_hour=3)

    answers = [token(server, GRANT, basic=("cli_quota", SECRET)) for _ in range(4)]

    assert [status for status, _, _ in answers] == [200, 200, 200, 429]
    _, body, headers = answers[-1]
    assert body["error"] == "too_many_requests"
    assert "3 tokens an hour" in body["error_description"]
    assert header(headers, "Retry-After") == "3600"
    rejected = [e for e in backend.events if e.event == "request.rejected"]
    assert [(e.client_id, e.details["error"]) for e in rejected] == [
        ("cli_quota", "too_many_requests")
    ]


def test_a_request_refused_for_its_scope_uses_none_of_the_quota(
    server: AuthorizationServer, backend: MemoryBackend
) -> None:
    backend.register("cli_quota", SECRET, max_tokens_per_hour=1)

    refused = token(server, {**GRANT, "scope": "not-registered"}, basic=("cli_quota", SECRET))
    granted = token(server, GRANT, basic=("cli_quota", SECRET))

    assert refused[0] == 400
    assert granted[0] == 200


def test_a_client_without_a_quota_is_not_counted(
    server: AuthorizationServer, backend: MemoryBackend
) -> None:
    backend.register("cli_free", SECRET)
    for _ in range(5):
        assert token(server, GRANT, basic=("cli_free", SECRET))[0] == 200
    assert backend.quota_taken == {}
