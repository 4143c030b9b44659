"""POST /api/payment-files, GET /api/payment-files/{id} and its results.csv: the edge's checks, who
may, another provider's files invisible; and POST /api/payments answering 409 for a reference posted."""

import csv
import io
from datetime import date
from decimal import Decimal

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile

from accounts.roles import Role
from invoicing import payment_files_api, services
from invoicing.models import Payment, PaymentFile
from tests.factories import PaymentFileFormatFactory, UserFactory
from tests.invoicing.bank_files import bank_csv

pytestmark = pytest.mark.django_db


@pytest.fixture
def january(connection, creator):
    return services.invoice_issue(connection=connection, period=date(2024, 1, 1), created_by=creator)


@pytest.fixture
def bank(flat_provider, cash):
    return PaymentFileFormatFactory(provider=flat_provider, name="HBL collections", default_method=cash)


@pytest.fixture
def send(django_capture_on_commit_callbacks, mailbox):
    """POST a file (its chunks posted once the request commits, eagerly)."""

    def sent(api, content: bytes, file_format, name: str = "hbl-2024-02-05.csv"):
        with django_capture_on_commit_callbacks(execute=True):
            return api.post(
                "/api/payment-files",
                {"file": SimpleUploadedFile(name, content, "text/csv"), "format": str(file_format)},
                format="multipart",
            )

    return sent


def results(api, file_id: int, query: str = "") -> list[list[str]]:
    response = api.get(f"/api/payment-files/{file_id}/results.csv{query}")
    assert response.status_code == 200
    assert response["Content-Type"] == "text/csv"
    return list(csv.reader(io.StringIO(b"".join(response.streaming_content).decode())))


def test_an_officer_uploads_a_file_and_downloads_its_results(as_role, super_creator, send, bank, january):
    api = as_role(super_creator, Role.SUPER_CREATOR)
    content = bank_csv(
        (january.number, "", "4000.00", "2024-02-05", "", "HBL-1"),
        (january.number, "", "4000.00", "2024-02-05", "", "HBL-1"),
        ("NOPE", "", "1.00", "2024-02-05", "", "=HYPERLINK(1)"),
    )

    response = send(api, content, bank.pk)

    assert response.status_code == 202, response.json()
    body = api.get(f"/api/payment-files/{response.json()['fileId']}").json()  # once its rows were posted
    assert {key: body[key] for key in ("name", "format", "status", "total", "done", "percent")} == {
        "name": "hbl-2024-02-05.csv",
        "format": "HBL collections",
        "status": "completed",
        "total": 3,
        "done": 3,
        "percent": 100,
    }
    assert (body["posted"], body["duplicates"], body["refused"], body["postedAmount"]) == (1, 1, 1, "4000.00")
    receipt = Payment.objects.get().receipt_number
    assert results(api, body["fileId"]) == [
        [
            "line", "bill number", "connection number", "amount", "date", "method", "bank reference", "outcome",
            "receipt number", "reason",
        ],
        ["2", january.number, "", "4000.00", "2024-02-05", "bank-counter", "HBL-1", "posted", receipt, ""],
        [
            "3", january.number, "", "4000.00", "2024-02-05", "bank-counter", "HBL-1", "duplicate", receipt,
            f"Reference HBL-1 was posted already, as receipt {receipt}.",
        ],
        [
            "4", "NOPE", "", "1.00", "2024-02-05", "bank-counter", "'=HYPERLINK(1)", "refused", "",
            "No bill NOPE among the bills you may take payments on.",
        ],
        [],
        ["totals", "rows", "amount posted"],
        ["posted", "1", "4000.00"],
        ["duplicate", "1", ""],
        ["refused", "1", ""],
        ["not posted yet", "0", ""],
        ["all", "3", ""],
    ]  # fmt: skip
    assert [row[0] for row in results(api, body["fileId"], "?outcome=refused")[1:2]] == ["4"]
    assert api.get(f"/api/payment-files/{body['fileId']}/results.csv?outcome=lost").status_code == 400


def test_the_format_may_be_named_and_the_formats_are_listed(as_role, super_creator, send, bank, january):
    api = as_role(super_creator, Role.SUPER_CREATOR)

    response = send(api, bank_csv((january.number, "", "1.00", "2024-02-05", "", "N-1")), "HBL collections")

    assert response.status_code == 202
    assert api.get("/api/payment-file-formats").json() == [
        {
            "formatId": bank.pk,
            "name": "HBL collections",
            "columns": {
                "bill_number": "Bill No",
                "connection_number": "Consumer No",
                "amount": "Amount",
                "date": "Paid On",
                "method": "Channel",
                "reference": "Txn Ref",
            },
            "dateFormat": "%Y-%m-%d",
            "decimalComma": False,
            "delimiter": ",",
            "defaultMethod": "bank-counter",
        }
    ]


def test_a_missing_mapped_column_is_a_400_naming_it(as_role, super_creator, send, bank):
    content = bank_csv(("X", "1.00", "2024-02-05", "T-1"), header=("Bill No", "Amount", "Paid On", "Txn Ref"))

    response = send(as_role(super_creator, Role.SUPER_CREATOR), content, bank.pk)

    assert response.status_code == 400
    assert response.json()["detail"].startswith(
        "The file has no column 'Consumer No' (the connection number, as HBL collections's format says)."
    )
    assert response.json()["extra"] == {"column": "Consumer No"}
    assert response.json()["fields"]["file"]
    assert PaymentFile.objects.count() == 0


