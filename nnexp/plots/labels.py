"""Parameter values as people read them: an Optuna trial's 0.016352949355839833 reads 0.0164."""

from __future__ import annotations


def short_value(value, digits: int = 3) -> str:
    """``value`` as written when it has at most ``digits`` significant digits, else rounded to them;
    text that is not a number is kept."""
    try:
        number = float(value)
    except (TypeError, ValueError):
        return str(value)
    rounded = f"{number:.{digits}g}"
    return str(value) if float(rounded) == number else rounded
