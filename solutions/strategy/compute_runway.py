"""Runway of a seed-stage AI startup that trains and serves: months until the cash runs out,
and whether growth gets there first ("default alive", Paul Graham 2015).

Fixed monthly burn F = salaries (headcount x loaded cost per person-YEAR / 12) + training
compute (GPU-hours a month x USD per GPU-hour). What pays against it is GROSS PROFIT, not
revenue: G = users x (price - tokens per user / 1e6 x USD per 1M tokens), and it grows by a
factor q = 1 + g a month (users grow, price and usage per user stay). Cash at the end of
month n (month t earns G q^(t-1)):

    C(n) = C0 - n F + G (q^n - 1) / g            (g = 0: C(n) = C0 - n (F - G))

C is convex in n: it falls while F > G q^n and rises after. Setting C(n) = 0 and writing
a = G / g, b = (a - C0) / F, u = n + b turns it into u e^(-u ln q) = (a / F) q^(-b), so

    n* = -W0(z) / ln q - b,   z = -(a ln q / F) q^(-b)     (Lambert W, principal branch)

and when z < -1/e there is no root: the cash never reaches 0, the company is default alive.
With no growth the runway is exactly C0 / (F - G).

A competitor cuts price 2x and you match: revenue per user halves but the tokens each user
burns, and so the serving cost, do not. With the default inputs gross profit falls from
70k to 20k USD a month (-71 %, not -50 %), and a company whose cash never fell below 1.73M
of its 2M (default alive) runs out of cash in month 27.

The checks redo the burn and gross profit by hand, hold the closed form to a month-by-month
simulation (constant burn: cash / net burn exactly), hold default alive to a 240-month
simulation, and the runway to monotonicity in cash, burn and growth.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

from aiprep.kit.compare import compare
from aiprep.kit.report import SolutionReport, print_check_of

SEED = 0
EXACT = 1e-9  # relative tolerance of checks that redo the same float64 arithmetic by hand
HORIZON = 240  # months a simulation runs: 20 years, far past every crossing here

BURN_CHECK = "fixed burn = headcount x loaded cost per year / 12 + GPU-hours x USD/h (1e-9)"
PROFIT_CHECK = "gross profit = users x (price - tokens x USD per 1M), by hand (1e-9)"
PRICE_CUT_CHECK = "matching a 2x price cut: revenue halves, serving cost stays, by hand (1e-9)"
CONSTANT_CHECK = "no growth: runway = cash / (burn - gross profit) and cash falls linearly (1e-9)"
CURVE_CHECK = "month-by-month cash vs the geometric-sum closed form, 4 growth rates (1e-9)"
RUNWAY_CHECK = "closed-form runway vs simulation: C(n*) = 0 and first month below 0 = ceil(n*)"
ALIVE_CHECK = "default alive iff a 240-month simulation never goes below 0, 6 cases"
MONOTONE_CHECK = "runway rises with cash and growth and falls with burn (smallest step)"


# The functions a candidate writes; check(impl) calls only these on impl.
ANSWER = (
    "monthly_fixed_burn",
    "monthly_gross_profit",
    "gross_profit_after_price_match",
    "cash_curve",
    "runway_months",
    "default_alive",
)

# -----------------------------------------------------------------------------
# The answer: burn, gross profit, the cash curve and where it crosses zero


def monthly_fixed_burn(
    headcount: float, loaded_cost_per_year: float, gpu_hours: float, usd_per_gpu_hour: float
) -> float:
    """USD a month that do not scale with usage: ``headcount`` people at
    ``loaded_cost_per_year`` (USD per person per YEAR: salary, taxes, benefits) plus
    ``gpu_hours`` (GPU-hours a month of training) at ``usd_per_gpu_hour`` (USD)."""
    return headcount * loaded_cost_per_year / 12.0 + gpu_hours * usd_per_gpu_hour


def monthly_gross_profit(
    users: float, price_per_user: float, tokens_per_user: float, usd_per_million: float
) -> float:
    """USD a month left after serving: ``users`` paying ``price_per_user`` (USD per user per
    month), each using ``tokens_per_user`` (tokens a month) that cost ``usd_per_million``
    (USD per 1M tokens)."""
    return users * (price_per_user - tokens_per_user / 1e6 * usd_per_million)


def gross_profit_after_price_match(
    users: float,
    price_per_user: float,
    tokens_per_user: float,
    usd_per_million: float,
    price_cut: float,
) -> float:
    """USD a month of gross profit after matching a competitor who divides the price by
    ``price_cut`` (2 = half price); the other inputs as in ``monthly_gross_profit``."""
    # the price moves, the tokens each user burns do not: only revenue is divided
    return monthly_gross_profit(users, price_per_user / price_cut, tokens_per_user, usd_per_million)


def cash_curve(
    cash: float, fixed_burn: float, gross_profit: float, growth: float, months: int
) -> list[float]:
    """Cash (USD) at the end of months 1..``months``, month by month: start with ``cash``,
    each month pay ``fixed_burn`` (USD) and earn ``gross_profit`` (USD in month 1), which
    grows by ``growth`` (fraction per month, 0.05 = 5 %)."""
    curve, profit = [], gross_profit
    for _ in range(months):
        cash += profit - fixed_burn
        curve.append(cash)
        profit *= 1.0 + growth
    return curve


def _lambert_w0(z: float) -> float:
    """w >= -1 with w e^w = z, for -1/e <= z < 0: bisection, w e^w increases on [-1, 0]."""
    lo, hi = -1.0, 0.0
    for _ in range(200):
        mid = 0.5 * (lo + hi)
        if mid * math.exp(mid) < z:
            lo = mid
        else:
            hi = mid
    return 0.5 * (lo + hi)


def runway_months(cash: float, fixed_burn: float, gross_profit: float, growth: float) -> float:
    """Months (real-valued) until cash reaches 0, closed form; ``math.inf`` when growth in
    gross profit covers the burn first (default alive). Inputs as in ``cash_curve``."""
    if growth == 0.0:
        net = fixed_burn - gross_profit  # USD a month, constant
        return cash / net if net > 0 else math.inf
    log_q = math.log1p(growth)
    a = gross_profit / growth  # C(n) = C0 - n F + a (q^n - 1)
    b = (a - cash) / fixed_burn
    z = -(a * log_q / fixed_burn) * math.exp(-b * log_q)
    if z < -1.0 / math.e:
        return math.inf  # the convex cash curve bottoms out above 0
    return -_lambert_w0(z) / log_q - b  # the first root: principal branch


def default_alive(cash: float, fixed_burn: float, gross_profit: float, growth: float) -> bool:
    """True when, with burn constant and gross profit growing at ``growth`` a month, the
    company reaches profitability on the ``cash`` it has (inputs as in ``cash_curve``)."""
    return math.isinf(runway_months(cash, fixed_burn, gross_profit, growth))


# -----------------------------------------------------------------------------
# The harness: a seed round, the closed form redone, and a plain simulation


class Answer(Protocol):
    monthly_fixed_burn: Callable[[float, float, float, float], float]
    monthly_gross_profit: Callable[[float, float, float, float], float]
    gross_profit_after_price_match: Callable[[float, float, float, float, float], float]
    cash_curve: Callable[[float, float, float, float, int], list[float]]
    runway_months: Callable[[float, float, float, float], float]
    default_alive: Callable[[float, float, float, float], bool]


@dataclass(frozen=True)
class Startup:
    cash: float = 2e6  # USD raised and in the bank (a seed round, assumed)
    headcount: float = 6  # people
    loaded_cost_per_year: float = 180e3  # USD per person-year, salary + taxes + benefits (assumed)
    gpu_hours: float = 10_000  # GPU-hours of training a month (assumed)
    usd_per_gpu_hour: float = 2.5  # USD (assumed rental price)
    users: float = 2_000  # paying users today
    price_per_user: float = 50.0  # USD per user per month
    tokens_per_user: float = 2.5e6  # tokens per user per month
    usd_per_million: float = 6.0  # USD per 1M tokens: 0.75 x 3 + 0.25 x 15, Sonnet 4 list prices
    growth: float = 0.05  # gross profit growth per month, fraction


def make_data(seed: int = SEED) -> Startup:
    """The seed-stage company of the question; inputs are stated, so ``seed`` changes
    nothing."""
    return Startup()


def closed_form_cash(cash: float, burn: float, profit: float, growth: float, n: float) -> float:
    """C(n) = C0 - n F + G (q^n - 1) / g, the geometric sum of the months' gross profit."""
    if growth == 0.0:
        return cash - n * (burn - profit)
    return cash - n * burn + profit * math.expm1(n * math.log1p(growth)) / growth


