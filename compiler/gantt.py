"""Schedule pictures: every engine and every stream segment of a compiled program, cycle by cycle.

    python -m compiler compile MODEL.onnx -o P.bin --gantt P.png      # or .html, .svg

One row per engine that works (`MEM_W0.read`, `MXM_E.mm`, `C2C_E0.send`, ...: the reservation
table's engine intervals, compiler/reserve.py) and per stream segment: a stream in one direction
on one side of the VXM (`E3 west`: eastward stream 3 between the west edge and the VXM), busy on
the cycles a value travels on it somewhere in that segment. Every bar is coloured by the graph
node it serves (the kernel group's first node; a system's transfers by the value they carry, a
refill as `refill`). Beside each row, its utilization: busy cycles over the program's cycles;
the engine rows' figures are the prediction's `units`. A system's chips are stacked, each row
named by its chip.

Drawn with matplotlib (Agg, no display needed); `.html` wraps the SVG with the table of rows.
"""
from __future__ import annotations

import html
import io
from dataclasses import dataclass, field
from pathlib import Path

from isa import spec

from .graph import CompileError

FORMATS = (".png", ".svg", ".html")
MAX_LEGEND = 24             # nodes named in the legend; the rest share one grey


@dataclass
class Row:
    label: str
    bars: list = field(default_factory=list)       # (first cycle, length, node)

    def busy(self) -> int:
        """Cycles covered by at least one bar."""
        total, end = 0, None
        for s, n, _ in sorted(self.bars):
            if end is None or s >= end:
                total, end = total + n, s + n
            elif s + n > end:
                total, end = total + s + n - end, s + n
        return total


def node_of(who: str) -> str:
    """The graph node a booking serves: its label up to the first ':' (kernels book under their
    group's name, transfers under the value, refills as 'refill ...')."""
    who = who.split(":")[0].strip()
    return "refill" if who.startswith("refill") else who


def rows_of(m, prefix: str = "") -> list[Row]:
    """The rows of one chip's schedule (m: the kernels.Machine the compiler lowered onto)."""
    cfg, res = m.config, m.res
    rows = []
    for key in sorted(k for k in res.intervals if k[0] == "engine"):
        _, pos, engine = key
        rows.append(Row(f"{prefix}{cfg.floorplan[pos].name}.{engine}",
                        [(lo, hi - lo + 1, node_of(who)) for lo, hi, who in res.intervals[key]]))
    vxm, last = m.vxm, cfg.positions - 1
    for (d, s) in sorted(res.cells):
        east = d == int(spec.Dir.EAST)
        for side, (a, b) in (("west", (0, vxm)), ("east", (vxm, last))):
            bars = []
            for d0, d1, p0, p1, who in res.cells[(d, s)]:
                q0, q1 = max(p0, a), min(p1, b)
                if q0 > q1:
                    continue
                # along a value's path the diagonal is t - q eastward, t + q westward
                t0, t1 = (d0 + q0, d1 + q1) if east else (d0 - q1, d1 - q0)
                bars.append((t0, t1 - t0 + 1, node_of(who)))
            if bars:
                rows.append(Row(f"{prefix}{'EW'[d]}{s} {side}", bars))
    return rows


def check_path(path) -> Path:
    """The picture's path, if its suffix names a format it can be written in."""
    path = Path(path)
    if path.suffix not in FORMATS:
        raise CompileError(f"--gantt {path}: the picture is {', '.join(FORMATS)}")
    return path


def draw(rows: list[Row], cycles: int, path: Path, title: str) -> None:
    """Write the picture of `rows` over `cycles` to path (.png, .svg or .html)."""
    path = check_path(path)
    import matplotlib
    matplotlib.use("Agg")
    from matplotlib import pyplot as plt
    from matplotlib.patches import Patch

    rows = [r for r in rows if r.bars]
    weight: dict[str, int] = {}
    for r in rows:
        for _, n, node in r.bars:
            weight[node] = weight.get(node, 0) + n
    named = sorted(weight, key=lambda k: -weight[k])[:MAX_LEGEND]
    cmap = plt.get_cmap("tab20")
    colour = {node: cmap(i % 20) for i, node in enumerate(sorted(named))}
    other = (0.6, 0.6, 0.6, 1.0)
    n_legend = min(len(weight), MAX_LEGEND + 1)
    legend_lines = -(-n_legend // 6)
    height = 0.9 + 0.22 * max(len(rows), 1) + 0.18 * legend_lines
    fig, (ax, au) = plt.subplots(1, 2, sharey=True, figsize=(13, height),
                                 gridspec_kw={"width_ratios": [7, 1], "wspace": 0.02})
    for i, r in enumerate(rows):
        by: dict = {}
        for s, n, node in r.bars:
            by.setdefault(colour.get(node, other), []).append((s, n))
        for c, spans in by.items():
            ax.broken_barh(spans, (i - 0.4, 0.8), facecolors=c, linewidth=0)
    util = [r.busy() / cycles if cycles else 0.0 for r in rows]
    au.barh(range(len(rows)), util, color="0.45", height=0.7)
    for i, u in enumerate(util):
        au.text(min(u, 1.0) + 0.02, i, f"{u:.2f}", va="center", fontsize=6)
    ax.set_yticks(range(len(rows)), [r.label for r in rows], fontsize=6)
    ax.set_ylim(len(rows) - 0.5, -0.5)
    ax.set_xlim(0, max(cycles, 1))
    ax.set_xlabel("cycle")
    ax.set_title(title, fontsize=9, loc="left")
    au.set_xlim(0, 1.25)
    au.set_xticks([0, 0.5, 1.0], ["0", ".5", "1"], fontsize=6)
    au.set_title("utilization", fontsize=8)
    handles = [Patch(color=colour[n], label=n) for n in sorted(named)]
    if len(weight) > len(named):
        handles.append(Patch(color=other, label=f"{len(weight) - len(named)} more"))
    fig.legend(handles=handles, fontsize=6, loc="lower left", ncol=6, frameon=False, bbox_to_anchor=(0.1, 0.0))
    fig.subplots_adjust(left=0.1, right=0.98, top=1 - 0.35 / height, bottom=(0.45 + 0.18 * legend_lines) / height)
    try:
        if path.suffix == ".html":
            buf = io.StringIO()
            fig.savefig(buf, format="svg")
            table = "".join(f"<tr><td>{html.escape(r.label)}</td><td>{u:.4f}</td></tr>" for r, u in zip(rows, util))
            path.write_text(f"<!doctype html><html><head><meta charset='utf-8'><title>{html.escape(title)}</title>"
                            f"</head><body><h3>{html.escape(title)}</h3>{buf.getvalue()}<table><tr><th>row</th>"
                            f"<th>utilization</th></tr>{table}</table></body></html>\n")
        else:
            fig.savefig(path, dpi=110)
    finally:
        plt.close(fig)


def picture(compiled, path: Path) -> None:
    """The picture of a compiled program (compile.Compiled) or of a system's (system.SystemCompiled)."""
    if hasattr(compiled, "chips"):
        rows = [r for part in compiled.chips for r in rows_of(part.m, f"chip{part.index} ")]
        title = (f"{compiled.system.name}: {compiled.predicted['cycles']} cycles, MXM utilization "
                 f"{compiled.predicted['mxm_utilization']}")
    else:
        rows = rows_of(compiled.machine)
        title = (f"{compiled.config.name}: {compiled.predicted['cycles']} cycles, MXM utilization "
                 f"{compiled.predicted['mxm_utilization']}")
    draw(rows, compiled.predicted["cycles"], path, title)
