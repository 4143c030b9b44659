import json
from pathlib import Path
from typing import Any

from django.core.management.base import BaseCommand, CommandError

from config.errors import DomainError
from providers.importing import price_schedule_import
from providers.models import Provider


class Command(BaseCommand):
    help = "Load a provider's connection types and price schedule from a disco_sample.json-shaped file."

    def add_arguments(self, parser: Any) -> None:
        parser.add_argument("provider_code", help="The provider's code, e.g. DISCO.")
        parser.add_argument("path", type=Path)

    def handle(self, *args: Any, provider_code: str, path: Path, **options: Any) -> None:
        provider = Provider.objects.filter(code=provider_code.upper()).first()
        if provider is None:
            raise CommandError(f"No provider with code {provider_code}.")
        try:
            data = json.loads(path.read_text())
            result = price_schedule_import(provider=provider, data=data)
        except (OSError, ValueError) as exc:
            raise CommandError(f"Cannot read {path}: {exc}") from exc
        except DomainError as exc:
            raise CommandError(f"Nothing was loaded. {exc.detail}") from exc
        created = ", ".join(f"{n} {kind}" for kind, n in result.created.items()) or "nothing"
        unchanged = sum(result.unchanged.values())
        self.stdout.write(f"{provider.code}: created {created}; {unchanged} rows already loaded.")
