"""Errors the local stack raises: one base class, and start failures that carry the log tail."""

from __future__ import annotations


class StackError(RuntimeError):
    """Something about the local stack went wrong (bad configuration, a component failed)."""


class ComponentStartError(StackError):
    """A component did not become ready; the message names it and quotes its log."""

    def __init__(
        self, name: str, reason: str, log_path: str, log_tail: str, *, cancelled: bool = False
    ) -> None:
        self.name = name
        # True when the start was abandoned because the stack is stopping, not a fault of its own.
        self.cancelled = cancelled
        self.reason = reason
        self.log_path = log_path
        self.log_tail = log_tail
        tail = log_tail.rstrip() or "(the log is empty)"
        indented = "\n".join("    " + line for line in tail.splitlines())
        super().__init__(
            f"component {name!r} failed to start: {reason}\n  last lines of {log_path}:\n{indented}"
        )
