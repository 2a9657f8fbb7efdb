"""Arena-style ratings from pairwise votes: Bradley-Terry by maximum likelihood on the Elo
scale, with bootstrap confidence intervals.

Users (or an LLM judge) see two anonymous answers and pick A or B. The Bradley-Terry model
says model i beats model j with probability

    P(i beats j) = 1 / (1 + 10^((R_j - R_i) / 400)),

the Elo formula: 400 points of rating difference are 10:1 odds. In natural units
theta = R * ln(10) / 400 it is a logistic regression, P = sigmoid(theta_i - theta_j), whose
log-likelihood is concave; its maximum satisfies, for every model, observed wins = expected
wins (the gradient is W_i - sum_j n_ij P_ij). Ratings are relative: only differences are
identified, so an anchor fixes them (here: the mean rating is 1000, the LMSYS notebook's
INIT_RATING). The MLE is solved by Newton's method (the iteratively reweighted least squares
that logistic regression uses); Hunter's (2004) MM algorithm reaches the same point more
slowly.

Chatbot Arena (Chiang et al. 2024) moved from the online Elo update, which depends on the
order of the votes and weights recent ones more, to this MLE, and reports 95 % intervals from
a bootstrap over votes. The checks, on votes simulated from known ratings (seeded): the hand
values of the win probability; the gradient at the fit (observed = expected wins, computed by
the harness with the formula above); invariance to vote order, with online Elo as the control
that moves; recovery of the true ratings within 4 Fisher-information standard errors; the
bootstrap spread against that standard error; and the coverage of the 95 % intervals over 100
fresh simulations, against the count's binomial tolerance.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Protocol

import numpy as np

from aiprep.kit.compare import compare
from aiprep.kit.report import SolutionReport, print_check_of

SEED = 0
ANCHOR = 1000.0  # mean rating (Elo points), the LMSYS notebook's INIT_RATING
ELO_PER_NAT = 400.0 / math.log(10.0)  # 173.7 Elo points per unit of log-odds
LEVEL = 0.95  # confidence level of the intervals
Z = 4.0  # tolerance in standard errors for the simulated checks

WINPROB_CHECK = "win probability 1 / (1 + 10^((Rb - Ra)/400)), 4 hand cases (1e-9)"
ANCHOR_CHECK = "mean fitted rating = 1000 (the anchor), 1e-6 Elo"
GRADIENT_CHECK = "MLE: observed wins = expected wins for each model, 0.01 wins"
ORDER_CHECK = "fit is the same on reversed and shuffled votes, 1e-6 Elo"
CONTROL_CHECK = "guard: online Elo (K = 4) moves >= 5 Elo when the votes are reversed"
RECOVERY_CHECK = "fitted ratings within 4 Fisher standard errors of the true ratings"
SPREAD_CHECK = "bootstrap std / Fisher standard error within [0.85, 1.15], each model"
PERCENTILE_CHECK = "95 % interval of the samples 0..1000 is [25, 975] (percentiles)"
COVERAGE_CHECK = "95 % bootstrap intervals cover the true ratings, 100 simulations x 6 models"

# The functions a candidate writes; check(impl) calls only these on impl.
ANSWER = ("win_probability", "fit_ratings", "bootstrap_ratings", "confidence_intervals")

# -----------------------------------------------------------------------------
# The answer: Bradley-Terry on the Elo scale, and its bootstrap


def win_probability(rating_a: float, rating_b: float) -> float:
    """P(model A beats model B) from their ratings (Elo points): 400 points = 10:1 odds."""
    return float(1.0 / (1.0 + 10.0 ** ((rating_b - rating_a) / 400.0)))


def _win_counts(winners: np.ndarray, losers: np.ndarray, n_models: int) -> np.ndarray:
    """(n_models, n_models) matrix: entry [i, j] = votes where i beat j."""
    wins = np.zeros((n_models, n_models))
    np.add.at(wins, (winners, losers), 1.0)
    return wins


def _fit_counts(
    wins: np.ndarray, start: np.ndarray | None = None, iterations: int = 50
) -> np.ndarray:
    """Bradley-Terry MLE in natural units (log-odds), mean 0, by Newton's method.

    ``wins``: (..., n, n) win counts; leading axes are independent data sets (bootstrap
    rounds), solved together. ``start``: (n,) log-odds to start from (the full data's fit,
    for bootstrap rounds), else 0. Returns (..., n).
    """
    n = wins.shape[-1]
    games = wins + np.swapaxes(wins, -1, -2)  # (..., n, n) votes between i and j
    observed = wins.sum(-1)  # (..., n) wins of each model
    theta = np.zeros(wins.shape[:-1]) + (0.0 if start is None else start)  # (..., n)
    for _ in range(iterations):
        p = 1.0 / (1.0 + np.exp(theta[..., None, :] - theta[..., :, None]))  # P(i beats j)
        gradient = observed - (games * p).sum(-1)  # d loglik / d theta_i: wins - expected
        weight = games * p * (1.0 - p)  # (..., n, n)
        # minus the Hessian is a graph Laplacian, singular along (1, ..., 1): only
        # differences are identified. Adding 1/n to every entry makes it invertible and
        # leaves a mean-zero step (the gradient sums to 0).
        laplacian = np.eye(n) * weight.sum(-1)[..., None] - weight + 1.0 / n
        step = np.linalg.solve(laplacian, gradient[..., None])[..., 0]
        theta = theta + step
        if np.max(np.abs(step)) < 1e-10:  # log-odds; 2e-8 Elo (Newton: quadratic)
            break
    centred: np.ndarray = theta - theta.mean(-1, keepdims=True)
    return centred


def fit_ratings(winners: np.ndarray, losers: np.ndarray, n_models: int) -> np.ndarray:
    """Bradley-Terry ratings (Elo points, mean ``ANCHOR`` = 1000) of ``n_models`` models
    from votes: ``winners[v]`` beat ``losers[v]`` (int arrays of shape (votes,)). The
    maximum-likelihood fit of all votes at once: it does not depend on their order."""
    theta = _fit_counts(_win_counts(winners, losers, n_models))  # (n_models,) log-odds
    return ANCHOR + ELO_PER_NAT * theta


def bootstrap_ratings(
    winners: np.ndarray, losers: np.ndarray, n_models: int, rounds: int, seed: int
) -> np.ndarray:
    """(rounds, n_models) ratings (Elo points), each fitted on the votes resampled with
    replacement (as many as there are; ``seed`` for the resampling).

    Resampling V votes with replacement only changes how often each (winner, loser) pair
    occurs, so a round is a multinomial draw of V over the observed pair frequencies: the
    same distribution, drawn in one call, and every round fitted at once."""
    rng = np.random.default_rng(seed)
    counts = _win_counts(winners, losers, n_models)
    wins = counts.ravel()  # (n_models^2,) pair counts
    votes = int(wins.sum())
    draws = rng.multinomial(votes, wins / votes, size=rounds)  # (rounds, n_models^2)
    start = _fit_counts(counts)  # each round starts from the full data's fit
    theta = _fit_counts(draws.reshape(rounds, n_models, n_models).astype(float), start)
    return ANCHOR + ELO_PER_NAT * theta


def confidence_intervals(samples: np.ndarray, level: float) -> tuple[np.ndarray, np.ndarray]:
    """(lower, upper), each (n_models,): the percentile interval of bootstrap ``samples``
    (rounds, n_models) at ``level`` (e.g. 0.95: the 2.5th and 97.5th percentiles). The
    spread of the samples, not the standard error of their mean."""
    tail = 100.0 * (1.0 - level) / 2.0
    return np.percentile(samples, tail, axis=0), np.percentile(samples, 100.0 - tail, axis=0)


# -----------------------------------------------------------------------------
# The harness: simulated votes from known ratings, and independent yardsticks


class Answer(Protocol):
    def win_probability(self, rating_a: float, rating_b: float) -> float: ...

    def fit_ratings(self, winners: np.ndarray, losers: np.ndarray, n_models: int) -> np.ndarray: ...

    def bootstrap_ratings(
        self, winners: np.ndarray, losers: np.ndarray, n_models: int, rounds: int, seed: int
    ) -> np.ndarray: ...

    def confidence_intervals(
        self, samples: np.ndarray, level: float
    ) -> tuple[np.ndarray, np.ndarray]: ...


@dataclass(frozen=True)
class Arena:
    true_ratings: np.ndarray  # (6,) Elo points, mean 1000
    winners: np.ndarray  # (VOTES,) int
    losers: np.ndarray  # (VOTES,) int


VOTES = 10_000  # votes in the arena
TRUE_RATINGS = (1180.0, 1120.0, 1060.0, 1000.0, 900.0, 740.0)  # Elo points, mean 1000
ROUNDS = 1000  # bootstrap rounds on the main data set
SIMULATIONS = 100  # fresh arenas for the coverage check
SIM_ROUNDS = 200  # bootstrap rounds per fresh arena


def simulate_votes(
    true_ratings: np.ndarray, votes: int, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray]:
    """Votes between uniformly drawn pairs of distinct models; A wins with the Elo-formula
    probability of the true ratings. Returns (winners, losers)."""
    n = len(true_ratings)
    a = rng.integers(0, n, votes)
    b = (a + rng.integers(1, n, votes)) % n  # a different model
    p_a = 1.0 / (1.0 + 10.0 ** ((true_ratings[b] - true_ratings[a]) / 400.0))
    a_wins = rng.random(votes) < p_a
    return np.where(a_wins, a, b), np.where(a_wins, b, a)


def make_data(seed: int = SEED) -> Arena:
    """10,000 votes among 6 models with known ratings."""
    truth = np.array(TRUE_RATINGS)
    winners, losers = simulate_votes(truth, VOTES, np.random.default_rng(seed))
    return Arena(truth, winners, losers)


def online_elo(winners: np.ndarray, losers: np.ndarray, n_models: int, k: float) -> np.ndarray:
    """The control: the sequential Elo update (each vote moves both ratings by K times the
    surprise), which depends on the order of the votes."""
    ratings = np.full(n_models, ANCHOR)
    for w, loser in zip(winners.tolist(), losers.tolist(), strict=True):
        surprise = 1.0 - 1.0 / (1.0 + 10.0 ** ((ratings[loser] - ratings[w]) / 400.0))
        ratings[w] += k * surprise
        ratings[loser] -= k * surprise
    return ratings


def fisher_standard_errors(
    true_ratings: np.ndarray, winners: np.ndarray, losers: np.ndarray
) -> np.ndarray:
    """Asymptotic standard errors (Elo points) of mean-anchored MLE ratings: the square root
    of the diagonal of the pseudo-inverse of the Fisher information (the Laplacian of
    n_ij p_ij (1 - p_ij) at the true ratings), whose null space is the anchor's direction."""
    n = len(true_ratings)
    games = _win_counts(winners, losers, n)
    games = games + games.T
    diff = (true_ratings[:, None] - true_ratings[None, :]) / ELO_PER_NAT
    p = 1.0 / (1.0 + np.exp(-diff))
    weight = games * p * (1.0 - p)
    information = np.diag(weight.sum(1)) - weight
    se: np.ndarray = ELO_PER_NAT * np.sqrt(np.diag(np.linalg.pinv(information)))
    return se


