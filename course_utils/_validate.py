"""Input checks shared by the public functions: every error names the argument and the shape it got."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch


def shape_of(x) -> str:
    """The shape of an array-like as text, e.g. '(3, 4)'; the type name when it has no shape."""
    shape = getattr(x, "shape", None)
    if shape is None:
        return type(x).__name__
    return "(" + ", ".join(str(int(s)) for s in shape) + (",)" if len(shape) == 1 else ")")


def as_matrix(x, name: str, ndim: int = 2, finite: bool = True, allow_empty: bool = False) -> np.ndarray:
    """`x` as a float64 NumPy array of rank `ndim`, or a clear TypeError/ValueError naming `name`."""
    if isinstance(x, (str, bytes)) or x is None:
        raise TypeError(f"{name} must be a NumPy array, got {type(x).__name__}")
    if hasattr(x, "detach") and hasattr(x, "cpu"):  # a torch tensor: the reference works in NumPy
        x = x.detach().cpu().numpy()
    try:
        arr = np.asarray(x)
    except Exception as exc:  # ragged lists and other junk
        raise TypeError(f"{name} must be array-like, got {type(x).__name__}: {exc}") from exc
    if arr.dtype == object or not (np.issubdtype(arr.dtype, np.number) or arr.dtype == bool):
        raise TypeError(f"{name} must hold numbers, got dtype {arr.dtype}")
    if np.iscomplexobj(arr):
        raise TypeError(f"{name} must be real, got dtype {arr.dtype}")
    if arr.ndim != ndim:
        raise ValueError(f"{name} must have {ndim} dimension(s), got shape {shape_of(arr)}")
    if not allow_empty and arr.size == 0:
        raise ValueError(f"{name} must not be empty, got shape {shape_of(arr)}")
    arr = arr.astype(np.float64, copy=False)
    if finite and not np.all(np.isfinite(arr)):
        raise ValueError(f"{name} must hold finite values (no NaN or inf), got shape {shape_of(arr)}")
    return arr


def check_dim(actual: int, expected: int, what: str, names: Sequence[str], shapes: Sequence) -> None:
    """Raise a ValueError when two sizes that must agree differ, quoting every shape involved."""
    if actual != expected:
        got = ", ".join(f"{n} {shape_of(s)}" for n, s in zip(names, shapes))
        raise ValueError(f"{what} must match: got {got}")


def _what(minimum: int | None) -> str:
    return {1: "a positive int", 0: "a non-negative int", None: "an int"}.get(minimum, f"an int >= {minimum}")


def check_int(value, name: str, minimum: int | None = 1, maximum: int | None = None) -> int:
    """`value` as a Python int in [minimum, maximum] (None: unbounded); NumPy integers accepted, bools rejected."""
    what = _what(minimum) if maximum is None else f"an int in [{minimum}, {maximum}]"
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, (int, np.integer)):
        raise TypeError(f"{name} must be {what}, got {type(value).__name__} {value!r}")
    if (minimum is not None and value < minimum) or (maximum is not None and value > maximum):
        raise ValueError(f"{name} must be {what}, got {int(value)}")
    return int(value)


def check_positive_int(value, name: str) -> int:
    """`value` as a positive int, or a clear error naming `name` (NumPy integers accepted, bools rejected)."""
    return check_int(value, name, minimum=1)


def check_number(value, name: str, positive: bool = True, minimum: float | None = None) -> float:
    """`value` as a finite Python float (NumPy scalars accepted, bools rejected): > 0 if positive, >= minimum."""
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, (int, float, np.integer, np.floating)):
        raise TypeError(f"{name} must be a real number, got {type(value).__name__} {value!r}")
    value = float(value)
    if positive and not (np.isfinite(value) and value > 0):
        raise ValueError(f"{name} must be a finite positive number, got {value}")
    if not np.isfinite(value):
        raise ValueError(f"{name} must be a finite number, got {value}")
    if minimum is not None and value < minimum:
        raise ValueError(f"{name} must be at least {minimum}, got {value}")
    return value


def check_scale(scale, d_k: int, name: str = "scale") -> float:
    """The score scale: None means 1/sqrt(d_k) (as torch's SDPA); a finite positive number otherwise."""
    if scale is None:
        return 1.0 / float(np.sqrt(d_k))
    if isinstance(scale, (bool, np.bool_)) or not isinstance(scale, (int, float, np.floating, np.integer)):
        raise TypeError(f"{name} must be a number or None, got {type(scale).__name__}")
    return check_number(scale, name)


def check_flag(value, name: str) -> bool:
    """`value` as a bool (NumPy bools accepted); anything else, e.g. the string "no", is a TypeError."""
    if not isinstance(value, (bool, np.bool_)):
        raise TypeError(f"{name} must be a bool, got {type(value).__name__} {value!r}")
    return bool(value)


def check_floating_dtype(dtype, name: str = "dtype") -> torch.dtype:
    """A floating-point torch dtype (integer dtypes would make sines, rotations and scores wrong silently)."""
    if not isinstance(dtype, torch.dtype) or not dtype.is_floating_point:
        raise TypeError(f"{name} must be a floating-point torch dtype (e.g. torch.float32), got {dtype!r}")
    return dtype


def check_same_device(**tensors) -> None:
    """Every tensor given (None ignored) on one device; the message names each argument and its device."""
    given = {n: t for n, t in tensors.items() if isinstance(t, torch.Tensor)}
    if len({t.device for t in given.values()}) > 1:
        where = ", ".join(f"{n} on {t.device}" for n, t in given.items())
        raise ValueError(f"{', '.join(given)} must be on one device: got {where}")


def check_tensor(x, name: str, min_ndim: int = 2, finite: bool = True) -> torch.Tensor:
    """A floating-point tensor of rank >= min_ndim with no empty token or feature axis; finite on the CPU.

    The finiteness check is skipped off the CPU: it would force a device sync.
    """
    if not isinstance(x, torch.Tensor):
        raise TypeError(f"{name} must be a torch.Tensor, got {type(x).__name__}")
    if x.ndim < min_ndim:
        raise ValueError(
            f"{name} must have shape (..., N, d) with at least {min_ndim} dimensions, got shape {shape_of(x)}"
        )
    if not x.is_floating_point():
        raise TypeError(f"{name} must be a floating-point tensor, got dtype {x.dtype}")
    if x.ndim >= 2 and (x.shape[-2] == 0 or x.shape[-1] == 0):
        raise ValueError(f"{name} must hold at least one token of at least one feature, got shape {shape_of(x)}")
    if finite:
        check_finite(x, name)
    return x


def check_finite(x: torch.Tensor, name: str) -> torch.Tensor:
    """A data tensor with no NaN or inf (checked on the CPU only: elsewhere it would force a device sync)."""
    if x.device.type == "cpu" and not torch.isfinite(x).all():
        raise ValueError(f"{name} must hold finite values (no NaN or inf), got shape {shape_of(x)}")
    return x


def check_generator(generator, name: str = "generator") -> torch.Generator | None:
    """None or a torch.Generator."""
    if generator is not None and not isinstance(generator, torch.Generator):
        raise TypeError(f"{name} must be a torch.Generator or None, got {type(generator).__name__}")
    return generator


def check_qkv(q, k, v) -> None:
    """q (..., N_q, d), k (..., N_k, d), v (..., N_k, d_v): matching sizes, broadcastable batch dims, one dtype."""
    for name, t in (("q", q), ("k", k), ("v", v)):
        check_tensor(t, name)
    if q.shape[-1] != k.shape[-1]:
        raise ValueError(f"q and k must share the last dimension d: got q {shape_of(q)}, k {shape_of(k)}")
    if k.shape[-2] != v.shape[-2]:
        raise ValueError(f"k and v must have the same number of keys N_k: got k {shape_of(k)}, v {shape_of(v)}")
    try:
        torch.broadcast_shapes(q.shape[:-2], k.shape[:-2], v.shape[:-2])
    except RuntimeError:
        raise ValueError(
            f"q, k, v batch dimensions must broadcast: got q {shape_of(q)}, k {shape_of(k)}, v {shape_of(v)}"
        ) from None
    if not (q.dtype == k.dtype == v.dtype):
        raise TypeError(f"q, k, v must share a dtype: got {q.dtype}, {k.dtype}, {v.dtype}")
    check_same_device(q=q, k=k, v=v)


def check_mask(mask, name: str = "attn_mask") -> torch.Tensor | None:
    """None, or a bool mask (True = may attend) or a float mask (added; -inf allowed: masks are never checked
    for finiteness). Its shape is checked where the scores' shape is known."""
    if mask is None:
        return None
    if not isinstance(mask, torch.Tensor):
        raise TypeError(f"{name} must be a torch.Tensor or None, got {type(mask).__name__}")
    if mask.dtype != torch.bool and not mask.is_floating_point():
        raise TypeError(f"{name} must be bool (True = may attend) or float (added), got {mask.dtype}")
    return mask
