"""Randomized differential testing of convolutional graphs on the golden model.

`random_cnn(seed)` builds, with the graph API, a random chain over an (N, C, H, W) input:
convolutions (kernel 1-3 per axis, strides, asymmetric pads, dilation, groups, int8 / uint8
weights and zero points, bias, ReLU, per-tensor or per-channel requantize to int8 / uint8),
max pools, residual adds across scales (the importer's lowering), channel concats, broadcast
adds and muls, and an end of Flatten -> MatMul, or a global average pool reshaped to (N, C),
or the image itself. The compiled program must equal `Graph.evaluate` bit for bit and run
exactly the predicted cycles. `random_cnn(seed)` is the reproducer of a failing seed.

Run as a campaign: `python -m tests.compiler.test_random_cnn FIRST COUNT` prints the seeds that
compile, those refused (with the reason) and any finding.
"""
from __future__ import annotations

import sys

import numpy as np
import pytest

from compiler.compile import compile_graph
from compiler.graph import CompileError, Graph
from compiler.onnx_import import _Deq, _residual, _Sum
from compiler.runtime import run
from isa.config import get_config

TINY = get_config("tiny")


def _rand(rng, dtype, shape):
    i = np.iinfo(np.dtype(dtype))
    return rng.integers(i.min, i.max + 1, shape).astype(dtype)


def _zp(rng, dtype) -> int:
    i = np.iinfo(np.dtype(dtype))
    return int(rng.integers(i.min, i.max + 1))


