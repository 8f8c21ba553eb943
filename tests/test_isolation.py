"""The suite cannot reach the outside world (STYLE.md: sockets to the outside are
blocked), while this machine's servers stay reachable."""

from __future__ import annotations

import socket

import pytest
from pytest_socket import SocketConnectBlockedError


def test_outside_hosts_are_blocked() -> None:
    with (
        pytest.raises(SocketConnectBlockedError),
        pytest.warns(UserWarning, match="192.0.2.1"),
    ):
        socket.create_connection(("192.0.2.1", 443), timeout=1)  # TEST-NET-1


def test_loopback_is_allowed() -> None:
    with socket.create_server(("127.0.0.1", 0)) as server:
        port = server.getsockname()[1]
        with socket.create_connection(("127.0.0.1", port), timeout=5):
            pass
