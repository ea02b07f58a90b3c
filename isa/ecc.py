"""SECDED (extended Hamming) code for one SRAM word.

Stored word layout: ``data | check << D | parity << (D + r)`` where D is the
data width (lanes * 8), r the Hamming check bits and `parity` the overall
parity over data and check bits. Data bit i sits at Hamming position
`positions[i]` (the i-th position >= 3 that is not a power of two); check bit j
covers every data bit whose position has bit j set.

Decoding (identical in RTL, golden model and host driver):

====================  =============  ==========================================
syndrome              overall parity  result
====================  =============  ==========================================
0                     even           no error
any                   odd            single error: flip the bit at `syndrome`
                                     (0 = the parity bit, 2^j = check bit j);
                                     a syndrome naming no bit is uncorrectable
nonzero               even           double error: uncorrectable, data passed
                                     through unchanged
====================  =============  ==========================================
"""
from __future__ import annotations

from dataclasses import dataclass
from enum import IntEnum
from functools import cached_property, lru_cache

import numpy as np


class EccStatus(IntEnum):
    OK = 0
    CORRECTED = 1
    UNCORRECTABLE = 2


@dataclass(frozen=True)
class SecdedCode:
    data_bits: int

    @cached_property
    def check_bits(self) -> int:
        r = 1
        while (1 << r) < self.data_bits + r + 1:
            r += 1
        return r

    @property
    def stored_bits(self) -> int:
        """Bits of ECC stored beside the data (check bits + overall parity)."""
        return self.check_bits + 1

    @property
    def word_bits(self) -> int:
        return self.data_bits + self.stored_bits

    @cached_property
    def positions(self) -> tuple[int, ...]:
        out, p = [], 3
        while len(out) < self.data_bits:
            if p & (p - 1):
                out.append(p)
            p += 1
        return tuple(out)

    @cached_property
    def check_masks(self) -> tuple[int, ...]:
        """check_masks[j]: data bits covered by check bit j, as an integer mask."""
        masks = [0] * self.check_bits
        for i, pos in enumerate(self.positions):
            for j in range(self.check_bits):
                if pos >> j & 1:
                    masks[j] |= 1 << i
        return tuple(masks)

    # ---- scalar (int) interface: used by the assembler, driver and tests ----
    def encode(self, data: int) -> int:
        """Return the stored ECC bits (check | parity << r) for `data`."""
        check = 0
        for j, m in enumerate(self.check_masks):
            check |= ((data & m).bit_count() & 1) << j
        parity = (data.bit_count() + check.bit_count()) & 1
        return check | parity << self.check_bits

    def decode(self, data: int, ecc: int) -> tuple[int, EccStatus]:
        r = self.check_bits
        check, parity = ecc & ((1 << r) - 1), ecc >> r & 1
        syndrome = check ^ (self.encode(data) & ((1 << r) - 1))
        odd = (data.bit_count() + check.bit_count() + parity) & 1
        if not odd:
            return data, (EccStatus.OK if syndrome == 0 else EccStatus.UNCORRECTABLE)
        if syndrome == 0 or syndrome & (syndrome - 1) == 0:
            return data, EccStatus.CORRECTED        # parity or check bit flipped
        try:
            i = self._index_of_position()[syndrome]
        except KeyError:
            return data, EccStatus.UNCORRECTABLE
        return data ^ (1 << i), EccStatus.CORRECTED

    def _index_of_position(self) -> dict[int, int]:
        return _index_of_position(self.data_bits)

    # ---- one stored word as bytes: the golden model's per-access path -----------
    def encode_word(self, word: np.ndarray) -> int:
        return self.encode(int.from_bytes(np.asarray(word, np.uint8).tobytes(), "little"))

    def decode_word(self, word: np.ndarray, ecc: int) -> tuple[np.ndarray, EccStatus]:
        data, status = self.decode(int.from_bytes(np.asarray(word, np.uint8).tobytes(), "little"), int(ecc))
        return np.frombuffer(data.to_bytes(self.data_bits // 8, "little"), np.uint8).copy(), status

    # ---- vector (numpy) interface: used by the golden model -----------------
    def encode_bytes(self, words: np.ndarray) -> np.ndarray:
        """words: uint8 [n, D/8] -> stored ECC bits as int64 [n]."""
        bits = np.unpackbits(np.asarray(words, np.uint8), axis=-1, bitorder="little").astype(np.int64)
        H = _h_matrix(self.data_bits)
        check = (bits @ H.T) & 1                               # [n, r]
        weights = 1 << np.arange(self.check_bits, dtype=np.int64)
        check_v = check @ weights
        parity = (bits.sum(-1) + check.sum(-1)) & 1
        return check_v | parity << self.check_bits

    def decode_bytes(self, words: np.ndarray, ecc: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Vector decode: returns (corrected uint8 [n, D/8], EccStatus codes int [n])."""
        words = np.array(words, np.uint8, copy=True)
        ecc = np.asarray(ecc, np.int64)
        status = np.zeros(len(words), np.int64)
        expect = self.encode_bytes(words)
        r = self.check_bits
        rmask = (1 << r) - 1
        syndrome = (expect ^ ecc) & rmask
        bits_ones = np.unpackbits(words, axis=-1, bitorder="little").sum(-1, dtype=np.int64)
        odd = (bits_ones + _popcount(ecc)) & 1
        status[(odd == 0) & (syndrome != 0)] = EccStatus.UNCORRECTABLE
        idx = _index_of_position(self.data_bits)
        for n in np.nonzero(odd)[0]:
            s = int(syndrome[n])
            if s == 0 or s & (s - 1) == 0:
                status[n] = EccStatus.CORRECTED
            elif s in idx:
                i = idx[s]
                words[n, i // 8] ^= np.uint8(1 << (i % 8))
                status[n] = EccStatus.CORRECTED
            else:
                status[n] = EccStatus.UNCORRECTABLE
        return words, status


def _popcount(a: np.ndarray) -> np.ndarray:
    return np.bitwise_count(a.astype(np.int64)).astype(np.int64)


@lru_cache(maxsize=None)
def _index_of_position(data_bits: int) -> dict[int, int]:
    return {p: i for i, p in enumerate(SecdedCode(data_bits).positions)}


@lru_cache(maxsize=None)
def _h_matrix(data_bits: int) -> np.ndarray:
    code = SecdedCode(data_bits)
    pos = np.array(code.positions, np.int64)
    return np.stack([(pos >> j) & 1 for j in range(code.check_bits)]).astype(np.int64)


@lru_cache(maxsize=None)
def code_for(data_bits: int) -> SecdedCode:
    return SecdedCode(data_bits)
