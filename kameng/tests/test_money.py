from decimal import Decimal

import pytest

from kameng.money import fen_to_yuan_str, round_half_up, yuan_str_to_fen
from kameng.templatetags.kameng import yuan


@pytest.mark.parametrize(("fen", "text"), [(0, "0.00"), (1, "0.01"), (100, "1.00"), (12345, "123.45"), (-5, "-0.05")])
def test_fen_to_yuan(fen, text):
    assert fen_to_yuan_str(fen) == text
    assert yuan_str_to_fen(text) == fen


def test_floats_are_refused():
    with pytest.raises(TypeError):
        fen_to_yuan_str(1.5)


def test_more_than_two_decimals_is_an_error_not_a_rounding():
    with pytest.raises(ValueError, match="more than two decimals"):
        yuan_str_to_fen("1.005")


@pytest.mark.parametrize(
    ("value", "expected"), [(Decimal("0.5"), 1), (Decimal("1.49"), 1), (Decimal("2.5"), 3), (Decimal("999.5"), 1000)]
)
def test_round_half_up(value, expected):
    assert round_half_up(value) == expected


def test_yuan_filter():
    assert yuan(4850) == "¥48.50"
    assert yuan(None) == ""


@pytest.mark.parametrize(("typed", "fen"), [("12.50", 1250), ("¥1,234.5", 123450), (" -3 ", -300), ("0", 0)])
def test_yuan_field_cleans_to_fen(typed, fen):
    from kameng.forms import YuanField

    assert YuanField().clean(typed) == fen


@pytest.mark.parametrize("typed", ["12.345", "abc", "NaN", "1" * 17, ""])
def test_yuan_field_refuses_what_is_not_an_amount(typed):
    from django.core.exceptions import ValidationError

    from kameng.forms import YuanField

    with pytest.raises(ValidationError):
        YuanField().clean(typed)
