"""Gross margin of a flat seat price when usage is heavy-tailed.

A plan sells a seat at S USD per user per month; each user's month of tokens costs
c = T / 1e6 * p, where p is the blended API price per 1M tokens: (1 - f) * p_in + f * p_out
with f the output share of the tokens (output is 5x the input price at Anthropic's Sonnet 4
list prices, 3 and 15 USD per 1M). Tokens per user per month T are lognormal: ln T ~
Normal(mu, sigma), median m = e^mu. A few users consume most of the tokens:

- mean E[T] = m * exp(sigma^2 / 2): the plan's cost per user is set by the MEAN user, which
  with sigma = 1.5 is 3.08x the median user;
- quantile T_q = m * exp(sigma * z_q) (z_q the standard normal quantile);
- share of all tokens used by the top fraction a of users: 1 - Phi(z_(1-a) - sigma), from
  the lognormal's partial expectation E[T; T > t] = E[T] * (1 - Phi((ln t - mu - sigma^2) /
  sigma));
- with a cap K (throttle at K tokens a month): E[min(T, K)] = E[T] * Phi(k - sigma) +
  K * (1 - Phi(k)), k = (ln K - mu) / sigma. min(T, K) <= T, so a cap can only raise margin.
- a two-tier plan: the cap on the base seat, and a share u of the users the cap binds buy a
  pro seat at S_pro with no cap; the others stay at the cap.

Gross margin is (revenue - cost) / revenue, a share of revenue (not a markup on cost).
The checks redo the cost and margin arithmetic by hand, compare every closed form with a
seeded Monte Carlo of 200,000 users (tolerances of 4 standard errors of that sample), and
hold the cap's margin to its closed form and to monotonicity. With the default inputs the
median user leaves a 70 % margin while the plan as a whole keeps 7.6 %: pricing from the
median user (or a survey's "typical" user) is the classic error.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from statistics import NormalDist
from typing import Protocol

import numpy as np

from aiprep.kit.compare import compare
from aiprep.kit.report import SolutionReport, print_check_of

SEED = 0
EXACT = 1e-9  # relative tolerance of checks that redo the same float64 arithmetic by hand
N_USERS = 200_000  # Monte Carlo users: standard errors of 0.1-1 % on the tail statistics
Z = 4.0  # Monte Carlo tolerance in standard errors: a seeded run fails 4 SE by chance < 1e-4
PHI = NormalDist()

COST_CHECK = "blended price per 1M tokens at Sonnet 4 and Haiku 3.5 list prices, by hand (1e-9)"
MARGIN_CHECK = "gross margin = (revenue - cost) / revenue, 4 hand cases (1e-9)"
MEAN_CHECK = "mean tokens per user: m * exp(sigma^2/2) vs 200,000 simulated users (4 SE)"
QUANTILE_CHECK = "median and p95 tokens per user: closed form vs simulated users (4 SE)"
TOP_CHECK = "top 5 % users' share of tokens: partial expectation vs simulated users (4 SE)"
PLAN_CHECK = "plan margin from the mean user vs margin of 200,000 simulated users (4 SE)"
CAP_CHECK = "capped mean tokens E[min(T, K)] at 4 caps vs simulated users (4 SE)"
CAP_ORDER_CHECK = "cap only raises margin: each tighter cap (20M, 10M, 5M, 2M) strictly higher"
UNCAPPED_CHECK = "a cap at 1e6 x the median leaves the plan margin unchanged (1e-6)"
TIER_CHECK = "two-tier plan margin: closed form vs simulated users upgrading (4 SE)"


# The functions a candidate writes; check(impl) calls only these on impl.
ANSWER = (
    "blended_price",
    "gross_margin",
    "mean_tokens",
    "tokens_quantile",
    "top_share",
    "capped_mean_tokens",
    "two_tier_usage",
)

# -----------------------------------------------------------------------------
# The answer: cost per token, margin, and the lognormal user


def blended_price(output_share: float, input_price: float, output_price: float) -> float:
    """USD per 1M tokens of a mix: ``output_share`` (fraction of tokens that are output),
    ``input_price`` and ``output_price`` (USD per 1M input / output tokens)."""
    return (1.0 - output_share) * input_price + output_share * output_price


def gross_margin(revenue: float, cost: float) -> float:
    """Gross margin (fraction of revenue) of ``revenue`` (USD) that costs ``cost`` (USD) to
    serve: what is left of each dollar of revenue, not a markup on cost."""
    return (revenue - cost) / revenue


def mean_tokens(median: float, sigma: float) -> float:
    """Mean tokens per user per month of a lognormal with ``median`` (tokens per month) and
    ``sigma`` (standard deviation of ln tokens): the heavy tail pulls it above the median."""
    return median * math.exp(sigma**2 / 2.0)


def tokens_quantile(median: float, sigma: float, q: float) -> float:
    """Tokens per month (``median`` in tokens, ``sigma`` of ln tokens) that a fraction ``q``
    of users stay below."""
    return median * math.exp(sigma * PHI.inv_cdf(q))


def top_share(sigma: float, top: float) -> float:
    """Fraction of all tokens used by the heaviest ``top`` fraction of users (``sigma`` of
    ln tokens; the median cancels)."""
    # E[T; T > t_(1-a)] / E[T] = 1 - Phi(z_(1-a) - sigma)
    return 1.0 - PHI.cdf(PHI.inv_cdf(1.0 - top) - sigma)


def capped_mean_tokens(median: float, sigma: float, cap: float) -> float:
    """Mean tokens per user per month when each user is throttled at ``cap`` tokens per month
    (``median`` in tokens per month, ``sigma`` of ln tokens)."""
    k = math.log(cap / median) / sigma  # the cap in standard units of ln T
    # users under the cap bring E[T; T < K], the rest bring K each
    return mean_tokens(median, sigma) * PHI.cdf(k - sigma) + cap * (1.0 - PHI.cdf(k))


def two_tier_usage(
    median: float, sigma: float, cap: float, upgrade_share: float
) -> tuple[float, float]:
    """(mean tokens per user per month, share of users on the pro seat) of a base seat capped at
    ``cap`` tokens per month where ``upgrade_share`` of the users the cap binds buy an uncapped
    pro seat and the rest stay at the cap. Usage: lognormal ``median`` (tokens per month) and
    ``sigma`` (of ln tokens)."""
    k = math.log(cap / median) / sigma
    bound = 1.0 - PHI.cdf(k)  # share of users the cap binds
    mean = mean_tokens(median, sigma)
    below = mean * PHI.cdf(k - sigma)  # E[T; T < K]
    above = mean - below  # E[T; T > K]: the pro users bring all of theirs
    tokens = below + upgrade_share * above + (1.0 - upgrade_share) * cap * bound
    return tokens, upgrade_share * bound


# -----------------------------------------------------------------------------
# The harness: list prices, hand cases and a seeded population of users


class Answer(Protocol):
    def blended_price(
        self, output_share: float, input_price: float, output_price: float
    ) -> float: ...

    def gross_margin(self, revenue: float, cost: float) -> float: ...

    def mean_tokens(self, median: float, sigma: float) -> float: ...

    def tokens_quantile(self, median: float, sigma: float, q: float) -> float: ...

    def top_share(self, sigma: float, top: float) -> float: ...

    def capped_mean_tokens(self, median: float, sigma: float, cap: float) -> float: ...

    def two_tier_usage(
        self, median: float, sigma: float, cap: float, upgrade_share: float
    ) -> tuple[float, float]: ...


@dataclass(frozen=True)
class Plan:
    seat_price: float = 20.0  # USD per user per month (ChatGPT Plus's published 20)
    input_price: float = 3.0  # USD per 1M input tokens (Claude Sonnet 4 list price, 3)
    output_price: float = 15.0  # USD per 1M output tokens (Claude Sonnet 4 list price, 15)
    output_share: float = 0.25  # fraction of a user's tokens that are output (assumed)
    median: float = 1e6  # tokens per user per month, median user (assumed)
    sigma: float = 1.5  # standard deviation of ln tokens per user (assumed)
    caps: tuple[float, ...] = (20e6, 10e6, 5e6, 2e6)  # tokens per month, loosest first
    pro_price: float = 200.0  # USD per user per month, the uncapped tier (assumed)
    upgrade_share: float = 0.5  # share of capped users who buy the pro tier (assumed)


@dataclass(frozen=True)
class Scenarios:
    plan: Plan
    tokens: np.ndarray  # (N_USERS,) tokens per month of simulated users
    upgrades: np.ndarray  # (N_USERS,) bool: would buy the pro tier if the cap binds


def make_data(seed: int = SEED) -> Scenarios:
    """The plan's inputs and N_USERS simulated users drawn from its lognormal."""
    plan = Plan()
    rng = np.random.default_rng(seed)
    tokens = rng.lognormal(math.log(plan.median), plan.sigma, N_USERS)
    upgrades = rng.random(N_USERS) < plan.upgrade_share
    return Scenarios(plan, tokens, upgrades)


