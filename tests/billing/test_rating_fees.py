"""One-off charges on a rated bill (`with_fees`): their own lines, in the current charges, never taxed;
a credit the bill would carry to the next one pays for them first."""

from decimal import Decimal

from billing.rating import Line, Schedule, Tariff, Tax, Usage, rate_usage, settle, with_fees

D = Decimal
FEE = Line("fee", "Reconnection fee", D("500.00"), "reconnection_fee", 7)
SCHEDULE = Schedule(tariffs=(Tariff(rate=D("10")),), taxes=(Tax("GST", D("0.17")),))
USAGE = Usage(days=D(30), units={"all": D(100)}, total_import=D(100))


def test_a_fee_is_its_own_line_counted_in_the_current_charges_and_not_taxed():
    bill = with_fees(rate_usage(USAGE, SCHEDULE, arrears=D("40.00")), [FEE], late_surcharge_percent=D("10"))

    assert [(line.kind, line.amount) for line in bill.lines] == [
        ("energy", D("1000.00")),
        ("tax", D("170.00")),
        ("fee", D("500.00")),
    ]
    assert (bill.taxes, bill.current_charges, bill.payable_before_due, bill.late_surcharge) == (
        D("170.00"),
        D("1670.00"),
        D("1710.00"),
        D("167.00"),
    )


def test_a_credit_carried_pays_for_the_fee_first():
    credited = settle(rate_usage(USAGE, SCHEDULE), credit=D("1370.00"), credit_from="P-2024-000001")
    assert (credited.current_charges, credited.credit_carried) == (D("0.00"), D("200.00"))

    bill = with_fees(credited, [FEE], late_surcharge_percent=D("10"))

    assert (bill.current_charges, bill.credit_carried, bill.late_surcharge) == (
        D("300.00"),
        D("0.00"),
        D("30.00"),
    )
    assert [line.kind for line in bill.lines] == ["energy", "tax", "credit", "fee"]
    assert "creditCarried" not in bill.trace


def test_a_credit_larger_than_the_fee_is_carried_on_less_the_fee():
    credited = settle(rate_usage(USAGE, SCHEDULE), credit=D("1770.00"), credit_from="P-2024-000001")

    bill = with_fees(credited, [FEE])

    assert (bill.current_charges, bill.credit_carried, bill.trace["creditCarried"]) == (
        D("0.00"),
        D("100.00"),
        D("100.00"),
    )
    assert [(line.kind, line.amount) for line in bill.lines][-2:] == [
        ("fee", D("500.00")),
        ("carried", D("100.00")),
    ]
