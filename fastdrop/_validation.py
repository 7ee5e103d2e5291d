"""Checks at the public boundary; messages name the argument, what was expected, what came."""
import math
import operator
import numbers

import numpy as np

_UINT64_MAX = 2**64 - 1
_INTP_MAX = np.iinfo(np.intp).max


def check_probability(value, name="p"):
    """A real number in [0, 1] (NaN refused), returned as float."""
    if type(value) is float and 0.0 <= value <= 1.0:  # the common case, without ABC checks
        return value
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, numbers.Real):
        raise TypeError(f"{name} must be a real number in [0, 1], got {value!r} "
                        f"of type {type(value).__name__}")
    value = float(value)
    if math.isnan(value) or not 0.0 <= value <= 1.0:
        raise ValueError(f"{name} must be in [0, 1], got {value!r}")
    return value


def check_uint64(value, name):
    """An integer in [0, 2**64) (seeds, steps, offsets)."""
    if type(value) is int and 0 <= value <= _UINT64_MAX:
        return value
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, numbers.Integral):
        raise TypeError(f"{name} must be an int in [0, 2**64), got {value!r} "
                        f"of type {type(value).__name__}")
    value = int(value)
    if not 0 <= value <= _UINT64_MAX:
        raise ValueError(f"{name} must be in [0, 2**64), got {value}")
    return value


def check_mode(mode):
    if mode not in ("inverted", "classic"):
        raise ValueError(f"mode must be 'inverted' or 'classic', got {mode!r}")
    return mode


def check_shape(shape, name="shape"):
    if isinstance(shape, numbers.Integral):
        shape = (shape,)
    try:
        shape = tuple(operator.index(s) for s in shape)
    except TypeError:
        raise TypeError(f"{name} must be an int or a tuple of ints, got {shape!r}") from None
    if any(s < 0 for s in shape):
        raise ValueError(f"{name} must have non-negative dimensions, got {shape}")
    if math.prod(shape) > _INTP_MAX or any(s > _INTP_MAX for s in shape):
        raise ValueError(f"{name} {shape} has {math.prod(shape)} elements, more than an array "
                         f"can index ({_INTP_MAX})")
    return shape


def as_float_array(x, name):
    """C-contiguous float32/float64 view or copy of ``x``.

    float32 and float64 pass through (copied only when not C-contiguous); other real dtypes are
    converted: bool, integers and float16 as numpy arithmetic would (float16 to float32, the
    rest to float64). Complex, object and string arrays are refused.
    """
    arr = np.asarray(x)
    kind = arr.dtype.kind
    if kind == "f" and arr.dtype.itemsize in (4, 8):
        pass
    elif kind == "f" and arr.dtype.itemsize == 2:
        arr = arr.astype(np.float32)
    elif kind in "biuf":
        arr = arr.astype(np.float64)
    else:
        raise TypeError(f"{name} must be a real float32 or float64 array, got dtype {arr.dtype}")
    return np.asarray(arr, order="C")  # not ascontiguousarray: that makes 0-d arrays 1-d


def check_out(out, shape, dtype, name="out"):
    """``out`` must be a writable C-contiguous ndarray of exactly this shape and dtype."""
    if not isinstance(out, np.ndarray):
        raise TypeError(f"{name} must be a numpy.ndarray, got {type(out).__name__}")
    if out.shape != tuple(shape):
        raise ValueError(f"{name} must have shape {tuple(shape)}, got {out.shape}")
    if out.dtype != dtype:
        raise ValueError(f"{name} must have dtype {np.dtype(dtype)}, got {out.dtype}")
    if not out.flags.c_contiguous:
        raise ValueError(f"{name} must be C-contiguous")
    if not out.flags.writeable:
        raise ValueError(f"{name} must be writable (it is read-only)")
    return out


def check_same_shape(a, a_name, shape, shape_name):
    if a.shape != tuple(shape):
        raise ValueError(f"{a_name} must have the shape of {shape_name}, {tuple(shape)}, "
                         f"got {a.shape}")


class Range:
    """A number parameter's constraint: its kind (int or real), bounds (None: unbounded,
    and then it must be finite), which ends are open, whether None, +inf and which strings
    are allowed too. ``check(name, value)`` raises TypeError or ValueError naming it."""

    def __init__(self, kind, low, high=None, *, low_open=False, high_open=False,
                 none_ok=False, words=(), inf_ok=False):
        self.kind, self.low, self.high = kind, low, high
        self.low_open, self.high_open = low_open, high_open
        self.none_ok, self.words, self.inf_ok = none_ok, words, inf_ok

    def check(self, name, value):
        if (value is None and self.none_ok) or (isinstance(value, str) and value in self.words):
            return
        if self.inf_ok and isinstance(value, numbers.Real) and value == math.inf:
            return  # e.g. n_iter_no_change=np.inf: "never", as scikit-learn takes it
        kind = numbers.Integral if self.kind is int else numbers.Real
        if isinstance(value, bool) or not isinstance(value, kind):
            what = "an int" if self.kind is int else "a real number"
            raise TypeError(f"{name} must be {what}{' or None' if self.none_ok else ''}, "
                            f"got {value!r}")
        bad_low = value <= self.low if self.low_open else value < self.low
        if self.high is None:
            bad_high = not math.isfinite(value)
        else:
            bad_high = value >= self.high if self.high_open else value > self.high
        if bad_low or bad_high or value != value:
            raise ValueError(f"{name} must be in {self}, got {value!r}")

    def __str__(self):
        high = "inf)" if self.high is None else f"{self.high}" + (")" if self.high_open else "]")
        return ("(" if self.low_open else "[") + f"{self.low}, {high}"


class Options(tuple):
    """A parameter that must be one of these values."""

    def check(self, name, value):
        if value not in self:
            raise ValueError(f"{name} must be one of {tuple(self)}, got {value!r}")


class Satisfies:
    """A parameter whose value must pass a predicate; ``expected`` says what passes."""

    def __init__(self, predicate, expected):
        self.predicate, self.expected = predicate, expected

    def check(self, name, value):
        if not self.predicate(value):
            raise ValueError(f"{name} must be {self.expected}, got {value!r}")


def check_params(obj, constraints):
    """Check every attribute of ``obj`` named in ``constraints`` ({name: Range | Options})."""
    for name, constraint in constraints.items():
        constraint.check(name, getattr(obj, name))
