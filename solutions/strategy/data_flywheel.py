"""The data flywheel in numbers: how many usable fine-tuning examples does a product collect
per month, and how many months until it has as many as a published fine-tune used?

A month of usage yields

    examples/month = daily active users x sessions per user per day x active days per month
                     x feedback rate (share of sessions that leave a thumbs / an edit)
                     x usable fraction (what survives filtering, dedup, PII removal, QA)

Every factor is a product input, so the estimate is as good as the weakest one; the usable
fraction and the feedback rate are the ones founders overstate. The yardsticks are published
dataset sizes: LIMA fine-tuned LLaMa 65B on 1,000 curated examples (Zhou et al. 2023);
InstructGPT used 12,725 SFT prompts (demonstrations), 33,207 reward-model prompts (rankings)
and 31,144 PPO prompts (Ouyang et al. 2022, Table 6).

With users growing g per month the monthly yield is a geometric sequence a, a(1+g), ...,
so after m months the stock is a((1+g)^m - 1)/g, and the first month it reaches a target T
is ceil(ln(1 + T g / a) / ln(1 + g)); with churn (g < 0) the stock never passes a / |g|.
The checks compare that closed form with a month-by-month simulation, the monthly yield with
hand arithmetic, the yardsticks with the papers' own sub-totals, and the directions the
model must move in (twice the feedback rate buys exactly what twice the users buy).

What the numbers do not say: counts are not the moat. A thumbs-up is a weak preference label
and an edit is a demonstration only once it is cleaned; the moat is the loop (ship -> collect
-> filter -> train -> evaluate -> ship) and label quality, and a better base model can make
a year of collected data worth little.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Protocol

from aiprep.kit.compare import compare
from aiprep.kit.report import SolutionReport, print_check_of

SEED = 0
EXACT = 1e-9  # relative tolerance of checks that redo the same float64 arithmetic by hand
HAND_CHECK = "usable examples per month vs hand arithmetic, 3 products (tolerance used)"
CUMULATIVE_CHECK = "cumulative examples, closed form vs month-by-month simulation (tolerance used)"
MONTHS_CHECK = "months to reach LIMA / InstructGPT SFT, RM, PPO counts vs simulation (months)"
DIRECTION_CHECK = "2x feedback = 2x users = 2x data; months fall with data and growth (violations)"
PAPERS_CHECK = "yardsticks: InstructGPT Table 6 totals = labeler + customer prompts (max diff)"


# The functions a candidate writes; check(impl) calls only these on impl.
ANSWER = ("monthly_usable_examples", "cumulative_examples", "months_to_target")

# -----------------------------------------------------------------------------
# The answer: the flywheel's yield, its stock, and the wait for a target


def monthly_usable_examples(
    daily_active_users: float,  # people active on a given day (DAU, not MAU)
    sessions_per_user_per_day: float,  # sessions per active user per day
    active_days_per_month: float,  # days the product is used in a month (30, or ~22 for B2B)
    feedback_rate: float,  # share of sessions that leave a thumbs / rating / edit, 0..1
    usable_fraction: float,  # share of feedback kept after filtering, dedup and QA, 0..1
) -> float:
    """Training examples a month of usage yields (examples per month)."""
    sessions = daily_active_users * sessions_per_user_per_day * active_days_per_month
    return sessions * feedback_rate * usable_fraction


def cumulative_examples(
    first_month: float,  # usable examples collected in month 1
    growth: float,  # month-over-month growth of users (0.10 = +10 %/month; < 0 for churn)
    months: int,  # months of collection
) -> float:
    """Usable examples collected in ``months`` months: a + a(1+g) + ... + a(1+g)^(m-1)."""
    if growth == 0.0:
        return first_month * months
    # growth compounds the monthly *yield*, not the stock: a geometric series
    return first_month * ((1.0 + growth) ** months - 1.0) / growth


def months_to_target(
    target: float,  # examples needed, e.g. 1,000 (LIMA) or 12,725 (InstructGPT SFT)
    first_month: float,  # usable examples collected in month 1
    growth: float,  # month-over-month growth of users
) -> float:
    """The first whole month by whose end the stock reaches ``target``; inf if never."""
    if first_month <= 0.0:  # nothing collected, nothing ever will be
        return math.inf
    if growth == 0.0:
        m = target / first_month
    else:
        x = 1.0 + target * growth / first_month  # (1+g)^m = 1 + T g / a
        if x <= 0.0:  # churn: the stock tends to a / |g| and stays below the target
            return math.inf
        m = math.log(x) / math.log(1.0 + growth)
    return float(math.ceil(m - 1e-9))  # a month that lands on the target counts


# -----------------------------------------------------------------------------
# The harness: three products, the papers' counts, a month-by-month simulation


class Answer(Protocol):
    def monthly_usable_examples(
        self,
        daily_active_users: float,
        sessions_per_user_per_day: float,
        active_days_per_month: float,
        feedback_rate: float,
        usable_fraction: float,
    ) -> float: ...

    def cumulative_examples(self, first_month: float, growth: float, months: int) -> float: ...

    def months_to_target(self, target: float, first_month: float, growth: float) -> float: ...


@dataclass(frozen=True)
class Product:
    """A product's usage (stated assumptions of the question, not published figures)."""

    name: str
    daily_active_users: float  # people
    sessions_per_user_per_day: float  # sessions
    active_days_per_month: float  # days
    feedback_rate: float  # share of sessions with a thumbs / edit
    usable_fraction: float  # share kept after filtering
    growth: float  # users, month over month


