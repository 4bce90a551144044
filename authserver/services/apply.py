"""Making the registry hold what a checked declaration says: the plan, then carrying it out.

:func:`plan` compares a :class:`~authserver.services.declaration.Declaration` with the
database and says, per object, create, update, delete (only with ``prune``) or unchanged; what
only the database shows (two stored clients with a name the file uses, a changed
authentication method, another client's trust accepting the same tokens) is a located
:class:`~authserver.services.declaration.Problem` too, so a file that cannot be applied changes
nothing. :func:`execute` makes the planned changes with the same service functions the CLI's
own commands use. Both only ``flush()``: the caller commits the whole plan at once, so a
failure half-way leaves the registry as it was; :func:`lock` keeps two applies from planning
against the same state.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from authserver.errors import InvalidClientData
from authserver.models import Client, Trust, utcnow
from authserver.security import secrets
from authserver.services import registry, trusts
from authserver.services.client_fields import hash_chosen_secret
from authserver.services.declaration import (
    Declaration,
    DesiredClient,
    DesiredTrust,
    InvalidDeclaration,
    Problem,
)
from authserver.services.export import trust_entry

#: The PostgreSQL advisory lock that serialises applies (any fixed number; the bytes of
#: "authaply").
APPLY_LOCK_KEY = 0x6175746861706C79
CREATE, UPDATE, DELETE, UNCHANGED = "create", "update", "delete", "unchanged"
ACTIONS = (CREATE, UPDATE, DELETE, UNCHANGED)


@dataclass
class Change:
    """One object of the plan; ``client_id`` and ``trust_id`` are known once it is applied."""

    action: str
    kind: str
    name: str
    fields: list[str] = field(default_factory=list)
    client_id: str | None = None
    trust: DesiredTrust | None = None
    trust_id: str | None = None
    client: DesiredClient | None = None
    client_secret: str | None = None

    def view(self) -> dict[str, Any]:
        """The plan entry of ``apply --json``."""
        document: dict[str, Any] = {"action": self.action, "kind": self.kind, "name": self.name}
        if self.kind == "trust":
            document["client"] = self.name
            del document["name"]
            document.update(self._accepts())
            document["trust_id"] = self.trust_id
        document["fields"] = self.fields
        document["client_id"] = self.client_id
        if self.client_secret is not None:
            document["client_secret"] = self.client_secret
        return document

    def _accepts(self) -> dict[str, str]:
        assert self.trust is not None  # noqa: S101 -- every trust change has its trust
        return {
            "issuer": self.trust.issuer,
            "subject": self.trust.subject,
            "audience": self.trust.audience,
        }


@dataclass
class Plan:
    """Every object's change, in the order they are shown: the file's clients, its trusts,
    then (with ``prune``) the deletions; ``summary`` is what ``apply --json`` counts."""

    changes: list[Change]
    #: Objects in the database and not in the file, kept because apply was not told to prune.
    kept: int = 0

    def summary(self) -> dict[str, int]:
        counted = Counter(change.action for change in self.changes)
        return {**{action: counted[action] for action in ACTIONS}, "not_in_file": self.kept}

    @property
    def changes_anything(self) -> bool:
        return any(change.action != UNCHANGED for change in self.changes)


def plan(session: Session, declared: Declaration, *, prune: bool) -> Plan:
    """What applying ``declared`` would do to the registry now; a problem only the database
    shows (two clients with a name the file uses, a changed authentication method, a trust
    that another client's trust already is) raises, all of them at once."""
    lock(session)
    problems: list[Problem] = []
    stored = registry.list_clients(session)
    by_name: dict[str, list[Client]] = {}
    for client in stored:
        by_name.setdefault(client.name.strip(" "), []).append(client)
    changes: list[Change] = []
    matched: dict[str, Client] = {}
    for desired in declared.clients:
        same = by_name.get(desired.name, [])
        if len(same) > 1:
            ids = ", ".join(c.client_id for c in same)
            problems.append(
                Problem(
                    f"{desired.location}.name",
                    f"{len(same)} clients in the database are named {desired.name!r} ({ids}); "
                    "rename or delete all but one first (authserver clients update|delete)",
                )
            )
        elif same:
            matched[desired.name] = same[0]
            changes.append(_client_change(desired, same[0], problems))
        else:
            changes.append(Change(CREATE, "client", desired.name, client=desired))
            if desired.secret is not None:
                problems.extend(filter(None, [_secret_problem(desired)]))
    names_in_file = {desired.name for desired in declared.clients}
    unlisted = [c for c in stored if c.name.strip(" ") not in names_in_file]
    trust_changes, trust_deletions, kept_trusts = _trust_changes(
        session, declared, matched, stored, prune=prune, problems=problems
    )
    if problems:
        raise InvalidDeclaration(problems)
    if not prune:
        return Plan(changes + trust_changes, kept=len(unlisted) + kept_trusts)
    deletions = [Change(DELETE, "client", c.name, client_id=c.client_id) for c in unlisted]
    return Plan(changes + trust_changes + deletions + trust_deletions)


def lock(session: Session) -> None:
    """Hold off other applies until this transaction ends, so that each plans against what
    the one before it committed: two at once would both see a client missing and both
    create it. PostgreSQL's transaction-level advisory lock, or SQLite's write lock (``BEGIN
    IMMEDIATE``, waiting out the busy timeout); the commit or rollback releases either."""
    connection = session.connection()
    if connection.dialect.name != "sqlite":
        session.execute(select(func.pg_advisory_xact_lock(APPLY_LOCK_KEY)))
        return
    driver_connection: Any = connection.connection.driver_connection
    if not driver_connection.in_transaction:
        connection.exec_driver_sql("BEGIN IMMEDIATE")


def _client_change(desired: DesiredClient, stored: Client, problems: list[Problem]) -> Change:
    if stored.auth_method != desired.auth_method:
        problems.append(
            Problem(
                f"{desired.location}.token_endpoint_auth_method",
                f"client {stored.client_id} authenticates with {stored.auth_method}; the "
                "method of an existing client cannot change: delete it (authserver clients "
                "delete) and apply again, or give the new client another name",
            )
        )
    differing = [
        name
        for name, want, have in (
            ("scope", desired.scope, stored.scope),
            ("audiences", desired.audiences, list(stored.audiences)),
            ("token_ttl", desired.token_ttl, stored.token_ttl),
            ("enabled", desired.enabled, stored.enabled),
            ("max_tokens_per_hour", desired.max_tokens_per_hour, stored.max_tokens_per_hour),
            ("jwks", desired.jwks, stored.jwks),
            ("jwks_uri", desired.jwks_uri, stored.jwks_uri),
        )
        if want != have and stored.auth_method == desired.auth_method
    ]
    if desired.secret is not None and not _is_live_secret(desired.secret, stored):
        differing.append("secret")
        problems.extend(filter(None, [_secret_problem(desired)]))
    action = UPDATE if differing else UNCHANGED
    return Change(action, "client", desired.name, differing, stored.client_id, client=desired)


def _is_live_secret(secret: str, client: Client) -> bool:
    now = utcnow()
    return any(
        secrets.verify_secret(secret, stored.secret_hash)
        for stored in client.secrets
        if stored.expires_at is None or stored.expires_at > now
    )


def _secret_problem(desired: DesiredClient) -> Problem | None:
    """``secret_env``'s value checked by the rules of ``--secret-stdin``."""
    try:
        hash_chosen_secret(desired.secret or "")
    except InvalidClientData as exc:
        return Problem(f"{desired.location}.secret_env", f"{desired.secret_env}: {exc}")
    return None


def _trust_changes(
    session: Session,
    declared: Declaration,
    matched: Mapping[str, Client],
    stored_clients: list[Client],
    *,
    prune: bool,
    problems: list[Problem],
) -> tuple[list[Change], list[Change], int]:
    """The trusts' changes, their deletions (with ``prune``) and how many stored trusts are
    kept though the file does not list them (without it)."""
    names = {c.client_id: c.name for c in stored_clients}
    stored = trusts.list_trusts(session)
    by_key = {(t.client_id, t.issuer, t.subject, t.audience): t for t in stored}
    wanted: set[str] = set()
    changes: list[Change] = []
    for desired in declared.trusts:
        client = matched.get(desired.client)
        existing = by_key.get((client.client_id, *desired.accepts)) if client else None
        if existing is None:
            changes.append(
                Change(CREATE, "trust", desired.client, client_id=_id(client), trust=desired)
            )
            continue
        wanted.add(existing.trust_id)
        differing = [
            name
            for name in ("jwks_uri", "allow_reuse", "max_lifetime")
            if getattr(desired, name) != getattr(existing, name)
        ]
        changes.append(
            Change(
                UPDATE if differing else UNCHANGED,
                "trust",
                desired.client,
                differing,
                existing.client_id,
                trust=desired,
                trust_id=existing.trust_id,
            )
        )
    unlisted = [t for t in stored if t.trust_id not in wanted]
    for desired in declared.trusts:
        problems.extend(_twin_problems(desired, matched, unlisted, names, prune=prune))
    if not prune:
        return changes, [], len(unlisted)
    deletions = [
        Change(
            DELETE,
            "trust",
            names.get(t.client_id, t.client_id),
            client_id=t.client_id,
            trust=_as_desired(t, names),
            trust_id=t.trust_id,
        )
        for t in unlisted
    ]
    return changes, deletions, 0


def _twin_problems(
    desired: DesiredTrust,
    matched: Mapping[str, Client],
    unlisted: list[Trust],
    names: Mapping[str, str],
    *,
    prune: bool,
) -> Iterable[Problem]:
    """A stored trust of another client accepting the same tokens stays unless pruned, and
    two trusts may not accept the same tokens."""
    if prune:
        return
    client = matched.get(desired.client)
    for twin in unlisted:
        if (twin.issuer, twin.subject, twin.audience) == desired.accepts and (
            client is None or twin.client_id != client.client_id
        ):
            yield Problem(
                desired.location,
                f"trust {twin.trust_id} of client {names.get(twin.client_id)!r} already accepts "
                "this issuer, subject and audience; apply with --prune to replace it, or "
                "delete it first (authserver trust delete)",
            )


def _id(client: Client | None) -> str | None:
    return None if client is None else client.client_id


def _as_desired(trust: Trust, names: Mapping[str, str]) -> DesiredTrust:
    """A stored trust as a file would declare it."""
    return DesiredTrust(location="", **trust_entry(trust, names))


def execute(session: Session, planned: Plan) -> None:
    """Make each change of ``planned``, in its order (deletions first, so a pruned trust
    frees its issuer, subject and audience for a new one); fills in the new ids and secrets.
    Flushes only: the caller commits all of it or nothing."""
    for change in planned.changes:
        if change.action == DELETE and change.kind == "trust":
            assert change.trust_id is not None  # noqa: S101 -- a stored trust has its id
            trusts.delete_trust(session, change.trust_id)
    for change in planned.changes:
        if change.action == DELETE and change.kind == "client":
            assert change.client_id is not None  # noqa: S101 -- a stored client has its id
            registry.delete_client(session, change.client_id)
        elif change.kind == "client" and change.action in (CREATE, UPDATE):
            _apply_client(session, change)
    client_ids = {
        change.name: change.client_id
        for change in planned.changes
        if change.kind == "client" and change.action != DELETE
    }
    for change in planned.changes:
        if change.kind == "trust" and change.action in (CREATE, UPDATE):
            _apply_trust(session, change, client_ids)


def _apply_client(session: Session, change: Change) -> None:
    desired = change.client
    assert desired is not None  # noqa: S101 -- a client change from the file has its entry
    if change.action == CREATE:
        created = registry.create_client(
            session,
            name=desired.name,
            scope=desired.scope,
            audiences=desired.audiences,
            token_ttl=desired.token_ttl,
            chosen_secret=desired.secret,
            auth_method=desired.auth_method,
            jwks=desired.jwks,
            jwks_uri=desired.jwks_uri,
            max_tokens_per_hour=desired.max_tokens_per_hour,
        )
        change.client_id = created.client.client_id
        if not desired.enabled:
            registry.set_enabled(session, change.client_id, False)
        if desired.secret is None:
            change.client_secret = created.client_secret
        return
    assert change.client_id is not None  # noqa: S101 -- an update is of a stored client
    changed = set(change.fields)
    keys_changed = bool(changed & {"jwks", "jwks_uri"})
    registry.update_client(
        session,
        change.client_id,
        scope=desired.scope if "scope" in changed else None,
        audiences=desired.audiences if "audiences" in changed else None,
        token_ttl=desired.token_ttl if "token_ttl" in changed else registry.KEEP,
        jwks=desired.jwks if keys_changed else None,
        jwks_uri=desired.jwks_uri if keys_changed else None,
        max_tokens_per_hour=(
            desired.max_tokens_per_hour if "max_tokens_per_hour" in changed else registry.KEEP
        ),
    )
    if "enabled" in changed:
        registry.set_enabled(session, change.client_id, desired.enabled)
    if "secret" in changed and desired.secret is not None:
        registry.replace_secret(session, change.client_id, desired.secret)


def _apply_trust(session: Session, change: Change, client_ids: Mapping[str, str | None]) -> None:
    desired = change.trust
    assert desired is not None  # noqa: S101 -- a trust change from the file has its entry
    if change.action == UPDATE:
        assert change.trust_id is not None  # noqa: S101 -- an update is of a stored trust
        trusts.update_trust(
            session,
            change.trust_id,
            jwks_uri=desired.jwks_uri,
            allow_reuse=desired.allow_reuse,
            max_lifetime=desired.max_lifetime,
        )
        return
    client_id = client_ids[desired.client]
    assert client_id is not None  # noqa: S101 -- its client was matched or created above
    added = trusts.add_trust(
        session,
        client_id=client_id,
        issuer=desired.issuer,
        subject=desired.subject,
        audience=desired.audience,
        jwks_uri=desired.jwks_uri,
        allow_reuse=desired.allow_reuse,
        max_lifetime=desired.max_lifetime,
    )
    change.client_id, change.trust_id = client_id, added.trust_id
