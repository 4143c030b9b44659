"""Bills and receipts as PDF: Django templates (`templates/invoicing/pdf/`) rendered by WeasyPrint.

The bill follows the layout a customer of a Pakistani distribution company already knows from the
paper bill: the company's header; the customer and connection block; reference (bill) number,
billing month, issue and due dates; units used, peak and off-peak; the charges line by line (energy
per slab, taxes such as GST and Electricity Duty, fixed charges such as Meter Rent and TV Fee,
subsidies subtracted); current charges, arrears, and the "Payable within due date" and "Payable
after due date" boxes; and the bill history of the previous months with their payment status.
Below it, a short "how this bill was worked out" from the invoice's trace (billing days, units per
bucket, average kWh per hour, the slab and rate), so a customer can check the bill by hand.

Receipts print what was stored when the money moved (payable before and after, the officer's name
and designation as they were), never figures worked out again now.

Everything printed comes from the documents themselves: the invoice's snapshots of customer and
provider, its lines and trace. Only the rates of the tax and subsidy rows its lines name are looked
up (dated rows are never edited, so they are the rates the bill used).

Rendering fetches nothing from the network: no external stylesheet, image or font is referenced
(fonts are the system's DejaVu), and the URL fetcher refuses every scheme but `data:` and `file:`.
"""

from dataclasses import dataclass, field
from datetime import date, datetime
from decimal import Decimal
from fractions import Fraction
from typing import TYPE_CHECKING, Any

from django.conf import settings
from django.template.loader import render_to_string
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from billing.months import parse_month
from billing.rating import GRADUATED, SUBTRACTED
from invoicing.models import (
    Adjustment,
    AdjustmentDirection,
    AdjustmentKind,
    CreditNote,
    CreditRefund,
    Invoice,
    InvoiceLine,
    InvoiceStatus,
    Payment,
    PaymentReversal,
)
from invoicing.selectors import bill_credits
from invoicing.services.issue import provider_snapshot
from providers.models import Subsidy, TaxRule

if TYPE_CHECKING:
    from weasyprint.urls import URLFetcher

HOURS_PER_DAY = Decimal(24)
HUNDRED = Decimal(100)
BUCKET_NAMES = {"peak": "Peak hours", "off_peak": "Off-peak hours", "all": "All hours"}
# The sample price schedule writes an open slab as this high bound; printed as "and above".
OPEN_BAND = Decimal("999999")
SECTIONS = (
    ("energy", _("Energy charges"), _("Total energy charges")),
    ("tax", _("Taxes and duties"), _("Total taxes and duties")),
    ("fixed", _("Fixed charges"), _("Total fixed charges")),
    ("fee", _("Other charges"), _("Total other charges")),  # one-off: a reconnection fee
    ("subsidy", _("Subsidies (subtracted)"), _("Total subsidies")),
    ("estimate", _("Charged on estimates, taken back by this reading"), _("Total taken back")),
    ("credit", _("Credit from your previous bill"), _("Total credit")),
    ("carried", _("Credit carried to your next bill (this bill cannot be below zero)"), _("Total carried")),
)


def local_fetcher() -> "URLFetcher":
    """Resources from the page itself (`data:`) or the project's files; any other scheme is refused,
    so a stray http(s) link in a template is left out instead of fetched."""
    from weasyprint.urls import URLFetcher

    return URLFetcher(allowed_protocols=("data", "file"))


def _pdf(template: str, context: dict[str, Any]) -> bytes:
    # Imported on the first document: WeasyPrint (with Pango through cffi) is a third of a process's
    # memory, and the billing run's workers, the web's API and the beat never render a PDF.
    import weasyprint

    currency = context["provider"].get("currency") or settings.DEFAULT_CURRENCY
    html = render_to_string(template, {**context, "currency": currency, "generated_at": timezone.now()})
    document = weasyprint.HTML(string=html, base_url=str(settings.BASE_DIR), url_fetcher=local_fetcher())
    return document.write_pdf()


# --- the bill ------------------------------------------------------------------------------------


@dataclass
class Section:
    title: str
    total_label: str
    lines: list[dict[str, Any]] = field(default_factory=list)
    total: Decimal = Decimal("0.00")


def bill_sections(lines: list[InvoiceLine]) -> list[Section]:
    """The lines grouped as the bill prints them; what is subtracted (subsidies, estimates taken back,
    a credit brought) carries a minus sign."""
    sections = []
    for kind, title, total_label in SECTIONS:
        section = Section(title, total_label)
        for line in lines:
            if line.kind == kind:
                amount = -line.amount if kind in SUBTRACTED else line.amount
                section.lines.append({"label": line.label, "amount": amount})
                section.total += amount
        if section.lines:
            sections.append(section)
    return sections