def check(impl: Answer) -> SolutionReport:
    """Arithmetic by hand, then every closed form against the simulated users."""
    report = SolutionReport(solution="strategy.pricing_plan_gross_margin")
    data = make_data()
    _by_hand(report, impl, data.plan)
    _distribution(report, impl, data)
    usd = impl.blended_price(data.plan.output_share, data.plan.input_price, data.plan.output_price)
    _plan(report, impl, data, usd)
    _caps(report, impl, data, usd)
    return report


def _by_hand(report: SolutionReport, impl: Answer, plan: Plan) -> None:
    usd = impl.blended_price(plan.output_share, plan.input_price, plan.output_price)
    # 750k input tokens at 3 + 250k output tokens at 15 = 2.25 + 3.75 USD
    got = [usd, impl.blended_price(0.5, 0.8, 4.0)]
    report.metric("blended price, 25 % output, Sonnet 4 list prices", usd, "USD/1M tokens")
    report.check_close(
        COST_CHECK,
        compare(got, [0.75 * 3.0 + 0.25 * 15.0, 0.5 * 0.8 + 0.5 * 4.0], 0.0, EXACT),
        "0.75 * 3 + 0.25 * 15 = 6.00 USD per 1M, and Haiku 3.5's 0.80 / 4.00 at half output "
        "= 2.40, float64 by hand (1e-9); input tokens only gives 3.00 (the output tokens, "
        "5x the price, forgotten)",
    )
    got = [
        impl.gross_margin(r, c) for r, c in ((20.0, 6.0), (20.0, 18.0), (20.0, 40.0), (50.0, 10.0))
    ]
    report.check_close(
        MARGIN_CHECK,
        compare(got, [0.7, 0.1, -1.0, 0.8], 0.0, EXACT),
        "(20 - 6) / 20 = 0.70, (20 - 18) / 20 = 0.10, (20 - 40) / 20 = -1.00, (50 - 10) / 50 = "
        "0.80 (1e-9); the markup (20 - 6) / 6 = 2.33 is not a margin",
    )


