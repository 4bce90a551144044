"""The registry as a file: ``authserver apply`` makes the database hold what a file declares,
``authserver export`` writes the database as such a file.

A file is checked whole before anything is written: first against the published JSON Schema
(``docs/config.schema.json``, shipped in the package), then each entry by the same field rules
the CLI applies (:mod:`authserver.services.client_fields`, :mod:`authserver.services.trusts`),
then against the database (ambiguous names, a changed authentication method). Every problem is
reported with its location, as ``clients[2].scope``. Only then is a plan made and, unless it
is a dry run, carried out. Functions here only ``flush()``: the caller commits the whole plan
at once, so a failure half-way leaves the registry as it was.
"""

from __future__ import annotations

import functools
import json
import re
from collections import Counter
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from importlib import resources
from typing import Any, TypeVar

import yaml
from jsonschema import Draft202012Validator, ValidationError
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from authserver.errors import AuthServerError, InvalidClientData
from authserver.models import Client, Trust, utcnow
from authserver.security import secrets
from authserver.services import registry, trusts
from authserver.services.client_fields import (
    KEY_AUTH_METHOD,
    SECRET_AUTH_METHOD,
    checked_quota,
    checked_token_ttl,
    hash_chosen_secret,
    key_source,
    normalize_audiences,
    normalize_name,
    normalize_scope,
)
from authserver.services.formatting import client_view, trust_view

SCHEMA_FILE = "config.schema.json"
#: The PostgreSQL advisory lock that serialises applies (any fixed number; the bytes of
#: "authaply").
APPLY_LOCK_KEY = 0x6175746861706C79
CREATE, UPDATE, DELETE, UNCHANGED = "create", "update", "delete", "unchanged"
ACTIONS = (CREATE, UPDATE, DELETE, UNCHANGED)


@dataclass(frozen=True)
class Problem:
    """One thing wrong with the file, where it is: ``clients[2].scope``."""

    location: str
    message: str

    def __str__(self) -> str:
        return f"{self.location}: {self.message}"


class InvalidDeclaration(AuthServerError):
    """The file cannot be applied; ``problems`` says every reason, each located."""

    def __init__(self, problems: list[Problem]) -> None:
        super().__init__("; ".join(map(str, problems)))
        self.problems = problems


@functools.cache
def schema() -> dict[str, Any]:
    """The published schema, from the package (a link to ``docs/config.schema.json``)."""
    document: dict[str, Any] = json.loads(
        resources.files("authserver").joinpath(SCHEMA_FILE).read_text(encoding="utf-8")
    )
    return document


# --- reading a file ---


def parse(text: str) -> Any:
    """A JSON or YAML document. A key given twice in one object is a problem in either (both
    parsers would keep the last silently, and a client's second ``scope`` would win unseen)."""
    if not text.strip():
        raise InvalidDeclaration(
            [Problem("file", "empty: a registry is an object of clients and trusts")]
        )
    try:
        return json.loads(text, object_pairs_hook=_unique_keys)
    except _DuplicateKey as exc:
        raise InvalidDeclaration([Problem("file", str(exc))]) from None
    except ValueError:
        pass
    try:
        return yaml.load(text, Loader=_UniqueKeyLoader)  # noqa: S506 -- a SafeLoader subclass
    except _DuplicateKey as exc:
        raise InvalidDeclaration([Problem("file", str(exc))]) from None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"line {mark.line + 1}" if mark is not None else "file"
        reason = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        raise InvalidDeclaration([Problem(where, f"neither JSON nor YAML: {reason}")]) from None


class _DuplicateKey(ValueError):
    pass


def _unique_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    counted = Counter(key for key, _ in pairs)
    twice = [key for key, count in counted.items() if count > 1]
    if twice:
        raise _DuplicateKey(f"key {twice[0]!r} is given twice in one object")
    return dict(pairs)


