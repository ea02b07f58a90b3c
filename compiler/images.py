"""Lowering of image and data-moving ops: max pooling, reshapes and transposes that move no word,
channel concats. Pooling streams taps read by address (compiler/gather.py) through MAX passes; a
reshape is an alias of the same words or a `View` that its MatMul reads by address; a concat
copies each input into its column tiles. See docs/COMPILER.md, "Convolutions, pooling, reshapes
and broadcasting"."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from . import gather, kernels
from .graph import CompileError, Graph, Node, channel_axis
from .layout import NBYTES, Layout, Placed


@dataclass
class View:
    """A reshape that moves no word: a flattened image read by its consumer's addressing. `order`:
    the flattened axes' order, (c, h, w) as ONNX flattens NCHW, or (h, w, c) after a transpose
    to NHWC (the order the chip holds)."""
    src: Placed
    name: str
    order: str = "chw"


def operand(n: Node, name: str, value, placed) -> Placed:
    """An input of a node that reads it in order (not through a MatMul's addressing)."""
    x = placed[name] if name in placed else value(name)
    if isinstance(x, View):
        raise CompileError(f"node {n.name!r} ({n.op}): input {name!r} is a flattened image, which the chip reads only "
                           f"as the A of a MatMul/Gemm with constant weights (a flatten moves no data)")
    return x


def lower_maxpool(m, graph: Graph, n: Node, value, placed) -> None:
    """Max pooling as elementwise MAX passes: first the kernel's taps in pairs, each tap's input
    pixels read by address (compiler/gather.py; padding reads a word of the type's minimum) from
    x's two copies on one side, written to the other side; then those partial maxima in pairs,
    read in order, down to the result."""
    x = operand(n, n.inputs[0], value, placed)
    t = graph.types[n.outputs[0]]
    if t.dtype == np.uint8 and x.offset != 128:
        raise CompileError(f"node {n.name!r} (maxpool): a uint8 tensor stored as is compares as signed on the VXM; "
                           f"pool int8 values, or uint8 ones a requantize produced")
    a = n.attrs
    kh, kw = a["kernel"]
    hw = t.shape[2:]
    pad = -128 & 0xFF                               # the stored minimum (int8, or uint8 stored with offset 128)
    taps = [gather.pool_words(x.layout, hw, (i, j), a["strides"], a["pads"], a["dilations"])
            for i in range(kh) for j in range(kw)]
    L = m.config.lanes
    x_all, x = x, _on_side(x, _home_side(m, x), m)
    level = []                      # taps read from x's two copies on one side, MAX'ed in pairs
    for k in range(0, len(taps), 2):
        last = len(taps) <= 2
        name = n.outputs[0] if last else f"{n.outputs[0]}.max{k // 2}"
        out = Placed(name, t.dtype, Layout(t.shape, 1, L), offset=x.offset)
        if k + 1 < len(taps):
            kernels.elementwise(m, "max", [x, x], out, kernels.VXM_TYPE[1], n.name, words=taps[k:k + 2], pads=[pad, pad])
        else:                       # an odd tap (or a 1x1 window): MAX with the minimum
            kernels.elementwise(m, "max", [x], out, kernels.VXM_TYPE[1], n.name, imm=-128, words=[taps[k]], pads=[pad])
        level.append(out)
    while len(level) > 1:           # then the partial maxima, read in order, in pairs
        nxt = []
        for k in range(0, len(level) - 1, 2):
            name = n.outputs[0] if len(level) == 2 else f"{level[k].name}+"
            out = Placed(name, t.dtype, Layout(t.shape, 1, L), offset=x.offset)
            kernels.elementwise(m, "max", level[k:k + 2], out, kernels.VXM_TYPE[1], n.name)
            for p in level[k:k + 2]:
                m.release(p)
            nxt.append(out)
        level = nxt + level[len(level) - len(level) % 2:]
    x_all.last_read = max(x_all.last_read, x.last_read)
    placed[n.outputs[0]] = level[0]


def _on_side(x: Placed, side: int, m) -> Placed:
    """x seen through its copies in the two slices of `side` nearest the VXM only (a kernel picks
    among the copies it is given); its reads are x's (the caller carries last_read back)."""
    keep = set(m.side_mems[side][:2])
    return Placed(x.name, x.dtype, x.layout, offset=x.offset, pad=x.pad, ready=x.ready, host=x.host,
                  copies=[c for c in x.copies if c.tile_lo == 0 and c.tile_hi is None and len(c.planes) == 1
                          and c.planes[0][0] in keep])


def _home_side(m, x: Placed) -> int:
    """The side of the VXM where x has copies in both slices nearest it (a chip result has them; a
    host value gets them), so two taps of x stream at once from one side and the other side is free
    for the result."""
    held = {c.planes[0][0] for c in x.copies if c.tile_lo == 0 and c.tile_hi is None and len(c.planes) == 1}
    for side in (kernels.W, kernels.E):
        if set(m.side_mems[side][:2]) <= held:
            return side
    if not x.host:
        raise AssertionError(f"{x.name}: a chip result without two copies on one side")
    side = m.lighter_side()
    for p in m.side_mems[side][:2]:
        m.host_copy(x, [p])
    return side


def lower_reshape(m, graph: Graph, n: Node, value, placed, consumers, keep) -> None:
    """A reshape or transpose moves no data: either the words stay as they are (same pixel rows and
    lanes, e.g. (N, C, 1, 1) -> (N, C), or a transpose of size-1 axes), or an image flattened into a
    MatMul/Gemm (directly, or after a transpose to NHWC), whose addressing reads it
    (gather.flatten_tile). Anything else would move elements between lanes and is refused."""
    src = placed[n.inputs[0]] if n.inputs[0] in placed else value(n.inputs[0])
    t_in, t_out = graph.types[n.inputs[0]], graph.types[n.outputs[0]]
    users = consumers.get(n.outputs[0], [])
    out = n.outputs[0]
    if isinstance(src, View):           # a transposed image, flattened
        if n.op == "reshape" and len(t_out.shape) == 2 and t_out.shape[0] == src.src.layout.shape[0] \
                and _feeds_weights(graph, out, users, keep):
            placed[out] = View(src.src, out, src.order)
            return
        raise CompileError(f"node {n.name!r} ({n.op}): {n.inputs[0]!r} is a transposed image, which the chip reads "
                           f"only flattened into MatMul/Gemm weights")
    x = src
    L = m.config.lanes
    nbytes = NBYTES.get(t_out.dtype, 1)
    lin, lout = Layout(t_in.shape, nbytes, L), Layout(t_out.shape, nbytes, L)
    ids = np.arange(int(np.prod(t_in.shape, dtype=np.int64))).reshape(t_in.shape)
    moved = ids.transpose(n.attrs["perm"]) if n.op == "transpose" else ids.reshape(t_out.shape)
    if np.array_equal(_word_image(lin, ids), _word_image(lout, moved)):
        x.pinned = True                 # two names, one set of words: neither is released
        placed[out] = Placed(out, x.dtype, lout, offset=x.offset, pad=x.pad, copies=x.copies, ready=x.ready,
                             host=x.host, pinned=True)
        return
    if n.op == "reshape" and lin.image and len(t_out.shape) == 2 and t_out.shape[0] == t_in.shape[0] \
            and _feeds_weights(graph, out, users, keep):
        x.pinned = True                 # read by the MatMul through the view, after the reshape's turn
        placed[out] = View(x, out)
        return
    if n.op == "transpose" and lin.image and n.attrs["perm"] == (0, 2, 3, 1) and out not in keep and users and all(
            u.op == "reshape" for u in users):
        x.pinned = True                 # NHWC: the order the chip holds, for the flatten after it
        placed[out] = View(x, out, "hwc")
        return
    what = "transposes" if n.op == "transpose" else "reshapes"
    raise CompileError(f"node {n.name!r} ({n.op}): {list(t_in.shape)} -> {list(t_out.shape)} would move elements "
                       f"between lanes; the chip {what} when the words stay in place, or flattens an image "
                       f"(N, C, H, W) -> (N, C*H*W), or its NHWC transpose, into MatMul/Gemm weights")


def _word_image(lay: Layout, values: np.ndarray) -> np.ndarray:
    """The words [word, lane] a tensor of this layout holding `values` (element ids) occupies, -1 in
    padding: equal images mean the same elements in the same words and lanes."""
    L = lay.lanes
    full = np.full((lay.nb, lay.rows_p, lay.tiles * L), -1, np.int64)
    full[:, :lay.rows, :lay.cols] = lay.matrix(values)
    return full.reshape(lay.nb, lay.rows_p, lay.tiles, L).transpose(0, 2, 1, 3).reshape(-1, L)


def _feeds_weights(graph: Graph, value: str, users, keep) -> bool:
    """Whether every reader of `value` is a MatMul taking it as A against constant weights."""
    return bool(users) and value not in keep and all(
        u.op == "matmul" and u.inputs[0] == value and u.inputs[1] in graph.constants for u in users)


def lower_join(m, graph: Graph, n: Node, value, placed) -> None:
    """Concat along the channels (the last axis, or axis 1 of an image): each input is copied into
    its column tiles of the result by an identity pass through the VXM (MAX with the type's
    minimum), so every input but the last must fill whole tiles of `lanes` channels."""
    t = graph.types[n.outputs[0]]
    ins = [operand(n, i, value, placed) for i in n.inputs]
    L = m.config.lanes
    nbytes = NBYTES.get(t.dtype)
    if n.attrs["axis"] != channel_axis(t.shape) or Layout(t.shape, 1, L).nb != 1 or nbytes not in (1, 2):
        raise CompileError(f"node {n.name!r} (concat): joins 8- or 16-bit tensors along the channels (the last "
                           f"axis, or axis 1 of an image) without batch axes; axis {n.attrs['axis']} of "
                           f"{list(t.shape)} {t.dtype} is not")
    if len({x.offset for x in ins}) != 1:
        raise CompileError(f"node {n.name!r} (concat): its inputs are stored with different offsets (a uint8 "
                           f"requantize result and a uint8 value stored as is)")
    widths = [graph.types[i].shape[channel_axis(t.shape)] for i in n.inputs]
    if any(w % L for w in widths[:-1]):
        raise CompileError(f"node {n.name!r} (concat): inputs of {widths} channels; each but the last must be a "
                           f"multiple of {L} (whole column tiles: the words are copied, not shifted across lanes)")
    out = Placed(n.outputs[0], t.dtype, Layout(t.shape, nbytes, L), offset=ins[0].offset)
    out.copies = m.result_copies(out, out.layout.words(), m.lighter_side())
    t0 = 0
    for x, w in zip(ins, widths):       # its tiles of the result: the same words at an offset
        part = Placed(out.name, t.dtype, x.layout, offset=out.offset, free_after=out.free_after,
                      copies=out.copies_from_tile(t0))
        kernels.elementwise(m, "max", [x], part, kernels.VXM_TYPE[nbytes], n.name, imm=-(1 << (8 * nbytes - 1)))
        out.ready = max(out.ready, part.ready)
        t0 += w // L
    placed[n.outputs[0]] = out
