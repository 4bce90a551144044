"""The workers' client cache and remembered Argon2id checks: what they reuse, and for how long.

The cache is driven by an explicit clock, so no test waits; its loader is a plain function
standing in for the database query (the query itself is exercised by every HTTP test).
"""

from __future__ import annotations

import pytest

from authserver.security import secrets
from authserver.security.secrets import (
    MAX_CLIENT_ID_LENGTH,
    RememberingVerifier,
    VerifierBusyError,
    unless_locked,
)
from authserver.services.database_guard import DatabaseUnreachable
from authserver.services.registration_cache import RegistrationCache
from authserver.services.registrations import Registration
from tests.support.clock import ManualClock as Clock


def registration(client_id: str, *, enabled: bool = True) -> Registration:
    return Registration(
        client_id=client_id,
        enabled=enabled,
        scopes=("api",),
        audiences=(),
        token_ttl=None,
        secrets=(),
    )


class Registry:
    """What the database holds, and how often the cache asked."""

    def __init__(self) -> None:
        self.rows: dict[str, Registration] = {}
        self.loads: list[str] = []
        self.down = False

    def load(self, client_id: str) -> Registration | None:
        self.loads.append(client_id)
        if self.down:
            raise ConnectionError("database is down")
        return self.rows.get(client_id)


@pytest.fixture
def registry() -> Registry:
    return Registry()


@pytest.fixture
def clock() -> Clock:
    return Clock()


def cache(registry: Registry, clock: Clock, **options: int) -> RegistrationCache:
    return RegistrationCache(registry.load, max_age=1.0, clock=clock, **options)


def test_an_entry_is_reused_within_its_max_age_and_reloaded_after(
    registry: Registry, clock: Clock
) -> None:
    registry.rows["cli_a"] = registration("cli_a")
    clients = cache(registry, clock)
    assert clients.get("cli_a") == registration("cli_a")

    registry.rows["cli_a"] = registration("cli_a", enabled=False)
    clock.now += 0.99
    assert clients.get("cli_a") == registration("cli_a")
    assert registry.loads == ["cli_a"]

    clock.now += 0.01
    assert clients.get("cli_a") == registration("cli_a", enabled=False)
    assert registry.loads == ["cli_a", "cli_a"]


def test_unknown_ids_are_cached_too_so_a_flood_of_them_is_not_a_query_each(
    registry: Registry, clock: Clock
) -> None:
    clients = cache(registry, clock)
    assert [clients.get("cli_nobody") for _ in range(5)] == [None] * 5
    assert registry.loads == ["cli_nobody"]

    registry.rows["cli_nobody"] = registration("cli_nobody")
    clock.now += 1.0
    assert clients.get("cli_nobody") == registration("cli_nobody")


def test_a_failed_load_raises_and_caches_nothing(registry: Registry, clock: Clock) -> None:
    registry.rows["cli_a"] = registration("cli_a")
    clients = cache(registry, clock)
    registry.down = True
    with pytest.raises(ConnectionError):
        clients.get("cli_a")

    registry.down = False
    assert clients.get("cli_a") == registration("cli_a")
    assert registry.loads == ["cli_a", "cli_a"]


def test_the_cache_is_bounded_and_drops_the_least_recently_used(
    registry: Registry, clock: Clock
) -> None:
    clients = cache(registry, clock, max_entries=2)
    for client_id in ("cli_a", "cli_b", "cli_a", "cli_c"):
        clients.get(client_id)
    registry.loads.clear()

    clients.get("cli_a")
    clients.get("cli_b")
    assert registry.loads == ["cli_b"]


CHOSEN = "An-Admin-Chosen-Secret-42"


def test_remembered_argon2id_success_still_rejects_wrong_secrets() -> None:
    stored = secrets.hash_chosen_secret(CHOSEN)
    verify = RememberingVerifier()
    assert verify(CHOSEN, stored) is True
    assert verify(CHOSEN, stored) is True
    assert verify(CHOSEN + "x", stored) is False
    assert verify("", stored) is False


def test_a_remembered_success_does_not_carry_over_to_a_new_hash() -> None:
    verify = RememberingVerifier()
    assert verify(CHOSEN, secrets.hash_chosen_secret(CHOSEN)) is True
    assert verify(CHOSEN, secrets.hash_chosen_secret("Another-Chosen-Secret-43")) is False


def test_generated_secrets_and_unknown_clients_are_checked_as_before() -> None:
    secret = secrets.generate_client_secret()
    verify = RememberingVerifier()
    assert verify(secret, secrets.hash_generated_secret(secret)) is True
    assert verify(secret + "x", secrets.hash_generated_secret(secret)) is False
    assert verify(secret, None) is False


def test_an_id_longer_than_any_issued_is_neither_loaded_nor_kept(
    registry: Registry, clock: Clock
) -> None:
    """Finding 4: every made-up id was kept, 200 KB ids too, until workers reached 1 GiB. An
    over-long id takes no slot, so with room for one entry ``cli_a`` stays cached."""
    registry.rows["cli_a"] = registration("cli_a")
    clients = cache(registry, clock, max_entries=1)
    clients.get("cli_a")
    assert clients.get("c" * (MAX_CLIENT_ID_LENGTH + 1)) is None
    assert clients.get("cli_a") == registration("cli_a")
    assert registry.loads == ["cli_a"]