def check(impl: Answer) -> SolutionReport:
    """Hand values, the MLE's own conditions, then the simulations."""
    report = SolutionReport(solution="strategy.arena_elo_ratings")
    data = make_data()
    _win_probability(report, impl)
    ratings = _fit(report, impl, data)
    _bootstrap(report, impl, data, ratings)
    _coverage(report, impl, data)
    return report


def _win_probability(report: SolutionReport, impl: Answer) -> None:
    cases = ((1000.0, 1000.0), (1400.0, 1000.0), (1000.0, 1400.0), (1200.0, 1000.0))
    got = [impl.win_probability(a, b) for a, b in cases]
    want = [0.5, 10.0 / 11.0, 1.0 / 11.0, 1.0 / (1.0 + 10.0**-0.5)]
    report.metric("P(win) at +100 Elo", impl.win_probability(1100.0, 1000.0))
    report.check_close(
        WINPROB_CHECK,
        compare(got, want, atol=0.0, rtol=1e-9),
        "equal ratings 0.5; +400 Elo is 10:1 odds, 10/11 = 0.909 and 1/11; +200 is "
        "1/(1 + 10^-0.5) = 0.760 (float64, 1e-9); e instead of 10 gives 0.731 at +400",
    )


def _fit(report: SolutionReport, impl: Answer, data: Arena) -> np.ndarray:
    n = len(data.true_ratings)
    ratings = np.asarray(impl.fit_ratings(data.winners, data.losers, n), dtype=float)
    report.metric("fitted ratings", ", ".join(f"{r:.1f}" for r in ratings), "Elo")
    report.metric("true ratings", ", ".join(f"{r:.0f}" for r in data.true_ratings), "Elo")
    report.check_close(
        ANCHOR_CHECK,
        compare(float(np.mean(ratings)), ANCHOR, atol=1e-6),
        "only rating differences are identified; the anchor puts the mean at 1000 (atol "
        "1e-6 Elo: float64 sums of 6 ratings)",
    )
    # observed and expected wins, with the Elo formula evaluated by the harness
    p = 1.0 / (1.0 + 10.0 ** ((ratings[data.losers] - ratings[data.winners]) / 400.0))
    expected = np.bincount(data.winners, p, n) + np.bincount(data.losers, 1.0 - p, n)
    observed = np.bincount(data.winners, minlength=n).astype(float)
    report.metric("max |observed - expected wins|", float(np.max(np.abs(observed - expected))))
    report.check_close(
        GRADIENT_CHECK,
        compare(expected, observed, atol=0.01),
        "the log-likelihood's gradient for model i is wins_i - sum of P(i wins) over its "
        "votes: zero at the maximum. 0.01 wins out of ~3,300 per model: Newton converges to "
        "1e-9; online Elo K = 32 misses by tens of wins, ratings on a natural-log scale by "
        "hundreds",
    )
    reverse = np.asarray(impl.fit_ratings(data.winners[::-1], data.losers[::-1], n), float)
    order = np.random.default_rng(SEED + 1).permutation(len(data.winners))
    shuffled = np.asarray(impl.fit_ratings(data.winners[order], data.losers[order], n), float)
    moved = compare(np.concatenate([reverse, shuffled]), np.concatenate([ratings, ratings]), 1e-6)
    report.metric("fit: largest change under reversed / shuffled votes", moved.max_abs_diff, "Elo")
    report.check_close(
        ORDER_CHECK,
        moved,
        "the likelihood is a product over votes, so the MLE cannot depend on their order "
        "(1e-6 Elo: the fit converges far below); the online update with K = 32 moves by "
        "tens of points",
    )
    elo_fwd = online_elo(data.winners, data.losers, n, k=4.0)
    elo_rev = online_elo(data.winners[::-1], data.losers[::-1], n, k=4.0)
    control = float(np.max(np.abs(elo_fwd - elo_rev)))
    report.metric("control: online Elo K = 4, largest change when votes are reversed", control)
    report.metric(
        "control: online Elo K = 4, largest gap to the truth",
        float(np.max(np.abs(elo_fwd - data.true_ratings))),
    )
    report.check(
        CONTROL_CHECK,
        control,
        ">=",
        5.0,
        "guard: the harness's own online Elo (LMSYS's K = 4) on the same votes must move, "
        "or the order check could not fail; impl does not enter it",
    )
    se = fisher_standard_errors(data.true_ratings, data.winners, data.losers)
    report.metric("Fisher standard errors", ", ".join(f"{s:.1f}" for s in se), "Elo")
    z = np.abs(ratings - data.true_ratings) / se
    report.metric("largest |fit - truth| in standard errors", float(np.max(z)))
    report.check(
        RECOVERY_CHECK,
        float(np.max(z)) if np.isfinite(z).all() else math.nan,
        "<=",
        Z,
        "the MLE is asymptotically normal around the truth with the inverse Fisher "
        "information as covariance; 6 models at 4 SE fail by chance < 4e-4. A natural-log "
        "scale (400 x log-odds) stretches the ratings 2.3x: ~20 SE off",
    )
    return ratings