def _se_mean(x: np.ndarray) -> float:
    return float(np.std(x) / math.sqrt(x.size))


def _distribution(report: SolutionReport, impl: Answer, data: Scenarios) -> None:
    p, t = data.plan, data.tokens
    mean = impl.mean_tokens(p.median, p.sigma)
    report.metric("mean tokens per user per month", mean / 1e6, "M tokens")
    report.metric("mean / median user", mean / p.median)
    report.check_close(
        MEAN_CHECK,
        compare(mean, float(t.mean()), atol=0.0, rtol=Z * _se_mean(t) / float(t.mean())),
        f"the simulated mean's standard error is std / sqrt(n) = "
        f"{_se_mean(t) / float(t.mean()):.2%} of it, 4 of them allowed; the median user "
        f"is {math.exp(-(p.sigma**2) / 2):.2f}x the mean",
    )
    qs = (0.5, 0.95)
    got = [impl.tokens_quantile(p.median, p.sigma, q) for q in qs]
    sim = [float(np.quantile(t, q)) for q in qs]
    # sample quantile of ln T: standard error sqrt(q (1 - q) / n) / phi(z_q) in z, times sigma
    rel = [Z * p.sigma * math.sqrt(q * (1 - q) / t.size) / PHI.pdf(PHI.inv_cdf(q)) for q in qs]
    report.metric("median, p95 tokens per user", f"{got[0] / 1e6:.2f}, {got[1] / 1e6:.2f}", "M")
    report.check_close(
        QUANTILE_CHECK,
        compare(got, sim, atol=0.0, rtol=max(rel)),
        f"a sample quantile of ln T has standard error sigma * sqrt(q(1-q)/n) / phi(z_q); 4 "
        f"of them is {rel[0]:.2%} at the median and {rel[1]:.2%} at p95",
    )
    share = impl.top_share(p.sigma, 0.05)
    threshold = np.quantile(t, 0.95)
    heavy = np.where(t > threshold, t, 0.0)
    sim_share = float(heavy.sum() / t.sum())
    # ratio estimator sum(h) / sum(t): standard error from the residuals h - share * t
    se = float(np.std(heavy - sim_share * t) / math.sqrt(t.size) / t.mean())
    report.metric("top 5 % users' share of tokens (= of cost)", share)
    report.check_close(
        TOP_CHECK,
        compare(share, sim_share, atol=Z * se),
        f"a ratio of sums, standard error {se:.4f} from its residuals, 4 allowed; the top "
        "5 % of users are 5 % of seats but 1 - Phi(1.645 - sigma) of the tokens",
    )


