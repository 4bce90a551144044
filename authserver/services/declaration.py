"""Reading a declared registry: the file ``authserver apply`` takes, parsed and checked whole.

A file is checked before anything is planned: first against the published JSON Schema
(``docs/config.schema.json``, shipped in the package), then each entry by the same field rules
the CLI applies (:mod:`authserver.services.client_fields`, :mod:`authserver.services.trusts`),
then the entries against each other (a name given twice, two trusts accepting the same
tokens). Every problem is reported with its location, as ``clients[2].scope``, so one run
names all that is wrong. What comes out, a :class:`Declaration`, is what
:mod:`authserver.services.apply` plans against the database. Nothing here touches the
database.
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

from authserver.errors import AuthServerError, InvalidClientData
from authserver.services import trusts
from authserver.services.client_fields import (
    KEY_AUTH_METHOD,
    SECRET_AUTH_METHOD,
    checked_quota,
    checked_token_ttl,
    key_source,
    normalize_audiences,
    normalize_name,
    normalize_scope,
)

SCHEMA_FILE = "config.schema.json"
#: The longest problem line: its location and enough of the value to recognise it.
MAX_SHOWN = 400
TOO_DEEP = "nested too deeply to be a registry of clients and trusts"
#: YAML's merge key (``<<: *defaults``), whose keys an entry may override: that is its use.
_YAML_MERGE = "tag:yaml.org,2002:merge"


@dataclass(frozen=True)
class Problem:
    """One thing wrong with the file, where it is: ``clients[2].scope``.

    Shown as one line of at most ``MAX_SHOWN`` characters: a message quotes the value it
    refuses (the schema library's do), and a value may be megabytes long."""

    location: str
    message: str

    def __str__(self) -> str:
        shown = f"{self.location}: {self.message}"
        return shown if len(shown) <= MAX_SHOWN else shown[:MAX_SHOWN] + "…"


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
    parsers would keep the last silently, and a client's second ``scope`` would win unseen).
    A document nested deeper than Python's recursion limit is one too: no registry is."""
    if not text.strip():
        raise InvalidDeclaration(
            [Problem("file", "empty: a registry is an object of clients and trusts")]
        )
    try:
        return json.loads(text, object_pairs_hook=_unique_keys)
    except _DuplicateKey as exc:
        raise InvalidDeclaration([Problem("file", str(exc))]) from None
    except RecursionError:
        raise InvalidDeclaration([Problem("file", TOO_DEEP)]) from None
    except ValueError:
        pass
    try:
        return yaml.load(text, Loader=_UniqueKeyLoader)  # noqa: S506 -- a SafeLoader subclass
    except _DuplicateKey as exc:
        raise InvalidDeclaration([Problem("file", str(exc))]) from None
    except RecursionError:
        raise InvalidDeclaration([Problem("file", TOO_DEEP)]) from None
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
        """The mapping, refusing a key written twice in it; the keys a merge key brings in
        are not written here, and the base class refuses a key that cannot be a dict key."""
        seen: set[Any] = set()
        for key_node, _ in node.value:
            if key_node.tag == _YAML_MERGE:
                continue
            key = self.construct_object(key_node, deep=deep)
            try:
                twice = key in seen
            except TypeError:  # a list or mapping as a key
                continue
            if twice:
                raise _DuplicateKey(
                    f"line {key_node.start_mark.line + 1}: key {key!r} is given twice in one object"
                )
            seen.add(key)
        mapping: dict[Any, Any] = super().construct_mapping(node, deep=deep)
        return mapping


# --- checking it ---


@dataclass(frozen=True)
class DesiredClient:
    """A client entry, checked and normalised as the CLI stores it, so that the plan compares
    like with like; ``location`` is where the file has it, for problems only the database
    shows, and ``secret`` the value ``secret_env`` names (never written anywhere else)."""

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
    secret: str | None = field(repr=False)


@dataclass(frozen=True)
class DesiredTrust:
    """A trust entry, checked; ``client`` is a client's name, which the plan resolves."""

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
    """A whole file that passed every check that does not need the database."""

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
        lambda location, sound, faulty: _desired_client(location, sound, faulty, environ, problems),
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
        lambda location, sound, _: _desired_trust(location, sound, written, problems),
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
    build: Callable[[str, dict[str, Any], set[str]], Desired | None],
) -> list[Desired]:
    """``build`` run on the sound fields of each entry of ``kind`` (and told the names of the
    faulty ones); what it makes of the entries the schema found no fault in at all."""
    built = []
    for index, entry in enumerate(_entries(document, kind)):
        location = f"{kind}[{index}]"
        sound = _sound_fields(location, entry, schema_found)
        if sound is not None:
            desired = build(location, sound, set(entry) - set(sound))
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
    location: str,
    entry: dict[str, Any],
    faulty: set[str],
    environ: Mapping[str, str],
    problems: list[Problem],
) -> DesiredClient | None:
    """``entry`` (its sound fields) checked by the CLI's rules; None if any is refused.

    The rules between the method and the keys or secret are left to a later run when the
    schema refused one of those fields (``faulty``): judged without it, they would report a
    second, wrong problem (a key client "without" the keys it gave in the wrong shape)."""
    at = _Located(location, problems)
    method = entry.get("token_endpoint_auth_method", SECRET_AUTH_METHOD)
    jwks, jwks_uri, secret_env = entry.get("jwks"), entry.get("jwks_uri"), entry.get("secret_env")
    secret = None
    if not faulty & {"token_endpoint_auth_method", "jwks", "jwks_uri", "secret_env"}:
        jwks, jwks_uri, secret = _credentials(at, method, jwks, jwks_uri, secret_env, environ)
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


def _credentials(
    at: _Located,
    method: str,
    jwks: dict[str, Any] | None,
    jwks_uri: str | None,
    secret_env: str | None,
    environ: Mapping[str, str],
) -> tuple[dict[str, Any] | None, str | None, str | None]:
    """A key client's keys, checked, or a secret client's secret from ``secret_env``."""
    if method == KEY_AUTH_METHOD:
        if secret_env is not None:
            at.check("secret_env", _refuse, "a private_key_jwt client has keys, not a secret")
        given = "jwks_uri" if jwks is None and jwks_uri is not None else "jwks"
        jwks, jwks_uri = at.check(given, key_source, jwks, jwks_uri) or (None, None)
        return jwks, jwks_uri, None
    for name, value in (("jwks", jwks), ("jwks_uri", jwks_uri)):
        if value is not None:
            at.check(name, _refuse, "only a private_key_jwt client has keys")
    if secret_env is None:
        return jwks, jwks_uri, None
    return jwks, jwks_uri, at.check("secret_env", _secret_from, secret_env, environ)


def _refuse(message: str) -> None:
    raise InvalidClientData(message)


def _secret_from(variable: str, environ: Mapping[str, str]) -> str:
    """The secret ``variable`` holds; its rules are checked by the plan, which hashes it only
    when it is not already the client's (Argon2 takes about a second)."""
    value = environ.get(variable)
    if value is None:
        raise InvalidClientData(f"the environment variable {variable} is not set")
    return value


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
