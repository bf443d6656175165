"""Configuration from the environment and the command line."""

from __future__ import annotations

import pytest

from spotify_simulator import Mode, SimulatorConfig
from spotify_simulator.__main__ import build_parser, config_from, main


def test_defaults_are_the_documented_dev_app() -> None:
    config = SimulatorConfig()
    assert (config.client_id, config.client_secret) == (
        "echostats-dev-client",
        "echostats-dev-secret",
    )
    assert config.host == "127.0.0.1"
    assert config.mode is Mode.EXTENDED
    assert config.access_token_ttl_s == 3600
    assert config.auth_code_ttl_s == 600
    assert config.rate_limit is None


def test_from_env() -> None:
    config = SimulatorConfig.from_env(
        {
            "SIMULATOR_HOST": "::1",
            "SIMULATOR_PORT": "9123",
            "SIMULATOR_CLIENT_ID": "cid",
            "SIMULATOR_CLIENT_SECRET": "csecret",
            "SIMULATOR_MODE": "Development",
            "SIMULATOR_REDIRECT_URIS": "http://127.0.0.1/cb, https://x.example/cb",
            "SIMULATOR_TOKEN_TTL": "60",
            "SIMULATOR_RATE_LIMIT": "25",
        }
    )
    assert config.host == "::1" and config.port == 9123
    assert (config.client_id, config.client_secret) == ("cid", "csecret")
    assert config.mode is Mode.DEVELOPMENT
    assert config.redirect_uris == ("http://127.0.0.1/cb", "https://x.example/cb")
    assert config.access_token_ttl_s == 60
    assert config.rate_limit == 25


def test_from_env_rejects_bad_values() -> None:
    with pytest.raises(ValueError):
        SimulatorConfig.from_env({"SIMULATOR_MODE": "sandbox"})
    with pytest.raises(ValueError):
        SimulatorConfig.from_env({"SIMULATOR_PORT": "70000"})


def test_cli_flags_override_env() -> None:
    base = SimulatorConfig.from_env({"SIMULATOR_PORT": "9000", "SIMULATOR_MODE": "development"})
    args = build_parser().parse_args(
        [
            "--port",
            "0",
            "--mode",
            "extended",
            "--redirect-uri",
            "https://a.example/cb",
            "--rate-limit",
            "0",
            "--client-id",
            "other",
        ]
    )
    config = config_from(args, base)
    assert config.port == 0
    assert config.mode is Mode.EXTENDED
    assert config.redirect_uris == ("https://a.example/cb",)
    assert config.rate_limit is None
    assert config.client_id == "other"
    assert config.client_secret == "echostats-dev-secret"


def test_main_refuses_non_loopback_host(capsys) -> None:
    assert main(["--host", "0.0.0.0", "--port", "0"]) == 2
    assert "non-loopback" in capsys.readouterr().err


def test_play_knobs_from_env_and_flags() -> None:
    assert SimulatorConfig().recent_window is None
    assert SimulatorConfig().seeded_plays == 30
    config = SimulatorConfig.from_env(
        {"SIMULATOR_RECENT_WINDOW": "50", "SIMULATOR_SEEDED_PLAYS": "5"}
    )
    assert (config.recent_window, config.seeded_plays) == (50, 5)
    assert SimulatorConfig.from_env({"SIMULATOR_RECENT_WINDOW": "0"}).recent_window is None
    overridden = config_from(build_parser().parse_args(["--recent-window", "0"]), config)
    assert overridden.recent_window is None
    assert (
        config_from(build_parser().parse_args(["--recent-window", "7"]), config).recent_window == 7
    )
    with pytest.raises(ValueError):
        SimulatorConfig(recent_window=0)
