"""Each package's ``__all__`` names only what it really exports, and nothing is missing."""

import importlib

import pytest


@pytest.mark.parametrize("name", ["monitor", "monitor.core", "monitor.alarm_engine", "monitor.store",
                                  "monitor.config", "monitor.ring_buffer", "devices.source"])
def test_all_matches_exports(name):
    module = importlib.import_module(name)
    for export in module.__all__:
        assert hasattr(module, export), f"{name}.__all__ names missing {export}"


def test_monitor_exports_every_public_record_type():
    import monitor
    import monitor.records

    assert set(monitor.records.__all__) <= set(monitor.__all__)
