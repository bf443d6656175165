"""Unit tests for free-port picking and the StackPorts mapping."""

from __future__ import annotations

import socket

import pytest

from echostats_devstack.ports import StackPorts, pick_free_port, port_is_free


def test_picked_ports_are_distinct_and_bindable() -> None:
    ports = [pick_free_port() for _ in range(50)]
    assert len(set(ports)) == len(ports)
    for port in ports[:5]:
        with socket.socket() as sock:
            sock.bind(("127.0.0.1", port))


def test_port_is_free_sees_a_listener() -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen()
        assert not port_is_free(sock.getsockname()[1])


def test_development_ports_have_fixed_defaults() -> None:
    ports = StackPorts.development({})
    assert (ports.gateway, ports.simulator) == (8000, 8099)
    assert (ports.ferretdb, ports.redis) == (27017, 6379)
    assert ports.get("player-proxy") == 50055
    assert ports.github_stub == 0


def test_development_ports_follow_the_environment() -> None:
    ports = StackPorts.development({"DEVSTACK_GATEWAY_PORT": "8100", "DEVSTACK_REDIS_PORT": "6400"})
    assert ports.gateway == 8100
    assert ports.redis == 6400
    with pytest.raises(ValueError, match="DEVSTACK_FERRETDB_PORT"):
        StackPorts.development({"DEVSTACK_FERRETDB_PORT": "mongo"})


def test_ports_by_component_name() -> None:
    ports = StackPorts()
    ports.set("player-proxy", 41000)
    assert ports.player_proxy == 41000
    assert ports.get("player-proxy") == 41000
    copy = ports.copy()
    copy.metrics["auth"] = 1
    assert ports.metrics == {}
    with pytest.raises(KeyError):
        ports.get("metrics")
    with pytest.raises(KeyError):
        ports.get("mongodb")
