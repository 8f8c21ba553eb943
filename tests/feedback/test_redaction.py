"""Redaction on realistic, messy customer text: what must go and what must stay."""

from __future__ import annotations

import pytest

from feedback.redaction import find_phone_numbers, redact


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("My card is 4111 1111 1111 1111, exp 12/27", "My card is [CARD], exp 12/27"),
        ("card: 4111-1111-1111-1111!!", "card: [CARD]!!"),
        ("dots too 5500.0000.0000.0004.", "dots too [CARD]."),
        ("amex 3782 822463 10005 pls", "amex [CARD] pls"),
        ("glued:card5500000000000004", "glued:card[CARD]"),
        ("4111 1111 1111 1111 1234 was the ref", "[CARD] 1234 was the ref"),
        ("(4111111111111111)", "([CARD])"),
    ],
)
def test_luhn_valid_card_numbers_are_redacted(text: str, expected: str) -> None:
    result = redact(text)
    assert result.text == expected
    assert result.counts == {"CARD": 1}


@pytest.mark.parametrize(
    "text",
    [
        "Card 4111 1111 1111 1112 was declined",  # Luhn-invalid 16 digits
        "1234 5678 9012 3456",
        "I paid $4,000.00 and then $1,250",
        "The 30-year fixed is 6.125% (APR 6.250%) with 0.5 points",
        "Order 12345 shipped on 2026-11-01",
        "due 11/01/2026 or 01.11.2026 or 2026.11.01 or 11-01-2026",
        "a 7/6 ARM for 12 months, FICO 760+, LTV 80%",
        "My account is 30 days overdue and my account balance is $4,000.00",
        "I have 2 more court dates and 3 credit cards",
        "It's 2 Dr visits a year",
        "SSN 078-05-1120 is the famous specimen number",  # invalid by SSA rules
        "NMLS #399801",
    ],
)
def test_near_misses_stay(text: str) -> None:
    assert redact(text).text == text
    assert redact(text).counts == {}


def test_account_and_routing_numbers_need_context() -> None:
    text = (
        "routing number 021000021, account number 12345678. "
        "Also acct # 0012-3456-789 and A/C: 987654321; Account Number: 9876-5432-10, "
        "account ending in 4321"
    )
    result = redact(text)
    assert result.text == (
        "routing number [ROUTING], account number [ACCOUNT]. "
        "Also acct # [ACCOUNT] and A/C: [ACCOUNT]; Account Number: [ACCOUNT], "
        "account ending in [ACCOUNT]"
    )
    assert result.counts == {"ACCOUNT": 5, "ROUTING": 1}


def test_routing_needs_a_valid_aba_checksum_and_nearby_context() -> None:
    assert redact("wire to 026009593 please").text == "wire to [ROUTING] please"
    assert redact("ABA: 0210 0002 1").text == "ABA: [ROUTING]"
    assert redact("routing 021000022").text == "routing 021000022"  # bad checksum
    # A valid checksum alone is not enough: no routing context.
    assert redact("ticket 021000021").text == "ticket 021000021"
    # The context belongs to the nearest number only.
    assert redact("ABA 011000015 and 021000021").counts == {"ROUTING": 1}


def test_uk_sort_code_is_routing() -> None:
    assert (
        redact("sort code 12-34-56 account 12345678").text
        == "sort code [ROUTING] account [ACCOUNT]"
    )


@pytest.mark.parametrize(
    "iban",
    [
        "GB82 WEST 1234 5698 7654 32",
        "GB82WEST12345698765432",
        "de89370400440532013000",
        "FR14 2004 1010 0505 0001 3M02 606",
        "NL91-ABNA-0417-1643-00",
    ],
)
def test_ibans_of_any_country_are_redacted(iban: str) -> None:
    result = redact(f"IBAN: {iban} please.")
    assert result.text == "IBAN: [IBAN] please."
    assert result.counts == {"IBAN": 1}


def test_iban_with_a_bad_check_digit_stays() -> None:
    assert redact("GB83 WEST 1234 5698 7654 32").counts.get("IBAN") is None


def test_iban_right_after_a_look_alike() -> None:
    result = redact("ref ab12 GB82 WEST 1234 5698 7654 32 thanks; DE89 3704 0044 0532 0130 00")
    assert result.text == "ref ab12 [IBAN] thanks; [IBAN]"


