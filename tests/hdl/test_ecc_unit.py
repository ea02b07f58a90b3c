"""Unit tests of the SECDED RTL (`hdl/ecc.py`) against the Python reference code (`isa/ecc.py`).

The SRAM's ECC is otherwise exercised only through whole-chip cocotb runs, where a wrong check
bit or a missed correction shows up (if at all) as a mismatching word many cycles later. Here
`SecdedEncoder` and `SecdedDecoder` (both combinational) run alone under `amaranth.sim`, for the
word width of the presets that emit quickly (tiny, fpga) and a few small widths, and every
output is compared with `code_for(bits)`:

* encoder: random and structured data words give exactly the reference's stored ECC bits;
* decoder: clean words come back unchanged with no flag; every single-bit flip (data, check and
  parity bits; exhaustive) is corrected and flagged `corrected`; double-bit flips (exhaustive for
  small widths, sampled for wide ones) are flagged `uncorrectable` with the data passed through;
  random stored words and triple flips match the reference decoder (data and status), and for
  width 8 the whole (data, ecc) input space does.

Many cases share one Simulator per test, so the file runs in a few seconds.
"""
import itertools
import random

import pytest
from amaranth.sim import Simulator

from hdl.ecc import SecdedDecoder, SecdedEncoder
from isa.config import get_config
from isa.ecc import EccStatus, code_for

PRESET_WIDTHS = sorted({get_config(name).word_bits for name in ("tiny", "fpga")})
WIDTHS = sorted(set(PRESET_WIDTHS) | {8, 64})
SMALL = 16            # widths up to this get exhaustive double-bit flips


def _flags(status: EccStatus) -> tuple[int, int]:
    """(corrected, uncorrectable) as the decoder reports a reference status."""
    return int(status == EccStatus.CORRECTED), int(status == EccStatus.UNCORRECTABLE)


def _data_words(bits: int, rng: random.Random, n_random: int) -> list[int]:
    """Structured words (zero, all ones, alternating, every walking one) and random ones."""
    ones = (1 << bits) - 1
    alt = int("01" * bits, 2) & ones
    words = [0, ones, alt, ones ^ alt] + [1 << i for i in range(bits)]
    return words + [rng.getrandbits(bits) for _ in range(n_random)]


def _run_encoder(bits: int, words: list[int]) -> list[int]:
    dut = SecdedEncoder(bits)
    out = []

    async def bench(ctx):
        for w in words:
            ctx.set(dut.data, w)
            out.append(ctx.get(dut.ecc))

    sim = Simulator(dut)
    sim.add_testbench(bench)
    sim.run()
    return out


def _run_decoder(bits: int, cases: list[tuple[int, int]]) -> list[tuple[int, int, int]]:
    """(data, ecc) -> (out, corrected, uncorrectable) for each case, in one simulation."""
    dut = SecdedDecoder(bits)
    out = []

    async def bench(ctx):
        for data, ecc in cases:
            ctx.set(dut.data, data)
            ctx.set(dut.ecc, ecc)
            out.append((ctx.get(dut.out), ctx.get(dut.corrected), ctx.get(dut.uncorrectable)))

    sim = Simulator(dut)
    sim.add_testbench(bench)
    sim.run()
    return out


def _flip(bits: int, data: int, ecc: int, positions) -> tuple[int, int]:
    """Flip stored-word bits: index < bits is a data bit, the rest are ECC bits (check, parity)."""
    for p in positions:
        if p < bits:
            data ^= 1 << p
        else:
            ecc ^= 1 << (p - bits)
    return data, ecc


def _check_against_reference(bits, cases, got):
    code = code_for(bits)
    for (data, ecc), (out, corr, unc) in zip(cases, got, strict=True):
        ref_data, ref_status = code.decode(data, ecc)
        assert (out, (corr, unc)) == (ref_data, _flags(ref_status)), (
            f"{bits}-bit decoder, data={data:#x} ecc={ecc:#x}: RTL out={out:#x} corrected={corr} "
            f"uncorrectable={unc}, reference {ref_data:#x} {ref_status.name}")


