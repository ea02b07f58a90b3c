"""Requantization arithmetic: int32 accumulator -> int8, bit-exact, as data-free functions.

The VXM requantize instruction, the golden model and the compiler all use these definitions
(the VXM RTL implements exactly this formula). For a multiplier M and shift s:

    requantize(x, M, s, zp) = saturate_int8(rounding_shift(x * M, 31 + s) + zp)
    rounding_shift(v, n)    = floor((v + 2**(n-1)) / 2**n)        (round half up, n >= 1)

* x:  int32 accumulator;  M: int32 multiplier with 0 <= M < 2**31, read as M / 2**31 (Q0.31);
* s:  right shift 0..31 (so the total shift 31 + s is 31..62);  zp: int8 zero point;
* x * M is exact in 63 bits; adding the rounding constant needs 64 (signed), which is what the
  hardware computes; half-way cases round toward +infinity (-2.5 -> -2, 2.5 -> 3).

`quantize_multiplier(scale)` turns a real scale 2**-32 <= scale < 1 into (M, s) with
M in [2**30, 2**31) (full 31-bit precision): the relative error of M / 2**(31+s) against scale
is below 2**-30, i.e. the represented scale is within half an ulp of a 31-bit mantissa.
"""
from __future__ import annotations

import math

import numpy as np

INT8_MIN, INT8_MAX = -128, 127
MULT_BITS = 31          # M is a Q0.31 fraction
MAX_SHIFT = 31


class QuantError(ValueError):
    pass


def quantize_multiplier(scale: float) -> tuple[int, int]:
    """Real scale (0 < scale < 1) -> (M, s) with M / 2**(31 + s) ~= scale, M in [2**30, 2**31)."""
    if not (isinstance(scale, (float, int, np.floating)) and math.isfinite(scale)):
        raise QuantError(f"scale must be a finite number, got {scale!r}")
    if not 0 < scale < 1:
        raise QuantError(f"scale must be in (0, 1), got {scale!r}")
    mant, exp = math.frexp(scale)            # scale = mant * 2**exp, mant in [0.5, 1), exp <= 0
    m = round(mant * (1 << MULT_BITS))       # in [2**30, 2**31]
    s = -exp
    if m == 1 << MULT_BITS:                  # rounding carried into the next power of two
        m >>= 1
        s -= 1
        if s < 0:                            # scale within 2**-32 of 1: the largest M with s = 0
            m, s = (1 << MULT_BITS) - 1, 0
    if s > MAX_SHIFT:
        raise QuantError(f"scale {scale!r} is below 2**-{MAX_SHIFT + 1}, the smallest scale held at full "
                         f"{MULT_BITS}-bit precision")
    return m, s


def pack_shift_zp(s, zp):
    """REQUANT's c operand (isa/spec.py): the shift in bits [4:0], the zero point in bits [31:16]
    (signed), per tensor (ints) or per lane (arrays, as int32)."""
    word = (np.asarray(zp, np.int64) << 16) | np.asarray(s, np.int64)
    return int(word) if word.ndim == 0 else (word & 0xFFFFFFFF).astype(np.uint32).view(np.int32)


def multiplier_value(m: int, s: int) -> float:
    return m / 2.0 ** (MULT_BITS + s)


def _check_params(m, s, zp):
    m, s, zp = np.asarray(m, np.int64), np.asarray(s, np.int64), np.asarray(zp, np.int64)
    if np.any((m < 0) | (m >= 1 << MULT_BITS)):
        raise QuantError(f"multiplier must be in [0, 2**{MULT_BITS})")
    if np.any((s < 0) | (s > MAX_SHIFT)):
        raise QuantError(f"shift must be in [0, {MAX_SHIFT}]")
    if np.any((zp < INT8_MIN) | (zp > INT8_MAX)):
        raise QuantError("zero point must be an int8")
    return m, s, zp


def requantize(x, m, s, zp) -> np.ndarray:
    """Vectorized, broadcasting over per-tensor or per-lane parameters; returns int8."""
    x = np.asarray(x)
    if x.dtype != np.int32:
        raise QuantError(f"requantize takes int32 accumulators, got {x.dtype}")
    m, s, zp = _check_params(m, s, zp)
    prod = x.astype(np.int64) * m                    # |prod| < 2**62: exact
    n = MULT_BITS + s                                # 31..62
    # floor((prod + 2**(n-1)) / 2**n) without overflowing int64: with prod = 2q + b (b = 0 or 1),
    # it equals floor((q + 2**(n-2)) / 2**(n-1)), because q + 2**(n-2) is an integer and adding
    # b/2 < 1 to it cannot reach the next multiple of 2**(n-1).
    y = ((prod >> 1) + np.left_shift(np.int64(1), n - 2)) >> (n - 1)
    return np.clip(y + zp, INT8_MIN, INT8_MAX).astype(np.int8)


def requantize_scalar(x: int, m: int, s: int, zp: int) -> int:
    """Reference with Python integers (unbounded): the definition, written plainly."""
    n = MULT_BITS + s
    y = (x * m + (1 << (n - 1))) >> n
    return max(INT8_MIN, min(INT8_MAX, y + zp))
