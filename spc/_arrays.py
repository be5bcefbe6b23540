"""Input checking shared by the chart modules: turn array-likes into clean float arrays."""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence

import numpy as np
import numpy.typing as npt

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]
BoolArray = npt.NDArray[np.bool_]


def finite_vector(values: npt.ArrayLike, name: str) -> FloatArray:
    """A 1-D float64 array with only finite values; NaN/inf raise a ValueError naming them."""
    array = np.asarray(values, dtype=np.float64)
    if array.ndim != 1:
        raise ValueError(f"{name} must be one-dimensional, got shape {array.shape}")
    if not np.isfinite(array).all():
        bad = int(np.flatnonzero(~np.isfinite(array))[0])
        raise ValueError(f"{name} must be finite numbers; index {bad} is {array[bad]!r}")
    return array


def finite_scalar(value: float, name: str, *, positive: bool = False) -> float:
    """A finite float (optionally > 0), or a ValueError that says which argument is wrong."""
    number = float(value)
    if not math.isfinite(number):
        raise ValueError(f"{name} must be a finite number, got {value!r}")
    if positive and number <= 0.0:
        raise ValueError(f"{name} must be positive, got {value!r}")
    return number


def subgroup_matrix(subgroups: npt.ArrayLike | Sequence[Sequence[float | None]], name: str) -> FloatArray:
    """Rows = subgroups, NaN = missing cell. Ragged rows are padded with NaN; inf is rejected.

    ``None`` cells (JSON null) count as missing, like NaN.
    """
    try:
        matrix = np.asarray(subgroups, dtype=np.float64)
    except ValueError:  # ragged rows
        matrix = _pad_ragged(subgroups, name)  # type: ignore[arg-type]
    if matrix.ndim == 1:
        matrix = matrix[:, None]
    if matrix.ndim != 2:
        raise ValueError(f"{name} must be a 2-D table (rows = subgroups), got shape {matrix.shape}")
    if not np.isfinite(matrix).all() and np.isinf(matrix).any():
        row = int(np.flatnonzero(np.isinf(matrix).any(axis=1))[0])
        raise ValueError(f"{name}: subgroup {row} contains an infinite value")
    return matrix


def _pad_ragged(rows: Iterable[Sequence[float | None]], name: str) -> FloatArray:
    cleaned = [[math.nan if cell is None else float(cell) for cell in row] for row in rows]
    width = max((len(row) for row in cleaned), default=0)
    matrix = np.full((len(cleaned), width), np.nan)
    for i, row in enumerate(cleaned):
        matrix[i, : len(row)] = row
    return matrix


def sizes_vector(sizes: npt.ArrayLike, length: int, name: str) -> IntArray:
    """Positive integer sizes, broadcast from a scalar when one size applies to every point."""
    array = np.asarray(sizes, dtype=np.float64)
    if array.ndim == 0:
        array = np.full(length, float(array))
    if array.shape != (length,):
        raise ValueError(f"{name} must have one entry per point ({length}), got shape {array.shape}")
    if not np.isfinite(array).all() or (array <= 0).any() or (array % 1 != 0).any():
        raise ValueError(f"{name} must be positive whole numbers")
    return array.astype(np.int64)


def index_mask(indices: Iterable[int], length: int, name: str) -> BoolArray:
    """Boolean mask of length ``length`` that is True at the given (0-based) indices."""
    mask = np.zeros(length, dtype=bool)
    for index in indices:
        if isinstance(index, bool) or not isinstance(index, int | np.integer):
            raise ValueError(f"{name} must contain integer indices, got {index!r}")
        if not 0 <= index < length:
            raise ValueError(f"{name}: index {index} is outside 0..{length - 1}")
        mask[int(index)] = True
    return mask


def broadcast_line(value: npt.ArrayLike, length: int, name: str) -> FloatArray:
    """A scalar or per-point line (centre, sigma) as a finite float array of the series length."""
    array = np.asarray(value, dtype=np.float64)
    if array.ndim == 0:
        array = np.full(length, float(array))
    if array.shape != (length,):
        raise ValueError(f"{name} must be a scalar or have one entry per point ({length})")
    if not np.isfinite(array).all():
        raise ValueError(f"{name} must be finite")
    return array
