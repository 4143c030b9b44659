"""The production processes are described once: the systemd units run the Procfile's commands, and the
DBA's SQL gives the AI reader role exactly what migration auditing 0002 checks for."""

import importlib
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent.parent
reader = importlib.import_module("auditing.migrations.0002_ai_reader")


def test_each_systemd_unit_runs_its_procfile_command_from_the_venv():
    procfile = dict(line.split(": ", 1) for line in (ROOT / "Procfile").read_text().splitlines() if line)

    units = {}
    for name in procfile:
        unit = (ROOT / "deploy" / "systemd" / f"billing-{name}.service").read_text()
        units[name] = re.search(r"^ExecStart=/srv/billing/\.venv/bin/(.+)$", unit, re.MULTILINE).group(1)
        assert "EnvironmentFile=/etc/billing/billing.env" in unit

    assert units == procfile
    assert set(procfile) == {"web", "worker", "beat"}


def test_the_dbas_sql_gives_the_reader_role_what_the_migration_checks():
    sql = (ROOT / "deploy" / "ai_reader_role.sql").read_text()
    settings = dict(re.findall(r"""^ALTER ROLE :"role" SET (\w+) = '?([^';]+)'?;$""", sql, re.MULTILINE))

    assert settings == reader.ROLE_SETTINGS | reader.ROLE_SETTINGS_PG14 | reader.ROLE_SETTINGS_SUPERUSER
    assert (
        "LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE NOINHERIT NOREPLICATION NOBYPASSRLS\n"
        f"    CONNECTION LIMIT {reader.CONNECTION_LIMIT} PASSWORD :'password';"
    ) in sql
