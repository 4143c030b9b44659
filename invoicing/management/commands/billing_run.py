"""Runs the monthly billing in this process, with a progress bar: the same services as the Celery
job. Starting it again for a month whose run is unfinished (a crash, a killed worker) resumes that
run; for a month already billed it issues only what is missing."""

from datetime import date

from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.utils import timezone
from tqdm import tqdm

from billing.months import parse_month, previous_month
from config.errors import DomainError
from invoicing import selectors, services
from invoicing.models import BillingRun
from providers.models import Provider


def month(value: str) -> date:
    try:
        return parse_month(value)
    except ValueError as problem:
        raise CommandError(f"--month takes YYYY-MM, e.g. 2024-07 (got {value!r}).") from problem


class Command(BaseCommand):
    help = "Bill every active connection of the given providers (all active ones by default) for a month."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--provider", action="append", default=[], help="Provider code; repeat for several."
        )
        parser.add_argument("--month", type=month, help="YYYY-MM; the month just ended by default.")
        parser.add_argument("--chunk-size", type=int, default=services.DEFAULT_CHUNK_SIZE)

    def handle(self, *args: object, **options: object) -> None:
        period = options["month"] or previous_month(timezone.localdate())
        providers = Provider.objects.filter(is_active=True)
        if options["provider"]:
            providers = Provider.objects.filter(code__in=options["provider"])
            missing = set(options["provider"]) - set(providers.values_list("code", flat=True))
            if missing:
                raise CommandError(f"No provider with code {', '.join(sorted(missing))}.")
        if options["chunk_size"] < 1:
            raise CommandError("--chunk-size must be at least 1.")
        for provider in providers:
            self._bill(provider, period, options["chunk_size"])

    def _bill(self, provider: Provider, period: date, chunk_size: int) -> None:
        try:
            run, new = services.billing_run_start(provider=provider, period=period, chunk_size=chunk_size)
        except DomainError as refusal:
            raise CommandError(refusal.detail) from refusal
        self.stdout.write(f"{provider.code} {period:%Y-%m}: {'started' if new else 'resuming'} run {run.pk}")
        with tqdm(total=run.total, initial=run.done, unit="conn", disable=None) as bar:
            for chunk_id in selectors.pending_chunks(run):
                services.billing_run_chunk_bill(chunk_id=chunk_id)
                done = BillingRun.objects.values_list("done", flat=True).get(pk=run.pk)
                bar.update(done - bar.n)
        run.refresh_from_db()
        self.stdout.write(
            f"{provider.code} {period:%Y-%m}: {run.issued} issued, {run.already_billed} already billed, "
            f"{run.skipped} skipped, {run.failed} failed, {run.billed_amount} {provider.currency} billed"
        )
        for problem in run.problems.select_related("connection")[:20]:
            self.stdout.write(f"  {problem.kind}: {problem.reason}")
