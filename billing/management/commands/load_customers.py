import json
from pathlib import Path
from typing import Any

from django.core.management.base import BaseCommand, CommandError

from billing.importing import sample_import
from config.errors import DomainError
from providers.models import Provider


class Command(BaseCommand):
    help = "Load a provider's customers, connections and meter readings from a disco_sample.json-shaped file."

    def add_arguments(self, parser: Any) -> None:
        parser.add_argument("provider_code")
        parser.add_argument("path", type=Path)

    def handle(self, *args: Any, provider_code: str, path: Path, **options: Any) -> None:
        provider = Provider.objects.filter(code=provider_code.upper()).first()
        if provider is None:
            raise CommandError(f"No provider with code {provider_code}.")
        try:
            result = sample_import(provider=provider, data=json.loads(path.read_text()))
        except (OSError, ValueError) as exc:
            raise CommandError(f"Cannot read {path}: {exc}") from exc
        except DomainError as exc:
            raise CommandError(f"No customers or connections were loaded. {exc.detail}") from exc
        report = result.readings
        self.stdout.write(
            f"{provider.code}: {result.customers_created} customers and {result.connections_created} connections "
            f"created; readings: {report.accepted} recorded, {report.unchanged} already stored, "
            f"{len(report.refused)} refused."
        )
        for refusal in report.refused:
            self.stdout.write(f"  row {refusal['row']} ({refusal['connectionId']}): {refusal['reason']}")
