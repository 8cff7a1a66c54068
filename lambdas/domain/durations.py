"""Durations as people and agents write them: ``90s``, ``15m``, ``1h``, ``1h30m`` or ISO-8601 (``PT15M``).

One annotated type, :data:`Duration`, parses all of them into a :class:`datetime.timedelta`;
the bounds (minimum, policy maximum) are checked by the logic that knows them.
"""

from __future__ import annotations

import re
from datetime import timedelta
from typing import Annotated

from pydantic import BeforeValidator, PlainSerializer, TypeAdapter

# [0-9], not \d: \d also matches other scripts' digits (Arabic-Indic "\u0661\u0665m"), which int() reads.
_SHORT = re.compile(r"^(?:(?P<h>[0-9]{1,6})h)?(?:(?P<m>[0-9]{1,7})m)?(?:(?P<s>[0-9]{1,9})s)?$")
_ISO = TypeAdapter(timedelta)


class DurationFormatError(ValueError):
    """The text is not a duration this service understands."""


def parse_duration(text: str | int | float | timedelta) -> timedelta:
    """Parse ``90s``/``15m``/``1h``/``1h30m``, ISO-8601 (``PT15M``) or plain seconds."""
    if isinstance(text, timedelta):
        return text
    if isinstance(text, bool):
        raise DurationFormatError("a duration is text such as '15m' or 'PT15M'")
    if isinstance(text, int | float):
        try:
            return timedelta(seconds=text)
        except OverflowError as exc:
            raise DurationFormatError("that duration is too long") from exc
    value = text.strip()
    match = _SHORT.match(value)
    if value and match and any(match.groupdict().values()):
        parts = {k: int(v) for k, v in match.groupdict().items() if v}
        return timedelta(hours=parts.get("h", 0), minutes=parts.get("m", 0), seconds=parts.get("s", 0))
    if value.upper().startswith("P"):
        try:
            return _ISO.validate_python(value.upper())
        except (ValueError, OverflowError) as exc:
            raise DurationFormatError(f"'{text}' is not an ISO-8601 duration of a sensible size") from exc
    raise DurationFormatError(f"'{text}' is not a duration: use 90s, 15m, 1h or ISO-8601 such as PT15M")


def format_duration(value: timedelta) -> str:
    """The short form (``1h30m``, ``90s`` becomes ``1m30s``) used in messages and responses."""
    total = int(value.total_seconds())
    hours, rest = divmod(total, 3600)
    minutes, seconds = divmod(rest, 60)
    text = "".join(f"{n}{unit}" for n, unit in ((hours, "h"), (minutes, "m"), (seconds, "s")) if n)
    return text or "0s"


def _validate(value: object) -> timedelta:
    if isinstance(value, str | int | float | timedelta):
        return parse_duration(value)
    raise DurationFormatError("a duration is text such as '15m' or 'PT15M'")


Duration = Annotated[timedelta, BeforeValidator(_validate), PlainSerializer(format_duration, return_type=str)]
"""A duration field: accepts every form :func:`parse_duration` does, serialises as ``15m``."""
