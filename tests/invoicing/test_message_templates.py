"""Every kind of e-mail is written in English and in Urdu: a one-line subject, a text part and an HTML
part that reads left to right or right to left, and the bill's or receipt's PDF where it carries one."""

from datetime import UTC, date, datetime
from decimal import Decimal

import pytest

from accounts.messaging import content_of
from accounts.models import Message, MessageKind
from invoicing.models import DunningAction, DunningStep
from invoicing.services import (
    dunning_level_create,
    dunning_run,
    invoice_issue,
    invoices_mark_overdue,
    payment_post,
    payment_reverse,
)

pytestmark = pytest.mark.django_db

DIRECTION = {"en": 'lang="en" dir="ltr"', "ur": 'lang="ur" dir="rtl"'}
GREETING = {"en": "Dear ", "ur": "السلام علیکم "}


@pytest.fixture
def about(connection, creator, super_creator, cash, time_machine):
    """A row for each kind: the login, an overdue bill (surcharged), a payment on it, a second payment,
    reversed, and a dunning step."""
    time_machine.move_to(datetime(2024, 2, 11, 9, tzinfo=UTC), tick=False)
    invoice = invoice_issue(connection=connection, period=date(2024, 1, 1), created_by=creator)
    invoices_mark_overdue(provider=connection.provider)
    payment, _ = payment_post(
        invoice=invoice, amount=Decimal("500.00"), method=cash, received_by=super_creator
    )
    bounced, _ = payment_post(
        invoice=invoice, amount=Decimal("200.00"), method=cash, received_by=super_creator, reference="CHQ-1"
    )
    reversal, _ = payment_reverse(
        payment=bounced, kind="bounced", reason="Returned", reversed_by=super_creator
    )
    dunning_level_create(
        provider=connection.provider,
        days_after_due=1,
        action=DunningAction.REMINDER,
        created_by=super_creator,
    )
    dunning_run(provider=connection.provider)
    step = ("invoicing.dunningstep", DunningStep.objects.get().pk)
    user = connection.customer.user
    return {
        MessageKind.INVITATION: ("accounts.user", user.pk),
        MessageKind.PASSWORD_RESET: ("accounts.user", user.pk),
        MessageKind.BILL_ISSUED: ("invoicing.invoice", invoice.pk),
        MessageKind.BILL_DUE_SOON: ("invoicing.invoice", invoice.pk),
        MessageKind.BILL_OVERDUE: ("invoicing.invoice", invoice.pk),
        MessageKind.PAYMENT_RECEIVED: ("invoicing.payment", payment.pk),
        MessageKind.PAYMENT_REVERSED: ("invoicing.paymentreversal", reversal.pk),
        MessageKind.DUNNING_REMINDER: step,
        MessageKind.FINAL_NOTICE: step,
        MessageKind.DISCONNECTION_NOTICE: step,
    }


# the bill's PDF, the receipt's, the reversal receipt's
ATTACHED = {MessageKind.BILL_ISSUED, MessageKind.PAYMENT_RECEIVED, MessageKind.PAYMENT_REVERSED}


@pytest.mark.parametrize("language", ["en", "ur"])
@pytest.mark.parametrize("kind", MessageKind.values)
def test_every_kind_is_written_in_each_language(about, kind, language):
    about_type, about_id = about[kind]
    message = Message(
        kind=kind, language=language, about_type=about_type, about_id=about_id, recipient="a@b.example"
    )

    content = content_of(message)

    assert content.subject and "\n" not in content.subject
    assert content.text.strip().startswith(GREETING[language])
    assert f"<html {DIRECTION[language]}>" in content.html
    assert "{{" not in content.text + content.html  # nothing left unrendered
    attached = [(attachment.mimetype, attachment.content[:5]) for attachment in content.attachments]
    assert attached == ([("application/pdf", b"%PDF-")] if kind in ATTACHED else [])
