"""SECDED code: every single-bit error corrected, every double-bit error detected, for the
word widths of all presets; the numpy and integer implementations agree."""
import numpy as np
import pytest

from isa.config import PRESETS
from isa.ecc import EccStatus, code_for

WIDTHS = sorted({c.word_bits for c in PRESETS.values()})


@pytest.mark.parametrize("bits", WIDTHS)
def test_check_bit_counts(bits):
    c = code_for(bits)
    assert 2 ** c.check_bits >= bits + c.check_bits + 1 > 2 ** (c.check_bits - 1)
    assert c.word_bits == bits + c.check_bits + 1


@pytest.mark.parametrize("bits", WIDTHS)
def test_all_single_and_sampled_double_errors(bits):
    c = code_for(bits)
    rng = np.random.default_rng(bits)
    data = int.from_bytes(rng.bytes(bits // 8), "little")
    ecc = c.encode(data)
    assert c.decode(data, ecc) == (data, EccStatus.OK)
    n = c.word_bits
    for b in range(n):                      # every single-bit error
        w = (data | ecc << bits) ^ (1 << b)
        assert c.decode(w & ((1 << bits) - 1), w >> bits) == (data, EccStatus.CORRECTED), b
    for _ in range(300):                    # double-bit errors: never "corrected"
        b1, b2 = rng.choice(n, 2, replace=False)
        w = (data | ecc << bits) ^ (1 << int(b1)) ^ (1 << int(b2))
        assert c.decode(w & ((1 << bits) - 1), w >> bits)[1] == EccStatus.UNCORRECTABLE


def test_vector_matches_scalar():
    c = code_for(128)
    rng = np.random.default_rng(1)
    words = rng.integers(0, 256, (200, 16), dtype=np.uint8)
    ecc = c.encode_bytes(words)
    ints = [int.from_bytes(w.tobytes(), "little") for w in words]
    assert list(ecc) == [c.encode(i) for i in ints]
    flips = rng.integers(0, 137, 200)
    bad, bad_ecc = words.copy(), ecc.copy()
    for i, b in enumerate(flips):
        if b < 128:
            bad[i, b // 8] ^= 1 << (b % 8)
        else:
            bad_ecc[i] ^= 1 << (b - 128)
    fixed, status = c.decode_bytes(bad, bad_ecc)
    assert np.array_equal(fixed, words) and (status == EccStatus.CORRECTED).all()
