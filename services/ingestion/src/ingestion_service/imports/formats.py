"""The kinds of file an import accepts, how an upload's kind is recognised, and the errors.

Accepted (ref §5): an extended streaming history file (`Streaming_History_Audio_*.json`,
older `endsong_*.json`), an account-data file (`StreamingHistory_music_*.json`, older
`StreamingHistory<n>.json`), or the export zip holding them. The kind is decided from the
file name and the first bytes (magic), never from the client's content type: `PK\\x03\\x04`
is a zip whatever its name; a `.json` whose name says nothing is judged by the keys of its
first object rather than refused.

Errors carry a message meant for the user (the service puts it in the HTTP answer or the
job's error_message) and map to HTTP status codes once, at the edge:
`UnsupportedImport` → 415, `InvalidImport` → 400, `UnsafeArchive` → 400.
"""

from __future__ import annotations

import fnmatch
import io
from enum import StrEnum

import ijson

ZIP_MAGIC = b"PK\x03\x04"
# An empty zip (no members) starts with the end-of-central-directory record instead.
_EMPTY_ZIP_MAGIC = b"PK\x05\x06"
UTF8_BOM = b"\xef\xbb\xbf"
# How many leading bytes `detect_kind` wants (more is fine, less may not hold a whole row).
DETECT_HEAD_BYTES = 64 * 1024

_EXTENDED_NAMES = ("streaming_history_audio_*.json", "endsong_*.json", "endsong.json")
_ACCOUNT_NAMES = ("streaminghistory_music_*.json", "streaminghistory*.json")
_ACCOUNT_EXCLUDED = ("streaminghistory_podcast_*.json",)
# Keys that only one of the two row formats has.
_EXTENDED_KEYS = frozenset({"ts", "spotify_track_uri", "master_metadata_track_name", "ms_played"})
# Parse events after which the first row's keys are known (or there is no first object).
_FIRST_ROW_DONE = frozenset({("item", "end_map"), ("", "end_array"), ("", "start_map")})
_ACCOUNT_KEYS = frozenset({"endTime", "msPlayed", "trackName", "artistName", "podcastName"})


class ImportFileKind(StrEnum):
    """What an uploaded file is."""

    EXTENDED = "extended"
    ACCOUNT = "account"
    ZIP = "zip"


class ImportError_(Exception):
    """Base of the import errors; `str(error)` is a message for the user."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class UnsupportedImport(ImportError_):
    """Not a file type an import accepts (HTTP 415)."""


class InvalidImport(ImportError_):
    """A supported type with bad content: not JSON, wrong shape, empty, no usable rows (400)."""


class UnsafeArchive(ImportError_):
    """A zip refused for safety: bomb, path tricks, links, nested archives, too many members."""


def basename(name: str) -> str:
    """The last path component of a file or zip member name (either slash)."""
    return name.replace("\\", "/").rstrip("/").rsplit("/", 1)[-1]


def kind_from_name(filename: str) -> ImportFileKind | None:
    """The kind a history file's name announces, or None when the name says nothing."""
    name = basename(filename).lower()
    if any(fnmatch.fnmatchcase(name, p) for p in _EXTENDED_NAMES):
        return ImportFileKind.EXTENDED
    if any(fnmatch.fnmatchcase(name, p) for p in _ACCOUNT_EXCLUDED):
        return None
    if any(fnmatch.fnmatchcase(name, p) for p in _ACCOUNT_NAMES):
        return ImportFileKind.ACCOUNT
    return None


def kind_from_keys(keys: set[str] | frozenset[str]) -> ImportFileKind | None:
    """The row format that a row's keys belong to, or None if they fit neither."""
    extended = len(keys & _EXTENDED_KEYS)
    account = len(keys & _ACCOUNT_KEYS)
    if extended == account == 0:
        return None
    return ImportFileKind.EXTENDED if extended >= account else ImportFileKind.ACCOUNT


def strip_json_head(head: bytes) -> bytes:
    """`head` without a UTF-8 byte-order mark and leading whitespace."""
    if head.startswith(UTF8_BOM):
        head = head[len(UTF8_BOM) :]
    return head.lstrip(b" \t\r\n")


def _first_row_keys(head: bytes) -> set[str]:
    """The keys of the first object of a JSON array, as far as `head` holds them."""
    keys: set[str] = set()
    try:
        for prefix, event, value in ijson.parse(io.BytesIO(head)):
            if prefix == "item" and event == "map_key":
                keys.add(value)
            elif (prefix, event) in _FIRST_ROW_DONE:
                break
    except ijson.JSONError:
        # A head cut inside the first object still names the keys seen so far.
        pass
    return keys


def detect_kind(filename: str, head: bytes) -> ImportFileKind:
    """Decide what an upload is from its name and first bytes (pass ≥ 64 KiB when possible)."""
    name = basename(filename)
    suffix = name.lower().rsplit(".", 1)[-1] if "." in name else ""
    if head.startswith((ZIP_MAGIC, _EMPTY_ZIP_MAGIC)):
        return ImportFileKind.ZIP
    if suffix == "zip":
        if not head:
            raise InvalidImport(f"{name} is empty")
        raise InvalidImport(f"{name} is not a zip archive (it does not start like one)")
    if suffix != "json":
        raise UnsupportedImport(
            f"{name or 'the file'} is not a supported file type: upload a Spotify export zip "
            "or one of its streaming history .json files"
        )
    body = strip_json_head(head)
    if not body:
        raise InvalidImport(f"{name} is empty: no rows to import")
    if not body.startswith(b"["):
        raise InvalidImport(
            f"{name} is not a streaming history file: expected a JSON array of plays"
        )
    by_name = kind_from_name(name)
    if by_name is not None:
        return by_name
    keys = _first_row_keys(body)
    by_keys = kind_from_keys(keys)
    if by_keys is not None:
        return by_keys
    if body[1:].lstrip(b" \t\r\n").startswith(b"]"):
        raise InvalidImport(f"{name} is an empty array: no rows to import")
    raise InvalidImport(
        f"{name} does not look like Spotify streaming history: its first row has none of "
        "the expected fields (ts/spotify_track_uri or endTime/trackName)"
    )
