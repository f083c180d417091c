"""Checks of the API's and page's parameters: each failure names the parameter and says why.

``ParamError`` becomes an HTTP 4xx with ``{"error": ..., "parameter": ..., "message": ...}``
(``web.app``): 422 for a malformed or out-of-range value, 404 for an unknown site or alert.
"""

from __future__ import annotations

import re
from datetime import date, timedelta

MAX_RANGE_DAYS = 731  # the longest daily series one request returns (two years; page through longer)
MAX_PERIOD_DAYS = 36600  # totals (not series) over any period up to a century
DEFAULT_LIMIT = 100
MAX_LIMIT = 1000
_MONTH_RE = re.compile(r"^(\d{4})-(\d{2})$")


class ParamError(ValueError):
    def __init__(self, parameter: str, message: str, status: int = 422, error: str = "bad_parameter"):
        super().__init__(f"{parameter}: {message}")
        self.parameter, self.message, self.status, self.error = parameter, message, status, error

    def body(self) -> dict:
        return {"error": self.error, "parameter": self.parameter, "message": self.message}


def parse_date(name: str, value: str | None) -> date | None:
    """``YYYY-MM-DD`` or empty."""
    if value in (None, ""):
        return None
    try:
        return date.fromisoformat(value)
    except ValueError:
        raise ParamError(name, f"{value!r} is not a date; use YYYY-MM-DD (e.g. 2025-06-01)") from None


def parse_month(name: str, value: str | None) -> date | None:
    """``YYYY-MM`` (or a first-of-month ``YYYY-MM-01``) or empty; the first day of the month."""
    if value in (None, ""):
        return None
    m = _MONTH_RE.match(value)
    if m is None and re.match(r"^\d{4}-\d{2}-01$", value):
        m = _MONTH_RE.match(value[:7])
    if m is None or not 1 <= int(m.group(2)) <= 12:
        raise ParamError(name, f"{value!r} is not a month; use YYYY-MM (e.g. 2025-06)")
    return date(int(m.group(1)), int(m.group(2)), 1)


def date_range(start: str | None, end: str | None, default_end: date | None,
               default_days: int = 30, max_days: int = MAX_RANGE_DAYS) -> tuple[date, date]:
    """``start`` .. ``end`` (inclusive), defaulting to the ``default_days`` days up to ``default_end``
    (the data's last day); ``end`` before ``start`` or longer than ``max_days`` is refused."""
    first, last = parse_date("start", start), parse_date("end", end)
    if last is None and first is not None:
        last = first + timedelta(days=default_days - 1)
    if last is None:  # neither given: the window ends on the data's last day (an empty DB: today, empty)
        last = default_end or date.today()
    if first is None:
        first = last - timedelta(days=default_days - 1)
    if last < first:
        raise ParamError("end", f"{last} is before start {first}")
    days = (last - first).days + 1
    if days > max_days:
        raise ParamError("end", f"the range {first} .. {last} is {days} days; at most {max_days} per request"
                                " (page through longer periods)")
    return first, last


def choice(name: str, value: str | None, allowed: tuple[str, ...], *, required: bool = False) -> str | None:
    if value in (None, ""):
        if required:
            raise ParamError(name, f"required; one of {', '.join(allowed)}")
        return None
    if value not in allowed:
        raise ParamError(name, f"{value!r} is not one of {', '.join(allowed)}")
    return value


def site(value: str, known: list[str]) -> str:
    if value not in known:
        raise ParamError("site_id", f"unknown site {value!r}; known sites: {', '.join(known)}", status=404,
                         error="unknown_site")
    return value


def paging(limit: int | None, offset: int | None, default_limit: int = DEFAULT_LIMIT) -> tuple[int, int]:
    limit = default_limit if limit is None else limit
    offset = 0 if offset is None else offset
    if not 1 <= limit <= MAX_LIMIT:
        raise ParamError("limit", f"{limit} is out of range; 1 .. {MAX_LIMIT}")
    if offset < 0:
        raise ParamError("offset", f"{offset} is negative")
    return limit, offset