def first_month_below_zero(cash: float, burn: float, profit: float, growth: float) -> float:
    """The plain simulation: pay and earn month by month; inf when it never goes below 0."""
    for month in range(1, HORIZON + 1):
        cash += profit * (1.0 + growth) ** (month - 1) - burn
        if cash < 0:
            return float(month)
    return math.inf


def check(impl: Answer) -> SolutionReport:
    """Burn and gross profit by hand, then the runway against the simulation."""
    report = SolutionReport(solution="strategy.compute_runway")
    s = make_data()
    burn = impl.monthly_fixed_burn(
        s.headcount, s.loaded_cost_per_year, s.gpu_hours, s.usd_per_gpu_hour
    )
    profit = impl.monthly_gross_profit(
        s.users, s.price_per_user, s.tokens_per_user, s.usd_per_million
    )
    cut = impl.gross_profit_after_price_match(
        s.users, s.price_per_user, s.tokens_per_user, s.usd_per_million, 2.0
    )
    _by_hand(report, s, burn, profit, cut)
    _curves(report, impl, s, burn, profit)
    _runway(report, impl, s, burn, profit, cut)
    return report


def _by_hand(report: SolutionReport, s: Startup, burn: float, profit: float, cut: float) -> None:
    report.metric("fixed burn (salaries + training)", burn, "USD/month")
    report.metric("gross profit today", profit, "USD/month")
    report.metric("gross profit after matching a 2x price cut", cut, "USD/month")
    report.metric("revenue today", s.users * s.price_per_user, "USD/month")
    report.check_close(
        BURN_CHECK,
        compare(burn, 6 * 180e3 / 12 + 10_000 * 2.5, atol=0.0, rtol=EXACT),
        "6 x 180k / 12 = 90k of salaries + 10,000 GPU-h x 2.5 = 25k of training, float64 by "
        "hand (1e-9); the loaded cost is per YEAR, so leaving out / 12 gives 1.105M a month",
    )
    report.check_close(
        PROFIT_CHECK,
        compare(profit, 2_000 * (50.0 - 2.5 * 6.0), atol=0.0, rtol=EXACT),
        "2,000 users x (50 - 2.5M tokens x 6 USD/1M = 15 of serving) = 70k, float64 by hand "
        "(1e-9); revenue (100k) in its place ignores the 30k of serving",
    )
    report.check_close(
        PRICE_CUT_CHECK,
        compare(cut, 2_000 * (25.0 - 15.0), atol=0.0, rtol=EXACT),
        "2,000 x (50 / 2 - 15) = 20k (1e-9): the tokens per user and their cost stay when the "
        "price halves; halving the gross profit (35k) treats serving as if it scaled with price",
    )


