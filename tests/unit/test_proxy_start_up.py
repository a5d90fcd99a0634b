"""The proxy's start-up runs without garbage collections (a tenth of it went to them) and freezes what it made."""

from __future__ import annotations

import gc

import openai_proxy


def test_start_up_runs_without_collections_and_freezes_what_it_made():
    try:
        assert openai_proxy.without_collections(gc.isenabled) is False  # off while starting
        assert gc.isenabled()  # on again for serving
        assert gc.get_freeze_count() > 0
    finally:
        gc.unfreeze()
