"""Wrong online-softmax updates the lesson 07 kernel checker recognises (each a @triton.jit function).

Imported lazily by `lesson07.check_flash_update`, after the lesson has set TRITON_INTERPRET (the interpreter
replaces @triton.jit when a function is defined, so this module must not be imported earlier). Signature as the
teaching kernel calls `UPDATE`: (b_m, b_l, b_acc, b_s, b_v) -> (b_m, b_l, b_acc).
"""

from __future__ import annotations

from ..flash_teaching import tl, triton


@triton.jit
def no_correction(b_m, b_l, b_acc, b_s, b_v):
    """The old l and acc are not multiplied by exp(m - m') when the max moves."""
    b_m_new = tl.maximum(b_m, tl.max(b_s, 1))
    b_m_safe = tl.where(b_m_new == float("-inf"), 0.0, b_m_new)
    b_p = tl.exp(b_s - b_m_safe[:, None])
    return b_m_new, b_l + tl.sum(b_p, 1), b_acc + tl.dot(b_p.to(b_v.dtype), b_v)


@triton.jit
def normalised_blocks(b_m, b_l, b_acc, b_s, b_v):
    """Each block's probabilities are divided by that block's own sum before they are added."""
    b_m_new = tl.maximum(b_m, tl.max(b_s, 1))
    b_m_safe = tl.where(b_m_new == float("-inf"), 0.0, b_m_new)
    b_alpha = tl.exp(b_m - b_m_safe)
    b_p = tl.exp(b_s - b_m_safe[:, None])
    b_sum = tl.sum(b_p, 1)
    b_p = b_p / tl.where(b_sum > 0, b_sum, 1.0)[:, None]
    return b_m_new, b_l * b_alpha + tl.sum(b_p, 1), b_acc * b_alpha[:, None] + tl.dot(b_p.to(b_v.dtype), b_v)


@triton.jit
def scalar_max(b_m, b_l, b_acc, b_s, b_v):
    """One max over the whole block (every row shares it) instead of one max per query row."""
    b_block_max = tl.max(tl.max(b_s, 1), 0)  # a scalar
    b_m_new = tl.maximum(b_m, b_block_max)
    b_m_safe = tl.where(b_m_new == float("-inf"), 0.0, b_m_new)
    b_alpha = tl.exp(b_m - b_m_safe)
    b_p = tl.exp(b_s - b_m_safe[:, None])
    return b_m_new, b_l * b_alpha + tl.sum(b_p, 1), b_acc * b_alpha[:, None] + tl.dot(b_p.to(b_v.dtype), b_v)


@triton.jit
def nan_on_masked_row(b_m, b_l, b_acc, b_s, b_v):
    """Right, except that a row whose block is all -inf (and m still -inf) computes exp(-inf - (-inf)) = NaN."""
    b_m_new = tl.maximum(b_m, tl.max(b_s, 1))
    b_alpha = tl.exp(b_m - b_m_new)
    b_p = tl.exp(b_s - b_m_new[:, None])
    return b_m_new, b_l * b_alpha + tl.sum(b_p, 1), b_acc * b_alpha[:, None] + tl.dot(b_p.to(b_v.dtype), b_v)


WRONG_UPDATES = {
    "missing correction factor": no_correction,
    "normalising each block": normalised_blocks,
    "a scalar max over the whole block": scalar_max,
    "NaN on a fully masked row": nan_on_masked_row,
}
