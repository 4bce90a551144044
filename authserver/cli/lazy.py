"""Click's lazy loading of subcommands: a group that imports a command's module only when the
command is resolved, so that each command pays at start-up for its own imports only.

``--help`` lists a lazy command with the short help its table gives (the first sentence of
its docstring, which is all Click shows there), without importing it;
tests/test_cli_startup.py checks that the tables agree with the commands.
"""

from __future__ import annotations

import importlib
from collections.abc import Mapping
from gettext import gettext as _
from typing import Any

import click

#: A command's name -> (``"module:attribute"`` where it is defined, its short help).
LazyCommands = Mapping[str, tuple[str, str]]


class LazyGroup(click.Group):
    """A group whose ``lazy_commands`` are imported when first resolved."""

    def __init__(self, *args: Any, lazy_commands: LazyCommands | None = None, **kwargs: Any):
        super().__init__(*args, **kwargs)
        self.lazy_commands: LazyCommands = lazy_commands or {}

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted({*super().list_commands(ctx), *self.lazy_commands})

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        command = super().get_command(ctx, cmd_name)
        if command is None and cmd_name in self.lazy_commands:
            module, attribute = self.lazy_commands[cmd_name][0].split(":")
            command = getattr(importlib.import_module(module), attribute)
            self.add_command(command, cmd_name)
        return command

    def resolve_command(
        self, ctx: click.Context, args: list[str]
    ) -> tuple[str | None, click.Command | None, list[str]]:
        try:
            return super().resolve_command(ctx, args)
        except click.UsageError:
            if self.commands.keys() >= self.lazy_commands.keys():
                raise
            # Click suggests a close name ("Did you mean 'clients'?") from the commands
            # loaded so far: a name it does not know loads them all, then fails the same way.
            for name in self.lazy_commands:
                self.get_command(ctx, name)
            return super().resolve_command(ctx, args)

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        """Click's list of commands with their short help: from the table for a command not
        loaded yet."""
        commands = [
            (name, self.commands.get(name) or self._summary(name))
            for name in self.list_commands(ctx)
        ]
        commands = [(name, command) for name, command in commands if not command.hidden]
        if not commands:
            return
        limit = formatter.width - 6 - max(len(name) for name, _command in commands)
        rows = [(name, command.get_short_help_str(limit)) for name, command in commands]
        with formatter.section(_("Commands")):
            formatter.write_dl(rows)

    def _summary(self, name: str) -> click.Command:
        """A stand-in that Click shortens as it would the command's own help."""
        return click.Command(name, help=self.lazy_commands[name][1])
