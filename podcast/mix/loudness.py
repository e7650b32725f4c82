"""Integrated loudness (ITU-R BS.1770-4 / EBU R128) in numpy, streamed block by block."""

from __future__ import annotations

import math

import numpy as np


def _biquad(fs: int, kind: str, fc: float, q: float, gain_db: float = 0.0) -> tuple[list[float], list[float]]:
    """(b, a) of an RBJ biquad: the two BS.1770 K-weighting filters, re-derived for any rate."""
    a_lin = 10 ** (gain_db / 40)
    w0 = 2 * math.pi * fc / fs
    cw, alpha = math.cos(w0), math.sin(w0) / (2 * q)
    if kind == "shelf":
        sa = 2 * math.sqrt(a_lin) * alpha
        b = [
            a_lin * ((a_lin + 1) + (a_lin - 1) * cw + sa),
            -2 * a_lin * ((a_lin - 1) + (a_lin + 1) * cw),
            a_lin * ((a_lin + 1) + (a_lin - 1) * cw - sa),
        ]
        a = [(a_lin + 1) - (a_lin - 1) * cw + sa, 2 * ((a_lin - 1) - (a_lin + 1) * cw),
             (a_lin + 1) - (a_lin - 1) * cw - sa]
    else:  # high-pass; BS.1770 uses an un-normalised numerator [1, -2, 1]
        b = [1.0, -2.0, 1.0]
        a = [1 + alpha, -2 * cw, 1 - alpha]
    return b, a


def _k_weight_power(sr: int, n: int) -> np.ndarray:
    """|H(f)|^2 of the K-weighting at the rfft bins of an n-point block."""
    z = np.exp(-1j * 2 * np.pi * np.fft.rfftfreq(n, 1 / sr) / sr)
    h = np.ones_like(z)
    for b, a in (
        _biquad(sr, "shelf", 1681.9744509555319, 0.7071752369554193, 3.99984385397),
        _biquad(sr, "hp", 38.13547087613982, 0.5003270373253953),
    ):
        h *= (b[0] + b[1] * z + b[2] * z * z) / (a[0] + a[1] * z + a[2] * z * z)
    return np.abs(h) ** 2


class _Meter:
    """Streaming integrated loudness (BS.1770-4 gating) of (n, channels) float blocks.

    K-weighted power is computed per 100 ms sub-block in the frequency domain
    (Parseval), which needs only numpy and agrees with ffmpeg's ebur128 to a
    few hundredths of a LU on speech; a gating block is 4 sub-blocks.
    """

    def __init__(self, sr: int, channels: int) -> None:
        self.step = sr // 10
        w = _k_weight_power(sr, self.step)
        w[1:] *= 2  # one-sided spectrum: every bin but DC (and Nyquist) counts twice
        if self.step % 2 == 0:
            w[-1] /= 2
        self.weights = w / (self.step * self.step)  # Parseval, then mean over the block
        self.pending = np.zeros((0, channels), np.float32)
        self.subs: list[np.ndarray] = []

    def feed(self, x: np.ndarray) -> None:
        if not len(x):
            return
        buf = np.concatenate([self.pending, x]) if len(self.pending) else x
        n = len(buf) // self.step * self.step
        if n:
            spec = np.fft.rfft(buf[:n].reshape(-1, self.step, buf.shape[1]), axis=1)
            power = spec.real**2 + spec.imag**2
            self.subs.append(np.einsum("bfc,f->b", power, self.weights))
        self.pending = buf[n:].copy()

    def integrated(self) -> float:
        subs = np.concatenate(self.subs) if self.subs else np.zeros(0)
        if len(subs) < 4:
            # Shorter than one gating block: plain mean power of what there is.
            z = float(np.mean(subs)) if len(subs) else 0.0
            return -0.691 + 10 * math.log10(z) if z > 0 else -math.inf
        c = np.cumsum(np.concatenate([[0.0], subs]))
        z = (c[4:] - c[:-4]) / 4
        z = z[z > 10 ** ((-70 + 0.691) / 10)]  # absolute gate, -70 LUFS
        if not len(z):
            return -math.inf
        rel = float(np.mean(z)) * 0.1  # relative gate, -10 LU
        return -0.691 + 10 * math.log10(float(np.mean(z[z > rel])))


def _loudness(x: np.ndarray, sr: int) -> float:
    m = _Meter(sr, x.shape[1])
    for i in range(0, len(x), sr):  # a second at a time: the complex spectra stay small
        m.feed(x[i : i + sr])
    return m.integrated()


