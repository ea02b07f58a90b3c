"""Configuration presets and validation."""
import dataclasses

import pytest

from isa.config import PRESETS, ChipConfig, ConfigError, SliceKind, get_config


def test_presets_match_the_brief():
    tiny = get_config("tiny")
    assert (tiny.lanes, tiny.streams, tiny.mem_slices, tiny.mem_words) == (16, 8, 2, 8192)
    assert tiny.sram_bytes == 512 * 1024
    tsp = get_config("tsp")
    assert (tsp.lanes, tsp.streams, tsp.mem_slices, tsp.mxm) == (320, 32, 44, 2)


@pytest.mark.parametrize("name", list(PRESETS))
def test_floorplan_is_mirrored(name):
    cfg = get_config(name)
    kinds = [s.kind for s in cfg.floorplan]
    assert kinds == kinds[::-1]
    assert kinds[len(kinds) // 2] == SliceKind.VXM
    assert len(cfg.slices_of(SliceKind.MEM)) == 2 * cfg.mem_slices
    assert [s.position for s in cfg.floorplan] == list(range(cfg.positions))


@pytest.mark.parametrize("field,value,message", [
    ("lanes", 0, "lanes must be a positive integer"),
    ("lanes", 18, "multiple of 4"),
    ("streams", 2, "streams must be >= 4"),
    ("streams", 65, "streams must be <= 64"),
    ("mem_words", 1000, "power of two"),
    ("mem_words", 1 << 17, "<= 65536"),
    ("queue_depth", 3, "queue_depth"),
    ("mxm", -1, "non-negative"),
    ("vxm_alus", 17, "vxm_alus must be <= 16"),
    ("vxm_regs", 0, "vxm_regs must be a positive integer"),
    ("sxm_width", 9, r"sxm_width must be <= streams \(8\)"),
    ("sxm", 2, r"sxm must be 0 or 1 \(SXM slices per hemisphere\), got 2"),
    ("mxm_east", 2, r"mxm_east must be 0 or 1 \(the east hemisphere's MXMs: none or as the west's\), got 2"),
    ("mem_slices", 200, "at most 255 slice positions"),
    ("vxm_omit", ("SRA", "SHL"), r"vxm_omit must be a sorted tuple of distinct ALU mnemonics, got \('SRA', 'SHL'\)"),
    ("vxm_omit", ["SHL"], "vxm_omit must be a sorted tuple"),
    ("name", "no spaces", "ASCII identifier"),
    ("latency", 3, r"latency must be a tuple of \(TIMING key, cycles\) pairs, got 3"),
    ("latency", (("vxm_drive", "5"),), "latency must be a tuple of"),
    ("latency", [("vxm_drive", 5)], "latency must be a tuple of"),
    ("latency", (("vxm_drive", 5), ("vxm_drive", 6)), r"latency overrides \['vxm_drive'\] more than once"),
])
def test_validation_errors(field, value, message):
    with pytest.raises(ConfigError, match=message):
        dataclasses.replace(get_config("tiny"), **{field: value})


def test_unknown_preset():
    with pytest.raises(ConfigError, match="presets are: tiny, fpga, tsp"):
        get_config("nope")


def test_fingerprint_ignores_description():
    a = get_config("tiny")
    b = dataclasses.replace(a, description="changed")
    assert a.to_dict() == b.to_dict()


def test_latency_overrides_are_part_of_the_identity():
    """Without overrides the dict has no latency entry (fingerprints stay what they were); with
    them it does, so a program scheduled for other latencies is refused (isa/image.py)."""
    a = get_config("tiny")
    b = dataclasses.replace(a, latency=(("vxm_drive", 7),))
    assert "latency" not in a.to_dict()
    assert b.to_dict() == {**a.to_dict(), "latency": (("vxm_drive", 7),)} and a != b


def test_a_chip_without_east_mxm():
    """mxm_east 0: the west hemisphere's MXMs only; mxm_east 1 stays out of the identity dict, so
    the fingerprints of the configurations that had both are unchanged."""
    a = get_config("tiny")
    b = dataclasses.replace(a, mxm_east=0)
    assert [s.name for s in b.floorplan] == [s.name for s in a.floorplan if not s.name.startswith("MXM_E")]
    assert b.positions == a.positions - a.mxm and (a.mxm_sides, b.mxm_sides) == (2, 1)
    assert "mxm_east" not in a.to_dict() and b.to_dict()["mxm_east"] == 0
    assert dataclasses.replace(a, mxm=0, mxm_east=0).mxm_sides == 0


def test_a_vxm_without_some_ops():
    """vxm_omit: the ALU ops a chip leaves out are illegal opcodes on it (spec.check, and the RTL's
    decoder, which takes its opcode list from spec.slice_opcodes); an empty vxm_omit stays out of
    the identity dict; a name that is not an ALU op is refused where the spec first reads it."""
    from isa import spec
    a = get_config("tiny")
    b = dataclasses.replace(a, vxm_omit=("SHL", "SRA"))
    assert "vxm_omit" not in a.to_dict() and b.to_dict()["vxm_omit"] == ["SHL", "SRA"]
    vxm = [op.mnemonic for op in spec.slice_opcodes(SliceKind.VXM, b)]
    assert "SHL" not in vxm and "SRA" not in vxm and "SHR" in vxm
    assert len(vxm) == len(spec.slice_opcodes(SliceKind.VXM, a)) - 2
    assert [o.mnemonic for o in spec.vxm_alu_ops(b)] == [o.mnemonic for o in spec.ALU_OPS if o.mnemonic not in ("SHL", "SRA")]
    word = spec.encode("SHL", a=spec.operand(0, 0), b=spec.operand(0, 1), dst=0, ddir=0, type=0, alu=0, count=1)
    spec.check(word, SliceKind.VXM, a)
    with pytest.raises(spec.IllegalInstruction, match=r"^SHL is not implemented by config 'tiny' \(its VXM leaves it "
                                                        r"out: vxm_omit\)$") as e:
        spec.check(word, SliceKind.VXM, b)
    assert e.value.code == spec.ErrorCode.ILLEGAL_OPCODE
    with pytest.raises(ConfigError, match=r"^config 'tiny': vxm_omit names FOO, not ALU ops \(ALU ops: ADD, SUB"):
        spec.timing(dataclasses.replace(a, vxm_omit=("FOO",)))
    assert set(get_config("fpga").vxm_omit) == {"CMPEQ", "CMPLE", "CMPLT", "MULW", "SELECT", "SHL", "SHR", "SRA"}


def test_a_chip_without_sxm():
    """sxm 0 (the fpga preset): no SXM positions and no SXM queues; the SXMs of sxm 1 stay out of
    the identity dict, so the fingerprints of the configurations that had them are unchanged."""
    from isa import spec
    a = get_config("tiny")
    b = dataclasses.replace(a, sxm=0)
    assert [s.name for s in b.floorplan] == [s.name for s in a.floorplan if s.kind != SliceKind.SXM]
    assert b.positions == a.positions - 2 and SliceKind.SXM not in spec.kinds_with_queues(b)
    assert "sxm" not in a.to_dict() and b.to_dict()["sxm"] == 0
    with pytest.raises(ConfigError, match="has no slice named 'SXM_E'"):
        b.slice_named("SXM_E")