@pytest.mark.parametrize("bits", WIDTHS)
def test_encoder_matches_reference(bits):
    code = code_for(bits)
    words = _data_words(bits, random.Random(bits), 300)
    got = _run_encoder(bits, words)
    assert len(got) == len(words)
    for w, ecc in zip(words, got):
        assert ecc == code.encode(w), f"{bits}-bit encoder, data={w:#x}: RTL {ecc:#x}, reference {code.encode(w):#x}"
    # the check bits are not trivially constant: both values of every stored ECC bit occur
    for j in range(code.stored_bits):
        assert {e >> j & 1 for e in got} == {0, 1}, f"ECC bit {j} never changes"


@pytest.mark.parametrize("bits", WIDTHS)
def test_decoder_clean_and_single_flips(bits):
    """Clean words decode unchanged; every single-bit flip of the stored word is corrected."""
    code = code_for(bits)
    rng = random.Random(1000 + bits)
    datas = _data_words(bits, rng, 6)[:4] + [rng.getrandbits(bits) for _ in range(3 if bits > SMALL else 12)]
    cases, kinds = [], []
    for d in datas:
        e = code.encode(d)
        cases.append((d, e))
        kinds.append((d, None))
        for p in range(code.word_bits):       # every data, check and parity bit
            cases.append(_flip(bits, d, e, [p]))
            kinds.append((d, p))
    got = _run_decoder(bits, cases)
    _check_against_reference(bits, cases, got)
    for (d, p), (out, corr, unc) in zip(kinds, got):
        if p is None:
            assert (out, corr, unc) == (d, 0, 0), f"clean word {d:#x}: out={out:#x} corrected={corr} unc={unc}"
        else:
            assert (out, corr, unc) == (d, 1, 0), (
                f"data {d:#x} with stored bit {p} flipped: out={out:#x} corrected={corr} uncorrectable={unc}")


@pytest.mark.parametrize("bits", WIDTHS)
def test_decoder_double_flips(bits):
    """Any two flipped stored bits are detected as uncorrectable and the data passes through."""
    code = code_for(bits)
    rng = random.Random(2000 + bits)
    n = code.word_bits
    pairs = list(itertools.combinations(range(n), 2))
    cases = []
    if bits <= SMALL:
        for d in [0, (1 << bits) - 1] + [rng.getrandbits(bits) for _ in range(4)]:
            e = code.encode(d)
            cases += [_flip(bits, d, e, pair) for pair in pairs]
    else:
        # sampled pairs, plus every pair that touches the ECC bits (check and parity) of one word
        d = rng.getrandbits(bits)
        e = code.encode(d)
        ecc_pairs = [pr for pr in pairs if pr[1] >= bits]
        cases += [_flip(bits, d, e, pr) for pr in ecc_pairs]
        for _ in range(600):
            d = rng.getrandbits(bits)
            cases.append(_flip(bits, d, code.encode(d), rng.sample(range(n), 2)))
    got = _run_decoder(bits, cases)
    _check_against_reference(bits, cases, got)
    for (data, _), (out, corr, unc) in zip(cases, got):
        assert (out, corr, unc) == (data, 0, 1), (
            f"double flip, received data {data:#x}: out={out:#x} corrected={corr} uncorrectable={unc}")


@pytest.mark.parametrize("bits", WIDTHS)
def test_decoder_arbitrary_words(bits):
    """Random stored words and triple flips (odd parity, often a syndrome naming no bit) decode
    exactly as the reference does."""
    code = code_for(bits)
    rng = random.Random(3000 + bits)
    cases = [(rng.getrandbits(bits), rng.getrandbits(code.stored_bits)) for _ in range(400)]
    for _ in range(400):
        d = rng.getrandbits(bits)
        cases.append(_flip(bits, d, code.encode(d), rng.sample(range(code.word_bits), 3)))
    got = _run_decoder(bits, cases)
    _check_against_reference(bits, cases, got)
    # both flags occur (a triple flip is either miscorrected or names no bit)
    assert any(c for _, c, _ in got[400:]) and any(u for _, _, u in got[400:])


def test_decoder_whole_input_space_8bit():
    """Width 8: every (data, ecc) pair, including syndromes that name no bit, matches the reference."""
    code = code_for(8)
    cases = [(d, e) for d in range(1 << 8) for e in range(1 << code.stored_bits)]
    got = _run_decoder(8, cases)
    _check_against_reference(8, cases, got)
    statuses = {_flags(code.decode(d, e)[1]) for d, e in cases}
    assert statuses == {(0, 0), (1, 0), (0, 1)}