@pytest.mark.parametrize(
    "text",
    [
        "SSN 123-45-6789",
        "ssn: 123 45 6789",
        "my social security # is 123456789",
        "ITIN 912-70-1234",
        "NI number AB 12 34 56 C",
        "nino ab123456c",
        "SIN 130 692 544",
        "social insurance 130692544",
        "DNI 12345678Z",
        "NIE X1234567L",
        "codice fiscale RSSMRA85T10A562S",
    ],
)
def test_national_ids_are_redacted(text: str) -> None:
    result = redact(text)
    assert result.counts == {"NATIONAL_ID": 1}, result.text
    assert result.text.endswith("[NATIONAL_ID]")


def test_plain_nine_digits_without_context_are_not_national_ids() -> None:
    assert redact("ticket 123456789 closed").text == "ticket 123456789 closed"


def test_emails_in_any_case() -> None:
    result = redact("Email JOHN.DOE@EXAMPLE.COM or <jane_doe+bank@mail.co.uk>.")
    assert result.text == "Email [EMAIL] or <[EMAIL]>."
    assert result.counts == {"EMAIL": 2}


@pytest.mark.parametrize(
    "phone",
    [
        "+1 (800) 555-0142",
        "415.555.2671",
        "(212)555-0199",
        "1-800-555-0142",
        "020 7946 0958",
        "07911 123456",
        "+44 20 7946 0958",
        "0044 20 7946 0958",
        "+49 30 901820",
        "+33 1 42 68 53 00",
    ],
)
def test_phone_numbers_are_redacted(phone: str) -> None:
    result = redact(f"call me on {phone}, thanks")
    assert result.text == "call me on [PHONE], thanks"
    assert result.counts == {"PHONE": 1}


def test_allow_list_keeps_the_banks_published_numbers_in_any_format() -> None:
    text = "I called 1-800-555-0142 but please ring me back on 415-555-2671"
    result = redact(text, allow=["(800) 555-0142"])
    assert result.text == "I called 1-800-555-0142 but please ring me back on [PHONE]"
    assert redact(text).counts == {"PHONE": 2}


def test_find_phone_numbers_returns_e164() -> None:
    passage = "Call us on 1-800-555-0142 (US) or +44 20 7946 0958; rates 6.125%."
    assert find_phone_numbers(passage) == ["+18005550142", "+442079460958"]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("I live at 123 Main St Apt 4B, Springfield, IL 62704 now", "I live at [ADDRESS] now"),
        (
            "send it to 1600 Pennsylvania Ave NW, Washington, DC 20500 thanks",
            "send it to [ADDRESS] thanks",
        ),
        ("moved to 4500 n. oak park avenue.", "moved to [ADDRESS]"),
        ("55 W 47th St #12 new york ny 10036", "[ADDRESS]"),
        ("350 Fifth Avenue Suite 5300 New York, NY 10118.", "[ADDRESS]."),
        ("mail: P.O. Box 1234", "mail: [ADDRESS]"),
    ],
)
def test_us_street_addresses_are_redacted(text: str, expected: str) -> None:
    result = redact(text)
    assert result.text == expected
    assert result.counts == {"ADDRESS": 1}


def test_many_entities_on_one_messy_line() -> None:
    text = (
        "hi!! im JANE (jane.doe@Example.org / +1 415 555 2671), card 4111-1111-1111-1111 "
        "got charged $4,000.00 twice on 2026-11-01;acct#12345678, routing 021000021. "
        "I live @ 12 Elm St., Apt 3, Boston, MA 02118 & my ssn is 123-45-6789"
    )
    result = redact(text)
    assert result.text == (
        "hi!! im JANE ([EMAIL] / [PHONE]), card [CARD] "
        "got charged $4,000.00 twice on 2026-11-01;acct#[ACCOUNT], routing [ROUTING]. "
        "I live @ [ADDRESS] & my ssn is [NATIONAL_ID]"
    )
    assert result.counts == {
        "ACCOUNT": 1,
        "ADDRESS": 1,
        "CARD": 1,
        "EMAIL": 1,
        "NATIONAL_ID": 1,
        "PHONE": 1,
        "ROUTING": 1,
    }


def test_redaction_is_idempotent() -> None:
    once = redact("card 4111 1111 1111 1111, call +1 (800) 555-0142, jo@x.io, acct 12345678")
    twice = redact(once.text)
    assert twice.text == once.text
    assert twice.counts == {}


def test_empty_and_clean_text() -> None:
    assert redact("").text == ""
    assert redact("What is the rate on a 15-year mortgage?").counts == {}
