"""Days from what users type: dates, datetimes, months, years and STAC intervals (all UTC days)."""

from __future__ import annotations

import re
from datetime import UTC, date, datetime

from histcalc.errors import InvalidDate

_MONTH = re.compile(r"^(\d{4})-(\d{2})$")
_YEAR = re.compile(r"^(\d{4})$")
_LOOSE_DAY = re.compile(r"^(\d{4})[-/](\d{1,2})[-/](\d{1,2})$")


def parse_date(text: str, flag: str = "date", *, end: bool = False) -> date:
    """A day from what users type: ``2024-05-01``, ``2024-05-01T10:00:00Z`` (its UTC day), or a whole
    month ``2024-05`` / year ``2024``, whose first day starts a range and whose last day (``end``) ends one."""
    raw = text.strip()
    try:
        if month := _MONTH.match(raw):
            first = date(int(month[1]), int(month[2]), 1)
            return _month_end(first) if end else first
        if _YEAR.match(raw):
            return date(int(raw), 12, 31) if end else date(int(raw), 1, 1)
        if "T" in raw.upper() or " " in raw:
            when = datetime.fromisoformat(raw.upper().replace("Z", "+00:00"))
            return (when.astimezone(UTC) if when.tzinfo else when).date()
        if day := _LOOSE_DAY.match(raw):  # 2024-5-1, 2024/05/01
            return date(int(day[1]), int(day[2]), int(day[3]))
        return date.fromisoformat(raw)
    except ValueError as exc:
        raise InvalidDate(
            f"--{flag} must be a date YYYY-MM-DD (or a datetime, a month YYYY-MM, a year YYYY), got {text!r}"
        ) from exc


def parse_interval(text: str) -> tuple[date | None, date | None]:
    """A STAC datetime interval as pystac-client spells it: ``A/B``, ``A/..``, ``../B``, or one period ``A``."""
    raw = text.strip()
    if "/" not in raw:
        return parse_date(raw, "datetime"), parse_date(raw, "datetime", end=True)
    first, _, last = raw.partition("/")
    start = None if first.strip() in ("", "..") else parse_date(first, "datetime")
    stop = None if last.strip() in ("", "..") else parse_date(last, "datetime", end=True)
    return start, stop


def _month_end(first: date) -> date:
    following = date(first.year + first.month // 12, first.month % 12 + 1, 1)
    return date.fromordinal(following.toordinal() - 1)
