"""Percentiles for the benches (linear interpolation between closest ranks, as numpy's default)."""


def percentile(values, q):
    """The q-quantile (0..1) of `values`, or None when there are none."""
    if not values:
        return None
    s = sorted(values)
    k = (len(s) - 1) * q
    lo = int(k)
    hi = min(lo + 1, len(s) - 1)
    return s[lo] + (s[hi] - s[lo]) * (k - lo)
