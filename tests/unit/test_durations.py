from datetime import timedelta

import pytest

from eks_jit.server.domain.durations import DurationFormatError, format_duration, parse_duration


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("90s", timedelta(seconds=90)),
        ("15m", timedelta(minutes=15)),
        ("1h", timedelta(hours=1)),
        ("1h30m", timedelta(minutes=90)),
        ("PT15M", timedelta(minutes=15)),
        ("pt1h", timedelta(hours=1)),
        ("P1DT2H", timedelta(days=1, hours=2)),
        (" 15m ", timedelta(minutes=15)),
        ("0s", timedelta(0)),
    ],
)
def test_accepted_forms(text: str, expected: timedelta) -> None:
    assert parse_duration(text) == expected


@pytest.mark.parametrize(
    "text", ["", "15", "15x", "m", "1.5h", "-5m", "PT", "P1X", "forever", "15 m", "99999999999999h", "P999999999999D"]
)
def test_refused_forms(text: str) -> None:
    with pytest.raises(DurationFormatError):
        parse_duration(text)


@pytest.mark.parametrize(
    ("value", "text"), [(timedelta(seconds=90), "1m30s"), (timedelta(hours=2), "2h"), (timedelta(0), "0s")]
)
def test_short_form(value: timedelta, text: str) -> None:
    assert format_duration(value) == text
    assert parse_duration(text) == value


FOREIGN_DIGITS = ["\u0661\u0665m", "\uff11\uff15m", "1h\u0663\u0660m", "PT\uff11\uff15M", "P\u0661D", "\u096f\u0966s"]


@pytest.mark.parametrize("text", [*FOREIGN_DIGITS, "15m\u200b"])  # Arabic-Indic, fullwidth, Devanagari
def test_only_ascii_digits_are_digits(text: str) -> None:
    """``\\d`` matches any Unicode digit; a duration is written with 0-9 only."""
    with pytest.raises(DurationFormatError):
        parse_duration(text)