def _bootstrap(report: SolutionReport, impl: Answer, data: Arena, ratings: np.ndarray) -> None:
    n = len(data.true_ratings)
    samples = np.asarray(impl.bootstrap_ratings(data.winners, data.losers, n, ROUNDS, SEED), float)
    se = fisher_standard_errors(data.true_ratings, data.winners, data.losers)
    ratio = samples.std(axis=0) / se
    report.metric("bootstrap std / Fisher SE", ", ".join(f"{r:.3f}" for r in ratio))
    report.check(
        SPREAD_CHECK,
        float(np.max(np.abs(ratio - 1.0))) if np.isfinite(ratio).all() else math.nan,
        "<=",
        0.15,
        "the value is the largest |ratio - 1|. A std from 1000 rounds has relative standard "
        "error 1/sqrt(2000) = 2.2 %, so 15 % allows 4 of those plus the asymptotic "
        "approximation; resampling without replacement gives a spread of 0",
    )
    lower, upper = impl.confidence_intervals(samples, LEVEL)
    report.metric(
        "95 % interval half-widths", ", ".join(f"{h:.1f}" for h in (upper - lower) / 2), "Elo"
    )
    report.metric(
        "95 % intervals",
        "; ".join(f"{lo:.0f}-{hi:.0f}" for lo, hi in zip(lower, upper, strict=True)),
        "Elo",
    )
    gaps = samples[:, :-1] - samples[:, 1:]  # (rounds, n - 1) neighbours' differences
    low_gap, high_gap = impl.confidence_intervals(gaps, LEVEL)
    report.metric(
        "95 % interval half-widths of neighbours' differences",
        ", ".join(f"{h:.1f}" for h in (high_gap - low_gap) / 2),
        "Elo",
    )
    grid = np.repeat(np.arange(1001.0)[:, None], n, axis=1)  # (1001, n): 0..1000 per model
    lo, hi = impl.confidence_intervals(grid, LEVEL)
    report.check_close(
        PERCENTILE_CHECK,
        compare(np.concatenate([lo, hi]), np.array([25.0] * n + [975.0] * n), atol=1e-9),
        "the 2.5th and 97.5th percentiles of 0, 1, ..., 1000 by hand (linear interpolation "
        "hits the points exactly); mean +- 1.96 std / sqrt(rounds) gives 482-518",
    )