def _decimal(value: Any) -> Decimal | None:
    return None if value is None else Decimal(str(value))


def _open_high(value: Any) -> Decimal | None:
    high = _decimal(value)
    return None if high is None or high >= OPEN_BAND else high


def _parts(trace: dict) -> list[dict[str, Any]]:
    """A period split by a change of connection type or of prices: each part's days, share, type (a
    type change's) and figures."""
    return [
        {
            "from": date.fromisoformat(part["from"]),
            "to": date.fromisoformat(part["to"]),
            "type": part.get("type", ""),
            "calendar_days": part["calendarDays"],
            "share": part["share"],
            "days": _decimal(part["billingDays"]),
            "units": [
                (BUCKET_NAMES.get(bucket, bucket).lower(), _decimal(value))
                for bucket, value in part["units"].items()
            ],
            "total_import": _decimal(part["totalImport"]),
            "energy": _decimal(part["energy"]),
            "tax_lines": part.get("taxLines", 0),
        }
        for part in trace.get("parts", [])
    ]


def _part_of(step: dict, parts: list[dict[str, Any]]) -> dict[str, Any] | None:
    index = step.get("part")
    return parts[index] if index is not None and index < len(parts) else None


def _energy_steps(
    trace: dict, days: Decimal | None, lines: list[InvoiceLine], parts: list[dict[str, Any]]
) -> list[dict[str, Any]]:
    energy_lines = [line for line in lines if line.kind == "energy"]
    steps = []
    for index, step in enumerate(trace.get("energy", [])):
        line = energy_lines[index] if index < len(energy_lines) else None
        units = _decimal(step.get("units")) or Decimal(0)
        part = _part_of(step, parts)
        if part is not None:  # a part of a split period: its own days
            days = part["days"]
        shown = {
            "part": part,
            # A split by prices chooses the slab once, by the whole period's average.
            "period_average": trace.get("split") == "prices",
            "name": BUCKET_NAMES.get(step.get("bucket"), step.get("bucket")),
            "units": units,
            "amount": line.amount if line else None,
            "graduated": step.get("mode") == GRADUATED,
        }
        if shown["graduated"]:
            shown["blocks"] = [
                {
                    "slab": block["slab"],
                    "units": _decimal(block["units"]),
                    "rate": _decimal(block["rate"]),
                    "amount": _decimal(block["units"]) * _decimal(block["rate"]),
                }
                for block in step.get("blocks", [])
            ]
            shown["min_amount"] = _decimal(step.get("minAmount"))
        else:
            min_units = _decimal(step.get("minUnits")) or Decimal(0)
            shown.update(
                hours=days * HOURS_PER_DAY if days is not None else None,
                average=_decimal(step.get("averagePerHour")),
                slab=step.get("slab"),
                band_low=_decimal(step.get("bandLow")),
                band_high=_open_high(step.get("bandHigh")),
                rate=_decimal(step.get("rate")),
                min_units=min_units,
                min_amount=_decimal(step.get("minAmount")) or Decimal(0),
                above_minimum=max(units - min_units, Decimal(0)),
                minimum_applied=bool(step.get("minimumApplied")),
            )
        steps.append(shown)
    return steps


def _meters(trace: dict) -> list[dict[str, Any]]:
    """Each meter's part of a period across a meter exchange: its readings and units per register."""
    return [
        {
            "meter": part.get("meter") or "",
            "from": datetime.fromisoformat(part["from"]),
            "to": datetime.fromisoformat(part["to"]),
            **{
                side: {name: _decimal(value) for name, value in part.get(side, {}).items()}
                for side in ("opening", "closing", "units")
            },
        }
        for part in trace.get("meters", [])
    ]


def _moment(value: str | None) -> datetime | None:
    return None if value is None else datetime.fromisoformat(value)


def _registers(values: dict | None) -> dict[str, Decimal | None]:
    return {name: _decimal(value) for name, value in (values or {}).items()}


