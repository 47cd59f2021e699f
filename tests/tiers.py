"""The test tiers' markers, without the package's imports (a fast import for the
subprocesses of tests/test_tiers.py); tests/conftest.py applies them."""

from __future__ import annotations

import pytest

SAMPLING_MARKERS = ("mcmc", "slow")
# A test with none of these is in the unit tier: `pytest -m unit` (`make test-fast`).
NON_UNIT_MARKERS = (*SAMPLING_MARKERS, "browser")


@pytest.hookimpl(tryfirst=True)
def pytest_collection_modifyitems(config, items):
    """Mark every test without ``mcmc``/``slow``/``browser`` as ``unit``, before ``-m``
    deselects (``tryfirst``), so ``pytest -m unit`` is ``-m "not slow and not mcmc and not
    browser"``. A test marked ``unit`` by hand as well as one of those is a contradiction."""
    for item in items:
        other = [m for m in NON_UNIT_MARKERS if item.get_closest_marker(m)]
        if not other:
            item.add_marker(pytest.mark.unit)
        elif item.get_closest_marker("unit"):
            raise pytest.UsageError(f"{item.nodeid}: marked unit and {other[0]}; "
                                    "a unit test does not sample or need a browser")
