"""gunicorn.conf.py's worker hook: once the app is loaded, the URLconf's modules are imported and
every object then alive is frozen out of the garbage collector's full collections (issue 15)."""

from __future__ import annotations

import gc
import runpy
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def hook():
    conf = runpy.run_path(str(ROOT / "gunicorn.conf.py"))
    gc.unfreeze()
    yield conf["post_worker_init"]
    gc.unfreeze()  # the test process goes on collecting as before


def test_the_worker_hook_freezes_what_the_worker_loaded(hook):
    assert gc.get_freeze_count() == 0
    hook(None)
    # Django, DRF and the project: far more than a few thousand objects leave the collections.
    assert gc.get_freeze_count() > 50_000
