"""The books page (/books): the journal of a date range by account, with a chart of what was billed and
collected each day, and its CSV and the year's tax report to download (the API's files)."""

from urllib.parse import urlencode

from django import forms
from django.http import HttpRequest, HttpResponse
from django.utils import timezone
from django.utils.translation import gettext_lazy as _
from django.views.decorators.http import require_GET

from accounts.web import form_page, page, refusals_into
from invoicing import books
from invoicing.pages import _chart

DATE_WIDGET = forms.DateInput(attrs={"type": "date"})


class RangeForm(forms.Form):
    first = forms.DateField(label=_("From"), widget=DATE_WIDGET)
    last = forms.DateField(
        label=_("To"), widget=DATE_WIDGET, help_text=f"Included; at most {books.MAX_DAYS} days."
    )


def _daily_chart(journal: books.Journal) -> str:
    receivables = books.RECEIVABLES[0]
    billed, collected = [], []
    for day in journal.days:
        entry = next((entry for entry in day.entries if entry.account.code == receivables), None)
        billed.append(entry.debit if entry else books.NO_MONEY)
        collected.append(entry.credit if entry else books.NO_MONEY)
    return _chart(
        "bar",
        [f"{day.day:%d %b}" for day in journal.days],
        [
            {"label": "Billed and debited", "data": billed, "backgroundColor": "#0b4f8a"},
            {"label": "Paid and credited", "data": collected, "backgroundColor": "#2da44e"},
        ],
        "Receivables: debits and credits by day",
    )


@require_GET
@page("invoicing.view_books")
def books_journal(request: HttpRequest) -> HttpResponse:
    today = timezone.localdate()
    form = RangeForm(request.GET or {"first": today.replace(day=1), "last": today})
    values = {"form": form, "journal": None}
    if form.is_valid():
        first, last = form.cleaned_data["first"], form.cleaned_data["last"]
        with refusals_into(form, fields={"from": "first", "to": "last"}):
            provider = books.books_provider_for(user=request.user, code=request.GET.get("provider"))
            journal = books.journal_for(provider=provider, first=first, last=last)
            query = {"from": first, "to": last}
            if request.GET.get("provider"):
                query["provider"] = provider.code
            values |= {
                "journal": journal,
                "chart": _daily_chart(journal),
                "csv_query": urlencode(query),
                "tax_query": urlencode({**query, "year": last.year}),
                "tax_year": last.year,
            }
    return form_page(request, "invoicing/books.html", values, form=form)
