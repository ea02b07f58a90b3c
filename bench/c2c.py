"""Chip-to-chip link figures, one `name: value` per line.

    python -m bench.c2c [--sims verilator] [--vectors 1024]

* c2c_<cfg>_flits_per_vector:     cycles one vector takes on a link (isa/link.py)
* c2c_<cfg>_raw_bytes_per_cycle:  what the physical lanes carry (c2c_lanes x c2c_lane_bits / 8)
* c2c_<cfg>_payload_bytes_per_cycle: stream-vector bytes per cycle at full use
* c2c_<cfg>_payload_fraction:     payload / raw (the rest is SECDED, the header and padding)
* c2c_<cfg>_min_latency_cycles:   the least logical latency the hardware meets (no wire)
* ring4_stream_*:                 a long streaming transfer relayed chip 0 -> 1 -> 2 -> 3 on ring4
                                  (verif/c2c_stimulus.py ring_stream): vectors, cycles of the last
                                  chip, link utilization (link-time slots carrying data / slots
                                  from the first to the last vector's frame), end-to-end payload
                                  bytes per cycle; with --sims verilator also on the RTL (the
                                  cycle counts must equal the golden model's)
"""
from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path

from isa.config import get_config
from isa.link import LinkFormat, min_latency
from isa.system import get_system
from sim.system import SystemGolden
from verif.c2c_stimulus import ring_stream


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(prog="python -m bench.c2c")
    ap.add_argument("--sims", default="", help="also run the ring4 stream on these simulators (verilator)")
    ap.add_argument("--vectors", type=int, default=1024)
    args = ap.parse_args(argv)
    for name in ("tiny", "tsp"):
        cfg = get_config(name)
        fmt = LinkFormat.of(cfg)
        print(f"c2c_{name}_flits_per_vector: {fmt.flits}")
        print(f"c2c_{name}_raw_bytes_per_cycle: {fmt.flit_bits / 8:.2f}")
        print(f"c2c_{name}_payload_bytes_per_cycle: {cfg.lanes / fmt.flits:.2f}")
        print(f"c2c_{name}_payload_fraction: {fmt.payload_fraction:.4f}")
        print(f"c2c_{name}_min_latency_cycles: {min_latency(cfg)}")
    sysm = get_system("ring4")
    programs, fig = ring_stream(sysm, args.vectors)
    res = SystemGolden(sysm, programs).run()
    if any(r.error.name != "NONE" for r in res.chips):
        print(f"error: golden ring4 stream stopped: {[r.error.name for r in res.chips]}", file=sys.stderr)
        return 1
    last = fig["chain"][-1]
    lanes = sysm.config(0).lanes
    print(f"ring4_stream_vectors: {args.vectors}")
    print(f"ring4_stream_hops: {len(fig['chain']) - 1}")
    print(f"ring4_stream_cycles: {res.chips[last].cycles}")
    print(f"ring4_stream_link_utilization: {fig['utilization']:.4f}")
    print(f"ring4_stream_payload_bytes_per_cycle: {args.vectors * lanes / res.chips[last].cycles:.2f}")
    for sim in filter(None, args.sims.split(",")):
        from verif.rtl_build import run_cocotb
        out = Path(tempfile.mkstemp(suffix=".json")[1])
        run_cocotb(sim, "verif.tb_system", testcase="stream", config="ring4",
                   env={"SYS_VECTORS": str(args.vectors), "SYS_OUT": str(out)}, private_dir=True)
        rtl = json.loads(out.read_text())
        print(f"ring4_stream_cycles_{sim}: {rtl['cycles'][last]}")
        print(f"ring4_stream_sim_seconds_{sim}: {rtl['wall_seconds']:.1f}")
        if rtl["cycles"] != [r.cycles for r in res.chips]:
            print(f"error: {sim} cycles {rtl['cycles']}, golden {[r.cycles for r in res.chips]}", file=sys.stderr)
            return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