@dataclass(frozen=True)
class Yardstick:
    """A published fine-tuning dataset size (examples or prompts) and its parts."""

    name: str
    total: int
    parts: tuple[int, ...]  # e.g. labeler-written + customer prompts; (total,) if none


@dataclass(frozen=True)
class Scenarios:
    products: tuple[Product, ...]
    yardsticks: tuple[Yardstick, ...]


def make_data(seed: int = SEED) -> Scenarios:
    """Three products (assumptions) and the papers' dataset sizes. ``seed`` changes nothing."""
    products = (
        # a B2B copilot: edits are the feedback, work days only
        Product("B2B copilot", 2_000, 4.0, 22, 0.02, 0.30, 0.10),
        # a consumer chat app: thumbs on 0.5 % of sessions, most of it noise
        Product("consumer chat", 50_000, 5.0, 30, 0.005, 0.20, 0.05),
        # a niche vertical tool that is losing users
        Product("shrinking tool", 500, 2.0, 22, 0.03, 0.25, -0.08),
    )
    yardsticks = (
        Yardstick("LIMA (Zhou et al. 2023)", 1_000, (750, 250)),  # community Q&A + authored
        Yardstick("InstructGPT SFT train", 12_725, (11_295, 1_430)),  # labeler + customer
        Yardstick("InstructGPT RM train", 33_207, (6_623, 26_584)),
        Yardstick("InstructGPT PPO train", 31_144, (31_144,)),  # customer prompts only
    )
    return Scenarios(products, yardsticks)


def simulate_stock(first_month: float, growth: float, months: int) -> list[float]:
    """The stock at the end of months 1..``months``, one month at a time."""
    stock, users_factor, out = 0.0, 1.0, []
    for _ in range(months):
        stock += first_month * users_factor  # this month's yield...
        users_factor *= 1.0 + growth  # ...and next month has (1+g)x the users
        out.append(stock)
    return out


def simulate_months(target: float, first_month: float, growth: float, cap: int = 600) -> float:
    """The first month whose end-of-month stock reaches ``target``, by simulation."""
    for m, stock in enumerate(simulate_stock(first_month, growth, cap), start=1):
        if stock >= target * (1.0 - 1e-12):
            return float(m)
    return math.inf


def _yield(impl: Answer, p: Product, *, feedback: float = 1.0, users: float = 1.0) -> float:
    return impl.monthly_usable_examples(
        p.daily_active_users * users,
        p.sessions_per_user_per_day,
        p.active_days_per_month,
        p.feedback_rate * feedback,
        p.usable_fraction,
    )


def check(impl: Answer) -> SolutionReport:
    """Yield by hand, the stock and the wait against a simulation, the papers' counts."""
    report = SolutionReport(solution="strategy.data_flywheel")
    data = make_data()
    _papers(report, data)
    _hand(report, impl, data)
    firsts = BY_HAND  # the yields by hand: the stock and the wait are checked on their own
    _cumulative(report, impl, data, firsts)
    _months(report, impl, data, firsts)
    _directions(report, impl, data)
    return report


def _papers(report: SolutionReport, data: Scenarios) -> None:
    sums = [float(sum(y.parts)) for y in data.yardsticks]
    totals = [float(y.total) for y in data.yardsticks]
    report.metric(
        "yardsticks (examples / prompts)",
        ", ".join(f"{y.name} {y.total:,}" for y in data.yardsticks),
    )
    report.check(
        PAPERS_CHECK,
        max(abs(a - b) for a, b in zip(sums, totals, strict=True)),
        "<=",
        0.0,
        "guard: the transcription of Ouyang et al. 2022 Table 6 (SFT 11,295 labeler + 1,430 "
        "customer; RM 6,623 + 26,584; PPO 31,144 customer) and of LIMA's 750 community + 250 "
        "authored examples must add up exactly; no answer function is involved",
    )


BY_HAND = [
    2_000 * 4.0 * 22 * 0.02 * 0.30,  # 1,056
    50_000 * 5.0 * 30 * 0.005 * 0.20,  # 7,500
    500 * 2.0 * 22 * 0.03 * 0.25,  # 165
]


def _hand(report: SolutionReport, impl: Answer, data: Scenarios) -> None:
    got = [_yield(impl, p) for p in data.products]
    by_hand = BY_HAND
    for p, g in zip(data.products, got, strict=True):
        report.metric(f"{p.name}: usable examples in month 1", g)
    report.check_close(
        HAND_CHECK,
        compare(got, by_hand, atol=0.0, rtol=EXACT),
        "DAU x sessions/day x days x feedback rate x usable fraction, the same float64 "
        "arithmetic (1e-9); DAU read as MAU (no x days) is 22-30x low, forgetting the usable "
        "fraction 3.3-5x high",
    )


