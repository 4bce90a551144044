"""``authserver export``: the registry written as the file ``authserver apply`` takes.

So that an installation managed with the CLI can move to ``apply``: the file holds every
client and trust with the fields a file declares (no secret, id or time), and applying it
back changes nothing. A trust names its client by the client's name, as a file does.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping
from typing import Any

from sqlalchemy.orm import Session

from authserver.models import Client, Trust
from authserver.services import registry, trusts
from authserver.services.formatting import client_view, trust_view


def export(session: Session) -> tuple[dict[str, Any], list[str]]:
    """The registry as a file ``apply`` takes back unchanged (no secret, id or time), and
    warnings: clients sharing a name, which such a file cannot tell apart."""
    clients = registry.list_clients(session)
    names = {c.client_id: c.name for c in clients}
    document = {
        "clients": [_client_entry(c) for c in clients],
        "trusts": [trust_entry(t, names) for t in trusts.list_trusts(session)],
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


def trust_entry(trust: Trust, names: Mapping[str, str]) -> dict[str, Any]:
    """The trust as a file entry, its client named by ``names`` (client id to name). The plan
    shows a pruned trust in this form too."""
    view = trust_view(trust)
    return {"client": names.get(trust.client_id, trust.client_id)} | {
        name: view[name] for name in TRUST_FIELDS
    }
