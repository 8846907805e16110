"""Money is integer fen (分). These are the only conversions to and from yuan text."""

from __future__ import annotations

from decimal import ROUND_HALF_UP, Decimal


def fen_to_yuan_str(fen: int) -> str:
    """12345 -> '123.45'; exact, no floats."""
    if not isinstance(fen, int):
        raise TypeError(f"fen must be an int, got {type(fen).__name__}")
    sign = "-" if fen < 0 else ""
    whole, cents = divmod(abs(fen), 100)
    return f"{sign}{whole}.{cents:02d}"


def yuan_str_to_fen(text: str) -> int:
    """'123.45' -> 12345. Refuses more than two decimals rather than rounding money silently."""
    value = Decimal(text.strip())
    fen = value * 100
    if fen != fen.to_integral_value():
        raise ValueError(f"{text!r} has more than two decimals")
    return int(fen)


def round_half_up(value: Decimal) -> int:
    """Round a fen amount computed with a rate (e.g. gross x 0.1) to whole fen, half up."""
    return int(value.quantize(Decimal("1"), rounding=ROUND_HALF_UP))