class _UniqueKeyLoader(yaml.SafeLoader):  # type: ignore[misc]  # PyYAML has no type hints
    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
        seen: set[Any] = set()
        for key_node, _ in node.value:
            key = self.construct_object(key_node, deep=deep)
            if key in seen:
                raise _DuplicateKey(
                    f"line {key_node.start_mark.line + 1}: key {key!r} is given twice in one object"
                )
            seen.add(key)
        mapping: dict[Any, Any] = super().construct_mapping(node, deep=deep)
        return mapping


# --- checking it ---


@dataclass(frozen=True)
class DesiredClient:
    location: str
    name: str
    scope: str
    audiences: list[str]
    token_ttl: int | None
    enabled: bool
    auth_method: str
    jwks: dict[str, Any] | None
    jwks_uri: str | None
    max_tokens_per_hour: int | None
    secret_env: str | None
    secret: str | None


@dataclass(frozen=True)
class DesiredTrust:
    location: str
    client: str
    issuer: str
    subject: str
    audience: str
    jwks_uri: str | None
    allow_reuse: bool
    max_lifetime: int

    @property
    def accepts(self) -> tuple[str, str, str]:
        """What makes two trusts twins: the tokens they accept."""
        return (self.issuer, self.subject, self.audience)


Desired = TypeVar("Desired", DesiredClient, DesiredTrust)


@dataclass(frozen=True)
class Declaration:
    clients: list[DesiredClient]
    trusts: list[DesiredTrust]


def checked(document: Any, environ: Mapping[str, str]) -> Declaration:
    """The file's entries, each checked and normalised; every problem found raises at once.

    The field rules run on every field the schema found sound, so one file's run reports
    all its problems: a wrong type in one field does not hide a bad scope in the next."""
    problems = schema_problems(document)
    if not isinstance(document, dict):
        raise InvalidDeclaration(problems)
    schema_found = list(problems)
    clients = _each_sound(
        document,
        "clients",
        schema_found,
        lambda location, sound: _desired_client(location, sound, environ, problems),
    )
    written = {
        name.strip(" ")
        for entry in _entries(document, "clients")
        if isinstance(entry, dict) and isinstance(name := entry.get("name"), str)
    }
    desired_trusts = _each_sound(
        document,
        "trusts",
        schema_found,
        lambda location, sound: _desired_trust(location, sound, written, problems),
    )
    declared = Declaration(clients, desired_trusts)
    problems.extend(_conflicts(declared, document))
    if problems:
        raise InvalidDeclaration(sorted(problems, key=_document_order))
    return declared


def _each_sound(
    document: dict[str, Any],
    kind: str,
    schema_found: list[Problem],
    build: Callable[[str, dict[str, Any]], Desired | None],
) -> list[Desired]:
    """``build`` run on the sound fields of each entry of ``kind``; what it makes of the
    entries the schema found no fault in at all."""
    built = []
    for index, entry in enumerate(_entries(document, kind)):
        location = f"{kind}[{index}]"
        sound = _sound_fields(location, entry, schema_found)
        if sound is not None:
            desired = build(location, sound)
            if desired is not None and len(sound) == len(entry):
                built.append(desired)
    return built


def _entries(document: dict[str, Any], kind: str) -> list[Any]:
    entries = document.get(kind)
    return entries if isinstance(entries, list) else []


def _sound_fields(location: str, entry: Any, problems: list[Problem]) -> dict[str, Any] | None:
    """The fields of ``entry`` the schema found no fault in; None if the entry itself is
    faulty (not an object)."""
    if not isinstance(entry, dict) or any(p.location == location for p in problems):
        return None
    faulty = {
        p.location[len(location) + 1 :].partition("[")[0].partition(".")[0]
        for p in problems
        if p.location.startswith(location + ".")
    }
    return {name: value for name, value in entry.items() if name not in faulty}


def _document_order(problem: Problem) -> list[Any]:
    """``clients[2].scope`` before ``clients[10]``: numbers compared as numbers."""
    parts = re.split(r"\[(\d+)\]", problem.location)
    return [int(part) if index % 2 else part for index, part in enumerate(parts)]


def schema_problems(document: Any) -> list[Problem]:
    """Every place the document breaks the schema, in document order."""
    validator = Draft202012Validator(schema())
    problems: list[Problem] = []
    for error in sorted(validator.iter_errors(document), key=lambda e: list(map(str, e.path))):
        problems.extend(_described(error))
    return problems


