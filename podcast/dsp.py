"""Sample-rate conversion shared by the voice and mix stages.

numpy only: scipy.signal would do, but importing it costs ~1.5 s per run, a
large share of a quick regenerate.
"""

from __future__ import annotations

import math

import numpy as np


def _fast_len(n: int, unit: int) -> int:
    """Smallest multiple of ``unit`` >= n whose cofactor is 2,3,5-smooth (quick FFT sizes)."""
    k = -(-n // unit)
    while True:
        r = k
        for p in (2, 3, 5):
            while r % p == 0:
                r //= p
        if r == 1:
            return k * unit
        k += 1


def resample(x: np.ndarray, src: int, dst: int) -> np.ndarray:
    """``x`` (samples × channels) from ``src`` to ``dst`` Hz, by band-limited FFT resampling
    about a second at a time, so the FFT work space stays small whatever the segment's length
    (the padded input and the output are whole-length). Each block is transformed with ≥100 ms
    of real neighbouring audio (zeros
    past the ends) on both sides and only its middle kept, so the FFT's wrap-around lands in
    the discarded context (its error there is below -80 dB). Block edges fall on whole
    multiples of src/gcd input samples, so the output grid is exact."""
    g = math.gcd(src, dst)
    unit_in, unit_out = src // g, dst // g
    ctx = -(-(src // 10) // unit_in) * unit_in
    span = _fast_len(src + 2 * ctx, unit_in)  # one FFT: a block plus its context, a quick size
    block = span - 2 * ctx
    n_out = int(round(len(x) * dst / src))
    blocks = -(-len(x) // block)
    padded = np.zeros((blocks * block + 2 * ctx, x.shape[1]), np.float32)
    padded[ctx : ctx + len(x)] = x
    span_out, block_out, ctx_out = span // unit_in * unit_out, block // unit_in * unit_out, ctx // unit_in * unit_out
    out = np.empty((blocks * block_out, x.shape[1]), np.float32)
    out_spec = np.zeros((span_out // 2 + 1, x.shape[1]), np.complex128)
    for i in range(blocks):
        spec = np.fft.rfft(padded[i * block : i * block + span], axis=0)
        k = min(len(spec), len(out_spec))
        out_spec[:k] = spec[:k]
        y = np.fft.irfft(out_spec, span_out, axis=0)
        out[i * block_out : (i + 1) * block_out] = y[ctx_out : ctx_out + block_out] * (span_out / span)
    return out[:n_out]