def _estimate(trace: dict) -> dict[str, Any] | None:
    """How an estimated bill's units were reached: the basis, its periods, the daily averages."""
    estimate = trace.get("estimate")
    if not estimate:
        return None
    return {
        "from": _moment(estimate["from"]),
        "to": _moment(estimate["to"]),
        "days": _decimal(estimate["days"]),
        "basis": estimate["basis"],
        "periods": [
            {
                "from": _moment(period["from"]),
                "to": _moment(period["to"]),
                "days": _decimal(period["days"]),
                "units": _registers(period["units"]),
            }
            for period in estimate["periods"]
        ],
        "daily": _registers(estimate["dailyAverage"]),
        "units": _registers(estimate["units"]),
        "opening": _registers(estimate.get("opening")),
        "closing": _registers(estimate.get("closing")),
    }


def _true_up(trace: dict) -> dict[str, Any] | None:
    """A true-up: the span since the last actual reading, and what each estimate since charged."""
    true_up = trace.get("trueUp")
    if not true_up:
        return None
    span = trace.get("span", {})
    return {
        "from": _moment(span.get("from")),
        "to": _moment(span.get("to")),
        "estimates": [
            {
                "number": row["number"],
                "period": parse_month(row["period"]),
                **{name: _decimal(row[name]) for name in ("energy", "taxes", "subsidies", "charged")},
            }
            for row in true_up["estimates"]
        ],
        "taken_back": _decimal(true_up["takenBack"]),
        "usage_charges": _decimal(true_up["usageCharges"]),
    }


def bill_explanation(invoice: Invoice, lines: list[InvoiceLine]) -> dict[str, Any] | None:
    """The trace's figures, ready to be put into words; None for a bill issued without a trace."""
    trace = invoice.trace or {}
    if not trace.get("energy"):
        return None
    days = _decimal(trace.get("billingDays"))
    tax_rates = dict(
        TaxRule.objects.filter(pk__in=[line.row_id for line in lines if line.kind == "tax"]).values_list(
            "pk", "rate"
        )
    )
    subsidy_rows = {
        row["code"]: row
        for row in Subsidy.objects.filter(
            pk__in=[line.row_id for line in lines if line.kind == "subsidy"]
        ).values("code", "rate_per_unit", "percent")
    }
    parts = _parts(trace)
    # Tax lines come part by part, each part's on its own energy; subsidy lines follow the tests that
    # applied, in order.
    tax_bases = [part["energy"] for part in parts for _ in range(part["tax_lines"])]
    taxes = [
        {
            "label": line.label,
            "amount": line.amount,
            "percent": tax_rates[line.row_id] * HUNDRED if line.row_id in tax_rates else None,
            "base": tax_bases[index] if index < len(tax_bases) else _decimal(trace.get("taxBase")),
        }
        for index, line in enumerate(line for line in lines if line.kind == "tax")
    ]
    subsidy_amounts = iter([line.amount for line in lines if line.kind == "subsidy"])
    subsidies = []
    for test in trace.get("subsidyTests", []):
        row = subsidy_rows.get(test.get("code"), {})
        part = _part_of(test, parts)
        subsidies.append(
            {
                "part": part,
                # In force in only some parts of a period split by prices: charged on their figures.
                "from": test.get("from") and date.fromisoformat(test["from"]),
                "to": test.get("to") and date.fromisoformat(test["to"]),
                "charged_import": _decimal(test.get("chargedImport")),
                "total_import": part["total_import"] if part else _decimal(trace.get("totalImport")),
                "hours": part["days"] * HOURS_PER_DAY if part else (days * HOURS_PER_DAY if days else None),
                "code": test.get("code"),
                "applies": bool(test.get("applies")),
                "by_income": "incomeCeiling" in test,
                "income": _decimal(test.get("income")),
                "income_ceiling": _decimal(test.get("incomeCeiling")),
                "import_per_hour": _decimal(test.get("importPerHour")),
                "band_low": _decimal(test.get("bandLow")),
                "band_high": _open_high(test.get("bandHigh")),
                "rate_per_unit": row.get("rate_per_unit"),
                "percent": row.get("percent"),
                "amount": next(subsidy_amounts, None) if test.get("applies") else None,
            }
        )
    return {
        "days": days,
        "hours": days * HOURS_PER_DAY if days is not None else None,
        "energy": _energy_steps(trace, days, lines, parts),
        "parts": parts,
        "split_by_prices": trace.get("split") == "prices",
        "slabs": [
            {"name": BUCKET_NAMES.get(row["bucket"], row["bucket"]).lower(), **row}
            for row in trace.get("slabs", [])
        ],
        "fixed_shares": [
            {
                "name": row["name"],
                "amount": _decimal(row["amount"]),
                "share": row["share"],
                "charged": _decimal(row["charged"]),
            }
            for row in trace.get("fixed", [])
            if Fraction(row["share"]) != 1  # in force in only some parts
        ],
        "tax_base": _decimal(trace.get("taxBase")),
        "taxes": taxes,
        "total_import": _decimal(trace.get("totalImport")),
        "subsidies": subsidies,
        "meters": _meters(trace),
        "estimate": _estimate(trace),
        "true_up": _true_up(trace),
        "credit_brought": trace.get("creditBrought")
        and {
            "from": trace["creditBrought"]["from"],
            "amount": _decimal(trace["creditBrought"]["amount"]),
        },
        "credit_carried": _decimal(trace.get("creditCarried")),
    }


