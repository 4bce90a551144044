"""How times appear in CLI and HTTP output."""

from __future__ import annotations

from datetime import UTC, datetime


def iso_utc(moment: datetime | None) -> str | None:
    """ISO 8601 in UTC with a ``Z``, to the second: the contract's time format."""
    if moment is None:
        return None
    return moment.astimezone(UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


def printable(text: str) -> str:
    """``text`` with each control or format character written as its escape (``\\n``, ``\\x1b``).

    For human-readable output of stored values: names and audiences written by versions that
    did not validate them may hold a newline (which would forge a row in ``clients list``) or
    an escape sequence (which would reach the admin's terminal). JSON output needs nothing:
    ``json.dumps`` escapes these characters itself.
    """
    if text.isprintable():
        return text
    return "".join(c if c.isprintable() else c.encode("unicode_escape").decode() for c in text)