def _curves(report: SolutionReport, impl: Answer, s: Startup, burn: float, profit: float) -> None:
    months = 60
    # no growth: a straight line, and the runway is the division every founder does
    flat = impl.cash_curve(s.cash, burn, profit, 0.0, months)
    line = [s.cash - n * (burn - profit) for n in range(1, months + 1)]
    runway0 = impl.runway_months(s.cash, burn, profit, 0.0)
    report.metric("runway with no growth", runway0, "months")
    report.check_close(
        CONSTANT_CHECK,
        compare([*flat, runway0], [*line, s.cash / (burn - profit)], atol=0.0, rtol=EXACT),
        f"{months} months of C0 - n (F - G) and C0 / (F - G) = 2M / 45k = 44.4, float64 (1e-9); "
        "the same division with revenue in place of gross profit never runs out",
    )
    got, expected = [], []
    for g in (0.01, 0.03, 0.05, 0.10):
        got += impl.cash_curve(s.cash, burn, profit, g, months)
        expected += [closed_form_cash(s.cash, burn, profit, g, n) for n in range(1, months + 1)]
    report.check_close(
        CURVE_CHECK,
        compare(got, expected, atol=1e-6 * s.cash, rtol=EXACT),
        f"{months} months at 1, 3, 5, 10 % a month against C0 - nF + G (q^n - 1)/g: the same "
        "sum, accumulated month by month vs closed form, rounding differs by < 1e-6 of the "
        "cash; growing the profit from month 0 instead of month 1 shifts month n by "
        "G (q^n - 1), thousands of USD",
    )


