"""System descriptions, as data: which chips, which link of which chip connects to which, each
link's logical latency.

A `System` is to several chips what a `ChipConfig` is to one: presets by name (`SYSTEMS`), or a
JSON file of the same shape (`System.from_dict`, `load_system`). Links are full duplex and join
two C2C slices named as in the chip's floorplan (`C2C_W0`, `C2C_E0`, ...); a link's latency L is
the logical latency of isa/link.py in both directions: a vector with link time tau on one chip
may be taken on the other from cycle tau + L on. Every check raises SystemSpecError with one line.
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from . import hostmap
from .config import PRESETS, ChipConfig, ConfigError, SliceKind, get_config
from .link import LinkFormat, min_latency


class SystemSpecError(ValueError):
    """A malformed or impossible system description."""


@dataclass(frozen=True)
class Endpoint:
    chip: int
    link: str           # C2C slice name on that chip

    def __str__(self):
        return f"chip{self.chip}.{self.link}"


@dataclass(frozen=True)
class Link:
    a: Endpoint
    b: Endpoint
    latency: int

    def __str__(self):
        return f"{self.a} <-> {self.b}"


@dataclass(frozen=True)
class System:
    name: str
    chips: tuple[str, ...]          # configuration name per chip (chip i is chips[i])
    links: tuple[Link, ...]
    description: str = ""

    def __post_init__(self):
        def fail(msg):
            raise SystemSpecError(f"system {self.name!r}: {msg}")
        if not (isinstance(self.name, str) and self.name.isidentifier()):
            raise SystemSpecError(f"system name must be an identifier, got {self.name!r}")
        if not self.chips:
            fail("no chips")

        for i, c in enumerate(self.chips):
            if c not in PRESETS:
                fail(f"chip {i} uses configuration {c!r}, which does not exist; presets are {', '.join(PRESETS)}")
        used: dict[Endpoint, Link] = {}
        for link in self.links:
            if not isinstance(link.latency, int) or isinstance(link.latency, bool):
                fail(f"link {link}: latency must be an integer, got {link.latency!r}")
            for e in (link.a, link.b):
                if not (isinstance(e.chip, int) and 0 <= e.chip < len(self.chips)):
                    fail(f"link {link}: chip {e.chip!r} does not exist (chips 0..{len(self.chips) - 1})")
                cfg = self.config(e.chip)
                names = [s.name for s in cfg.slices_of(SliceKind.C2C)]
                if e.link not in names:
                    fail(f"link {link}: chip {e.chip} ({cfg.name}) has no link {e.link!r}; its links are "
                         f"{', '.join(names) or 'none'}")
                if e in used:
                    fail(f"link {link}: endpoint {e} is already used by link {used[e]}")
                used[e] = link
            if link.a == link.b:
                fail(f"link {link}: joins an endpoint to itself")
            need = max(min_latency(self.config(link.a.chip)), min_latency(self.config(link.b.chip)))
            if link.latency < need:
                fail(f"link {link}: latency {link.latency} is below the {need} cycles the hardware needs "
                     f"(isa/link.py min_latency)")
            if link.latency >= 1 << 16:
                fail(f"link {link}: latency {link.latency} does not fit RECV's 16-bit lat field")
        for link in self.links:     # both ends of a link must frame vectors alike
            fa, fb = self.config(link.a.chip), self.config(link.b.chip)
            if (fa.lanes, fa.c2c_lanes, fa.c2c_lane_bits) != (fb.lanes, fb.c2c_lanes, fb.c2c_lane_bits):
                fail(f"link {link}: the chips' lanes / c2c_lanes / c2c_lane_bits differ")

    def config(self, chip: int) -> ChipConfig:
        return get_config(self.chips[chip])

    def peer(self, chip: int, link: str) -> tuple[Endpoint, int] | None:
        """(the other end, latency) of the link at chip.link, or None if it is not connected."""
        e = Endpoint(chip, link)
        for lk in self.links:
            if lk.a == e:
                return lk.b, lk.latency
            if lk.b == e:
                return lk.a, lk.latency
        return None

    def link_index(self, e: Endpoint) -> int:
        """The index of e's C2C slice among its chip's (westmost 0): how SYNC_TREE names links."""
        return [s.name for s in self.config(e.chip).slices_of(SliceKind.C2C)].index(e.link)

    def sync_tree(self) -> list[tuple[Link | None, list[Link]]]:
        """Per chip, (the link to its parent, the links to its children) of the SYNC tree: breadth
        first from chip 0 over the links in order. A chip no link reaches is the root of its own
        tree (its SYNCs release alone)."""
        tree: list = [None] * len(self.chips)
        for root in range(len(self.chips)):
            if tree[root] is not None:
                continue
            tree[root] = (None, [])
            todo = [root]
            while todo:
                c = todo.pop(0)
                for lk in self.links:
                    for here, there in ((lk.a, lk.b), (lk.b, lk.a)):
                        if here.chip == c and tree[there.chip] is None:
                            tree[there.chip] = (lk, [])
                            tree[c][1].append(lk)
                            todo.append(there.chip)
        return tree

    def sync_registers(self) -> list[dict[str, int]]:
        """Per chip, the values the host writes to SYNC_TREE, SYNC_CHILDREN and SYNC_MARGIN before
        the first START (hostmap register name -> value). The margin covers the release message's
        way from the root down the deepest branch, one latency and two frames per hop; the window
        between HAC offset updates a round trip of the parent link and two frames each way."""
        tree = self.sync_tree()
        depth = [0] * len(self.chips)
        for c in range(len(self.chips)):     # breadth-first order: a parent's depth is known first
            lk = tree[c][0]
            if lk is not None:
                depth[c] = depth[lk.a.chip if lk.b.chip == c else lk.b.chip] + 1
        hop = max([l.latency + 2 * LinkFormat.of(self.config(l.a.chip)).flits + 4 for l in self.links] or [0])
        out = []
        for c, (up, down) in enumerate(tree):
            cfg = self.config(c)
            mine = lambda lk: lk.a if lk.a.chip == c else lk.b          # noqa: E731
            children = sum(1 << self.link_index(mine(lk)) for lk in down)
            window = 2 * hop + 32
            if up is None:
                tree_reg = hostmap.pack("SYNC_TREE", parent=hostmap.SYNC_ROOT, window=window)
            else:
                tree_reg = hostmap.pack("SYNC_TREE", parent=self.link_index(mine(up)), window=window)
            margin = max(cfg.positions, max(depth) * hop + 8)
            out.append({"SYNC_TREE": tree_reg, "SYNC_CHILDREN": children,
                        "SYNC_MARGIN": hostmap.pack("SYNC_MARGIN", margin=margin)})
        return out

    def to_dict(self) -> dict:
        return {"name": self.name, "chips": list(self.chips), "description": self.description,
                "links": [{"a": [l.a.chip, l.a.link], "b": [l.b.chip, l.b.link], "latency": l.latency}
                          for l in self.links]}

    @classmethod
    def from_dict(cls, d: dict) -> "System":
        """The JSON form: {"name", "chips": [config...], "links": [{"a": [chip, link], "b": [...], "latency"}]}."""
        if not isinstance(d, dict):
            raise SystemSpecError(f"a system description is a JSON object, got {type(d).__name__}")
        name = d.get("name", "?")
        extra = set(d) - {"name", "chips", "links", "description"}
        if extra:
            raise SystemSpecError(f"system {name!r}: unknown key {sorted(extra)[0]!r} (keys: name, chips, links, description)")
        for k in ("name", "chips", "links"):
            if k not in d:
                raise SystemSpecError(f"system {name!r}: missing key {k!r}")
        if not isinstance(d["chips"], list) or not all(isinstance(c, str) for c in d["chips"]):
            raise SystemSpecError(f"system {name!r}: chips must be a list of configuration names")
        links = []
        for i, lk in enumerate(d["links"] if isinstance(d["links"], list) else [None]):
            try:
                (ca, la), (cb, lb), lat = lk["a"], lk["b"], lk["latency"]
            except (TypeError, KeyError, ValueError):
                raise SystemSpecError(f"system {name!r}: link {i} must be {{\"a\": [chip, link], \"b\": [chip, link], "
                                  f"\"latency\": cycles}}, got {lk!r}") from None
            links.append(Link(Endpoint(ca, la), Endpoint(cb, lb), lat))
        return cls(name, tuple(d["chips"]), tuple(links), d.get("description", ""))


def _ring(name: str, n: int, config: str, latency: int, description: str) -> System:
    links = [Link(Endpoint(i, "C2C_E0"), Endpoint((i + 1) % n, "C2C_W0"), latency) for i in range(n if n > 2 else 1)]
    return System(name, (config,) * n, tuple(links), description)


# Latency 32: the least `tiny` meets (isa/link.py min_latency) plus slack for a wire.
SYSTEMS: dict[str, System] = {s.name: s for s in (
    _ring("pair", 2, "tiny", 32, "two tiny chips, chip 0's east edge to chip 1's west edge"),
    _ring("ring4", 4, "tiny", 32, "four tiny chips in a ring, each east edge to the next chip's west edge"),
)}


def get_system(name: str) -> System:
    """A preset by name, or a JSON file's path (ending in .json)."""
    if name.endswith(".json"):
        return load_system(Path(name))
    try:
        return SYSTEMS[name]
    except KeyError:
        raise SystemSpecError(f"unknown system {name!r}; systems are: {', '.join(SYSTEMS)} (or a .json file)") from None


def load_system(path: Path) -> System:
    try:
        d = json.loads(Path(path).read_text())
    except OSError as e:
        raise SystemSpecError(f"cannot read system description {path}: {e.strerror}") from None
    except json.JSONDecodeError as e:
        raise SystemSpecError(f"{path}: not JSON ({e.msg} at line {e.lineno})") from None
    return System.from_dict(d)


__all__ = ["System", "Link", "Endpoint", "SystemSpecError", "SYSTEMS", "get_system", "load_system", "ConfigError"]
