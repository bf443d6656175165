"""`/v1/me`: the current user's profile (ref §2).

Field rules: `email` needs `user-read-email`; `country`, `product` and `explicit_content`
need `user-read-private`; a Development Mode app never gets `country`, `email`,
`product`, `followers` or `explicit_content` (Feb 2026, ref §4). Later `/v1/me/...` areas
(player, top items, library) get their own router modules.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request

from .auth import Auth, State
from .modes import strip_dev_fields
from .urls import api_base
from .users import private_user_object

router = APIRouter(prefix="/v1", tags=["me"])


@router.get("/me")
async def get_me(request: Request, ctx: Auth, state: State) -> dict[str, Any]:
    """The private user object of the token's user."""
    body = private_user_object(ctx.user, api_base(request), ctx.scopes)
    return strip_dev_fields("user", body, state.mode)
