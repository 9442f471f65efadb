"""to_e164 is cached (bench/ measured it on the hot path): repeated calls answer exactly as the first."""

from __future__ import annotations

import pytest

from webcallback.numbers import InvalidNumber, to_e164


@pytest.mark.parametrize(
    ("raw", "region", "expected"),
    [
        ("+1 (555) 123-1234", None, "+15551231234"),
        ("(650) 253-0000", "US", "+16502530000"),
        ("0044 20 7946 0018", "US", "+442079460018"),
        ("06 12 34 56 78", "FR", "+33612345678"),
    ],
)
def test_repeated_calls_give_the_same_number(raw: str, region: str | None, expected: str) -> None:
    assert [to_e164(raw, region) for _ in range(3)] == [expected] * 3


def test_errors_are_raised_every_time_with_their_own_wording() -> None:
    for what in ("destination number", "callback number", "destination number"):
        with pytest.raises(InvalidNumber, match=f"The {what} is not a valid phone number"):
            to_e164("12", "US", what=what)


def test_same_digits_in_other_regions_are_not_mixed_up() -> None:
    assert to_e164("020 7946 0018", "GB") == "+442079460018"
    with pytest.raises(InvalidNumber):
        to_e164("020 7946 0018", "US")
