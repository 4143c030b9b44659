"""Backing up and restoring the whole PostgreSQL database, with PostgreSQL's own tools.

A backup is `pg_dump`'s custom format (`-Fc`: compressed, restored selectively by `pg_restore`),
taken in a snapshot this process exported, so the summary printed beside it counts exactly what the
file holds. Connection settings come from Django's DATABASES, passed to the tools in PG* environment
variables: a password never appears on a command line (`ps` shows those to every user).

A restore fills an empty database (or, with `replace`, drops what is there first) in one
transaction: `pg_restore` writes the SQL, psql runs it, and the transaction commits only once
pg_restore has read the whole file, so any failure leaves the database as it was. Then it checks
what a backup cannot carry:
- roles are cluster-wide, not in a dump: the AI reader role (`settings.AI_QUERY_DB_USER`) must exist
  before the restore (the dump grants it its views), and gets CONNECT on the new database again;
- `pg_dump` carries the privileges auditing migration 0004 revoked on pg_catalog but never those on
  information_schema: they are revoked again (a superuser's task, as in the migration);
- the schema must be this code's (no migration left to apply), and the audit trail must verify.
A superuser restores the dump's owners; anyone else restores with `--no-owner`, so the objects
become the restoring role's (the app's role, which owns them after `migrate` too).
"""

import contextlib
import importlib
import os
import shutil
import subprocess
import tempfile
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any

from django.conf import settings
from django.db import connection, transaction
from django.db.backends.postgresql.client import DatabaseClient
from django.db.migrations.executor import MigrationExecutor
from django.db.models import Sum
from psycopg import sql

from auditing.models import AuditLog
from auditing.services import ChainBreak, audit_verify
from invoicing.models import Adjustment, Invoice, Payment
from providers.models import Provider

# Migration modules' names start with digits: reached through importlib. 0004's revocation is run
# again rather than copied, so the two can never drift.
ai_reader_catalog = importlib.import_module("auditing.migrations.0004_ai_reader_catalog")

# The database's own schemas and relations: what a restore would collide with.
SCHEMAS_HELD = """
SELECT n.nspname FROM pg_catalog.pg_namespace AS n
WHERE n.nspname NOT IN ('pg_catalog', 'information_schema') AND n.nspname !~ '^pg_(toast|temp_)'
ORDER BY 1
"""
RELATIONS_HELD = """
SELECT n.nspname || '.' || c.relname FROM pg_catalog.pg_class AS c
JOIN pg_catalog.pg_namespace AS n ON n.oid = c.relnamespace
WHERE n.nspname NOT IN ('pg_catalog', 'information_schema') AND n.nspname !~ '^pg_(toast|temp_)'
  AND c.relkind IN ('r', 'p', 'v', 'm', 'S', 'f')
ORDER BY 1
"""
# PostgreSQL 15's own schema public (initdb's owner and privileges), made again after a replace.
PUBLIC_SCHEMA = (
    "CREATE SCHEMA public AUTHORIZATION pg_database_owner; GRANT USAGE ON SCHEMA public TO PUBLIC;"
)
# A replace must not wait behind the app's open sessions: it fails instead, and says so.
LOCK_TIMEOUT = "10s"


class BackupError(Exception):
    """A backup or restore refused or failed; the message says what to do."""


@dataclass(frozen=True)
class Contents:
    providers: int
    invoices: int
    billed: Decimal  # the sum of the invoices' current charges
    open_balance: Decimal
    payments: int
    paid: Decimal
    adjustments: int
    audit_rows: int

    def __str__(self) -> str:
        return (
            f"{self.providers:,} provider(s); {self.invoices:,} invoice(s) billing {self.billed:,.2f} "
            f"({self.open_balance:,.2f} open); {self.payments:,} payment(s) of {self.paid:,.2f}; "
            f"{self.adjustments:,} adjustment(s); {self.audit_rows:,} audit row(s)"
        )


@dataclass(frozen=True)
class Restored:
    contents: Contents
    breaks: list[ChainBreak]
    warnings: list[str]


def database_contents() -> Contents:
    def total(queryset: Any, field: str) -> Decimal:
        return queryset.aggregate(total=Sum(field))["total"] or Decimal("0.00")

    return Contents(
        providers=Provider.objects.count(),
        invoices=Invoice.objects.count(),
        billed=total(Invoice.objects, "current_charges"),
        open_balance=total(Invoice.objects, "balance"),
        payments=Payment.objects.count(),
        paid=total(Payment.objects, "amount"),
        adjustments=Adjustment.objects.count(),
        audit_rows=AuditLog.objects.count(),
    )


def describe_database() -> str:
    db = connection.settings_dict
    where = f"{db.get('HOST') or 'local socket'}:{db.get('PORT') or 5432}"
    return f"database {db.get('NAME')} on {where}"


