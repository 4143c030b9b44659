"""Backs up the whole PostgreSQL database to one file (auditing.backups)."""

from pathlib import Path

from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.db import connection
from django.utils import timezone

from auditing.backups import BackupError, backup_write, describe_database


class Command(BaseCommand):
    help = (
        "Back up the whole PostgreSQL database (pg_dump's custom format) to PATH, by default "
        "<database>-<UTC time>.dump here; prints the file's size and what it holds."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("path", nargs="?", type=Path, help="The new backup file.")

    def handle(self, *args: object, path: Path | None = None, **options: object) -> None:
        if path is None:
            path = Path(f"{connection.settings_dict['NAME']}-{timezone.now():%Y%m%dT%H%M%SZ}.dump")
        try:
            contents = backup_write(path=path)
        except BackupError as problem:
            raise CommandError(str(problem)) from problem
        size = path.stat().st_size
        self.stdout.write(f"Backed up the {describe_database()} to {path} ({size / 1024:,.1f} KiB).")
        self.stdout.write(f"It holds {contents}.")
