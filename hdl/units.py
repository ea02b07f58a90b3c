"""Units emitted once per build and instantiated by name (as real chips replicate tiles).

Emitting every MEM slice and stream position separately would make large
configurations (tsp: 88 MEM slices, 95 positions x 20 superlanes) take hours; instead each
distinct unit becomes one Verilog module and the chip (or a bigger unit: a superlane its lanes
or columns, an SXM its crossbars) instantiates it.
"""
from amaranth.hdl import ClockSignal, Instance, ResetSignal
from amaranth.lib.wiring import In

from isa.config import ChipConfig

from .c2c import C2cSlice
from .mem_slice import MemSlice, MemSuperlane
from .mxm import MxmColumn, MxmControl, MxmSuperlane
from .sxm import SxmCrossbar, SxmSlice, SxmSuperlane
from .vxm import VxmControl, VxmLane, VxmSuperlane


def units(config: ChipConfig) -> dict:
    """Module name -> component, for every unit the chip instantiates (a unit before the units
    that instantiate it)."""
    u = {"mem_slice": MemSlice(config), "mem_superlane": MemSuperlane(config),
         "vxm_ctrl": VxmControl(config), "vxm_lane": VxmLane(config)}
    u["vxm_superlane"] = VxmSuperlane(config, u["vxm_lane"])
    if config.sxm:
        u |= {"sxm_crossbar": SxmCrossbar(config), "sxm_slice": SxmSlice(config), "sxm_superlane": SxmSuperlane(config)}
    if config.mxm:
        u |= {"mxm_ctrl": MxmControl(config), "mxm_column": MxmColumn(config)}
        u["mxm_superlane"] = MxmSuperlane(config, u["mxm_column"])
    if config.c2c_links:
        u["c2c_slice"] = C2cSlice(config)
    return u


def instance(module_name: str, component, rst=None, **connections) -> Instance:
    """An Instance of an emitted unit, connecting every port of its signature by name (`rst`: its
    reset, the domain's unless given)."""
    kwargs = {"i_clk": ClockSignal(), "i_rst": ResetSignal() if rst is None else rst}
    members = component.signature.members
    missing = set(members) - set(connections)
    extra = set(connections) - set(members)
    if missing or extra:
        raise ValueError(f"{module_name}: unconnected ports {sorted(missing)}, unknown ports {sorted(extra)}")
    for name, member in members.items():
        kwargs[("i_" if member.flow == In else "o_") + name] = connections[name]
    return Instance(module_name, **kwargs)
