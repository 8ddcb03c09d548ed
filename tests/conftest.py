"""Fixtures every test folder can use: free loopback ports, one-call HTTP, ``hookaido run``
subprocesses. The classes behind them live in ``tests/support``."""

import pytest

from .support.loopback import Ports, free_port, free_ports, http
from .support.process import HookaidoProcesses


@pytest.fixture
def hookaido_process(tmp_path):
    """Factory: ``hookaido_process(config_text, args=(), env=None, name="node")``; stops all.

    Each process runs in ``tmp_path / name``.
    """
    processes = HookaidoProcesses(lambda name: tmp_path / name)
    yield processes
    processes.stop_all()


@pytest.fixture(scope="module")
def module_hookaido_process(tmp_path_factory):
    """Like ``hookaido_process`` but shared by the tests of one module."""
    processes = HookaidoProcesses(tmp_path_factory.mktemp)
    yield processes
    processes.stop_all()


@pytest.fixture(scope="module")
def module_ports() -> Ports:
    return Ports.allocate()


@pytest.fixture
def ports() -> Ports:
    """Free loopback ports for ``ingress``, ``pull`` and ``admin``."""
    return Ports.allocate()


@pytest.fixture(name="http")
def http_fixture():
    """``http(method, url, body=None, headers=None, json_body=None)`` -> ``Reply``."""
    return http


@pytest.fixture(name="free_port")
def free_port_fixture():
    """``free_port()``: a currently unused TCP port on 127.0.0.1."""
    return free_port


@pytest.fixture(name="free_ports")
def free_ports_fixture():
    """``free_ports(n)``: n distinct TCP ports on 127.0.0.1 that nothing listens on now."""
    return free_ports
