import json
from pathlib import Path
from typing import Any

from django.core.management.base import BaseCommand, CommandError

from billing.importing import ImportReport, RowResult, csv_rows, customers_import, sample_import
from providers.models import Provider


class Command(BaseCommand):
    help = (
        "Load a provider's customers and connections: a CSV file (one row per connection with its "
        "customer's details; the columns are listed in billing/importing.py), a JSON list of such rows, "
        "or a disco_sample.json-shaped file (customers, connections and meter readings). Good rows are "
        "kept; each refused row is listed with its reason."
    )

    def add_arguments(self, parser: Any) -> None:
        parser.add_argument("provider_code")
        parser.add_argument("path", type=Path, help="A .csv or .json file.")

    def handle(self, *args: Any, provider_code: str, path: Path, **options: Any) -> None:
        provider = Provider.objects.filter(code=provider_code.upper()).first()
        if provider is None:
            raise CommandError(f"No provider with code {provider_code}.")
        try:
            text = path.read_text(encoding="utf-8-sig")
            data = csv_rows(text) if path.suffix.lower() == ".csv" else json.loads(text)
        except (OSError, ValueError) as exc:
            raise CommandError(f"Cannot read {path}: {exc}") from exc
        if isinstance(data, dict):
            result = sample_import(provider=provider, data=data)
            self._report(provider, result.customers)
            readings = result.readings
            self.stdout.write(
                f"Readings: {readings.accepted} recorded, {readings.unchanged} already stored, "
                f"{len(readings.refused)} refused."
            )
            for refusal in readings.refused:
                self.stdout.write(f"  row {refusal['row']} ({refusal['connectionId']}): {refusal['reason']}")
        elif isinstance(data, list):
            self._report(provider, customers_import(provider=provider, rows=data, imported_by=None))
        else:
            raise CommandError(f"{path} holds neither rows nor a sample file.")

    def _report(self, provider: Provider, report: ImportReport) -> None:
        self.stdout.write(
            f"{provider.code}: {report.customers_created} customers and {report.connections_created} "
            f"connections created; rows: {report.count(RowResult.CREATED)} created, {report.count(RowResult.UNCHANGED)} "
            f"unchanged, {len(report.refused)} refused."
        )
        for row in report.refused:
            named = ", ".join(number for number in (row.customer_id, row.connection_id) if number)
            self.stdout.write(f"  row {row.row}{f' ({named})' if named else ''}: {row.reason}")
