"""``manage.py gpu_host_token create|list|revoke``: the nodes' tokens for ``POST
api/gpu/ingest`` (``gpu_record --push``)."""

from __future__ import annotations

import argparse
from typing import Any

from django.core.management.base import CommandError, CommandParser
from django.db import DatabaseError

from gpu_monitor import terminal
from gpu_monitor.commands import GPUMonitorCommand
from gpu_monitor.fleet import tokens
from gpu_monitor.fleet.models import HostToken
from gpu_monitor.history.wire import host_problem
from gpu_monitor.params import iso

COLUMNS = ("Host", "Id", "Created", "Last used", "Revoked")


def host_name(text: str) -> str:
    """An argparse type: a host name by gpu_record --host's rule (``wire.host_problem``)."""
    problem = host_problem(text, "HOST")
    if problem is not None:
        raise argparse.ArgumentTypeError(problem)
    return text


def when(moment: Any) -> str:
    return "-" if moment is None else iso(moment.timestamp())


class Command(GPUMonitorCommand):
    """Make a node's token (printed once), list the tokens, or revoke them."""

    help = (
        "The nodes' tokens for POST api/gpu/ingest (gpu_record --push): create HOST prints "
        "a new token once on stdout; list [HOST] shows them (never the token); revoke "
        "HOST revokes all of a host's, revoke --id ID one."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "action",
            choices=("create", "list", "revoke"),
            metavar="ACTION",
            help="create (print a new token for HOST), list (the tokens, [HOST]'s only when "
            "given) or revoke (HOST's tokens, or --id ID's)",
        )
        parser.add_argument(
            "host",
            nargs="?",
            type=host_name,
            metavar="HOST",
            help="the node's gpu_record --host (create and revoke: required unless --id)",
        )
        parser.add_argument("--id", dest="key", help="revoke: the token's id, as list shows it")

    def handle(self, *args: Any, **options: Any) -> None:
        action, host, key = options["action"], options["host"], options["key"]
        if key is not None and (action != "revoke" or host is not None):
            raise CommandError("--id goes with revoke, without HOST: revoke --id ID")
        if host is None and (action == "create" or (action == "revoke" and key is None)):
            raise CommandError(f"{action} needs a HOST (the node's gpu_record --host)")
        try:
            getattr(self, f"do_{action}")(options)
        except DatabaseError as exc:
            raise CommandError(
                f"The database did not answer or refused ({str(exc).strip()}): is it "
                "reachable and migrated (manage.py migrate)?"
            ) from exc

    def do_create(self, options: dict[str, Any]) -> None:
        row, token = tokens.create(options["host"])
        self.stdout.write(token)
        if options["verbosity"] >= 2:
            self.stderr.write(
                f"Token {row.key} for host {row.host}: shown once; give it to the node as "
                "gpu_record --push URL --token-file PATH (or GPU_MONITOR_TOKEN)."
            )

    def do_list(self, options: dict[str, Any]) -> None:
        rows = HostToken.objects.all()
        if options["host"] is not None:
            rows = rows.filter(host=options["host"])
        table = [
            [
                terminal.printable(row.host),
                row.key,
                when(row.created),
                when(row.last_used),
                when(row.revoked),
            ]
            for row in rows
        ]
        if not table:
            self.stdout.write("No host tokens" + (" of that host." if options["host"] else "."))
            return
        widths = [max(len(r[i]) for r in [list(COLUMNS), *table]) for i in range(len(COLUMNS))]
        for line in [list(COLUMNS), *table]:
            cells = (cell.ljust(width) for cell, width in zip(line, widths, strict=True))
            self.stdout.write("  ".join(cells).rstrip())

    def do_revoke(self, options: dict[str, Any]) -> None:
        key = options["key"]
        count = tokens.revoke(host=options["host"], key=key)
        if key is not None and not count and not HostToken.objects.filter(key=key).exists():
            raise CommandError(f"No host token has the id {key!r} (see gpu_host_token list).")
        if (
            key is None
            and not count
            and not HostToken.objects.filter(host=options["host"]).exists()
        ):
            raise CommandError(
                f"Host {terminal.printable(options['host'])} has no token (see gpu_host_token "
                "list)."
            )
        what = f"id {key}" if key is not None else f"host {terminal.printable(options['host'])}"
        self.stdout.write(f"Revoked {count} token(s) of {what}.")
