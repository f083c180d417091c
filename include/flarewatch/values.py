"""Plain values from numpy and float arithmetic: finite floats or None, JSON-ready structures.

Pure helpers shared by the stages (features, estimate, process) and the benchmark scripts;
nothing here imports numpy: numpy scalars and 0-d arrays are recognised by their ``shape`` of ().
"""

from __future__ import annotations

import math
import numbers


def _unwrap(v):
    """A numpy scalar or 0-d array as the Python value it holds; anything else unchanged."""
    if getattr(v, "shape", None) == () and hasattr(v, "item"):
        return v.item()
    return v


def finite_or_none(x) -> float | None:
    """``x`` as a finite Python float; None for None, NaN, +-inf, booleans and anything not a real number."""
    x = _unwrap(x)
    if isinstance(x, bool) or not isinstance(x, numbers.Real):
        return None
    x = float(x)
    return x if math.isfinite(x) else None


def json_value(v):
    """Plain JSON value, recursively: numpy scalars unwrapped, NaN/inf -> None, tuples and arrays ->
    lists, dict keys -> str, any other object -> ``str(v)``."""
    v = _unwrap(v)
    if isinstance(v, bool):
        return v
    if isinstance(v, numbers.Integral):
        return int(v)
    if isinstance(v, numbers.Real):
        v = float(v)
        return v if math.isfinite(v) else None
    if isinstance(v, dict):
        return {str(k): json_value(x) for k, x in v.items()}
    if isinstance(v, (list, tuple)) or hasattr(v, "tolist"):
        return [json_value(x) for x in v]
    if v is None or isinstance(v, str):
        return v
    return str(v)