def _coverage(report: SolutionReport, impl: Answer, data: Arena) -> None:
    n = len(data.true_ratings)
    rng = np.random.default_rng(SEED + 2)
    covered = 0
    for sim in range(SIMULATIONS):
        winners, losers = simulate_votes(data.true_ratings, VOTES, rng)
        samples = np.asarray(impl.bootstrap_ratings(winners, losers, n, SIM_ROUNDS, sim), float)
        lower, upper = impl.confidence_intervals(samples, LEVEL)
        covered += int(np.sum((lower <= data.true_ratings) & (data.true_ratings <= upper)))
    intervals = SIMULATIONS * n
    rate = covered / intervals
    se = math.sqrt(LEVEL * (1.0 - LEVEL) / intervals)
    report.metric("coverage of the 95 % intervals", rate)
    report.check_close(
        COVERAGE_CHECK,
        compare(rate, LEVEL, atol=Z * se + 0.01),
        f"{intervals} intervals: binomial standard error sqrt(0.95 x 0.05 / {intervals}) = "
        f"{se:.4f}, 4 of them, plus 0.01 for 200-round percentiles; intervals of the standard "
        "error of the bootstrap mean (std / sqrt(rounds)) cover ~10 %",
    )


if __name__ == "__main__":
    print_check_of(__name__)
