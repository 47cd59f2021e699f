"""Rank-normalised split R-hat, bulk ESS and tail ESS, vectorised over elements.

The same estimators as ArviZ 0.23 (``az.rhat(method="rank")``,
``az.ess(method="bulk")``, ``az.ess(method="tail")``; Vehtari et al. 2021,
Bayesian Analysis 16:667), computed for every element of a variable at once
instead of one element at a time. Input ``x`` has shape ``(C, N, K)``: chains,
draws, and the K flattened elements; each function returns K values.

Split chains: with ``h = N // 2``, the first ``h`` and the last ``h`` draws of
each chain become two chains, so ``s`` has shape ``(2C, h, K)`` (for odd N the
middle draw is dropped, as in ArviZ).

Rank normalisation: ``z = Phi^-1((r - 3/8) / (M - 3/4 + 1))`` with ``r`` the
average rank of each draw among all ``M = 2C h`` draws of its element (Blom).

R-hat of ``z`` (shape ``(m, n, K)``): ``W`` the mean of the chain variances,
``B = n var(chain means)`` (both ``ddof=1``), ``R = sqrt((B/W + n - 1)/n)``.
The rank R-hat is ``max(R(z(s)), R(z(|s - median(s)|)))`` (Python's ``max``:
a NaN folded value is ignored, a NaN bulk value is kept).

ESS of ``y`` (shape ``(m, n, K)``): ``acov_j[t]`` the FFT autocovariance of
chain ``j`` at lag ``t`` (divided by ``n``), ``W = mean_j acov_j[0] n/(n-1)``,
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
"""

from __future__ import annotations

import numpy as np
from scipy import special
from scipy.fftpack import next_fast_len  # ArviZ's choice of FFT length

MIN_DRAWS = 4
BLOM_C = 3 / 8
TAIL_PROBS = (0.05, 0.95)


