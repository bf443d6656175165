"""Streaming the rows of an uploaded export: one JSON file, or the history files of a zip.

Rows are parsed incrementally with ijson (C backend), one array item at a time, so memory
stays flat whatever the file size; nothing here holds a whole file or a whole list of rows.

Zip safety (an upload is untrusted): before anything is decompressed the central directory
is checked: at most `max_members` entries; no absolute names, drive letters, `..`
components or NUL bytes (zip-slip); no symlinks; no nested archives; no encrypted members;
the declared uncompressed total ≤ `max_total_uncompressed` and each member's declared
ratio ≤ `max_ratio`. Declared sizes can lie, so the same limits are enforced again on the
bytes actually decompressed while reading. Members are never extracted to disk.

Inside a zip only the audio/music history files are read (`Streaming_History_Audio_*`,
`endsong_*`, `StreamingHistory_music_*`, `StreamingHistory<n>`); video, podcast-only,
PDFs and everything else are ignored. Errors name the file (and member) and position.
"""

from __future__ import annotations

import re
import zipfile
import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

import ijson

from ingestion_service.imports.formats import (
    DETECT_HEAD_BYTES,
    UTF8_BOM,
    ImportFileKind,
    InvalidImport,
    UnsafeArchive,
    basename,
    detect_kind,
    kind_from_name,
)

_CHUNK = 64 * 1024
_WHITESPACE = b" \t\r\n"
_DRIVE = re.compile(r"^[A-Za-z]:")
_NESTED_ARCHIVE_SUFFIXES = (".zip", ".jar", ".7z", ".rar", ".tar", ".gz", ".tgz", ".bz2", ".xz")
_S_IFMT = 0o170000
_S_IFLNK = 0o120000


@dataclass(frozen=True)
class ArchiveLimits:
    """Safety limits for export zips (defaults fit real exports with a wide margin)."""

    max_members: int = 1_000
    max_total_uncompressed: int = 4 * 1024**3
    max_ratio: float = 100.0


@dataclass(frozen=True)
class RawRow:
    """One array item of a history file, as parsed; `index` counts from 0 within the file."""

    source_file: str
    index: int
    data: dict[str, Any]


class _Budget:
    """Decompressed bytes left across all members of one archive."""

    def __init__(self, total: int) -> None:
        self.left = total


class _GuardedStream:
    """A binary reader for ijson: replays a prefix, drops a BOM, enforces byte limits."""

    def __init__(
        self,
        raw: IO[bytes],
        *,
        label: str,
        prefix: bytes = b"",
        max_bytes: int | None = None,
        budget: _Budget | None = None,
    ) -> None:
        self._raw = raw
        self._label = label
        self._pending = prefix
        self._max_bytes = max_bytes
        self._budget = budget
        self.position = 0  # bytes handed to the parser (after the BOM)
        self._seen = 0  # bytes read from `raw`, for the limits

    def _read_raw(self, size: int) -> bytes:
        data = self._raw.read(size)
        self._seen += len(data)
        if self._max_bytes is not None and self._seen > self._max_bytes:
            raise UnsafeArchive(
                f"{self._label} decompresses to more than its declared or allowed size; "
                "the archive was refused"
            )
        if self._budget is not None:
            self._budget.left -= len(data)
            if self._budget.left < 0:
                raise UnsafeArchive(
                    "the archive decompresses to more than the allowed total; it was refused"
                )
        return data

    def prime(self) -> bool:
        """Check the stream starts a JSON array; False if it is empty (only whitespace)."""
        head = self._pending
        while len(head) < len(UTF8_BOM) or not head.lstrip(_WHITESPACE):
            chunk = self._read_raw(_CHUNK)
            if not chunk:
                break
            head += chunk
            if head.startswith(UTF8_BOM):
                head = head[len(UTF8_BOM) :]
        if head.startswith(UTF8_BOM):
            head = head[len(UTF8_BOM) :]
        body = head.lstrip(_WHITESPACE)
        if not body:
            return False
        if not body.startswith(b"["):
            raise InvalidImport(
                f"{self._label}: expected a JSON array of plays at the top level, "
                f"found {body[:1].decode('latin-1')!r}"
            )
        self._pending = head
        return True

    def read(self, size: int = -1) -> bytes:
        """Read up to `size` bytes (the file-like interface ijson uses)."""
        if size == 0:
            # ijson probes with read(0) to tell bytes from text: consume nothing.
            return b""
        if self._pending:
            data, self._pending = self._pending, b""
        else:
            data = self._read_raw(size if size and size > 0 else _CHUNK)
        self.position += len(data)
        return data


def _iter_array(stream: _GuardedStream, label: str) -> Iterator[RawRow]:
    """Yield the objects of the JSON array in `stream`, failing clearly on anything else."""
    if not stream.prime():
        return
    index = -1
    try:
        for index, item in enumerate(ijson.items(stream, "item", use_float=True)):
            if not isinstance(item, dict):
                raise InvalidImport(
                    f"{label}: row {index + 1} is a {type(item).__name__}, not an object "
                    "(expected a JSON array of plays)"
                )
            yield RawRow(source_file=label, index=index, data=item)
    except ijson.JSONError as error:
        detail = str(error).strip().splitlines()[0] if str(error).strip() else "truncated"
        raise InvalidImport(
            f"{label}: malformed JSON after row {index + 1}, near byte {stream.position} ({detail})"
        ) from None