def _conv(g: Graph, rng, cur: str, oc: int | None = None, k: tuple | None = None) -> str:
    n, c, h, w = g.types[cur].shape
    oc = oc or int(rng.choice([1, 3, 8, 16, 17, 24, 32]))
    groups = [d for d in range(1, c + 1) if c % d == 0 and oc % d == 0]
    group = int(rng.choice(groups)) if rng.random() < 0.3 else 1
    k = k or tuple(int(rng.integers(1, 4)) for _ in range(2))
    strides = tuple(int(rng.choice([1, 1, 2])) for _ in range(2))
    dil = tuple(int(rng.choice([1, 1, 2])) for _ in range(2))
    pads = tuple(int(rng.integers(0, k[i % 2])) for i in range(4))
    if min(h + pads[0] + pads[2] - dil[0] * (k[0] - 1), w + pads[1] + pads[3] - dil[1] * (k[1] - 1)) < 1:
        k, dil, pads = (1, 1), (1, 1), (0, 0, 0, 0)
    wdt = str(rng.choice(["int8", "uint8"]))
    wname = f"w{len(g.nodes)}"
    g.constant(wname, _rand(rng, wdt, (oc, c // group, *k)))
    x_zp = 0 if rng.random() < 0.3 else _zp(rng, g.types[cur].dtype)
    acc = g.conv(cur, wname, x_zp, _zp(rng, wdt) // 4, strides, pads, dil, group)
    if rng.random() < 0.5:
        bname = f"b{len(g.nodes)}"
        g.constant(bname, rng.integers(-20000, 20000, (oc, 1, 1)).astype(np.int32))
        acc = g.add(acc, bname)
    if rng.random() < 0.4:
        acc = g.relu(acc)
    dt = str(rng.choice(["int8", "uint8"]))
    fan = (c // group) * k[0] * k[1]
    base = 1.0 / (60.0 * np.sqrt(fan) * 40)
    scale = rng.uniform(0.5, 2.0, oc) * base if rng.random() < 0.3 else base * rng.uniform(0.5, 2.0)
    return g.requantize(acc, scale, _zp(rng, dt) // 2, dt)


def random_cnn(seed: int) -> tuple[Graph, dict]:
    rng = np.random.default_rng(seed)
    n, c = int(rng.integers(1, 5)), int(rng.choice([1, 2, 3, 8, 16, 17, 20, 33]))
    big = rng.random() < 0.25                       # more than one chunk of rows (> mxm_acc_rows / 2)
    h, w = (int(rng.integers(8, 17)), int(rng.integers(8, 17))) if big else (int(rng.integers(2, 10)),
                                                                           int(rng.integers(2, 10)))
    dt = str(rng.choice(["int8", "uint8"]))
    g = Graph()
    cur = g.input("x", dt, (n, c, h, w))
    feeds = {"x": _rand(rng, dt, (n, c, h, w))}
    for _ in range(int(rng.integers(1, 4))):
        op = str(rng.choice(["conv", "conv", "pool", "residual", "concat", "bcast"]))
        _, c, h, w = g.types[cur].shape
        if op == "conv":
            cur = _conv(g, rng, cur)
        elif op == "pool":
            k = tuple(int(rng.integers(1, 4)) for _ in range(2))
            st = tuple(int(rng.integers(1, 3)) for _ in range(2))
            pads = tuple(int(rng.integers(0, k[i % 2])) for i in range(4))
            if min(h + pads[0] + pads[2] - k[0], w + pads[1] + pads[3] - k[1]) < 0:
                continue
            cur = g.maxpool(cur, k, st, pads)
        elif op == "residual":
            other = _conv(g, rng, cur, oc=c, k=(1, 1)) if rng.random() < 0.5 else cur
            if g.types[other].shape != g.types[cur].shape:
                continue
            za = _zp(rng, g.types[cur].dtype) // 2
            zb = _zp(rng, g.types[other].dtype) // 2
            ydt = np.dtype(str(rng.choice(["int8", "uint8"])))
            s = _Sum(_Deq(cur, float(rng.uniform(0.01, 0.1)), za, "a"), _Deq(other, float(rng.uniform(0.01, 0.1)), zb, "b"),
                     f"res{len(g.nodes)}", relu=bool(rng.random() < 0.5))
            cur = _residual(g, s, float(rng.uniform(0.05, 0.2)), ydt.type(_zp(rng, ydt) // 2), s.label)
        elif op == "concat":
            a = _conv(g, rng, cur, oc=16 * int(rng.integers(1, 3)), k=(1, 1))
            if g.types[a].shape[2:] != g.types[cur].shape[2:] or g.types[a].dtype != g.types[cur].dtype:
                continue
            cur = g.concat([a, cur], 1)
        else:
            kname = f"k{len(g.nodes)}"
            g.constant(kname, _rand(rng, g.types[cur].dtype, (c, 1, 1)) // 8)
            cur = g.add(cur, kname) if rng.random() < 0.5 else g.mul(cur, kname)
    n, c, h, w = g.types[cur].shape
    end = str(rng.choice(["flatten", "pool", "image"]))
    if end == "flatten":
        g.constant("fc", _rand(rng, "int8", (c * h * w, int(rng.integers(1, 40)))))
        cur = g.requantize(g.matmul(g.reshape(cur, (n, c * h * w)), "fc", _zp(rng, g.types[cur].dtype) // 2, 0),
                           1.0 / (60.0 * np.sqrt(c * h * w) * 40), 0, np.int8)
    elif end == "pool":
        g.constant("ones", np.ones((c, 1, h, w), np.int8))
        cur = g.reshape(g.requantize(g.conv(cur, "ones", group=c), 1.0 / (h * w * 2), 0, np.int8), (n, c))
    g.outputs = [cur]
    return g, feeds


def check(seed: int) -> str | None:
    """None when the program equals the reference with the predicted cycles; else what differs.
    Raises CompileError when the compiler refuses the graph."""
    g, feeds = random_cnn(seed)
    c = compile_graph(g, TINY)
    out, rep = run(c, feeds)
    want = g.evaluate(feeds)
    bad = [o for o in g.outputs if not np.array_equal(out[o], want[o])]
    if bad or not rep["prediction_exact"]:
        return f"seed {seed}: outputs {bad} differ, cycles {rep['cycles']} predicted {rep['predicted_cycles']}"
    return None


# A campaign over seeds 0..299 (`python -m tests.compiler.test_random_cnn 0 300`): 276 compiled,
# all bit-exact with the predicted cycles; 24 refused in one line (Mul of a uint8 value stored with
# the offset, pools of uint8 sums stored as is, concat of differently stored inputs, two that do
# not fit a slice). These seeds compile: the first dozen, and ones with more rows than a chunk,
# concats, Muls and clips.
SEEDS = [0, 1, 2, 4, 5, 6, 7, 8, 9, 11, 12, 13, 3, 17, 22, 25, 26, 16, 28, 45, 18, 37, 15, 20]


@pytest.mark.parametrize("seed", SEEDS)
def test_random_cnn(seed):
    try:
        assert check(seed) is None
    except CompileError as e:
        pytest.fail(f"seed {seed} is listed as compiling: {e}")


def main(argv) -> int:
    first, count = (int(v) for v in argv[:2])
    ok, refused, found = [], {}, []
    for seed in range(first, first + count):
        try:
            r = check(seed)
        except CompileError as e:
            refused[seed] = str(e)
            continue
        except Exception as e:                      # noqa: BLE001 (a finding, whatever it is)
            r = f"seed {seed}: {type(e).__name__}: {e}"
        (found.append(r) if r else ok.append(seed))
    print(f"compiled and exact: {len(ok)}: {ok}")
    for seed, why in refused.items():
        print(f"refused {seed}: {why}")
    for f in found:
        print(f"FINDING {f}")
    return 1 if found else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
