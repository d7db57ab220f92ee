"""Fixtures shared across the tree."""

import pytest

from redactor.detection import Detector, default_detector


@pytest.fixture(scope="session")
def detector() -> Detector:
    """The default detector, built once per test session (building it compiles the patterns)."""
    return default_detector()
