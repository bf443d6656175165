"""Request checks shared by the use cases: the caller's user id and page-number paging."""

from __future__ import annotations

from dataclasses import dataclass

from echostats_platform.errors import InvalidArgument

_MAX_USER_ID = 128


@dataclass(frozen=True)
class PageRequest:
    """A validated page number (from 1) and page size."""

    number: int
    size: int

    @property
    def skip(self) -> int:
        """How many matches come before this page."""
        return (self.number - 1) * self.size


def page_request(page: int, page_size: int, *, default_size: int, max_size: int) -> PageRequest:
    """Validate paging: 0 means "the default" (proto3 unset), negatives and excess are errors."""
    # A page past the end is not an error: it is empty (and still reports the total).
    if page < 0:
        raise InvalidArgument("page must be at least 1")
    if page_size < 0 or page_size > max_size:
        raise InvalidArgument(f"page_size must be between 1 and {max_size}")
    return PageRequest(number=page or 1, size=page_size or default_size)


def require_user_id(user_id: str) -> str:
    """The user id a request must carry (the gateway's authenticated user)."""
    if not user_id:
        raise InvalidArgument("user_id is required")
    if len(user_id) > _MAX_USER_ID:
        raise InvalidArgument("user_id is too long")
    return user_id
