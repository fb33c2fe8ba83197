"""Shared fixtures. Tests import helpers from ``training_helpers`` (tests/ is on sys.path)."""

import pytest

from training_helpers import one_thread


@pytest.fixture
def single_thread():
    """One intra-op thread for the test: tiny models on a shared 2-core machine run many
    times faster without OpenMP threads spinning against each other."""
    with one_thread():
        yield