def all_three(x: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(rhat_rank, ess_bulk, ess_tail)`` of each element, ranking the split draws once."""
    x = np.asarray(x)
    if x.shape[1] < MIN_DRAWS or x.shape[0] < 1:
        nan = np.full(x.shape[2], np.nan)
        return nan, nan.copy(), nan.copy()
    z = _z_scale(_split(x))
    bulk = _ess(z)
    bulk[_invalid(x)] = np.nan
    return rhat_rank(x, z=z), bulk, ess_tail(x)


def rhat_rank(x: np.ndarray, *, z: np.ndarray | None = None) -> np.ndarray:
    """Rank-normalised split R-hat (max of bulk and folded) of each element.

    ``z``: the rank-normalised split draws if already computed.
    """
    x = np.asarray(x)
    if x.shape[0] < 2 or x.shape[1] < MIN_DRAWS:
        return np.full(x.shape[2], np.nan)
    bad = _invalid(x)
    s = _split(x)
    bulk = _rhat(_z_scale(s) if z is None else z)
    folded = np.abs(s - np.median(s, axis=(0, 1), keepdims=True))
    tail = _rhat(_z_scale(folded))
    # Python's max(bulk, tail) as in ArviZ: a NaN folded R-hat (a folded split chain
    # constant, e.g. binary draws) leaves the bulk value; a NaN bulk value stays NaN
    out = np.where(tail > bulk, tail, bulk)
    out[bad] = np.nan
    return out


def ess_bulk(x: np.ndarray) -> np.ndarray:
    """Bulk ESS: the ESS of the rank-normalised split chains of each element."""
    x = np.asarray(x)
    if x.shape[1] < MIN_DRAWS or x.shape[0] < 1:
        return np.full(x.shape[2], np.nan)
    out = _ess(_z_scale(_split(x)))
    out[_invalid(x)] = np.nan
    return out


def ess_tail(x: np.ndarray) -> np.ndarray:
    """Tail ESS: the smaller ESS of the 5% and 95% quantile indicators."""
    x = np.asarray(x)
    if x.shape[1] < MIN_DRAWS or x.shape[0] < 1:
        return np.full(x.shape[2], np.nan)
    bad = _invalid(x)
    low, high = _quantiles(x, TAIL_PROBS)
    ess = [_ess(_split((x <= q[None, None, :]).astype(float))) for q in (low, high)]
    out = np.minimum(*ess)
    out[bad] = np.nan
    return out


def _invalid(x: np.ndarray) -> np.ndarray:
    """Elements ArviZ gives NaN for: any NaN draw (shape problems checked by callers)."""
    return np.isnan(x).any(axis=(0, 1))


def _split(x: np.ndarray) -> np.ndarray:
    half = x.shape[1] // 2
    return np.concatenate([x[:, :half], x[:, x.shape[1] - half:]], axis=0)


def _z_scale(s: np.ndarray) -> np.ndarray:
    """Blom-back-transformed average ranks over all draws of each element."""
    m, n, k = s.shape
    rows = np.ascontiguousarray(s.reshape(m * n, k).T)  # one row per element
    rank = _average_ranks(rows)
    size = m * n
    # special.ndtri is what stats.norm.ppf evaluates, without its argument checks
    return special.ndtri((rank - BLOM_C) / (size - 2 * BLOM_C + 1)).T.reshape(m, n, k)


def _average_ranks(rows: np.ndarray) -> np.ndarray:
    """Average ranks (1-based, ties share their mean rank) along each row."""
    k, size = rows.shape
    order = np.argsort(rows, axis=1, kind="stable")
    srt = np.take_along_axis(rows, order, axis=1)
    # tie blocks: a new block where the sorted value changes
    new = np.ones((k, size), dtype=bool)
    new[:, 1:] = srt[:, 1:] != srt[:, :-1]
    block = np.cumsum(new, axis=1) - 1  # block id per sorted position
    pos = np.broadcast_to(np.arange(1, size + 1, dtype=float), (k, size))
    flat_block = (block + (np.arange(k) * size)[:, None]).ravel()
    sums = np.bincount(flat_block, weights=pos.ravel(), minlength=k * size)
    counts = np.bincount(flat_block, minlength=k * size)
    with np.errstate(invalid="ignore", divide="ignore"):
        mean = sums / counts
    ranks = np.empty((k, size))
    np.put_along_axis(ranks, order, mean[flat_block].reshape(k, size), axis=1)
    return ranks


def _rhat(z: np.ndarray) -> np.ndarray:
    n = z.shape[1]
    chain_mean = z.mean(axis=1)
    within = np.var(z, axis=1, ddof=1).mean(axis=0)
    between = n * np.var(chain_mean, axis=0, ddof=1)
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.sqrt((between / within + n - 1) / n)


def _quantiles(x: np.ndarray, probs) -> list[np.ndarray]:
    """Type-7 quantiles of all draws of each element (mquantiles' arithmetic)."""
    c, n, k = x.shape
    srt = np.sort(x.reshape(c * n, k), axis=0)
    size = c * n
    out = []
    for p in probs:
        p = np.atleast_1d(np.asarray(p, dtype=float))
        aleph = size * p + (1.0 - p)
        j = int(np.floor(aleph.clip(1, size - 1))[0])
        gamma = (aleph - j).clip(0, 1)
        out.append((1.0 - gamma) * srt[j - 1] + gamma * srt[j])
    return out


def _autocov(y: np.ndarray) -> np.ndarray:
    """FFT autocovariance along the draw axis (axis 1), every lag, divided by n."""
    n = y.shape[1]
    size = next_fast_len(2 * n)
    centred = y - y.mean(axis=1, keepdims=True)
    spec = np.fft.rfft(centred, n=size, axis=1)
    spec *= np.conjugate(spec)
    return np.fft.irfft(spec, n=size, axis=1)[:, :n] / n


def _ess(y: np.ndarray) -> np.ndarray:
    """ESS of each element of ``y`` (shape ``(m, n, K)``), Geyer-truncated."""
    y = np.asarray(y, dtype=float)
    m, n, k = y.shape
    total = m * n
    acov = _autocov(y)
    mean_acov = acov.mean(axis=0)  # (n, K)
    mean_var = mean_acov[0] * n / (n - 1.0)
    var_plus = mean_var * (n - 1.0) / n
    if m > 1:
        var_plus = var_plus + np.var(y.mean(axis=1), axis=0, ddof=1)
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
    idx = np.arange(n_pairs)[:, None]
    # initial monotone sequence over pairs 0..N-1: running minimum of pair sums
    used = idx < n_iter[None, :]
    running = np.minimum.accumulate(np.where(used, pair_sum, np.inf), axis=0)
    prev = np.vstack([np.full((1, k), np.inf), running[:-1]])
    lowered = used & (pair_sum > prev) & (idx >= 1)
    half_prev = prev / 2.0
    even = np.where(lowered, half_prev, pairs[:, 0])
    odd = np.where(lowered, half_prev, pairs[:, 1])
    kept = np.where(used[:, None, :], np.stack([even, odd], axis=1), 0.0)
    body = kept.reshape(2 * n_pairs, k).sum(axis=0)
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
    constant = (y.max(axis=(0, 1)) - y.min(axis=(0, 1))) < np.finfo(float).resolution
    ess[constant] = float(total)
    return ess
