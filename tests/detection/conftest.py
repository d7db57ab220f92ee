import pytest

from redactor.detection import Detector, default_detector


@pytest.fixture(scope="session")
def detector() -> Detector:
    return default_detector()