def _runway(
    report: SolutionReport, impl: Answer, s: Startup, burn: float, profit: float, cut: float
) -> None:
    cases = [
        (s.cash, burn, profit, s.growth),  # today: alive
        (s.cash, burn, cut, s.growth),  # after matching the price cut
        (s.cash, burn, cut, 0.02),
        (1e6, burn, cut, s.growth),
        (s.cash, 1.5 * burn, profit, s.growth),
        (0.5e6, burn, 0.5 * profit, 0.08),
    ]
    runways = [impl.runway_months(*c) for c in cases]
    simulated = [first_month_below_zero(*c) for c in cases]
    report.metric("runway today (5 %/month growth)", runways[0], "months")
    report.metric("runway after matching the price cut", runways[1], "months")
    report.metric("first month below 0 after the price cut (simulated)", simulated[1])
    lowest = min(impl.cash_curve(s.cash, burn, profit, s.growth, HORIZON))
    report.metric("lowest cash today (simulated by the answer)", lowest, "USD")
    report.metric(
        "months until gross profit covers the burn, today / after the cut",
        f"{math.log(burn / profit) / math.log1p(s.growth):.1f} / "
        f"{math.log(burn / cut) / math.log1p(s.growth):.1f}",
    )
    got, expected = [], []
    for r, c, m in zip(runways, cases, simulated, strict=True):
        if m < math.inf:  # the simulation runs out: n* must say when
            ok = 0.0 <= r <= HORIZON  # a finite n* within the simulated 20 years
            got += [math.ceil(r) if ok else math.inf, closed_form_cash(*c, r) / c[0] if ok else 1]
            expected += [m, 0.0]
    report.check_close(
        RUNWAY_CHECK,
        compare(got, expected, atol=1e-6),
        f"{len(expected) // 2} of the {len(cases)} cases run out within {HORIZON} months in "
        "the plain simulation; for each the closed-form n* must be a root of C(n) (to 1e-6 of "
        "the cash) and the simulation's first negative month must be ceil(n*)",
    )
    alive = [impl.default_alive(*c) for c in cases]
    report.check_close(
        ALIVE_CHECK,
        compare([float(a) for a in alive], [float(m == math.inf) for m in simulated], atol=0.5),
        "default alive means the simulation never goes below 0 in 20 years (the cash curve "
        "is convex, so if it has not by the month gross profit covers the burn, it never "
        "does); cases: today, after the price cut, slower growth, less cash, more burn",
    )
    report.metric("default alive today / after the price cut", f"{alive[0]} / {alive[1]}")
    dead_case = cases[1]
    steps = []
    for field, values in (("cash", (1.0e6, 1.5e6, 2.0e6)), ("growth", (0.0, 0.02, 0.04))):
        longer = [impl.runway_months(*_with(dead_case, field, v)) for v in values]
        steps += [b - a for a, b in zip(longer, longer[1:], strict=False)]
    longer = [
        impl.runway_months(*_with(dead_case, "burn", v)) for v in (1.2 * burn, 1.1 * burn, burn)
    ]
    steps += [b - a for a, b in zip(longer, longer[1:], strict=False)]
    report.check(
        MONOTONE_CHECK,
        min(steps) if all(math.isfinite(x) for x in steps) else math.nan,
        ">",
        0.0,
        "after the price cut (default dead), more cash, faster growth and less burn must "
        "each lengthen the runway: C(n) rises with C0 and g and falls with F at every n",
    )


def _with(
    case: tuple[float, float, float, float], field: str, value: float
) -> tuple[float, float, float, float]:
    cash, burn, profit, growth = case
    out = {"cash": cash, "burn": burn, "profit": profit, "growth": growth} | {field: value}
    return (out["cash"], out["burn"], out["profit"], out["growth"])


if __name__ == "__main__":
    print_check_of(__name__)