def _described(error: ValidationError) -> Iterable[Problem]:
    """``error`` at the field it is about: a missing or unknown field is named in the location."""
    where = _location(error.absolute_path)
    instance = error.instance
    if error.validator == "required" and isinstance(instance, dict):
        for name in error.validator_value:
            if name not in instance:
                yield Problem(_join(where, name), "required, missing")
    elif error.validator == "additionalProperties" and isinstance(instance, dict):
        known = error.schema.get("properties", {})
        for name in instance:
            if name not in known:
                yield Problem(_join(where, str(name)), f"unknown field (known: {', '.join(known)})")
    else:
        yield Problem(where or "file", error.message)


def _location(path: Iterable[Any]) -> str:
    location = ""
    for part in path:
        location = f"{location}[{part}]" if isinstance(part, int) else _join(location, str(part))
    return location


def _join(location: str, name: str) -> str:
    return f"{location}.{name}" if location else name


class _Located:
    """Runs field checks, turning each refusal into a problem at the field's location."""

    def __init__(self, location: str, problems: list[Problem]) -> None:
        self.location = location
        self.problems = problems
        self.failed = False

    def check(self, name: str, rule: Any, *args: Any) -> Any:
        try:
            return rule(*args)
        except InvalidClientData as exc:
            self.problems.append(Problem(_join(self.location, name), str(exc)))
            self.failed = True
            return None


def _desired_client(
    location: str, entry: dict[str, Any], environ: Mapping[str, str], problems: list[Problem]
) -> DesiredClient | None:
    """``entry`` (its sound fields) checked by the CLI's rules; None if any is refused."""
    at = _Located(location, problems)
    method = entry.get("token_endpoint_auth_method", SECRET_AUTH_METHOD)
    jwks, jwks_uri, secret_env = entry.get("jwks"), entry.get("jwks_uri"), entry.get("secret_env")
    secret = None
    if method == KEY_AUTH_METHOD:
        if secret_env is not None:
            at.check("secret_env", _refuse, "a private_key_jwt client has keys, not a secret")
        given = "jwks_uri" if jwks is None and jwks_uri is not None else "jwks"
        jwks, jwks_uri = at.check(given, key_source, jwks, jwks_uri) or (None, None)
    else:
        for name in ("jwks", "jwks_uri"):
            if entry.get(name) is not None:
                at.check(name, _refuse, "only a private_key_jwt client has keys")
        if secret_env is not None:
            secret = at.check("secret_env", _secret_from, secret_env, environ)
    desired = DesiredClient(
        location=location,
        name=at.check("name", normalize_name, entry.get("name", "-")),
        scope=at.check("scope", normalize_scope, entry.get("scope", "-")),
        audiences=at.check("audiences", normalize_audiences, entry.get("audiences", [])),
        token_ttl=at.check("token_ttl", checked_token_ttl, entry.get("token_ttl")),
        enabled=entry.get("enabled", True),
        auth_method=method,
        jwks=jwks,
        jwks_uri=jwks_uri,
        max_tokens_per_hour=at.check(
            "max_tokens_per_hour", checked_quota, entry.get("max_tokens_per_hour")
        ),
        secret_env=secret_env,
        secret=secret,
    )
    return None if at.failed else desired


def _refuse(message: str) -> None:
    raise InvalidClientData(message)


def _secret_from(variable: str, environ: Mapping[str, str]) -> str:
    """The secret ``variable`` holds; its rules are checked by the plan, which hashes it only
    when it is not already the client's (Argon2 takes about a second)."""
    value = environ.get(variable)
    if value is None:
        raise InvalidClientData(f"the environment variable {variable} is not set")
    return value


def _secret_problem(desired: DesiredClient) -> Problem | None:
    """``secret_env``'s value checked by the rules of ``--secret-stdin``."""
    try:
        hash_chosen_secret(desired.secret or "")
    except InvalidClientData as exc:
        return Problem(f"{desired.location}.secret_env", f"{desired.secret_env}: {exc}")
    return None


