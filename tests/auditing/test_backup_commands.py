"""`manage.py backup` and `restore` on the embedded SQLite database: refused, with what to do instead
(the real-stack suite backs up and restores PostgreSQL: tests/realstack/test_backup_restore.py)."""

import pytest
from django.core.management import CommandError, call_command
from django.db import connection

pytestmark = [
    pytest.mark.django_db,
    # On PostgreSQL (the real-stack pass) the commands run for real: tests/realstack/test_backup_restore.py.
    pytest.mark.skipif(connection.vendor != "sqlite", reason="the refusals of a SQLite database"),
]


def test_backup_on_sqlite_says_to_copy_the_file(tmp_path):
    with pytest.raises(CommandError, match=r"not PostgreSQL: back up an SQLite database by copying its file"):
        call_command("backup", str(tmp_path / "billing.dump"))
    assert list(tmp_path.iterdir()) == []


def test_restore_on_sqlite_is_refused_before_reading_anything(tmp_path):
    backup = tmp_path / "billing.dump"
    backup.write_bytes(b"PGDMP")

    with pytest.raises(CommandError, match=r"The database is sqlite, not PostgreSQL"):
        call_command("restore", str(backup))
