"""Numbers the way librrd reads them: its own decimal parser (digit by digit in a
double, then scaled by powers of ten, so not always correctly rounded) and the
exact integer difference of two counter readings converted the same way."""

from __future__ import annotations

import math

import numpy as np
import numpy.typing as npt

_DBL_MIN_EXP = -1021
_DBL_MAX_EXP = 1024


def _accumulate(digits: str) -> float:
    """`number = number * 10 + digit` in doubles, exactly as librrd does it."""
    if len(digits) <= 15:
        # every intermediate value is an integer below 2**53: exact either way
        return float(int(digits)) if digits else 0.0
    number = 0.0
    for ch in digits:
        number = number * 10.0 + (ord(ch) - 48)
    return number


def _scale(number: float, exponent: int) -> float:
    p10 = 10.0
    n = -exponent if exponent < 0 else exponent
    while n:
        if n & 1:
            number = number / p10 if exponent < 0 else number * p10
        n >>= 1
        p10 *= p10
    return number


def parse_float(text: str) -> float:
    """Parse a whole string as librrd's `rrd_strtodbl` does; ValueError if any of
    it is not a number (`nan`, `inf`, `-inf` are accepted as librrd does)."""
    i = 0
    n = len(text)
    while i < n and text[i] in " \t\n\r\f\v":
        i += 1
    negative = False
    if i < n and text[i] in "+-":
        negative = text[i] == "-"
        i += 1
    begin = i
    while i < n and "0" <= text[i] <= "9":
        i += 1
    integer = text[begin:i]
    decimals = ""
    if i < n and text[i] == ".":
        i += 1
        begin = i
        while i < n and "0" <= text[i] <= "9":
            i += 1
        decimals = text[begin:i]
    if not integer and not decimals:
        special = text.strip().lower()
        if special in ("nan", "-nan"):
            return math.nan
        if special == "inf":
            return math.inf
        if special == "-inf":
            return -math.inf
        raise ValueError(f"{text!r} is not a number")
    exponent = -len(decimals)
    number = _accumulate(integer + decimals)
    if negative:
        number = -number
    if i < n and text[i] in "eE":
        i += 1
        exp_negative = False
        if i < n and text[i] in "+-":
            exp_negative = text[i] == "-"
            i += 1
        begin = i
        while i < n and "0" <= text[i] <= "9":
            i += 1
        value = int(text[begin:i]) if i > begin else 0
        exponent += -value if exp_negative else value
    if i != n:
        raise ValueError(f"{text!r} is not a number")
    if exponent < _DBL_MIN_EXP or exponent > _DBL_MAX_EXP:
        # librrd gives up on such exponents and reports the string as not a number
        raise ValueError(f"{text!r} is out of range")
    return _scale(number, exponent)


def parse_counter(text: str, *, signed: bool) -> tuple[int, bool]:
    """A COUNTER (digits only) or DERIVE (optional leading '-') reading as its
    magnitude and sign; ValueError otherwise, as librrd refuses anything else."""
    digits = text[1:] if signed and text.startswith("-") else text
    if not digits or not digits.isascii() or not digits.isdigit():
        kind = "signed" if signed else "unsigned"
        raise ValueError(f"not a simple {kind} integer: {text!r}")
    magnitude = int(digits)
    if magnitude >= 2**64:
        raise ValueError(f"counter reading {text!r} does not fit in 64 bits")
    return magnitude, text.startswith("-")


EXACT_LIMIT = 2**53


def magnitudes_to_float(magnitudes: npt.NDArray[np.uint64]) -> npt.NDArray[np.float64]:
    """Exact integer differences as librrd turns their decimal digits into doubles."""
    out = magnitudes.astype(np.float64)
    big = np.flatnonzero(magnitudes >= EXACT_LIMIT)
    for index in big:
        out[index] = _accumulate(str(int(magnitudes[index])))
    return out