def _desired_trust(
    location: str, entry: dict[str, Any], clients: set[str], problems: list[Problem]
) -> DesiredTrust | None:
    """``entry`` (its sound fields) checked by ``trust add``'s rules, its client one of the
    file's; None if any is refused."""
    desired = DesiredTrust(
        location=location,
        client=entry.get("client", ""),
        issuer=entry.get("issuer", "https://issuer.invalid"),
        subject=entry.get("subject", "-"),
        audience=entry.get("audience", "-"),
        jwks_uri=entry.get("jwks_uri"),
        allow_reuse=entry.get("allow_reuse", False),
        max_lifetime=entry.get("max_lifetime", trusts.DEFAULT_MAX_LIFETIME),
    )
    found = trusts.field_problems(
        issuer=desired.issuer,
        subject=desired.subject,
        audience=desired.audience,
        jwks_uri=desired.jwks_uri,
        max_lifetime=desired.max_lifetime,
    )
    if "client" in entry and desired.client not in clients:
        found["client"] = f"no client named {desired.client!r} in the file"
    problems.extend(Problem(f"{location}.{name}", message) for name, message in found.items())
    return None if found else desired


def _conflicts(declared: Declaration, document: dict[str, Any]) -> Iterable[Problem]:
    """What is wrong between entries: a name given twice (even in entries with other
    problems), two trusts accepting the same tokens."""
    first_named: dict[str, str] = {}
    for index, entry in enumerate(_entries(document, "clients")):
        name = entry.get("name") if isinstance(entry, dict) else None
        if not isinstance(name, str):
            continue
        name, location = name.strip(" "), f"clients[{index}]"
        if name in first_named:
            yield Problem(
                f"{location}.name",
                f"{name!r} is also the name of {first_named[name]}: "
                "names are what apply matches on, one entry each",
            )
        first_named.setdefault(name, location)
    accepting: dict[tuple[str, str, str], str] = {}
    for trust in declared.trusts:
        if trust.accepts in accepting:
            yield Problem(
                trust.location,
                f"{accepting[trust.accepts]} already accepts this issuer, subject and audience",
            )
        accepting.setdefault(trust.accepts, trust.location)


# --- the plan ---


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
    return DesiredTrust(location="", **_trust_entry(trust, names))


# --- carrying it out ---


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


# --- export ---


def export(session: Session) -> tuple[dict[str, Any], list[str]]:
    """The registry as a file ``apply`` takes back unchanged (no secret, id or time), and
    warnings: clients sharing a name, which such a file cannot tell apart."""
    clients = registry.list_clients(session)
    names = {c.client_id: c.name for c in clients}
    document = {
        "clients": [_client_entry(c) for c in clients],
        "trusts": [_trust_entry(t, names) for t in trusts.list_trusts(session)],
    }
    counted = Counter(c.name for c in clients)
    warnings = [
        f"clients {', '.join(c.client_id for c in clients if c.name == name)} share the name "
        f"{name!r}: rename all but one before applying this file"
        for name, count in counted.items()
        if count > 1
    ]
    return document, warnings


#: The client object's fields a file holds: not its id, times or (absent) secret.
CLIENT_FIELDS = (
    "name", "scope", "audiences", "token_ttl", "enabled", "token_endpoint_auth_method",
    "max_tokens_per_hour",
)  # fmt: skip
#: The trust object's, beside its client's name.
TRUST_FIELDS = ("issuer", "subject", "audience", "jwks_uri", "allow_reuse", "max_lifetime")


def _client_entry(client: Client) -> dict[str, Any]:
    """The client as a file entry; a key client's keys given the one way it has them."""
    view = client_view(client)
    entry = {name: view[name] for name in CLIENT_FIELDS}
    for name in ("jwks_uri", "jwks"):
        if view.get(name) is not None:
            entry[name] = view[name]
    return entry


def _trust_entry(trust: Trust, names: Mapping[str, str]) -> dict[str, Any]:
    view = trust_view(trust)
    return {"client": names.get(trust.client_id, trust.client_id)} | {
        name: view[name] for name in TRUST_FIELDS
    }
