"""The boards the FPGA flow supports (python -m hdl.fpga build --board NAME): each an amaranth-boards
platform, which holds the pins and the board clock, and the few choices the board top needs on top
of it. Adding a board is adding an entry here (docs/FPGA.md)."""
from __future__ import annotations

import importlib
from dataclasses import dataclass


# What the devices offer, in nextpnr's bel names (TRELLIS_COMB: LUT4s, a CCU2C carry cell counts two).
DEVICES: dict[str, dict[str, int]] = {
    "LFE5U-85F": {"TRELLIS_COMB": 83_640, "TRELLIS_FF": 83_640, "MULT18X18D": 156, "DP16KD": 208},
}



def _ecp5_85_dsp_rows() -> list[list[str]]:
    """The LFE5U-85F's 156 MULT18X18D sites as nextpnr names them, row by row, west to east: three
    rows (y 10, 34, 58) of 13 blocks of four (x, x+1, x+4, x+5; bels MULT18_0, _1, _4, _5), as a
    placement of the `fpga` preset that used 152 of them showed."""
    blocks = [4, 13, 22, 31, 40, 49, 58, 69, 78, 87, 96, 105, 114]
    return [[f"X{x + dx}/Y{y}/MULT18_{z}" for x in blocks for dx, z in ((0, 0), (1, 1), (4, 4), (5, 5))]
            for y in (10, 34, 58)]


def _ecp5_85_bram_rows() -> list[list[str]]:
    """The LFE5U-85F's 208 DP16KD sites as nextpnr names them, row by row, west to east: four rows
    (y 22, 46, 70, 82) of 13 blocks of four (x, x+2, x+4, x+6; bels EBR0..EBR3), as placements of
    the `fpga` preset that used 183 of them showed."""
    blocks = [4, 13, 22, 31, 40, 49, 58, 69, 78, 87, 96, 105, 114]
    return [[f"X{x + 2 * k}/Y{y}/EBR{k}" for x in blocks for k in range(4)] for y in (22, 46, 70, 82)]


# Where a device's multipliers and block RAMs are (hdl/floorplan.py pins them before placement).
DSP_SITES: dict[str, list[list[str]]] = {"LFE5U-85F": _ecp5_85_dsp_rows()}
BRAM_SITES: dict[str, list[list[str]]] = {"LFE5U-85F": _ecp5_85_bram_rows()}


@dataclass(frozen=True)
class BoardSpec:
    name: str
    platform: str          # "module:Class" of an amaranth-boards platform
    clock: str             # the board clock's resource
    clock_mhz: float
    led: str               # "led": plain LEDs; "rgb_led": the green channel of RGB LEDs
    device: str            # a DEVICES key
    description: str

    def make_platform(self):
        module, cls = self.platform.split(":")
        return getattr(importlib.import_module(module), cls)()

    def led_port(self, platform, i: int):
        """LED i's I/O port (for an `amaranth.lib.io.Buffer`)."""
        res = platform.request(self.led, i, dir="-")
        return res if self.led == "led" else res.g


BOARDS: dict[str, BoardSpec] = {b.name: b for b in (
    BoardSpec("ulx3s-85f", "amaranth_boards.ulx3s:ULX3S_85F_Platform", "clk25", 25.0, "led", "LFE5U-85F",
              "Radiona ULX3S with LFE5U-85F (speed 6): 25 MHz clock, FTDI UART, 8 LEDs"),
    BoardSpec("ecpix5-85f", "amaranth_boards.ecpix5:ECPIX585Platform", "clk100", 100.0, "rgb_led", "LFE5U-85F",
              "LambdaConcept ECPIX-5 with LFE5UM5G-85F (speed 8): 100 MHz clock, FTDI UART, 4 RGB LEDs (green)"),
)}


class BoardError(ValueError):
    pass


def get_board(name: str) -> BoardSpec:
    try:
        return BOARDS[name]
    except KeyError:
        raise BoardError(f"unknown board {name!r}; supported: {', '.join(BOARDS)}") from None