def _iter_json_file(path: Path, filename: str) -> Iterator[RawRow]:
    """Rows of one uploaded .json file (read once, from the start)."""
    label = basename(filename)
    with path.open("rb") as raw:
        head = raw.read(DETECT_HEAD_BYTES)
        detect_kind(filename, head)  # raises for unsupported names and non-array content
        yield from _iter_array(_GuardedStream(raw, label=label, prefix=head), label)


def _is_unsafe_name(name: str) -> bool:
    """Whether a member name could escape an extraction directory."""
    normalised = name.replace("\\", "/")
    return (
        "\x00" in name
        or normalised.startswith("/")
        or bool(_DRIVE.match(normalised))
        or ".." in normalised.split("/")
    )


def _history_members(
    archive: zipfile.ZipFile, label: str, limits: ArchiveLimits
) -> list[zipfile.ZipInfo]:
    """Check the whole central directory; return the history members to read, in order."""
    infos = archive.infolist()
    if len(infos) > limits.max_members:
        raise UnsafeArchive(
            f"{label} has {len(infos)} entries (more than {limits.max_members}); refused"
        )
    total = 0
    history: list[zipfile.ZipInfo] = []
    for info in infos:
        name = info.filename
        if _is_unsafe_name(name):
            raise UnsafeArchive(f"{label} contains an unsafe path {name!r}; refused")
        if info.create_system == 3 and (info.external_attr >> 16) & _S_IFMT == _S_IFLNK:
            raise UnsafeArchive(f"{label} contains a symbolic link {name!r}; refused")
        if info.is_dir():
            continue
        if name.lower().endswith(_NESTED_ARCHIVE_SUFFIXES):
            raise UnsafeArchive(f"{label} contains a nested archive {name!r}; refused")
        if info.flag_bits & 0x1:
            raise UnsafeArchive(f"{label} contains an encrypted member {name!r}; refused")
        total += info.file_size
        if total > limits.max_total_uncompressed:
            raise UnsafeArchive(
                f"{label} would decompress to more than "
                f"{limits.max_total_uncompressed} bytes; refused"
            )
        if info.file_size > limits.max_ratio * max(info.compress_size, 1):
            raise UnsafeArchive(
                f"{label}: member {name!r} has a compression ratio above "
                f"{limits.max_ratio:g}:1 (a zip bomb?); refused"
            )
        if kind_from_name(name) is not None:
            history.append(info)
    if not history:
        raise InvalidImport(
            f"{label} holds no streaming history files (Streaming_History_Audio_*.json, "
            "endsong_*.json or StreamingHistory_music_*.json)"
        )
    return sorted(history, key=lambda info: _natural_key(info.filename))


def _natural_key(name: str) -> list[Any]:
    """Sort key putting `..._2.json` before `..._10.json`."""
    return [int(part) if part.isdigit() else part for part in re.split(r"(\d+)", name)]


def _iter_zip(path: Path, filename: str, limits: ArchiveLimits) -> Iterator[RawRow]:
    """Rows of the history members of an export zip, member after member."""
    label = basename(filename)
    try:
        archive = zipfile.ZipFile(path)
    except (zipfile.BadZipFile, OSError) as error:
        raise InvalidImport(f"{label} is not a readable zip archive ({error})") from None
    with archive:
        budget = _Budget(limits.max_total_uncompressed)
        for info in _history_members(archive, label, limits):
            member = f"{label}: {info.filename}"
            # Limit what this member may produce by what its header says AND by the ratio
            # limit on its compressed size, whichever is smaller.
            max_bytes = min(info.file_size, int(limits.max_ratio * max(info.compress_size, 1)))
            try:
                with archive.open(info) as raw:
                    stream = _GuardedStream(
                        raw, label=info.filename, max_bytes=max_bytes, budget=budget
                    )
                    yield from _iter_array(stream, info.filename)
            except (zipfile.BadZipFile, zlib.error, EOFError) as error:
                raise UnsafeArchive(f"{member} is corrupt ({error}); refused") from None
            except NotImplementedError as error:
                raise UnsafeArchive(f"{member} uses an unsupported compression ({error})") from None


def iter_rows(
    path: Path, filename: str, *, limits: ArchiveLimits = ArchiveLimits()
) -> Iterator[RawRow]:
    """Stream the rows of an uploaded .json history file or export zip, lazily."""
    with path.open("rb") as fp:
        head = fp.read(DETECT_HEAD_BYTES)
    kind = detect_kind(filename, head)
    rows = (
        _iter_zip(path, filename, limits)
        if kind is ImportFileKind.ZIP
        else _iter_json_file(path, filename)
    )
    count = 0
    for row in rows:
        count += 1
        yield row
    if count == 0:
        raise InvalidImport(f"{basename(filename)} has no rows to import (it is empty)")


def count_rows(path: Path, filename: str, *, limits: ArchiveLimits = ArchiveLimits()) -> int:
    """Count the rows (validating the whole upload on the way) for a job's items_total."""
    return sum(1 for _ in iter_rows(path, filename, limits=limits))
