"""Analysis over the collection beyond one search: trends of counts over time (trends.py), the
series they compare (series.py) and their calendar periods (periods.py)."""

from engine.analysis.periods import MAX_BUCKETS, PERIODS
from engine.analysis.series import MAX_SERIES, parse_series
from engine.analysis.trends import DEFAULT_TOP, TrendRequest, trend, trend_field

__all__ = ["DEFAULT_TOP", "MAX_BUCKETS", "MAX_SERIES", "PERIODS", "TrendRequest", "parse_series", "trend",
           "trend_field"]  # fmt: skip
