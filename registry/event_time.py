"""Event times: one exact UTC format, compared as times, never running backwards or ahead of now.

A time is chosen by whoever writes the event, so it is held to what a reader can check: the
format ``utc_now`` writes (fixed width, so text order is time order), not before the event it
follows, not more than ``MAX_SKEW`` past the reader's clock, and within ``MAX_SKEW`` of the time
the store says it received the object (a key disabled at noon cannot sign an event it dates 11:00).
"""

from __future__ import annotations

import datetime as dt
import re

MAX_SKEW = dt.timedelta(minutes=5)
_FORMAT = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}\+00:00")


def utc_now() -> str:
    return dt.datetime.now(dt.timezone.utc).isoformat(timespec="microseconds")


def event_time(value: str) -> dt.datetime:
    """Raises: ValueError: not ``YYYY-MM-DDTHH:MM:SS.ffffff+00:00``, or no such date."""
    if not isinstance(value, str) or not _FORMAT.fullmatch(value):
        raise ValueError(f"{str(value)[:40]!r} is not a time as Tailor writes it (YYYY-MM-DDTHH:MM:SS.ffffff+00:00)")
    return dt.datetime.fromisoformat(value)


def time_problem(value: str, after: str) -> str | None:
    """Why an event's time cannot follow an event dated ``after`` ("" for the first), or None."""
    try:
        when = event_time(value)
    except ValueError as err:
        return str(err)
    if after and when < event_time(after):
        return f"it is dated {value}, before the event it follows ({after})"
    if when > dt.datetime.now(dt.timezone.utc) + MAX_SKEW:
        return f"it is dated {value}, in the future"
    return None


def received_problem(value: str, received: dt.datetime | None) -> str | None:
    """Why an event dated ``value`` cannot be the object the store received at ``received``, or None."""
    if received is None:
        return None
    gap = event_time(value) - received.astimezone(dt.timezone.utc)
    if abs(gap) > MAX_SKEW:
        return (
            f"it is dated {value} but the store received it at {received.isoformat()}: "
            f"{'backdated' if gap < dt.timedelta(0) else 'dated ahead'} by {abs(gap)}"
        )
    return None