def _cumulative(report: SolutionReport, impl: Answer, data: Scenarios, firsts: list[float]) -> None:
    got, sim = [], []
    for a, growth in [(1_000.0, 0.0), (1_000.0, 0.5)] + [
        (a, p.growth) for a, p in zip(firsts, data.products, strict=True)
    ]:
        stock = simulate_stock(a, growth, 36)
        for m in (1, 6, 12, 24, 36):
            got.append(impl.cumulative_examples(a, growth, m))
            sim.append(stock[m - 1])
    report.check_close(
        CUMULATIVE_CHECK,
        compare(got, sim, atol=0.0, rtol=1e-9),
        "the closed form a((1+g)^m - 1)/g against adding the months one by one, g = 0, "
        "-8 %, 5 %, 10 %, 50 %, 1-36 months; only float64 rounding of 36 additions (1e-9); "
        "compounding the stock instead of the yield (a(1+g)^m) is off by g/(1 - (1+g)^-m): "
        "1.1x at 1 month, 0.11x at 24 (10 %/month)",
    )
    report.metric(
        "B2B copilot: stock after 6 / 12 months",
        f"{impl.cumulative_examples(firsts[0], 0.10, 6):,.0f}, "
        f"{impl.cumulative_examples(firsts[0], 0.10, 12):,.0f}",
    )
    report.metric("shrinking tool: ceiling a / |g| (never more)", f"{firsts[2] / 0.08:,.0f}")


def _months(report: SolutionReport, impl: Answer, data: Scenarios, firsts: list[float]) -> None:
    got, sim = [], []
    for a, p in zip(firsts, data.products, strict=True):
        row = []
        for y in data.yardsticks:
            m = impl.months_to_target(float(y.total), a, p.growth)
            got.append(m)
            sim.append(simulate_months(float(y.total), a, p.growth))
            row.append("never" if math.isinf(m) else f"{m:g}")
        report.metric(f"{p.name}: months to LIMA / SFT / RM / PPO", ", ".join(row))
    mistake = math.ceil(math.log(12_725.0 / BY_HAND[0]) / math.log(1.10))
    report.metric("B2B copilot, the stock compounded (a(1+g)^m = T): month for 12,725", mistake)
    flat = impl.months_to_target(12_725.0, 1_056.0, 0.0)
    got.append(flat)
    sim.append(simulate_months(12_725.0, 1_056.0, 0.0))
    report.metric("B2B copilot without growth: months to InstructGPT SFT", flat)
    # inf == inf counts as a match ("never" both ways); a NaN never does
    worst = max(0.0 if g == s else abs(g - s) for g, s in zip(got, sim, strict=True))
    worst = math.inf if math.isnan(worst) else worst
    report.check(
        MONTHS_CHECK,
        worst,
        "<=",
        0.01,
        "the same whole month as the simulation (0.01: months are integers), for 3 products "
        "x 4 targets and a flat product; 'never' (the stock of a shrinking product tops out "
        "at a/|g| = 2,062) must match too; flooring instead of rounding up reports a month "
        "before the data exists; solving a(1+g)^m = T puts 12,725 at month 27, not 9",
    )


def _directions(report: SolutionReport, impl: Answer, data: Scenarios) -> None:
    p = data.products[0]
    base = _yield(impl, p)
    more_feedback = _yield(impl, p, feedback=2.0)
    more_users = _yield(impl, p, users=2.0)
    target = 33_207.0
    m_base = impl.months_to_target(target, base, p.growth)
    m_fb = impl.months_to_target(target, more_feedback, p.growth)
    m_growth = impl.months_to_target(target, base, 2 * p.growth)
    report.metric(
        "B2B copilot months to 33,207 (RM): base / 2x feedback or users / 2x growth",
        f"{m_base:g} / {m_fb:g} / {m_growth:g}",
    )
    violations = 0
    violations += not math.isclose(more_feedback, 2 * base, rel_tol=EXACT)
    violations += not math.isclose(more_users, 2 * base, rel_tol=EXACT)
    # more data per month, faster growth, a smaller target: never a later month
    cases = [(t, a, g) for t in (5e3, 5e4) for a in (500.0, 2e3) for g in (0.0, 0.1, 0.3)]
    months = [impl.months_to_target(t, a, g) for t, a, g in cases]
    for (t, a, g), m in zip(cases, months, strict=True):
        for (t2, a2, g2), m2 in zip(cases, months, strict=True):
            if t2 <= t and a2 >= a and g2 >= g and not m2 <= m:
                violations += 1
    violations += not (m_fb <= m_base and m_growth <= m_base)
    report.check(
        DIRECTION_CHECK,
        violations,
        "<=",
        0,
        "exact directions, no tolerance: the yield is linear in each factor, so 2x feedback "
        "rate and 2x DAU both give exactly 2x (1e-9); months to a target never rise with more "
        "data per month, faster growth or a smaller target (12 cases, all pairs)",
    )


if __name__ == "__main__":
    print_check_of(__name__)
