"""Recomputes the audit trail's hash chains and names the first broken row of each broken chain."""

from django.core.management.base import BaseCommand, CommandError, CommandParser

from auditing.services import audit_verify


class Command(BaseCommand):
    help = "Verify the audit trail's hash chains (every provider's, or one with --provider-id)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--provider-id", type=int, help="Only this provider's chain (0: platform rows).")

    def handle(self, *args: object, provider_id: int | None = None, **options: object) -> None:
        breaks = audit_verify(chain=provider_id)
        if breaks:
            for found in breaks:
                where = f"row {found.row_id}" if found.row_id else "its end"
                self.stderr.write(f"Chain {found.chain} is broken at {where}: {found.problem}.")
            raise CommandError(f"{len(breaks)} broken chain(s).")
        self.stdout.write("Every audit chain is intact.")