def _ratio_margin(revenue: np.ndarray, cost: np.ndarray) -> tuple[float, float]:
    """Margin of simulated users and its standard error (delta method on cost / revenue)."""
    ratio = float(cost.sum() / revenue.sum())
    se = float(np.std(cost - ratio * revenue) / math.sqrt(cost.size) / revenue.mean())
    return 1.0 - ratio, se


def _plan(report: SolutionReport, impl: Answer, data: Scenarios, usd: float) -> None:
    p, t = data.plan, data.tokens
    mean = impl.mean_tokens(p.median, p.sigma)
    plan = impl.gross_margin(p.seat_price, mean / 1e6 * usd)
    sim, se = _ratio_margin(np.full(t.size, p.seat_price), t / 1e6 * usd)
    median_user = impl.gross_margin(p.seat_price, p.median / 1e6 * usd)
    p95 = impl.tokens_quantile(p.median, p.sigma, 0.95)
    report.metric("plan gross margin (mean user)", plan)
    report.metric("gross margin at the median user", median_user)
    report.metric("gross margin at the p95 user", impl.gross_margin(p.seat_price, p95 / 1e6 * usd))
    breakeven = p.seat_price / usd * 1e6
    report.metric("break-even tokens per user per month", breakeven / 1e6, "M tokens")
    report.metric("users above break-even (simulated)", float((t > breakeven).mean()))
    report.check_close(
        PLAN_CHECK,
        compare(plan, sim, atol=Z * se),
        f"the simulated plan margin is a ratio of sums with standard error {se:.4f}, 4 "
        f"allowed; pricing from the median user claims {median_user:.2f}",
    )


def _caps(report: SolutionReport, impl: Answer, data: Scenarios, usd: float) -> None:
    p, t = data.plan, data.tokens
    got = [impl.capped_mean_tokens(p.median, p.sigma, k) for k in p.caps]
    sims = [np.minimum(t, k) for k in p.caps]
    rel = max(Z * _se_mean(s) / float(s.mean()) for s in sims)
    report.check_close(
        CAP_CHECK,
        compare(got, [float(s.mean()) for s in sims], atol=0.0, rtol=rel),
        f"min(T, K) has a bounded tail, so its simulated mean is tighter: 4 standard errors "
        f"is at most {rel:.2%}; caps {', '.join(f'{k / 1e6:g}M' for k in p.caps)}",
    )
    margins = [impl.gross_margin(p.seat_price, m / 1e6 * usd) for m in got]
    loose = impl.capped_mean_tokens(p.median, p.sigma, 1e6 * p.median)
    uncapped = [impl.gross_margin(p.seat_price, loose / 1e6 * usd)]
    plan = impl.gross_margin(p.seat_price, impl.mean_tokens(p.median, p.sigma) / 1e6 * usd)
    report.metric(
        "plan margin with cap " + ", ".join(f"{k / 1e6:g}M" for k in p.caps),
        ", ".join(f"{m:.3f}" for m in margins),
    )
    steps = np.diff(np.array([plan, *margins]))
    report.check(
        CAP_ORDER_CHECK,
        float(steps.min()) if np.isfinite(steps).all() else math.nan,
        ">",
        0.0,
        "each cap in the list is tighter than the one before, and min(T, K) < T for the "
        "users above K, so the margin must rise strictly at each step (the smallest step is "
        "the value)",
    )
    report.check_close(
        UNCAPPED_CHECK,
        compare(uncapped, [plan], atol=1e-6),
        "a cap 6 orders of magnitude above the median binds for 1 - Phi(13.8 / 1.5), "
        "about 1e-20 of users, so the margin is the uncapped one to 1e-6",
    )
    cap = p.caps[2]  # the pro tier sits above the 5M cap
    tokens_per_user, on_pro = impl.two_tier_usage(p.median, p.sigma, cap, p.upgrade_share)
    revenue_per_user = p.seat_price * (1.0 - on_pro) + p.pro_price * on_pro
    tier = impl.gross_margin(revenue_per_user, tokens_per_user / 1e6 * usd)
    bound = t > cap
    pro = bound & data.upgrades
    revenue = np.where(pro, p.pro_price, p.seat_price)
    tokens = np.where(pro, t, np.minimum(t, cap))
    sim, se = _ratio_margin(revenue, tokens / 1e6 * usd)
    report.metric(f"two-tier margin ({cap / 1e6:g}M cap, pro at {p.pro_price:g} USD)", tier)
    report.metric("users the cap binds", float(bound.mean()))
    report.check_close(
        TIER_CHECK,
        compare(tier, sim, atol=Z * se),
        f"simulated users over the cap upgrade with probability {p.upgrade_share}; a ratio "
        f"of sums with standard error {se:.4f}, 4 allowed",
    )


if __name__ == "__main__":
    print_check_of(__name__)