def test_a_file_not_in_utf8_is_a_400(as_role, super_creator, send, bank):
    content = "Bill No,Consumer No,Amount,Paid On,Channel,Txn Ref\r\nBÜ,,1,2024-02-05,,T\r\n".encode(
        "latin-1"
    )

    response = send(as_role(super_creator, Role.SUPER_CREATOR), content, bank.pk)

    assert response.status_code == 400
    assert response.json()["detail"] == "The file is not UTF-8 text (line 2); save it as CSV UTF-8."


def test_a_file_over_the_limit_is_a_413_and_nothing_is_stored(
    as_role, super_creator, send, bank, monkeypatch
):
    monkeypatch.setattr(payment_files_api, "MAX_FILE_BYTES", 2**20)

    response = send(as_role(super_creator, Role.SUPER_CREATOR), b"x" * (2**20 + 1), bank.pk)

    assert response.status_code == 413
    assert response.json()["code"] == "payment_file_too_large"
    assert PaymentFile.objects.count() == 0


def test_no_file_and_an_unknown_or_foreign_format_are_400s(as_role, super_creator, bank, other_provider):
    api = as_role(super_creator, Role.SUPER_CREATOR)
    foreign = PaymentFileFormatFactory(provider=other_provider)

    no_file = api.post("/api/payment-files", {"format": str(bank.pk)}, format="multipart")
    unknown = api.post(
        "/api/payment-files",
        {"file": SimpleUploadedFile("a.csv", bank_csv()), "format": str(foreign.pk)},
        format="multipart",
    )

    assert (no_file.status_code, no_file.json()["fields"]) == (
        400,
        {"file": ["Attach the bank's CSV file in the field 'file'."]},
    )
    assert unknown.status_code == 400
    assert (
        unknown.json()["detail"]
        == f"No file format '{foreign.pk}'; the formats are: {bank.pk} (HBL collections)."
    )


def test_another_providers_file_is_not_found(as_role, super_creator, send, bank, january, other_provider):
    uploaded = send(as_role(super_creator, Role.SUPER_CREATOR), bank_csv(), bank.pk)
    assert uploaded.status_code == 400  # no rows: nothing stored
    file_id = send(
        as_role(super_creator, Role.SUPER_CREATOR),
        bank_csv((january.number, "", "1.00", "2024-02-05", "", "I-1")),
        bank.pk,
    ).json()["fileId"]
    stranger = as_role(UserFactory(provider=other_provider, roles=[Role.SUPER_CREATOR]), Role.SUPER_CREATOR)

    assert stranger.get(f"/api/payment-files/{file_id}").status_code == 404
    assert stranger.get(f"/api/payment-files/{file_id}/results.csv").status_code == 404
    assert stranger.get("/api/payment-files").json()["results"] == []


def test_a_clerk_reads_their_own_files_only_and_an_auditor_reads_but_never_uploads(
    as_role, super_creator, creator, send, bank, january, flat_provider
):
    by_officer = send(
        as_role(super_creator, Role.SUPER_CREATOR),
        bank_csv((january.number, "", "1.00", "2024-02-05", "", "W-1")),
        bank.pk,
    ).json()["fileId"]
    clerk = as_role(creator, Role.INVOICE_CREATOR)
    by_clerk = send(clerk, bank_csv((january.number, "", "1.00", "2024-02-05", "", "W-2")), bank.pk)
    auditor = as_role(UserFactory(provider=flat_provider, roles=[Role.AUDITOR]), Role.AUDITOR)
    customer = as_role(january.customer.user, Role.CUSTOMER)

    assert by_clerk.status_code == 202
    assert clerk.get(f"/api/payment-files/{by_clerk.json()['fileId']}").json()["posted"] == 1  # their bill
    assert clerk.get(f"/api/payment-files/{by_officer}").status_code == 404
    assert [row["fileId"] for row in clerk.get("/api/payment-files").json()["results"]] == [
        by_clerk.json()["fileId"]
    ]
    assert auditor.get(f"/api/payment-files/{by_officer}").status_code == 200
    assert send(auditor, bank_csv(), bank.pk).status_code == 403
    assert customer.get(f"/api/payment-files/{by_officer}").status_code == 403


def test_a_reference_posted_before_is_a_409_and_a_replay_of_its_key_still_returns_it(
    as_role, super_creator, january
):
    api = as_role(super_creator, Role.SUPER_CREATOR)
    body = {"billId": january.pk, "amount": "100.00", "method": "bank-counter", "reference": "IBFT-77"}

    first = api.post("/api/payments", body, format="json", HTTP_IDEMPOTENCY_KEY="k-1")
    replay = api.post("/api/payments", body, format="json", HTTP_IDEMPOTENCY_KEY="k-1")
    again = api.post("/api/payments", body, format="json", HTTP_IDEMPOTENCY_KEY="k-2")
    unkeyed = api.post("/api/payments", {**body, "amount": "5.00"}, format="json")

    assert first.status_code == 201
    assert (replay.status_code, replay.json()["paymentId"]) == (200, first.json()["paymentId"])
    receipt = first.json()["receiptNumber"]
    for refused in (again, unkeyed):
        assert refused.status_code == 409
        assert refused.json() == {
            "detail": f"Reference IBFT-77 was posted already, as receipt {receipt}; a bank's transaction is taken once.",
            "code": "reference_posted",
            "fields": {"reference": [refused.json()["detail"]]},
            "extra": {"receiptNumber": receipt, "paymentId": first.json()["paymentId"]},
        }
    assert Payment.objects.get().amount == Decimal("100.00")
