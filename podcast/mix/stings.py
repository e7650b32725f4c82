"""Intro and outro stings, synthesized (no bundled audio, no licences to track).

Each sting is a soft bell-like arpeggio over a quiet pad chord: raised-cosine
attacks (no clicks), exponential decays, and a fade to true silence at the
end. Pure functions of the sample rate, so every episode sounds the same.
"""

from __future__ import annotations

import numpy as np


# Equal-tempered frequency of a MIDI note.
def _hz(midi: int) -> float:
    return 440.0 * 2.0 ** ((midi - 69) / 12)


def _bell(freq: float, dur: float, sr: int, *, attack: float = 0.025, decay: float = 0.7) -> np.ndarray:
    """One soft mallet note: a few harmonic partials, higher ones dying faster."""
    t = np.arange(int(dur * sr), dtype=np.float64) / sr
    out = np.zeros_like(t)
    for k, amp in ((1, 1.0), (2, 0.35), (3, 0.12), (4, 0.05)):
        if freq * k >= sr / 2 * 0.9:
            break
        out += amp * np.sin(2 * np.pi * freq * k * t) * np.exp(-t * k / decay)
    n_att = max(1, int(attack * sr))
    env = np.ones_like(t)
    env[:n_att] = 0.5 - 0.5 * np.cos(np.pi * np.arange(n_att) / n_att)
    return out * env


def _pad(freqs: list[float], dur: float, sr: int) -> np.ndarray:
    """A quiet sustained chord that swells in and fades out under the notes."""
    t = np.arange(int(dur * sr), dtype=np.float64) / sr
    out = sum(np.sin(2 * np.pi * f * t) + 0.2 * np.sin(4 * np.pi * f * t) for f in freqs)
    env = np.sin(np.pi * np.clip(t / dur, 0, 1)) ** 2
    return np.asarray(out) * env


def _render(notes: list[tuple[float, int, float]], chord: list[int], dur: float, sr: int) -> np.ndarray:
    """notes: (onset s, midi, gain). Peak-normalized to 0.5, faded to silence."""
    n = int(dur * sr)
    out = 0.25 * _pad([_hz(m) for m in chord], dur, sr)[:n]
    for onset, midi, gain in notes:
        start = int(onset * sr)
        note = gain * _bell(_hz(midi), dur - onset, sr)
        out[start : start + len(note)] += note[: n - start]
    fade = int(0.35 * sr)  # always end on digital silence
    out[-fade:] *= np.cos(0.5 * np.pi * np.arange(fade) / fade) ** 2
    out /= np.max(np.abs(out)) or 1.0
    return (0.5 * out).astype(np.float32)


def intro_sting(sr: int) -> np.ndarray:
    """≈2.6 s rising arpeggio (C major add9) landing on a held chord; mono float32."""
    notes = [(0.00, 60, 0.8), (0.14, 64, 0.75), (0.28, 67, 0.75), (0.42, 72, 0.8), (0.62, 74, 0.5)]
    notes += [(0.90, 76, 0.55), (0.90, 67, 0.4)]
    return _render(notes, [48, 55, 64], 2.6, sr)


def outro_sting(sr: int) -> np.ndarray:
    """≈3 s falling arpeggio resolving on a low C; mono float32."""
    notes = [(0.00, 79, 0.6), (0.16, 76, 0.65), (0.32, 72, 0.7), (0.48, 67, 0.7), (0.80, 60, 0.85)]
    notes += [(0.80, 64, 0.45)]
    return _render(notes, [48, 52, 55], 3.0, sr)


# --- the music bed ----------------------------------------------------------------------------

BED_CHORD_S = 4.0  # seconds per chord of the bed's progression
# Cmaj7 - Am7 - Fmaj7 - G6, voiced low and close: a soft pad that stays out of the voice's way.
_BED_CHORDS = [[48, 55, 59, 64], [45, 52, 55, 60], [41, 48, 52, 57], [43, 50, 52, 59]]


def bed(start: int, n: int, sr: int) -> np.ndarray:
    """Samples ``start`` .. ``start + n`` of an endless, looping pad (mono float32, peak ≈ 0.5).

    A pure function of the sample index, so the bed can be made a piece at a time while the
    episode streams: each chord swells in and out with a raised-cosine window that overlaps
    its neighbours by half, so the sum never gaps or clicks.
    """
    t = (start + np.arange(n, dtype=np.float64)) / sr
    out = np.zeros(n)
    period = BED_CHORD_S * len(_BED_CHORDS)
    for k, chord in enumerate(_BED_CHORDS):
        # Chord k sounds from k*T - T/2 to k*T + 3T/2 (mod the loop), loudest at k*T + T/2.
        phase = ((t - k * BED_CHORD_S + BED_CHORD_S / 2) % period) / (2 * BED_CHORD_S)
        on = phase < 1
        if not on.any():
            continue
        w = np.where(on, np.sin(np.pi * np.minimum(phase, 1)) ** 2, 0.0)
        tone = np.zeros(n)
        for i, m in enumerate(chord):
            f = _hz(m)
            tone += np.sin(2 * np.pi * f * t + i) + 0.15 * np.sin(4 * np.pi * f * t + i)
        out += w * tone
    out *= 0.5 / (len(_BED_CHORDS[0]) * 1.15)  # 4 notes of ≤1.15 each at full swell: peak ≤ 0.5
    return out.astype(np.float32)
