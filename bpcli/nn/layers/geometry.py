"""Per-axis fields shared by convolutions and pooling: an integer or a pair, padding, axes' names."""

from __future__ import annotations

from ...core.fields import Invalid


def is_int(v, minimum):
    return isinstance(v, int) and not isinstance(v, bool) and v >= minimum


def int_or_pair(*words, minimum=1):
    """An integer >= minimum (the same along both axes), a pair [height, width] of them, or a word."""
    def check(v):
        if is_int(v, minimum) or v in words:
            return v
        if isinstance(v, (list, tuple)) and len(v) == 2 and all(is_int(n, minimum) for n in v):
            return list(v)
        raise Invalid(f"must be an integer >= {minimum}, a pair [height, width] of them"
                      + "".join(f" or {w}" for w in words) + f", got {v!r}")
    return check


def per_axis(v, nd):
    return tuple(v) if isinstance(v, list) else (v,) * nd


def same_pad(kernel, dilation):
    # PyTorch's padding='same': the extra zero, when the total is odd, goes on the right
    total = dilation * (kernel - 1)
    return total // 2, total - total // 2


AXES = {1: ("",), 2: (" height", " width")}  # how messages name each axis