def backup_write(*, path: Path) -> Contents:
    """Dump the database to `path` (a new file, readable by its owner only); what it holds."""
    tools = _tools("pg_dump")
    if path.exists():
        raise BackupError(f"{path} exists already: name a new file (a backup never overwrites one).")
    partial = path.with_name(path.name + ".partial")
    # Created here, exclusively and private (the dump holds customers' details): pg_dump writes into it.
    try:
        os.close(os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))
    except FileExistsError:
        raise BackupError(
            f"{partial} exists: another backup to {path} is running, or one was interrupted (then remove it)."
        ) from None
    except OSError as problem:
        raise BackupError(f"{partial} cannot be written: {problem.strerror}.") from problem
    try:
        with transaction.atomic():
            with connection.cursor() as cursor:
                cursor.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY")
                cursor.execute("SELECT pg_export_snapshot()")
                (snapshot,) = cursor.fetchone()
            contents = database_contents()
            # The snapshot lives as long as this transaction: pg_dump must run inside it.
            _run([tools["pg_dump"], "--format=custom", f"--snapshot={snapshot}", f"--file={partial}"])
        partial.rename(path)
    finally:
        partial.unlink(missing_ok=True)
    return contents


def backup_restore(*, path: Path, replace: bool = False) -> Restored:
    """Restore the backup at `path` into this process's database (empty, or emptied first with
    `replace`), then verify it."""
    tools = _tools("pg_restore", "psql")
    if not path.is_file():
        raise BackupError(f"{path} is not a file: name a backup written by `manage.py backup`.")
    _run([tools["pg_restore"], "--list", str(path)])  # refuses anything but a pg_dump archive
    held = _objects_held()
    if held and not replace:
        raise BackupError(
            f"The {describe_database()} is not empty ({held}). Restore into a new, empty database "
            "(createdb, then point DATABASE_URL at it), or pass --force to drop everything in this "
            "one and replace it with the backup."
        )
    reader = settings.AI_QUERY_DB_USER
    if not _role_exists(reader):
        raise BackupError(
            f"The AI reader role {reader} does not exist in this PostgreSQL cluster; the backup grants "
            "it its views. Roles are not in a backup: a DBA creates it first "
            "(deploy/ai_reader_role.sql), then restore again."
        )
    superuser = _is_superuser()
    prelude = f"SET lock_timeout = '{LOCK_TIMEOUT}';"
    if replace:
        prelude += "".join(
            f"DROP SCHEMA {sql.Identifier(schema).as_string()} CASCADE;" for schema in _schemas()
        )
        prelude += PUBLIC_SCHEMA
    # Never kept idle in a transaction while psql drops and creates: closed, reopened after.
    connection.close()
    _restore_script(tools, path, prelude=prelude, keep_owners=superuser)
    warnings = _grants_again(reader, superuser=superuser)
    _check_migrations()
    return Restored(contents=database_contents(), breaks=audit_verify(), warnings=warnings)


def _restore_script(tools: dict[str, str], path: Path, *, prelude: str, keep_owners: bool) -> None:
    """`pg_restore`'s SQL, run by psql in one transaction after `prelude`, committed only once
    pg_restore has read the whole backup: a file cut short (its table of contents is at its start,
    so `--list` passes) leaves the database as it was. (pg_restore's script opens transactions of its
    own only for large objects, which this app never stores.)"""
    environment = _environment()
    with tempfile.TemporaryFile() as read_problems, tempfile.TemporaryFile() as run_problems:
        script = subprocess.Popen(  # noqa: S603 (our tools, found on PATH; the path is an argument)
            [tools["pg_restore"], *([] if keep_owners else ["--no-owner"]), "--file=-", str(path)],
            stdout=subprocess.PIPE,
            stderr=read_problems,
            env=environment,
        )
        psql = subprocess.Popen(  # noqa: S603
            [tools["psql"], "--no-psqlrc", "--quiet", "--set=ON_ERROR_STOP=1", "--file=-"],
            stdin=subprocess.PIPE,
            stdout=subprocess.DEVNULL,
            stderr=run_problems,
            env=environment,
        )
        try:
            psql.stdin.write(f"BEGIN;\n{prelude}\n".encode())
            shutil.copyfileobj(script.stdout, psql.stdin)
            if script.wait() == 0:
                psql.stdin.write(b"COMMIT;\n")
        except BrokenPipeError:
            pass  # psql stopped at an error (ON_ERROR_STOP), which it wrote down
        finally:
            script.stdout.close()  # a pg_restore still writing stops
            with contextlib.suppress(BrokenPipeError):
                psql.stdin.close()
            script.wait()
            psql.wait()
        if psql.returncode:
            run_problems.seek(0)
            problem = run_problems.read().decode(errors="replace").strip()
            raise BackupError(f"The restore failed and changed nothing: {problem}")
        if script.returncode:
            read_problems.seek(0)
            problem = read_problems.read().decode(errors="replace").strip()
            raise BackupError(f"pg_restore could not read all of {path}; nothing was changed: {problem}")


