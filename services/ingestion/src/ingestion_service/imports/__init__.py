"""Reading Spotify privacy exports and deciding which rows are plays (pure, synchronous).

`formats` names the kinds of upload and the errors bad input raises, `reader` streams the
rows of a JSON file or an export zip (safely), `rules` turns one row into an
`ImportedPlay` or a `SkipReason`. No database, no asyncio: the import job runs these in a
thread and does the storing itself.
"""

from ingestion_service.imports.formats import (
    ImportError_,
    ImportFileKind,
    InvalidImport,
    UnsafeArchive,
    UnsupportedImport,
    detect_kind,
)
from ingestion_service.imports.reader import ArchiveLimits, RawRow, count_rows, iter_rows
from ingestion_service.imports.rules import (
    ImportedPlay,
    ImportRules,
    SkipReason,
    account_play_key,
    classify,
)

__all__ = [
    "ArchiveLimits",
    "ImportError_",
    "ImportFileKind",
    "ImportRules",
    "ImportedPlay",
    "InvalidImport",
    "RawRow",
    "SkipReason",
    "UnsafeArchive",
    "UnsupportedImport",
    "account_play_key",
    "classify",
    "count_rows",
    "detect_kind",
    "iter_rows",
]
