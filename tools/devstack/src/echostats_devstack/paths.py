"""Where things live: the repository root, and the FerretDB launcher binary (built if missing)."""

from __future__ import annotations

import fcntl
import os
import shutil
import subprocess
from pathlib import Path

from echostats_devstack.errors import StackError

FERRETDB_BINARY = Path(".local/bin/ferretdb-launcher")
FERRETDB_SOURCE = Path("tools/ferretdb-launcher")
_FERRETDB_SOURCES = ("main.go", "id_index.go", "go.mod", "go.sum")
# A cold build compiles modernc's transpiled SQLite; give it time on a slow machine.
FERRETDB_BUILD_TIMEOUT_SECONDS = 900


def find_repo_root(start: Path | None = None) -> Path:
    """The nearest directory above `start` (default: this package, then the cwd) holding uv.lock."""
    candidates = [start] if start is not None else [Path(__file__), Path.cwd()]
    for candidate in candidates:
        for directory in [candidate.resolve(), *candidate.resolve().parents]:
            if (directory / "uv.lock").is_file():
                return directory
    raise StackError("could not find the repository root (no uv.lock above this package or cwd)")


def ferretdb_binary(repo_root: Path) -> Path:
    """Path of the FerretDB launcher: DEVSTACK_FERRETDB_BIN, else `.local/bin` in the repo."""
    override = os.environ.get("DEVSTACK_FERRETDB_BIN")
    return Path(override) if override else repo_root / FERRETDB_BINARY


def ensure_ferretdb_binary(repo_root: Path) -> Path:
    """Return the launcher binary, building it with `go build` when missing or stale."""
    binary = ferretdb_binary(repo_root)
    if os.environ.get("DEVSTACK_FERRETDB_BIN"):
        if not binary.is_file():
            raise StackError(f"DEVSTACK_FERRETDB_BIN points to a missing file: {binary}")
        return binary
    source = repo_root / FERRETDB_SOURCE
    if not _needs_build(binary, source):
        return binary
    go = shutil.which("go")
    if go is None:
        raise StackError(
            f"{binary} is missing and Go is not installed to build it; run `make ferretdb`"
        )
    binary.parent.mkdir(parents=True, exist_ok=True)
    # Parallel test sessions may all find the binary missing; one builds, the rest wait.
    with open(binary.parent / ".ferretdb-launcher.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not _needs_build(binary, source):
            return binary
        partial = binary.with_name(binary.name + ".partial")
        env = dict(os.environ, CGO_ENABLED="0")
        result = subprocess.run(  # noqa: S603 - fixed command line
            [go, "build", "-trimpath", "-o", str(partial), "."],
            cwd=source,
            env=env,
            capture_output=True,
            text=True,
            timeout=FERRETDB_BUILD_TIMEOUT_SECONDS,
            check=False,
        )
        if result.returncode != 0:
            raise StackError(
                f"building the FerretDB launcher failed (go build in {source}):\n"
                + (result.stderr or result.stdout)[-4000:]
            )
        # Renamed into place so a concurrent reader never runs a half-written binary.
        partial.replace(binary)
    return binary


def _needs_build(binary: Path, source: Path) -> bool:
    if not binary.is_file():
        return True
    built = binary.stat().st_mtime
    # Same rule as the Makefile target: rebuild when a source is newer than the binary.
    return any(
        (source / name).is_file() and (source / name).stat().st_mtime > built
        for name in _FERRETDB_SOURCES
    )
