"""MEM addressing: which word of a tensor each element of a stream reads.

A kernel streams words: a GEMM the rows of one K tile of A, an elementwise op its operands.
Usually they are consecutive words of one tensor. A convolution reads them at shifted pixel
addresses, a strided one or a pooling window at strided ones, a flattened image feeding a
MatMul one pixel of each image, a broadcast operand the same word again, and padding a word
that holds the pad value. The functions here give a stream's source words as an array (word
index in the tensor's layout, `PAD` for padding); `runs` cuts the array into the fewest READs
it finds, each (first element, count, word, stride), since a READ walks addr, addr + stride, ...
Nothing moves through the host and no copy is made: the im2col of a convolution exists only
as READ addresses (docs/COMPILER.md, "Convolutions").
"""
from __future__ import annotations

import numpy as np

from .layout import Layout

PAD = -1


def runs(words: np.ndarray) -> list[tuple[int, int, int, int]]:
    """(start, count, word or PAD, stride) covering `words` in order. Padding is one READ of the
    pad word with stride 0 per stretch; elsewhere greedy arithmetic runs, except that a run of
    two is cut to one when the next element starts a longer run (a row's last pixel, then the
    next row)."""
    w = np.asarray(words, np.int64)
    n = len(w)
    if n == 0:
        return []
    d = np.diff(w)
    if not (w == PAD).any() and (n == 1 or (d == d[0]).all()):
        return [(0, n, int(w[0]), int(d[0]) if n > 1 else 1)]
    # same[k]: the length of the stretch of equal differences starting at d[k] (both ends real words)
    real = w != PAD
    ok = real[:-1] & real[1:]
    same = np.zeros(n, np.int64)
    for k in range(n - 2, -1, -1):
        if ok[k]:
            same[k] = 1 + (same[k + 1] if k + 1 < n - 1 and ok[k + 1] and d[k + 1] == d[k] else 0)
    out = []
    i = 0
    while i < n:
        if not real[i]:
            j = i
            while j < n and not real[j]:
                j += 1
            out.append((i, j - i, PAD, 0))
            i = j
            continue
        length = 1 + same[i]
        if length == 2 and i + 1 < n and same[i + 1] >= 2:
            length = 1
        out.append((i, int(length), int(w[i]), int(d[i]) if length > 1 else 1))
        i += int(length)
    return out


def _window(x: Layout, out_hw: tuple[int, int], tap: tuple[int, int], strides, pads, dilations) -> np.ndarray:
    """Per output pixel (n, oh, ow, in order): the input pixel row under kernel tap (kh, kw), or PAD."""
    n, _, h, w = x.shape
    oh, ow = out_hw
    ih = np.arange(oh) * strides[0] - pads[0] + tap[0] * dilations[0]
    iw = np.arange(ow) * strides[1] - pads[1] + tap[1] * dilations[1]
    inside = ((ih >= 0) & (ih < h))[:, None] & ((iw >= 0) & (iw < w))[None, :]
    pix = ih[:, None] * w + iw[None, :]
    per_image = np.where(inside, pix, PAD)
    base = (np.arange(n) * h * w)[:, None, None]
    return np.where(per_image[None] == PAD, PAD, per_image[None] + base).reshape(-1)


def conv_tile(x: Layout, out_hw, kernel, strides, pads, dilations, kt: int) -> np.ndarray:
    """A convolution's A for K tile kt = (kh * KW + kw) * tiles + ct: per output pixel, the word
    of input pixel (oh * s - pad + kh * d, ow * s - pad + kw * d), channel tile ct, or PAD."""
    tap, ct = divmod(kt, x.tiles)
    pix = _window(x, out_hw, divmod(tap, kernel[1]), strides, pads, dilations)
    return np.where(pix == PAD, PAD, x.word(0, ct, 0) + pix)


def pool_words(x: Layout, out_hw, tap, strides, pads, dilations) -> np.ndarray:
    """A pooling window's tap as an elementwise operand: per output word (tile, pixel), the word
    of the input pixel under the tap in the same channel tile, or PAD."""
    pix = _window(x, out_hw, tap, strides, pads, dilations)
    return np.concatenate([np.where(pix == PAD, PAD, x.word(0, t, 0) + pix) for t in range(x.tiles)])


def flatten_tile(x: Layout, kt: int) -> np.ndarray:
    """A flattened image (N, C*H*W) as a MatMul's A, K tile kt = pixel * tiles + ct: per image, the
    word of that pixel and channel tile (the weights' rows are reordered to match, compile.py)."""
    n, _, h, w = x.shape
    p, ct = divmod(kt, x.tiles)
    return x.word(0, ct, 0) + np.arange(n, dtype=np.int64) * h * w + p


def broadcast(src: Layout, out: Layout) -> np.ndarray | None:
    """An elementwise operand of shape `src` (as many axes as `out`) broadcast to `out`: per output
    word, the source word (a repeated row is a READ with stride 0). None when the channels would
    have to be broadcast across the lanes, which addressing cannot do."""
    if len(src.shape) != len(out.shape) or src.cols != out.cols:
        return None
    ids = np.arange(int(np.prod(src.shape, dtype=np.int64))).reshape(src.shape)
    row_of = np.empty(ids.size, np.int64)                   # element -> its row (batch-major) in src
    row_of[src.matrix(ids).reshape(-1)] = np.repeat(np.arange(src.nb * src.rows), src.cols)
    first = out.matrix(np.broadcast_to(ids, out.shape))[:, :, 0]     # the source of each output row's lane 0
    sb, sr = np.divmod(row_of[first], src.rows)
    return np.concatenate([(sb[b] * src.tiles + t) * src.rows_p + sr[b]
                           for b in range(out.nb) for t in range(out.tiles)])
