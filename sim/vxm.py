"""VXM element semantics, one numpy function per idea, used by the golden model.

Values travel as int64 arrays holding the exact signed value of each lane. `wrap` reduces an
exact result to a type (its low bits, read signed), which is what driving only the type's
bytes onto streams does in hardware. Every function here is checked in tests/sim against
formulas written independently with Python integers.
"""
from __future__ import annotations

import numpy as np

from isa import spec
from isa.spec import DType


def wrap(x: np.ndarray, t: int) -> np.ndarray:
    """Low 8/16/32 bits of x, read as a signed value of type t."""
    bits = 8 * spec.dtype_bytes(t)
    x = np.asarray(x, np.int64) & ((1 << bits) - 1)
    return np.where(x >= 1 << (bits - 1), x - (1 << bits), x)


def saturate(x: np.ndarray, t: int) -> np.ndarray:
    lo, hi = spec.dtype_range(t)
    return np.clip(np.asarray(x, np.int64), lo, hi)


def from_planes(planes: np.ndarray, t: int) -> np.ndarray:
    """Stream group bytes uint8 [bytes(t), lanes] (byte plane j on stream base+j) -> int64 values."""
    planes = np.asarray(planes, np.int64)
    v = np.zeros(planes.shape[1], np.int64)
    for j in range(spec.dtype_bytes(t)):
        v |= planes[j] << (8 * j)
    return wrap(v, t)


def to_planes(values: np.ndarray, t: int) -> np.ndarray:
    """int64 values -> uint8 [bytes(t), lanes], little-endian byte planes."""
    v = np.asarray(values, np.int64)
    return np.stack([((v >> (8 * j)) & 0xFF).astype(np.uint8) for j in range(spec.dtype_bytes(t))])


def requantize(x, m, word, dtype: int) -> np.ndarray:
    """REQUANT on int32 lanes: M = m, s = word[4:0], zp = word[31:16] (signed), saturate to dtype.

    rounding_shift(x * M, 31 + s) = floor((x * M + 2**(30 + s)) / 2**(31 + s)): round half up.
    |x * M| <= 2**62 and the rounding term <= 2**61, so int64 holds the sum exactly.
    """
    x, m, word = (np.asarray(v, np.int64) for v in (x, m, word))
    s = word & 31
    zp = word >> 16                         # arithmetic: bits [31:16] of a signed int32
    y = (x * m + (np.int64(1) << (30 + s))) >> (31 + s)
    return saturate(y + zp, dtype)


def alu(mnemonic: str, t: int, dt: int, a, b=None, c=None) -> np.ndarray:
    """One ALU op on exact operand values (already read as type t); returns the result wrapped to
    the result type dt (which equals t for ops without a dtype field)."""
    bits = 8 * spec.dtype_bytes(t)
    a = np.asarray(a, np.int64)
    b = None if b is None else np.asarray(b, np.int64)
    c = None if c is None else np.asarray(c, np.int64)
    mask = np.int64(-1)
    if mnemonic == "ADD":
        r = a + b
    elif mnemonic == "SUB":
        r = a - b
    elif mnemonic in ("MUL", "MULW"):
        r = a * b
    elif mnemonic == "MIN":
        r = np.minimum(a, b)
    elif mnemonic == "MAX":
        r = np.maximum(a, b)
    elif mnemonic == "RELU":
        r = np.maximum(a, 0)
    elif mnemonic == "SHL":
        r = a << (b & (bits - 1))
    elif mnemonic == "SHR":
        r = (a & ((1 << bits) - 1)) >> (b & (bits - 1))
    elif mnemonic == "SRA":
        r = a >> (b & (bits - 1))
    elif mnemonic == "CMPEQ":
        r = np.where(a == b, mask, 0)
    elif mnemonic == "CMPLT":
        r = np.where(a < b, mask, 0)
    elif mnemonic == "CMPLE":
        r = np.where(a <= b, mask, 0)
    elif mnemonic == "SELECT":
        r = np.where(a != 0, b, c)
    elif mnemonic == "CVT":
        r = saturate(a, dt)
    elif mnemonic == "REQUANT":
        r = requantize(a, b, c, dt)
    else:
        raise KeyError(f"not a VXM ALU op: {mnemonic}")
    return wrap(r, dt)


def operand_type(mnemonic: str, operands: dict) -> int:
    return int(DType.I32) if mnemonic == "REQUANT" else operands["type"]


def result_type(mnemonic: str, operands: dict) -> int:
    return operands.get("dtype", operands.get("type"))
