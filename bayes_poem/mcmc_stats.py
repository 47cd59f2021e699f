"""Rank-normalised split R-hat, bulk ESS and tail ESS, vectorised over elements.

The same estimators as ArviZ 0.23 (``az.rhat(method="rank")``,
``az.ess(method="bulk")``, ``az.ess(method="tail")``; Vehtari et al. 2021,
Bayesian Analysis 16:667), computed for every element of a variable at once
instead of one element at a time. Input ``x`` has shape ``(C, N, K)``: chains,
draws, and the K flattened elements; each function returns K values.

Split chains: with ``h = N // 2``, the first ``h`` and the last ``h`` draws of
each chain become two chains; the code holds them element-major, ``s`` of shape
``(K, m, n)`` with ``m = 2C``, ``n = h`` (for odd N the middle draw is dropped,
as in ArviZ).

Rank normalisation: ``z = Phi^-1((r - 3/8) / (M - 3/4 + 1))`` with ``r`` the
average rank of each draw among all ``M = 2C h`` draws of its element (Blom).
Without ties the ranks are a permutation of ``1..M``, so ``z`` is the table
``Phi^-1((i - 3/8) / (M - 3/4 + 1))``, ``i = 1..M``, scattered by the draws'
sort order; only the positions of tied draws (a tie block at sorted positions
``a..b`` has rank ``(a + b)/2 + 1``) get their own normal score. The sorted
draws also give the median (folded R-hat) and, for even N, the quantiles (tail
ESS) without sorting again.

R-hat of ``z`` (shape ``(K, m, n)``): ``W`` the mean of the chain variances,
``B = n var(chain means)`` (both ``ddof=1``), ``R = sqrt((B/W + n - 1)/n)``.
The rank R-hat is ``max(R(z(s)), R(z(|s - median(s)|)))`` (Python's ``max``:
a NaN folded value is ignored, a NaN bulk value is kept).

ESS of ``y`` (shape ``(K, m, n)``): ``acov_j[t]`` the FFT autocovariance of
chain ``j`` at lag ``t`` (divided by ``n``; ``mean_j acov_j`` is computed as the
inverse FFT of the chains' mean power spectrum), ``W = mean_j acov_j[0] n/(n-1)``,
``var_plus = W (n-1)/n + var(chain means)``, ``rho[t] = 1 - (W - mean_j
acov_j[t]) / var_plus``. Geyer's initial positive sequence truncates at the
first pair sum ``P_k = rho[2k] + rho[2k+1]`` that is not positive (or at lag
``n - 3``); the initial monotone sequence replaces each ``P_k`` by the running
minimum ``min(P_0..P_k)`` (both members by half of it); ``tau = -1 + 2
sum(rho[:T+1]) + rho[T+1]`` with ArviZ's end rule for ``rho[T+1]``, ``tau >=
1/log10(mn)``, ``ESS = mn / tau``. An element whose ``y`` spans less than
float resolution has ``ESS = mn``. Bulk ESS is the ESS of ``z(s)``; tail ESS
is the smaller ESS of the split indicators ``x <= q_0.05`` and ``x <= q_0.95``
(``q`` the type-7 quantile of all draws of the element, as
``scipy.stats.mstats.mquantiles`` computes it).

An element with any NaN draw, fewer than 4 draws per chain, or (R-hat only)
fewer than 2 chains gives NaN, as in ArviZ. ArviZ's variances use the
``E[x^2] - E[x]^2`` form when numba is installed; here ``np.var`` (stable), so
values agree with ArviZ to rounding (tested to 1e-10 relative).

Speed: elements are computed in blocks of about ``BLOCK_BYTES`` of draws (the
working arrays of a block stay in the CPU cache), and :func:`all_three_of`
joins the small variables of a model into shared blocks (one pass, not one
per variable); values depend on the blocks only by rounding (the order
in which numpy sums).
"""

from __future__ import annotations

from collections.abc import Sequence
from functools import partial

import numpy as np
from scipy import special
from scipy.fftpack import next_fast_len  # ArviZ's choice of FFT length

MIN_DRAWS = 4
BLOM_C = 3 / 8
TAIL_PROBS = (0.05, 0.95)
BLOCK_BYTES = 2**20  # split draws of the elements computed together (see _blocked)


