"""Tests of the `make dev` entry point that need no running stack."""

from __future__ import annotations

from pathlib import Path

import pytest

from echostats_devstack import LocalStack, StackPorts
from echostats_devstack.__main__ import _banner, main
from echostats_devstack.paths import find_repo_root


def test_help_exits_cleanly(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as caught:
        main(["--help"])
    assert caught.value.code == 0
    assert "--run-dir" in capsys.readouterr().out


def test_banner_shows_the_urls_and_the_dev_login(tmp_path: Path) -> None:
    stack = LocalStack(tmp_path, ports=StackPorts.development({}), environment="development")
    banner = _banner(stack, ".devdata/logs", 4.2)
    assert "http://localhost:8000\n" in banner
    assert "http://localhost:8000/api/docs" in banner
    assert "curl -s http://localhost:8000/api/v1/auth/dev-login" in banner
    assert "mongodb://127.0.0.1:27017/?directConnection=true" in banner
    assert "Ctrl-C" in banner


def test_repo_root_is_the_directory_with_uv_lock() -> None:
    root = find_repo_root()
    assert (root / "uv.lock").is_file()
    assert (root / "tools" / "devstack").is_dir()
