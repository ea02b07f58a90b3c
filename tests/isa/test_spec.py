"""The ISA spec is self-consistent: fields fit and do not overlap, encode/decode/check agree."""
import dataclasses

import numpy as np
import pytest

from isa import spec
from isa.config import PRESETS, ConfigError, SliceKind, get_config


@pytest.mark.parametrize("op", spec.OPCODES, ids=lambda o: o.mnemonic)
def test_fields_fit_and_do_not_overlap(op):
    used = spec.OPCODE_FIELD.mask
    for f in op.fields:
        assert f.msb < spec.WORD_BITS
        assert used & f.mask == 0, f"{op.mnemonic}.{f.name} overlaps"
        used |= f.mask
    assert used | op.reserved_mask == (1 << spec.WORD_BITS) - 1


def test_opcode_zero_is_illegal():
    """Zeroed queue memory must never run as an instruction."""
    assert 0 not in spec.BY_CODE


def test_every_latency_is_declared():
    for op in spec.OPCODES:
        for key in op.latencies:
            assert key in spec.TIMING and key in spec.TIMING_DOC
    assert set(spec.TIMING) == set(spec.TIMING_DOC)


@pytest.mark.parametrize("name", [n for n, c in PRESETS.items() if not c.latency])
def test_timing_without_overrides_is_the_base_table(name):
    t = spec.timing(get_config(name))
    assert t == spec.TIMING == spec.timing()
    t["stream_hop"] += 1                    # a fresh dict: changing it leaves the table alone
    assert spec.timing(get_config(name)) == spec.TIMING != t


def test_timing_applies_overrides():
    base = spec.TIMING
    cfg = dataclasses.replace(get_config("tiny"), latency=(("vxm_drive", base["vxm_drive"] + 1),
                                                           ("mxm_acc_write", base["mxm_acc_write"] + 2)))
    t = spec.timing(cfg)
    assert t["vxm_drive"] == base["vxm_drive"] + 1 and t["mxm_acc_write"] == base["mxm_acc_write"] + 2
    assert {k: v for k, v in t.items() if k not in ("vxm_drive", "mxm_acc_write")} == \
        {k: v for k, v in base.items() if k not in ("vxm_drive", "mxm_acc_write")}
    assert spec.timing(get_config("tiny")) == base      # the preset itself is untouched


def test_timing_reads_the_table_when_called(monkeypatch):
    monkeypatch.setitem(spec.TIMING, "mem_read_drive", spec.TIMING["mem_read_drive"] + 3)
    assert spec.timing(get_config("tiny"))["mem_read_drive"] == spec.TIMING["mem_read_drive"]


@pytest.mark.parametrize("latency, message", [
    ((("vxm_drvie", 5),), r"^config 'tiny': latency override 'vxm_drvie' is not a TIMING entry \(entries: stream_hop, "),
    ((("mem_read_drive", 0),), r"^config 'tiny': latency override mem_read_drive = 0 must be >= 1 "),
    ((("sxm_drive", -2),), r"^config 'tiny': latency override sxm_drive = -2 must be >= 1 "),
])
def test_timing_rejects_bad_overrides(latency, message):
    cfg = dataclasses.replace(get_config("tiny"), latency=latency)
    with pytest.raises(ConfigError, match=message) as e:
        spec.timing(cfg)
    assert "\n" not in str(e.value)


def test_encode_decode_round_trip():
    cfg = get_config("tiny")
    rng = np.random.default_rng(0)
    for _ in range(500):
        op = spec.BY_MNEMONIC[rng.choice(["NOP", "READ", "WRITE"])]
        ops = {}
        for f in op.fields:
            lo, hi = f.range()
            ops[f.name] = int(rng.integers(max(lo, 1), hi, endpoint=True))
        ops.update({k: v % lim for k, lim in spec.field_limits(op, cfg) for v in [ops[k]]})
        for name, lo in op.min_values:
            ops[name] = max(ops[name], lo)
        word = spec.encode(op.mnemonic, **ops)
        got_op, got = spec.check(word, SliceKind.MEM, cfg)
        assert got_op is op and got == ops


@pytest.mark.parametrize("word,code,reason", [
    (0x00, spec.ErrorCode.ILLEGAL_OPCODE, "undefined opcode"),
    (spec.encode("NOP", cycles=1) | 1 << 9, spec.ErrorCode.BAD_FIELD, "reserved bits"),
    (spec.BY_MNEMONIC["NOP"].code, spec.ErrorCode.BAD_FIELD, "cycles=0 must be >= 1"),
    (spec.encode("READ", stream=8, dir=0, addr=0, stride=1, count=1), spec.ErrorCode.BAD_FIELD, "stream=8 must be < 8"),
    (spec.encode("WRITE", stream=0, dir=0, addr=8192, stride=1, count=1), spec.ErrorCode.BAD_FIELD, "addr=8192"),
])
def test_check_rejects_with_reason(word, code, reason):
    with pytest.raises(spec.IllegalInstruction, match=reason) as e:
        spec.check(word, SliceKind.MEM, get_config("tiny"))
    assert e.value.code == code


def test_mem_ops_not_legal_on_other_kinds():
    w = spec.encode("READ", stream=0, dir=0, addr=0, stride=1, count=1)
    with pytest.raises(spec.IllegalInstruction, match="not an instruction of a VXM slice"):
        spec.check(w, SliceKind.VXM, get_config("tiny"))


def test_encode_errors_name_the_operand():
    with pytest.raises(ValueError, match="count=70000 out of range"):
        spec.encode("READ", stream=0, dir=0, addr=0, stride=1, count=70000)
    with pytest.raises(ValueError, match="has no operand 'bogus'"):
        spec.encode("NOP", cycles=1, bogus=2)
    with pytest.raises(ValueError, match="unknown mnemonic"):
        spec.encode("JUMP")