def invoice_pdf(invoice: Invoice, history: list[Invoice]) -> bytes:
    """The bill as the customer receives it; `history` is the previous bills, newest first
    (`selectors.bill_get_for` attaches it)."""
    lines = sorted(invoice.lines.all(), key=lambda line: line.position)
    adjustments = sorted(invoice.adjustments.all(), key=lambda row: (row.created_at, row.pk))
    return _pdf(
        "invoicing/pdf/bill.html",
        {
            "invoice": invoice,
            "provider": invoice.provider_snapshot,
            "customer": invoice.customer_snapshot,
            "sections": bill_sections(lines),
            "explanation": bill_explanation(invoice, lines),
            "adjustments": adjustments,
            "history": history,
            **bill_credits(invoice),
        },
    )


# --- receipts ------------------------------------------------------------------------------------


def payment_receipt_pdf(payment: Payment) -> bytes:
    """What a payment was, and which bills it settled, oldest first."""
    invoice = payment.invoice
    allocations = list(payment.allocations.select_related("invoice").order_by("invoice__period", "pk"))
    return _pdf(
        "invoicing/pdf/payment_receipt.html",
        {
            "payment": payment,
            "invoice": invoice,
            "provider": invoice.provider_snapshot,
            "customer": invoice.customer_snapshot,
            "allocations": allocations,
        },
    )


def reversal_receipt_pdf(reversal: PaymentReversal) -> bytes:
    """A payment taken back: the payment, why, and the bills it reopened as the reversal left them."""
    payment = reversal.payment
    invoice = payment.invoice
    return _pdf(
        "invoicing/pdf/reversal_receipt.html",
        {
            "reversal": reversal,
            "payment": payment,
            "invoice": invoice,
            "provider": invoice.provider_snapshot,
            "customer": invoice.customer_snapshot,
            "reopened": reopened_bills(reversal),
        },
    )


def reopened_bills(reversal: PaymentReversal) -> list[dict[str, Any]]:
    """The bills a reversal reopened, as it stored them, with its amounts as decimals and its months
    as dates, for the pages and the PDF."""
    return [
        {
            **bill,
            "period": parse_month(bill["period"]),
            **{name: Decimal(bill[name]) for name in ("amount", "surcharge", "balance")},
            "status_label": InvoiceStatus(bill["status"]).label,
        }
        for bill in reversal.reopened
    ]


def adjustment_receipt_pdf(adjustment: Adjustment) -> bytes:
    """An officer's (or the overdue job's) correction of a bill's balance, and who authorised it."""
    invoice = adjustment.invoice
    return _pdf(
        "invoicing/pdf/adjustment_receipt.html",
        {
            "adjustment": adjustment,
            "invoice": invoice,
            "provider": invoice.provider_snapshot,
            "customer": invoice.customer_snapshot,
            "is_credit": adjustment.direction == AdjustmentDirection.CREDIT,
            "is_late_surcharge": adjustment.kind == AdjustmentKind.LATE_SURCHARGE,
        },
    )


def credit_note_pdf(note: CreditNote) -> bytes:
    """A credit note: what it credits on which bill, what went to the customer's credit balance, and
    who issued it."""
    invoice = note.invoice
    return _pdf(
        "invoicing/pdf/credit_note.html",
        {
            "note": note,
            "lines": sorted(note.lines.all(), key=lambda line: line.position),
            "invoice": invoice,
            "provider": invoice.provider_snapshot,
            "customer": invoice.customer_snapshot,
        },
    )


def refund_receipt_pdf(refund: CreditRefund) -> bytes:
    """A refund of a customer's credit balance: it belongs to no bill, so the customer and provider are
    printed as they are now."""
    customer = refund.customer
    return _pdf(
        "invoicing/pdf/refund_receipt.html",
        {
            "refund": refund,
            "provider": provider_snapshot(refund.provider),
            "customer": {
                "name": customer.name,
                "organisation": customer.organisation,
                "address": customer.address,
                "customerId": customer.number,
            },
        },
    )
