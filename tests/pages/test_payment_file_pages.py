"""The bank payment file pages: the upload form, the file list, a file's rows filtered; refusals at the
field; another provider's (or another clerk's) file is not found."""

from datetime import date

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile

from accounts.roles import Role
from invoicing import services
from invoicing.models import PaymentFile
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
def upload(django_capture_on_commit_callbacks, mailbox):
    def uploaded(client, content: bytes, file_format):
        with django_capture_on_commit_callbacks(execute=True):
            return client.post(
                "/payment-files",
                {"format": str(file_format.pk), "file": SimpleUploadedFile("hbl.csv", content, "text/csv")},
            )

    return uploaded


def test_a_clerk_uploads_a_file_and_filters_its_rows_by_outcome(signed_in, creator, upload, bank, january):
    clerk = signed_in(creator, Role.INVOICE_CREATOR)
    content = bank_csv(
        (january.number, "", "1000.00", "2024-02-05", "", "P-1"),
        ("NOPE", "", "1.00", "2024-02-05", "", "P-2"),
    )

    response = upload(clerk, content, bank)

    payment_file = PaymentFile.objects.get()
    assert response.status_code == 302
    assert response["Location"] == f"/payment-files/{payment_file.pk}"
    page = clerk.get(f"/payment-files/{payment_file.pk}").content.decode()
    assert 'data-testid="file-posted">1<' in page
    assert 'data-testid="file-refused">1<' in page
    assert 'data-testid="row-2"' in page and 'data-testid="row-3"' in page
    refused = clerk.get(f"/payment-files/{payment_file.pk}?outcome=refused").content.decode()
    assert "No bill NOPE among the bills you may take payments on." in refused
    assert 'data-testid="row-2"' not in refused
    found = clerk.get(f"/payment-files/{payment_file.pk}?search=P-1").content.decode()
    assert 'data-testid="row-2"' in found and 'data-testid="row-3"' not in found
    listed = clerk.get("/payment-files").content.decode()
    assert "hbl.csv" in listed and "HBL collections" in listed


def test_a_file_missing_a_column_comes_back_with_the_column_named_at_the_field(
    signed_in, super_creator, upload, bank
):
    officer = signed_in(super_creator, Role.SUPER_CREATOR)

    response = upload(officer, bank_csv(("X",), header=("Bill No",)), bank)

    assert response.status_code == 400
    assert "The file has no column &#x27;Consumer No&#x27;" in response.content.decode()
    assert PaymentFile.objects.count() == 0


def test_another_providers_and_another_clerks_files_are_not_found(
    signed_in, super_creator, creator, upload, bank, january, other_provider
):
    upload(
        signed_in(super_creator, Role.SUPER_CREATOR),
        bank_csv((january.number, "", "1", "2024-02-05", "", "Q")),
        bank,
    )
    payment_file = PaymentFile.objects.get()
    stranger = signed_in(UserFactory(provider=other_provider, roles=[Role.SUPER_CREATOR]), Role.SUPER_CREATOR)

    assert stranger.get(f"/payment-files/{payment_file.pk}").status_code == 404
    assert (
        signed_in(creator, Role.INVOICE_CREATOR).get(f"/payment-files/{payment_file.pk}").status_code == 404
    )
    assert "hbl.csv" not in stranger.get("/payment-files").content.decode()


def test_an_auditor_reads_the_files_without_an_upload_form(signed_in, flat_provider, bank):
    auditor = signed_in(UserFactory(provider=flat_provider, roles=[Role.AUDITOR]), Role.AUDITOR)

    page = auditor.get("/payment-files")

    assert page.status_code == 200
    assert "Upload a file" not in page.content.decode()
    assert auditor.post("/payment-files", {}).status_code == 403
    assert PaymentFile.objects.count() == 0
