"""Restores a backup of `manage.py backup` into this deployment's database, then verifies it
(auditing.backups)."""

from pathlib import Path

from django.core.management.base import BaseCommand, CommandError, CommandParser

from auditing.backups import BackupError, backup_restore, describe_database


class Command(BaseCommand):
    help = (
        "Restore a backup into the configured database, which must be empty unless --force is "
        "given; then check the migrations and the audit trail and print what it holds."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("path", type=Path, help="A file written by manage.py backup.")
        parser.add_argument(
            "--force",
            action="store_true",
            help="Drop everything in the database first (in the restore's own transaction).",
        )

    def handle(self, *args: object, path: Path, force: bool = False, **options: object) -> None:
        try:
            restored = backup_restore(path=path, replace=force)
        except BackupError as problem:
            raise CommandError(str(problem)) from problem
        self.stdout.write(f"Restored {path} into the {describe_database()}.")
        self.stdout.write(f"It holds {restored.contents}.")
        for warning in restored.warnings:
            self.stderr.write(warning)
        if restored.breaks:
            for found in restored.breaks:
                where = f"row {found.row_id}" if found.row_id else "its end"
                self.stderr.write(f"Audit chain {found.chain} is broken at {where}: {found.problem}.")
            raise CommandError(f"Restored, but {len(restored.breaks)} audit chain(s) are broken.")
        self.stdout.write("Every audit chain is intact.")
