"""Page-number paging shared by the list routes: query parameters and the `pages` figure."""

from __future__ import annotations

import math
from typing import Annotated

from fastapi import Query

Page = Annotated[int, Query(ge=1, le=1_000_000, description="Page number (min: 1)")]


def page_count(total: int, limit: int) -> int:
    """How many pages of `limit` items `total` items fill (0 when there are none)."""
    return math.ceil(total / limit) if total else 0
