"""Shared fixtures.

The package is imported from this checkout (``python/flashprefill``), with
the library from ``$FLASHPREFILL_LIBRARY`` or the checkout's ``build/lib``.
``FLASHPREFILL_TEST_INSTALLED=1`` tests the installed copy instead (and its
bundled library).
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))  # reference.py
if os.environ.get("FLASHPREFILL_TEST_INSTALLED") != "1":
    sys.path.insert(0, str(HERE.parent))

import flashprefill  # noqa: E402


def pytest_report_header(config):
    try:
        where = flashprefill.library_path()
    except flashprefill.FlashPrefillError as error:
        where = f"NOT LOADED ({error})"
    return [f"flashprefill: package {Path(flashprefill.__file__).parent}",
            f"flashprefill: library {where}"]


@pytest.fixture
def rng():
    import numpy as np

    return np.random.default_rng(1234)
