"""Fixtures for the dmaplane Python suite.

The suite runs where the module is loaded (a sim guest, a lab host). Tests
that need it take the `dev` fixture, directly or through `guest_ip` and
`pair`, and skip, naming what is missing, when it is not there.
"""
import os
import sys

import pytest

# The package next to this directory, as `make python` builds it in place.
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import dmaplane  # noqa: E402
from dmaplane.device import DEFAULT_PATH  # noqa: E402


def pytest_configure(config):
    config.addinivalue_line(
        "markers", "device: needs /dev/dmaplane (the dev fixture); sim "
        "guests run these (-m device), the host the rest (-m 'not device')")


def pytest_collection_modifyitems(items):
    for item in items:
        if "dev" in getattr(item, "fixturenames", ()):
            item.add_marker(pytest.mark.device)


@pytest.fixture
def dev():
    """An open Device, closed (with all it made) after the test."""
    if not os.path.exists(DEFAULT_PATH):
        pytest.skip(f"{DEFAULT_PATH} is missing: the dmaplane module is not "
                    "loaded (the suite runs in a sim guest)")
    with dmaplane.Device() as d:
        yield d


@pytest.fixture
def guest_ip(dev):
    """This machine's address on an RDMA device, as the C suites find it."""
    ip = os.environ.get("DP_GUEST_IP")
    if not ip or not dev.rdma_devices():
        pytest.skip("no RDMA device and guest address (guests get soft-RoCE "
                    "with --rxe)")
    return ip


@pytest.fixture
def pair(dev, guest_ip):
    """(client, server): two endpoints of `dev` connected to each other."""
    return dev.loopback(guest_ip)