def all_three(x: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(rhat_rank, ess_bulk, ess_tail)`` of each element, ranking the split draws once."""
    return all_three_of([x])[0]


def all_three_of(arrays: Sequence[np.ndarray]) -> list[tuple[np.ndarray, np.ndarray, np.ndarray]]:
    """:func:`all_three` of each of several variables' draws (each ``(C, N, K_i)``).

    Variables with the same draw shape and dtype are computed together, so a small
    model's variables cost one pass, not one per variable; values are the same to
    rounding.
    """
    return _blocked([np.asarray(x) for x in arrays], _all_three)


def rhat_rank(x: np.ndarray) -> np.ndarray:
    """Rank-normalised split R-hat (max of bulk and folded) of each element."""
    return _blocked([np.asarray(x)], partial(_all_three, bulk=False, tail=False))[0][0]


def ess_bulk(x: np.ndarray) -> np.ndarray:
    """Bulk ESS: the ESS of the rank-normalised split chains of each element."""
    return _blocked([np.asarray(x)], partial(_all_three, rhat=False, tail=False))[0][1]


def ess_tail(x: np.ndarray) -> np.ndarray:
    """Tail ESS: the smaller ESS of the 5% and 95% quantile indicators."""
    return _blocked([np.asarray(x)], partial(_all_three, rhat=False, bulk=False))[0][2]


def _blocked(arrays: list[np.ndarray], compute) -> list[tuple[np.ndarray, ...]]:
    """``compute`` (a block ``(C, N, B)`` -> three ``(B,)`` arrays) over the elements of
    ``arrays``, per array: arrays of one draw shape and dtype are joined along the
    elements and cut into blocks of about ``BLOCK_BYTES`` of draws, so each block's
    working arrays stay in the CPU cache (~4x faster than a 64 MB variable at once)."""
    out: list = [None] * len(arrays)
    groups: dict = {}
    for i, x in enumerate(arrays):
        groups.setdefault((x.dtype, x.shape[:2]), []).append(i)
    for (_, (c, n)), members in groups.items():
        sizes = [arrays[i].shape[2] for i in members]
        starts = np.cumsum([0, *sizes])
        step = max(1, BLOCK_BYTES // max(1, 8 * c * n))
        parts = []
        for lo in range(0, starts[-1], step):
            hi = lo + step
            pieces = [arrays[i][:, :, max(lo - start, 0):hi - start]
                      for i, start, size in zip(members, starts, sizes, strict=False)
                      if start < hi and start + size > lo]
            parts.append(compute(pieces[0] if len(pieces) == 1
                                 else np.concatenate(pieces, axis=2)))
        joined = [np.concatenate(values) for values in zip(*parts, strict=True)] if parts \
            else [np.empty(0)] * 3
        for j, i in enumerate(members):
            out[i] = tuple(values[starts[j]:starts[j + 1]] for values in joined)
    return out


def _all_three(x: np.ndarray, *, rhat: bool = True, bulk: bool = True, tail: bool = True):
    """R-hat, bulk ESS and tail ESS of one block (NaN for those not asked for)."""
    c, n, k = x.shape
    out = [np.full(k, np.nan) for _ in range(3)]
    if n < MIN_DRAWS or c < 1:
        return tuple(out)
    bad = _invalid(x)
    s = _split(x)
    srt = None
    if (rhat and c > 1) or bulk:
        z, srt = _normal_scores(s)
        if rhat and c > 1:
            out[0] = _rhat_rank(s, z, srt)
        if bulk:
            out[1] = _ess(z)
    if tail:
        out[2] = _ess_tail(x, s, srt)
    for values in out:
        values[bad] = np.nan
    return tuple(out)


def _invalid(x: np.ndarray) -> np.ndarray:
    """Elements ArviZ gives NaN for: any NaN draw (shape problems checked by callers)."""
    return np.isnan(x).any(axis=(0, 1))


def _split(x: np.ndarray) -> np.ndarray:
    """The split chains of ``x`` (``(C, N, K)``), element-major: ``(K, 2C, N // 2)``."""
    c, n, k = x.shape
    half = n // 2
    by_element = np.moveaxis(x, 2, 0)  # a view: (K, C, N)
    s = np.empty((k, 2 * c, half), dtype=x.dtype)
    s[:, :c] = by_element[:, :, :half]
    s[:, c:] = by_element[:, :, n - half:]
    return s


def _normal_scores(s: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``z`` (Blom-back-transformed average ranks over all draws of each element, shape
    of ``s``) and the sorted draws of each element (``(K, M)``)."""
    k, m, n = s.shape
    rows = s.reshape(k, m * n)
    order = np.argsort(rows, axis=1)  # any order: tied draws share their average rank
    srt = np.sort(rows, axis=1)
    scores = _sorted_scores(srt)
    z = np.empty((k, m * n))
    for element in range(k):  # 2x faster than np.put_along_axis's 2-D fancy index
        z[element, order[element]] = scores[element]
    return z.reshape(k, m, n), srt


def _sorted_scores(srt: np.ndarray) -> np.ndarray:
    """The normal score of each sorted position (ties: of their average rank)."""
    k, size = srt.shape
    denom = size - 2 * BLOM_C + 1
    # special.ndtri is what stats.norm.ppf evaluates, without its argument checks
    table = special.ndtri((np.arange(1, size + 1, dtype=float) - BLOM_C) / denom)
    row, col = np.nonzero(srt[:, 1:] == srt[:, :-1])  # tied with the next position
    if not row.size:
        return np.broadcast_to(table, (k, size))
    # runs of consecutive tied pairs in a row are one tie block: positions first..last+1
    flat = row * size + col  # gaps of >= 2 between rows, so runs never span rows
    starts = np.flatnonzero(np.diff(flat, prepend=-2) != 1)
    ends = np.append(starts[1:], flat.size) - 1
    block = np.repeat(np.arange(starts.size), np.diff(np.append(starts, flat.size)))
    mean_rank = (col[starts] + col[ends] + 1) / 2 + 1  # 1-based mean of the block's ranks
    value = special.ndtri((mean_rank - BLOM_C) / denom)[block]
    scores = np.broadcast_to(table, (k, size)).copy()
    scores[row, col] = value
    scores[row, col + 1] = value
    return scores


def _rhat_rank(s: np.ndarray, z: np.ndarray, srt: np.ndarray) -> np.ndarray:
    """max(bulk, folded) R-hat from the split draws, their ``z`` and sorted draws."""
    size = srt.shape[1]
    median = (srt[:, (size - 1) // 2] + srt[:, size // 2]) / 2  # np.median's arithmetic
    folded = np.abs(s - median[:, None, None])
    bulk = _rhat(z)
    tail = _rhat(_normal_scores(folded)[0])
    # Python's max(bulk, tail) as in ArviZ: a NaN folded R-hat (a folded split chain
    # constant, e.g. binary draws) leaves the bulk value; a NaN bulk value stays NaN
    return np.where(tail > bulk, tail, bulk)


def _rhat(z: np.ndarray) -> np.ndarray:
    n = z.shape[2]
    chain_mean = z.mean(axis=2)
    within = np.var(z, axis=2, ddof=1).mean(axis=1)
    between = n * np.var(chain_mean, axis=1, ddof=1)
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.sqrt((between / within + n - 1) / n)


def _ess_tail(x: np.ndarray, s: np.ndarray, srt: np.ndarray | None) -> np.ndarray:
    """Tail ESS from the split draws ``s``; ``srt``: the sorted split draws, if known."""
    if srt is None or x.shape[1] % 2:  # an odd draw count drops a draw from the split
        srt = np.sort(np.moveaxis(x, 2, 0).reshape(x.shape[2], -1), axis=1)
    low, high = _quantiles(srt, TAIL_PROBS)
    ess = [_ess((s <= q[:, None, None]).astype(float)) for q in (low, high)]
    return np.minimum(*ess)


def _quantiles(srt: np.ndarray, probs) -> list[np.ndarray]:
    """Type-7 quantiles of the sorted draws of each element (mquantiles' arithmetic)."""
    size = srt.shape[1]
    out = []
    for p in probs:
        p = np.atleast_1d(np.asarray(p, dtype=float))
        aleph = size * p + (1.0 - p)
        j = int(np.floor(aleph.clip(1, size - 1))[0])
        gamma = (aleph - j).clip(0, 1)
        out.append((1.0 - gamma) * srt[:, j - 1] + gamma * srt[:, j])
    return out


def _mean_autocov(y: np.ndarray) -> np.ndarray:
    """FFT autocovariance along the draw axis (the last), every lag, divided by n, and
    averaged over the chains (axis 1): the inverse FFT of the chains' mean power
    spectrum, one inverse transform per element instead of one per chain."""
    n = y.shape[-1]
    size = next_fast_len(2 * n)
    spec = np.fft.rfft(y - y.mean(axis=-1, keepdims=True), n=size, axis=-1)
    power = spec.real**2
    power += spec.imag**2
    return np.fft.irfft(power.mean(axis=1), n=size, axis=-1)[:, :n] / n


def _ess(y: np.ndarray) -> np.ndarray:
    """ESS of each element of ``y`` (shape ``(K, m, n)``), Geyer-truncated."""
    y = np.asarray(y, dtype=float)
    k, m, n = y.shape
    total = m * n
    mean_acov = _mean_autocov(y).T  # (n, K)
    mean_var = mean_acov[0] * n / (n - 1.0)
    var_plus = mean_var * (n - 1.0) / n
    if m > 1:
        var_plus = var_plus + np.var(y.mean(axis=2), axis=1, ddof=1)
    with np.errstate(divide="ignore", invalid="ignore"):
        rho = 1.0 - (mean_var - mean_acov) / var_plus  # (n, K), rho[0] replaced below
    rho[0] = 1.0
    n_pairs = n // 2
    pairs = rho[: 2 * n_pairs].reshape(n_pairs, 2, k)
    pair_sum = pairs[:, 0] + pairs[:, 1]  # P_k, k = 0..n_pairs-1
    # ArviZ's loop: iteration i (lag t = 1 + 2i < n - 3) computes pair i + 1 and runs
    # while every earlier pair sum is > 0; N = number of iterations run.
    i_max = max(0, (n - 4 + 1) // 2)
    not_pos = ~(pair_sum > 0)
    first_not_pos = np.where(not_pos.any(axis=0), not_pos.argmax(axis=0), n_pairs)
    n_iter = np.minimum(first_not_pos, i_max)  # (K,)
    # pairs after the last one any element uses (pair N, for rho[max_t + 1]) add only 0
    used_pairs = min(n_pairs, int(n_iter.max(initial=0)) + 1)
    pairs, pair_sum = pairs[:used_pairs], pair_sum[:used_pairs]
    idx = np.arange(used_pairs)[:, None]
    # initial monotone sequence over pairs 0..N-1: running minimum of pair sums
    used = idx < n_iter[None, :]
    running = np.minimum.accumulate(np.where(used, pair_sum, np.inf), axis=0)
    prev = np.vstack([np.full((1, k), np.inf), running[:-1]])
    lowered = used & (pair_sum > prev) & (idx >= 1)
    half_prev = prev / 2.0
    even = np.where(lowered, half_prev, pairs[:, 0])
    odd = np.where(lowered, half_prev, pairs[:, 1])
    kept = np.where(used[:, None, :], np.stack([even, odd], axis=1), 0.0)
    body = kept.reshape(2 * used_pairs, k).sum(axis=0)
    # rho[max_t + 1] with max_t = 2N - 1: the even member of pair N, kept if that pair
    # was written (P_N >= 0) or it is positive; rho[0] = 1 when no iteration ran
    last = np.minimum(n_iter, n_pairs - 1)
    last_even = np.take_along_axis(pairs[:, 0], last[None, :], axis=0)[0]
    last_sum = np.take_along_axis(pair_sum, last[None, :], axis=0)[0]
    extra = np.where((last_sum >= 0) | (last_even > 0), last_even, 0.0)
    extra = np.where(n_iter == 0, 1.0, extra)
    tau = -1.0 + 2.0 * body + extra
    tau = np.maximum(tau, 1 / np.log10(total))
    ess = total / tau
    ess[np.isnan(rho[1])] = np.nan
    constant = (y.max(axis=(1, 2)) - y.min(axis=(1, 2))) < np.finfo(float).resolution
    ess[constant] = float(total)
    return ess
