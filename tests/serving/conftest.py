"""Server fixtures shared by the serving tests."""

from __future__ import annotations

import pytest


@pytest.fixture(scope="module")
def clf():
    from serving_factories import classifier

    return classifier()
