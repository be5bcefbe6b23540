"""Whether a value is within its characteristic's specification limits: the one rule the lot
statistics (out-of-spec counts), the lot review and the out-of-spec investigations share."""

from collections.abc import Iterable


def outside_spec(value: float, lsl: float | None, usl: float | None) -> bool:
    """Below the LSL or above the USL; a value exactly on a limit is within specification."""
    return (lsl is not None and value < lsl) or (usl is not None and value > usl)


def any_outside_spec(values: Iterable[float], lsl: float | None, usl: float | None) -> bool:
    return any(outside_spec(float(value), lsl, usl) for value in values)


def near_spec(value: float, lsl: float | None, usl: float | None, margin: float) -> bool:
    """Inside the specification but within `margin` of a limit: the spec warning band."""
    if outside_spec(value, lsl, usl):
        return False
    return (lsl is not None and value <= lsl + margin) or (usl is not None and value >= usl - margin)