# ITU-R BS.1770-4 Annex 2: the order-48 interpolating FIR as 4 phases of 12 taps (x4 oversampling).
_TP_PHASES = np.array([
    [0.0017089843750, 0.0109863281250, -0.0196533203125, 0.0332031250000, -0.0594482421875, 0.1373291015625,
     0.9721679687500, -0.1022949218750, 0.0476074218750, -0.0266113281250, 0.0148925781250, -0.0083007812500],
    [-0.0291748046875, 0.0292968750000, -0.0517578125000, 0.0891113281250, -0.1665039062500, 0.4650878906250,
     0.7797851562500, -0.2003173828125, 0.1015625000000, -0.0582275390625, 0.0330810546875, -0.0189208984375],
    [-0.0189208984375, 0.0330810546875, -0.0582275390625, 0.1015625000000, -0.2003173828125, 0.7797851562500,
     0.4650878906250, -0.1665039062500, 0.0891113281250, -0.0517578125000, 0.0292968750000, -0.0291748046875],
    [-0.0083007812500, 0.0148925781250, -0.0266113281250, 0.0476074218750, -0.1022949218750, 0.9721679687500,
     0.1373291015625, -0.0594482421875, 0.0332031250000, -0.0196533203125, 0.0109863281250, 0.0017089843750],
], np.float32)
_TP_TAPS = _TP_PHASES.shape[1]
_TP_HIST = _TP_TAPS - 1
# No interpolated value can exceed the largest sum of |taps| times the largest |sample| the
# filter sees (≈2.02, +6.1 dB): a block whose neighbourhood stays under the peak so far divided
# by that cannot raise it, so it is skipped. Speech at -16 LUFS has ≈80 % of blocks like that.
_TP_BOUND = float(np.abs(_TP_PHASES).sum(axis=1).max())
_TP_BLOCK = 64  # samples per block: small enough to skip most, large enough for numpy
_TP_STEPS = [_TP_PHASES[:, k].reshape(4, 1, 1).copy() for k in range(_TP_TAPS)]


class _TruePeak:
    """Streaming true peak (BS.1770-4 Annex 2: x4 oversampling) of (n, channels) float blocks.

    Exact, but only the blocks of ``_TP_BLOCK`` samples that could raise the peak so far are
    interpolated (see ``_TP_BOUND``); their windows are gathered so that every multiply-add
    runs over (4 phases, block offset, candidate blocks) at once.
    """

    def __init__(self, channels: int) -> None:
        self.history = np.zeros((_TP_HIST, channels), np.float32)
        self.peak = 0.0

    def feed(self, x: np.ndarray) -> None:
        n = len(x)
        if not n:
            return
        b = _TP_BLOCK
        nb = -(-n // b)
        buf = np.zeros((_TP_HIST + nb * b, x.shape[1]), np.float32)  # history, x, zero padding
        buf[:_TP_HIST] = self.history
        buf[_TP_HIST : _TP_HIST + n] = x
        for c in range(buf.shape[1]):
            col = np.ascontiguousarray(buf[:, c])
            blocks = col[_TP_HIST:].reshape(nb, b)
            block_peak = np.maximum(blocks.max(axis=1), -blocks.min(axis=1))
            self.peak = max(self.peak, float(block_peak.max()))  # a true peak is never below a sample
            # Block i's outputs read its own samples and the _TP_HIST before it.
            quiet = self.peak / _TP_BOUND
            loud = block_peak > quiet
            before = np.empty(nb, bool)
            before[0] = float(np.abs(col[:_TP_HIST]).max()) > quiet
            before[1:] = loud[:-1]
            todo = np.flatnonzero(loud | before)
            if len(todo):
                windows = np.lib.stride_tricks.sliding_window_view(col, b + _TP_HIST)[::b]
                w = np.ascontiguousarray(windows[todo].T)  # (offset, block): long rows for numpy
                acc = np.empty((4, b, len(todo)), np.float32)
                tmp = np.empty_like(acc)
                # y[p, j] = sum_k h[p, k] * x[j - k], for the four phases at once.
                np.multiply(_TP_STEPS[0], w[_TP_HIST:], out=acc)
                for k in range(1, _TP_TAPS):
                    np.multiply(_TP_STEPS[k], w[_TP_HIST - k : _TP_HIST - k + b], out=tmp)
                    acc += tmp
                if todo[-1] == nb - 1:  # the padding's outputs depend on samples not yet seen
                    acc[:, n - (nb - 1) * b :, -1] = 0
                self.peak = max(self.peak, float(acc.max()), float(-acc.min()))
        self.history = buf[n : n + _TP_HIST].copy()

    def dbfs(self) -> float:
        """The true peak so far in dBTP (the filter's tail flushed with silence)."""
        self.feed(np.zeros_like(self.history))
        return 20 * math.log10(self.peak) if self.peak > 0 else -math.inf
