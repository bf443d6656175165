"""Periods and calendars: rolling windows of local days, and the trend's point labels.

A period is a rolling window of calendar days ending today in the analytics time zone
(week 7, month 30, quarter 90, year 365) or all_time (no start). Trend points are labelled
per day (`%Y-%m-%d`, week and month), per ISO week (`%G-W%V`, quarter) or per calendar month
(`%Y-%m`, year and all_time); every label between the window's first and last day is present
so days without plays show as zeros.
"""

from __future__ import annotations

from datetime import date, timedelta
from enum import StrEnum

from echostats.analytics.v1 import analytics_service_pb2 as pb

WEEKDAY_NAMES = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday")


class Period(StrEnum):
    """A snapshot period, by its REST name."""

    WEEK = "week"
    MONTH = "month"
    QUARTER = "quarter"
    YEAR = "year"
    ALL_TIME = "all_time"

    @property
    def days(self) -> int | None:
        """Calendar days in the window (None: all time)."""
        return _DAYS[self]

    @property
    def proto(self) -> pb.Period.ValueType:
        """The proto enum value."""
        return _TO_PB[self]

    @classmethod
    def from_proto(cls, value: int) -> Period:
        """The period of a proto value; ValueError for unspecified or unknown values."""
        for period, number in _TO_PB.items():
            if number == value:
                return period
        raise ValueError(f"unknown period {value}")

    @property
    def granularity(self) -> Granularity:
        """How the trend of this period is bucketed."""
        if self in (Period.WEEK, Period.MONTH):
            return Granularity.DAY
        if self is Period.QUARTER:
            return Granularity.WEEK
        return Granularity.MONTH

    def window(self, today: date) -> tuple[date | None, date]:
        """First and last local day of the window ending `today` (first None: all time)."""
        days = self.days
        return (None if days is None else today - timedelta(days=days - 1)), today


ALL_PERIODS: tuple[Period, ...] = tuple(Period)

_DAYS = {
    Period.WEEK: 7,
    Period.MONTH: 30,
    Period.QUARTER: 90,
    Period.YEAR: 365,
    Period.ALL_TIME: None,
}
_TO_PB = {
    Period.WEEK: pb.PERIOD_WEEK,
    Period.MONTH: pb.PERIOD_MONTH,
    Period.QUARTER: pb.PERIOD_QUARTER,
    Period.YEAR: pb.PERIOD_YEAR,
    Period.ALL_TIME: pb.PERIOD_ALL_TIME,
}


class Granularity(StrEnum):
    """Trend buckets, named by their strftime pattern (as the API reports them)."""

    DAY = "%Y-%m-%d"
    WEEK = "%G-W%V"
    MONTH = "%Y-%m"

    def label(self, day: date) -> str:
        """The label of the bucket `day` falls in."""
        if self is Granularity.DAY:
            return day.isoformat()
        if self is Granularity.WEEK:
            year, week, _ = day.isocalendar()
            return f"{year}-W{week:02d}"
        return f"{day.year:04d}-{day.month:02d}"

    def labels(self, first: date, last: date) -> list[str]:
        """Every label from the bucket of `first` to the bucket of `last`, in order."""
        labels: list[str] = []
        day = first
        while day <= last:
            label = self.label(day)
            if not labels or labels[-1] != label:
                labels.append(label)
            if self is Granularity.MONTH:
                day = (day.replace(day=1) + timedelta(days=32)).replace(day=1)
            elif self is Granularity.WEEK:
                day += timedelta(days=7 - day.weekday())
            else:
                day += timedelta(days=1)
        return labels


def month_of(day: str) -> str:
    """`YYYY-MM` of a `YYYY-MM-DD` day."""
    return day[:7]


def month_bounds(month: str) -> tuple[date, date]:
    """First and last day of a `YYYY-MM` month."""
    first = date.fromisoformat(f"{month}-01")
    following = (first + timedelta(days=32)).replace(day=1)
    return first, following - timedelta(days=1)
