"""Fixtures shared by several test modules."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

import podcast
from podcast.collect import collect
from podcast.models import Item

SAMPLE = Path(podcast.__file__).parent / "sample" / "digest.md"


@pytest.fixture(scope="module")
def sample_items(tmp_path_factory: pytest.TempPathFactory) -> list[Item]:
    """The bundled sample digest's items, collected into a fresh store."""
    return collect([str(SAMPLE)], tmp_path_factory.mktemp("c") / "store.db").items


@pytest.fixture(autouse=True, scope="session")
def _private_user_cache(tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    """Machine-level caches (the ffmpeg probe) go to a temp dir, not the tester's ~/.cache."""
    mp = pytest.MonkeyPatch()
    mp.setenv("XDG_CACHE_HOME", str(tmp_path_factory.mktemp("xdg-cache")))
    yield
    mp.undo()