def _tools(*names: str) -> dict[str, str]:
    if connection.vendor != "postgresql":
        raise BackupError(
            f"The database is {connection.vendor}, not PostgreSQL: back up an SQLite database by "
            f"copying its file ({connection.settings_dict['NAME']}) while nothing writes to it "
            "(or with sqlite3's .backup command)."
        )
    found = {name: shutil.which(name) for name in names}
    missing = [name for name, where in found.items() if where is None]
    if missing:
        raise BackupError(
            f"{' and '.join(missing)} not found on PATH: install PostgreSQL's client tools, of the "
            "server's major version or newer (Debian: apt-get install postgresql-client)."
        )
    return found


def _environment() -> dict[str, str]:
    """The tools' connection settings: Django's DATABASES as libpq's PG* variables."""
    db = connection.settings_dict
    _, secrets = DatabaseClient.settings_to_cmd_args_env(db, [])
    named = {
        "PGHOST": db.get("HOST"),
        "PGPORT": db.get("PORT"),
        "PGUSER": db.get("USER"),
        "PGDATABASE": db.get("NAME"),
    }
    return {**os.environ, **{key: str(value) for key, value in named.items() if value}, **(secrets or {})}


def _run(command: list[str], *, stdin: Any = None) -> None:
    done = subprocess.run(  # noqa: S603 (our tools, found on PATH; no shell)
        command, stdin=stdin, capture_output=True, env=_environment(), check=False
    )
    if done.returncode:
        problem = done.stderr.decode(errors="replace").strip() or f"exit status {done.returncode}"
        raise BackupError(f"{Path(command[0]).name} failed: {problem}")


def _one(query: str, params: list | None = None) -> Any:
    with connection.cursor() as cursor:
        cursor.execute(query, params)
        return cursor.fetchone()[0]


def _objects_held() -> str:
    """What makes the database non-empty, said briefly; empty when nothing does."""
    with connection.cursor() as cursor:
        cursor.execute(RELATIONS_HELD)
        relations = [name for (name,) in cursor.fetchall()]
    schemas = [schema for schema in _schemas() if schema != "public"]
    if not relations and not schemas:
        return ""
    if not relations:
        return f"schema {', '.join(schemas)}"
    return f"{len(relations):,} table(s), view(s) or sequence(s), such as {', '.join(relations[:3])}"


def _schemas() -> list[str]:
    with connection.cursor() as cursor:
        cursor.execute(SCHEMAS_HELD)
        return [name for (name,) in cursor.fetchall()]


def _role_exists(role: str) -> bool:
    return bool(_one("SELECT count(*) FROM pg_catalog.pg_roles WHERE rolname = %s", [role]))


def _is_superuser() -> bool:
    return _one("SELECT rolsuper FROM pg_catalog.pg_roles WHERE rolname = current_user")


def _grants_again(reader: str, *, superuser: bool) -> list[str]:
    """What a dump does not carry: the reader's CONNECT (a database's own privileges are dumped only
    with the database) and the information_schema revocations of migration 0004."""
    with connection.cursor() as cursor:
        raw = connection.connection
        cursor.execute(
            sql.SQL("GRANT CONNECT ON DATABASE {} TO {}")
            .format(sql.Identifier(connection.settings_dict["NAME"]), sql.Identifier(reader))
            .as_string(raw)
        )
        if superuser:
            ai_reader_catalog._catalog_closed(cursor, raw)
            return []
    if _one(f"SELECT {_CATALOG_OPEN}", [reader, reader]):
        return [
            f"Not a superuser: PostgreSQL's catalogs stay readable by {reader} in this database, so AI "
            "queries refuse to run until a superuser restores it (DATABASE_URL naming a superuser: "
            "the backup's owners are kept, the catalogs closed as migration auditing 0004 does)."
        ]
    return []


_CATALOG_OPEN = (
    "has_table_privilege(%s, 'pg_catalog.pg_class', 'SELECT') "
    "OR has_table_privilege(%s, 'information_schema.tables', 'SELECT')"
)


def _check_migrations() -> None:
    executor = MigrationExecutor(connection)
    unapplied = executor.migration_plan(executor.loader.graph.leaf_nodes())
    unknown = set(executor.loader.applied_migrations) - set(executor.loader.graph.nodes)
    if unapplied:
        raise BackupError(
            f"Restored, but the backup's schema is older than this code ({len(unapplied)} migration(s) "
            "to apply): run manage.py migrate, then manage.py audit_verify."
        )
    if unknown:
        raise BackupError(
            f"Restored, but the backup was written by newer code ({len(unknown)} migration(s) this code "
            f"does not know, such as {'.'.join(sorted(unknown)[0])}): run it with that version."
        )