def test_verifier_runs_at_most_its_concurrency_of_argon2id_checks() -> None:
    """Finding 3: with every turn taken, a check waits at most ``wait`` and then says busy."""
    stored = secrets.hash_chosen_secret(CHOSEN)
    verify = RememberingVerifier(concurrency=1, wait=0.05)
    assert verify.turns.acquire(timeout=1)
    try:
        with pytest.raises(VerifierBusyError):
            verify(CHOSEN, stored)
        assert verify(secrets.generate_client_secret(), None) is False
    finally:
        verify.turns.release()
    assert verify(CHOSEN, stored) is True


def test_a_remembered_argon2id_success_needs_no_turn() -> None:
    stored = secrets.hash_chosen_secret(CHOSEN)
    verify = RememberingVerifier(concurrency=1, wait=0.05)
    assert verify(CHOSEN, stored) is True
    assert verify.turns.acquire(timeout=1)
    try:
        assert verify(CHOSEN, stored) is True
    finally:
        verify.turns.release()


def test_while_locked_an_argon2id_hash_never_matches_and_generated_ones_still_do() -> None:
    verify = unless_locked(secrets.verify_secret, lambda: True)
    assert verify(CHOSEN, secrets.hash_chosen_secret(CHOSEN)) is False
    secret = secrets.generate_client_secret()
    assert verify(secret, secrets.hash_generated_secret(secret)) is True
    assert verify(secret, None) is False


def test_the_lock_is_asked_only_about_an_argon2id_hash() -> None:
    asked: list[bool] = []

    def locked() -> bool:
        asked.append(True)
        return False

    verify = unless_locked(secrets.verify_secret, locked)
    secret = secrets.generate_client_secret()
    assert verify(secret, secrets.hash_generated_secret(secret)) is True
    assert verify(secret, None) is False
    assert asked == []
    assert verify(CHOSEN, secrets.hash_chosen_secret(CHOSEN)) is True
    assert asked == [True]


class Unreachable(Registry):
    """What the database guard raises while the database does not answer."""

    def load(self, client_id: str) -> Registration | None:
        if self.down:
            self.loads.append(client_id)
            raise DatabaseUnreachable("down")
        return super().load(client_id)


def test_through_an_outage_an_entry_read_within_the_grace_is_used_as_it_was_read(
    clock: Clock,
) -> None:
    database = Unreachable()
    database.rows["cli_a"] = registration("cli_a")
    database.rows["cli_off"] = registration("cli_off", enabled=False)
    clients = RegistrationCache(database.load, outage_grace=60.0, clock=clock)
    assert clients.get("cli_a") == registration("cli_a")
    assert clients.get("cli_off") == registration("cli_off", enabled=False)
    assert clients.get("cli_nobody") is None

    database.down = True
    clock.now += 59.9
    # Each is asked for again (the database may be back), and answered as it was read.
    assert clients.get("cli_a") == registration("cli_a")
    assert clients.get("cli_off") == registration("cli_off", enabled=False)
    assert clients.get("cli_nobody") is None
    assert database.loads[-3:] == ["cli_a", "cli_off", "cli_nobody"]

    clock.now += 0.1
    for client_id in ("cli_a", "cli_off", "cli_nobody"):
        with pytest.raises(DatabaseUnreachable):
            clients.get(client_id)


def test_through_an_outage_a_client_never_read_cannot_be_answered(clock: Clock) -> None:
    database = Unreachable()
    database.rows["cli_a"] = registration("cli_a")
    clients = RegistrationCache(database.load, outage_grace=60.0, clock=clock)
    database.down = True
    with pytest.raises(DatabaseUnreachable):
        clients.get("cli_a")


def test_a_stale_entry_is_never_used_while_the_database_answers_nor_without_a_grace(
    clock: Clock,
) -> None:
    database = Unreachable()
    database.rows["cli_a"] = registration("cli_a")
    for grace in (60.0, 0.0):
        clients = RegistrationCache(database.load, outage_grace=grace, clock=clock)
        database.down = False
        clients.get("cli_a")
        database.rows["cli_a"] = registration("cli_a", enabled=False)
        clock.now += 1.0
        assert clients.get("cli_a") == registration("cli_a", enabled=False)
        database.rows["cli_a"] = registration("cli_a")
    database.down = True
    clock.now += 1.0
    with pytest.raises(DatabaseUnreachable):
        clients.get("cli_a")  # the last cache had no grace


def test_made_up_ids_cannot_push_a_known_client_out(clock: Clock) -> None:
    """Known and unknown ids are bounded apart: the client stays for the next outage."""
    database = Unreachable()
    database.rows["cli_a"] = registration("cli_a")
    clients = RegistrationCache(database.load, outage_grace=60.0, max_entries=2, clock=clock)
    clients.get("cli_a")
    for number in range(10):
        assert clients.get(f"cli_made_up_{number}") is None
    database.down = True
    clock.now += 30.0
    assert clients.get("cli_a") == registration("cli_a")
