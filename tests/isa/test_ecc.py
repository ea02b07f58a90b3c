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


def test_vector_decode_equals_scalar_decode_on_any_stored_bits():
    """The vector decode (golden model, drivers) and the scalar one agree on every word and every
    ECC value, including single and double flips and bits above check | parity (ignored by both)."""
    c = code_for(128)
    rng = np.random.default_rng(7)
    words = rng.integers(0, 256, (500, 16), dtype=np.uint8)
    ecc = c.encode_bytes(words)
    for n in range(len(words)):
        for b in rng.choice(128 + c.stored_bits, rng.integers(0, 3), replace=False):
            if b < 128:
                words[n, b // 8] ^= 1 << (b % 8)
            else:
                ecc[n] ^= 1 << (b - 128)
    ecc |= rng.integers(0, 4, len(ecc)) << (c.stored_bits + 3)
    fixed, status = c.decode_bytes(words, ecc)
    for n in range(len(words)):
        data, st = c.decode(int.from_bytes(words[n].tobytes(), "little"), int(ecc[n]))
        assert int.from_bytes(fixed[n].tobytes(), "little") == data and status[n] == st, n
    assert {int(s) for s in status} == {0, 1, 2}
