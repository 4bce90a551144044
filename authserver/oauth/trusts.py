"""A workload identity trust as the protocol code applies it: which platform tokens it
accepts, and as which client (see :mod:`federation`)."""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass


@dataclass(frozen=True)
class TrustRule:
    """A trust as the token endpoint applies it (the ``trusts`` table, detached)."""

    trust_id: str
    client_id: str
    issuer: str
    subject: str
    audience: str
    jwks_uri: str | None
    allow_reuse: bool
    max_lifetime: int

    def matches_subject(self, subject: str) -> bool:
        """The contract's pattern: exact, or ``*`` matching any run of characters (and
        nothing else special: ``?``, ``[`` and ``.`` are themselves)."""
        if "*" not in self.subject:
            return subject == self.subject
        return _pattern(self.subject).fullmatch(subject) is not None

    @property
    def specificity(self) -> tuple[bool, int]:
        """Exact before any pattern; among patterns, the one fixing more characters."""
        return "*" not in self.subject, len(self.subject.replace("*", ""))


@functools.lru_cache(maxsize=1024)
def _pattern(subject: str) -> re.Pattern[str]:
    return re.compile(".*".join(re.escape(part) for part in subject.split("*")), re.DOTALL)
