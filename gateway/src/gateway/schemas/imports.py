"""Response model of POST /api/v1/history/import."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel


class ImportResponse(BaseModel):
    job_id: str
    # "already_running": the user's earlier import is still pending or running; job_id is it.
    status: Literal["pending", "already_running"]
    items_processed: int
    items_total: int
