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

    # ---- vector (numpy) interface: the golden model, drivers and runners -----------
    # The stored bits (check | parity << r) are linear over GF(2) in the data bits, so a word's
    # ECC is the XOR of one table entry per byte, each built from the scalar `encode`.
    @cached_property
    def _byte_table(self) -> np.ndarray:
        nbytes = self.data_bits // 8
        one_bit = np.array([self.encode(1 << i) for i in range(self.data_bits)], np.int64).reshape(nbytes, 8)
        v = np.arange(256)
        table = np.zeros((nbytes, 256), np.int64)
        for j in range(8):
            table ^= np.where((v >> j) & 1, one_bit[:, j:j + 1], 0)
        return table

    @cached_property
    def _syndrome_bit(self) -> np.ndarray:
        """syndrome -> the data bit it names, or -1."""
        out = np.full(1 << self.check_bits, -1, np.int64)
        for i, p in enumerate(self.positions):
            if p < 1 << self.check_bits:
                out[p] = i
        return out

    def encode_bytes(self, words: np.ndarray) -> np.ndarray:
        """words: uint8 [n, D/8] -> stored ECC bits as int64 [n]."""
        words = np.asarray(words, np.uint8)
        return np.bitwise_xor.reduce(self._byte_table[np.arange(words.shape[1]), words], axis=1)

    def decode_bytes(self, words: np.ndarray, ecc: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Vector decode, exactly as `decode` word by word (stored bits above check | parity are
        ignored): returns (corrected uint8 [n, D/8], EccStatus codes int8 [n]); `words` is
        returned as is (not copied) when no word needed a correction."""
        words, ecc = np.asarray(words, np.uint8), np.asarray(ecc, np.int64)
        r = self.check_bits
        rmask = (1 << r) - 1
        syndrome = (self.encode_bytes(words) ^ ecc) & rmask
        ones = np.bitwise_count(words).sum(axis=1, dtype=np.int64)
        odd = ((ones + np.bitwise_count(ecc & rmask) + ((ecc >> r) & 1)) & 1).astype(bool)
        status = np.zeros(len(words), np.int8)
        if not (odd.any() or syndrome.any()):
            return words, status
        bit = self._syndrome_bit[syndrome]
        pow2 = (syndrome & (syndrome - 1)) == 0        # 0: the parity bit, 2^j: check bit j
        corrected = odd & (pow2 | (bit >= 0))
        status[corrected] = EccStatus.CORRECTED
        status[(odd & ~corrected) | (~odd & (syndrome != 0))] = EccStatus.UNCORRECTABLE
        flip = np.flatnonzero(odd & ~pow2 & (bit >= 0))
        if len(flip):
            words = words.copy()
            b = bit[flip]
            words[flip, b >> 3] ^= (1 << (b & 7)).astype(np.uint8)
        return words, status


@lru_cache(maxsize=None)
def _index_of_position(data_bits: int) -> dict[int, int]:
    return {p: i for i, p in enumerate(SecdedCode(data_bits).positions)}


@lru_cache(maxsize=None)
def code_for(data_bits: int) -> SecdedCode:
    return SecdedCode(data_bits)
