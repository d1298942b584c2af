"""Inventory rules: inboxes per domain, reputation isolation, refresh at 12 and 18 months."""

from collections.abc import Iterable
from datetime import date, timedelta

from hypothesis import given
from hypothesis import strategies as st

from mailfleet.deliverability import (
    DomainRow,
    InventoryPolicy,
    InventoryWarning,
    MailboxRow,
    Severity,
    evaluate_inventory,
)
from mailfleet.deliverability.inventory import add_months, age_warning, months_between

TODAY = date(2026, 11, 27)
POLICY = InventoryPolicy(primary_domain="brand.com", primary_tenant="brandcorp")


def box(address: str, started: date = TODAY, tenant: str | None = "coldtenant") -> MailboxRow:
    return MailboxRow(address, address.rpartition("@")[2], "microsoft365", tenant, started)


def rules(inventory_warnings: Iterable[InventoryWarning]) -> list[tuple[str, str]]:
    return [(w.rule, w.subject) for w in inventory_warnings]


def test_a_clean_fleet_has_no_warnings() -> None:
    domains = [DomainRow("brand-mail.com", "microsoft365", "coldtenant")]
    boxes = [box("a@brand-mail.com"), box("b@brand-mail.com", TODAY - timedelta(days=200))]
    inventory = evaluate_inventory(domains, boxes, POLICY, TODAY)
    assert inventory.warnings == ()
    line = inventory.domains[0]
    assert [m.row.address for m in line.mailboxes] == ["a@brand-mail.com", "b@brand-mail.com"]
    assert (line.mailboxes[1].age_days, line.mailboxes[1].age_months) == (200, 6)


def test_more_than_three_inboxes_on_a_domain() -> None:
    boxes = [box(f"{n}@brand-mail.com") for n in "abcd"]
    inventory = evaluate_inventory(
        [DomainRow("brand-mail.com", "microsoft365")], boxes, POLICY, TODAY
    )
    assert rules(inventory.warnings) == [("inboxes-per-domain", "brand-mail.com")]
    assert "carries 4 inboxes (more than 3)" in inventory.warnings[0].message
    three = evaluate_inventory([], boxes[:3], POLICY, TODAY)
    assert three.warnings == ()
    assert three.domains[0].row.name == "brand-mail.com"  # a domain known only from mailboxes


def test_sending_from_the_primary_domain_or_a_subdomain_of_it() -> None:
    domains = [DomainRow("Brand.com", "microsoft365"), DomainRow("mail.brand.com", "google")]
    inventory = evaluate_inventory(domains, [], POLICY, TODAY)
    assert rules(inventory.warnings) == [
        ("primary-domain", "brand.com"),
        ("primary-domain", "mail.brand.com"),
    ]
    assert all(w.severity is Severity.ERROR for w in inventory.warnings)
    lookalike = evaluate_inventory([DomainRow("notbrand.com", "google")], [], POLICY, TODAY)
    assert lookalike.warnings == ()


def test_a_mailbox_in_the_primary_tenant() -> None:
    boxes = [box("a@brand-mail.com", tenant="BrandCorp.onmicrosoft.com")]
    inventory = evaluate_inventory([], boxes, POLICY, TODAY)
    assert rules(inventory.warnings) == [("primary-tenant", "a@brand-mail.com")]
    unset = evaluate_inventory([], boxes, InventoryPolicy(), TODAY)
    assert unset.warnings == ()


def test_refresh_due_at_twelve_months_and_overdue_at_eighteen() -> None:
    due_day = date(2025, 11, 27)
    assert age_warning(box("a@x.com", due_day + timedelta(days=1)), POLICY, TODAY) is None
    due = age_warning(box("a@x.com", due_day), POLICY, TODAY)
    assert due is not None and (due.rule, due.severity) == ("refresh-due", Severity.WARNING)
    assert "12 months old" in due.message
    overdue = age_warning(box("a@x.com", date(2025, 5, 27)), POLICY, TODAY)
    assert overdue is not None and overdue.rule == "refresh-overdue"
    assert overdue.severity is Severity.ERROR


def test_month_arithmetic_clips_to_the_month_end() -> None:
    assert add_months(date(2025, 8, 31), 6) == date(2026, 2, 28)
    assert months_between(date(2025, 8, 31), date(2026, 2, 27)) == 5
    assert months_between(date(2025, 8, 31), date(2026, 2, 28)) == 6
    assert months_between(TODAY, TODAY - timedelta(days=3)) == 0


@given(
    started=st.dates(min_value=date(2015, 1, 1), max_value=date(2030, 12, 31)),
    days=st.integers(min_value=0, max_value=1200),
)
def test_age_thresholds_follow_the_calendar(started: date, days: int) -> None:
    today = started + timedelta(days=days)
    warning = age_warning(box("a@x.com", started), POLICY, today)
    months = months_between(started, today)
    assert add_months(started, months) <= today < add_months(started, months + 1)
    if months < 12:
        assert warning is None
    elif months < 18:
        assert warning is not None and warning.rule == "refresh-due"
    else:
        assert warning is not None and warning.rule == "refresh-overdue"
