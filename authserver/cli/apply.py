"""``authserver apply FILE``: clients and trusts as code.

``apply`` checks the whole file (services/declaration.py), then plans the changes against the
database and makes them in one transaction (services/apply.py). ``authserver export``
(cli/export.py) prints the registry as such a file.
"""

from __future__ import annotations

import os
import sys
from typing import IO, Any

import click

from authserver.cli.context import app_context, audit, emit_json
from authserver.extensions import db
from authserver.services import apply, declaration
from authserver.services.formatting import printable

#: A registry file of thousands of clients is well under this; a larger one is a mistake.
MAX_FILE_BYTES = 16 * 1024 * 1024

#: The audit event of each applied change, as the CLI's own commands write them.
EVENTS = {
    ("client", apply.CREATE): "client.created",
    ("client", apply.UPDATE): "client.updated",
    ("client", apply.DELETE): "client.deleted",
    ("trust", apply.CREATE): "trust.added",
    ("trust", apply.UPDATE): "trust.updated",
    ("trust", apply.DELETE): "trust.deleted",
}


@click.command("apply")
@click.argument("file", type=click.File("rb"))
@click.option("--dry-run", is_flag=True, help="Print the plan and change nothing.")
@click.option(
    "--prune", is_flag=True, help="Also delete the clients and trusts the file does not list."
)
@click.option("--json", "as_json", is_flag=True, help="Print the plan as JSON.")
def apply_command(file: IO[bytes], dry_run: bool, prune: bool, as_json: bool) -> None:
    """Make the registry hold the clients and trusts FILE declares (YAML or JSON; - reads
    stdin): create what is missing, update what differs and, with --prune, delete the rest.

    The whole file is checked first; every problem is one line with its location, exit 1,
    and nothing is changed. The changes are made in one transaction. A new client's generated
    secret is printed once.
    """
    data = file.read(MAX_FILE_BYTES + 1)
    if len(data) > MAX_FILE_BYTES:
        raise click.ClickException(f"the file is over {MAX_FILE_BYTES} bytes")
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise click.ClickException(
            f"the file is not UTF-8 text ({exc.reason} at byte {exc.start})"
        ) from None
    try:
        wanted = declaration.checked(declaration.parse(text), os.environ)
        with app_context():
            session = db.session()
            planned = apply.plan(session, wanted, prune=prune)
            if not dry_run and planned.changes_anything:
                apply.execute(session, planned)
                session.commit()
                _audit(planned)
    except declaration.InvalidDeclaration as invalid:
        for problem in invalid.problems:
            click.echo(f"Error: {printable(str(problem))}", err=True)
        sys.exit(1)
    _report(planned, dry_run=dry_run, as_json=as_json)


def _audit(planned: apply.Plan) -> None:
    for change in planned.changes:
        event = EVENTS.get((change.kind, change.action))
        if event is None:
            continue
        details: dict[str, Any] = {}
        if change.action == apply.UPDATE:
            details["fields"] = change.fields
        if change.kind == "trust":
            details["trust_id"] = change.trust_id
        audit(event, change.client_id, source="apply", **details)


def _report(planned: apply.Plan, *, dry_run: bool, as_json: bool) -> None:
    if as_json:
        emit_json(
            {
                "dry_run": dry_run,
                "changes": [change.view() for change in planned.changes],
                "summary": planned.summary(),
            }
        )
        return
    for change in planned.changes:
        click.echo(_line(change))
    click.echo(_summary_line(planned, dry_run))
    new_secrets = [c for c in planned.changes if c.client_secret is not None]
    for change in new_secrets:
        click.echo(f"client_secret {printable(change.name)}: {change.client_secret}")
    if new_secrets:
        click.echo("Store the secrets now: they are shown only this once.", err=True)


def _line(change: apply.Change) -> str:
    """``update client billing (scope, audiences)``; a trust is named by what it accepts."""
    subject = printable(change.name)
    if change.kind == "trust" and change.trust is not None:
        trust = change.trust
        accepts = " ".join(printable(v) for v in (trust.issuer, trust.subject, trust.audience))
        subject = f"{accepts} -> {subject}"
    fields = f" ({', '.join(change.fields)})" if change.fields else ""
    return f"{change.action} {change.kind} {subject}{fields}"


def _summary_line(planned: apply.Plan, dry_run: bool) -> str:
    counts = planned.summary()
    told = ", ".join(
        f"{counts[action]} {'to ' + action if dry_run else past}"
        for action, past in (
            (apply.CREATE, "created"),
            (apply.UPDATE, "updated"),
            (apply.DELETE, "deleted"),
        )
    )
    kept = f", {counts['not_in_file']} not in the file (kept)" if counts["not_in_file"] else ""
    head = "dry run, nothing changed:" if dry_run else "applied:"
    return f"{head} {told}, {counts[apply.UNCHANGED]} unchanged{kept}"
