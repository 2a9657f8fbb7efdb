"""Chinchilla-optimal sizing: for a compute budget C, how many parameters N and tokens D?

Training costs C = 6*N*D FLOPs (2N forward + 4N backward per token), so a budget is a
curve of (N, D) pairs. Hoffmann et al. 2022 trained over 400 models and found that along
that curve loss is lowest when N and D grow together, N ~ C^0.5 and D ~ C^0.5 (their
Approaches 1 and 2; Kaplan et al. 2020 had N ~ C^0.73). Two ways to size a run:

- the rule of thumb: about 20 tokens per parameter (Chinchilla itself: 70B on 1.4T), so
  C = 6*N*(20*N) gives N = sqrt(C / 120) and D = 20*N. Table 3 of the paper (Approach 1)
  drifts from 20 tokens per parameter at 400M to 21.6 at 10T.
- the fitted law (Approach 3, Eq. 10): L(N, D) = E + A/N^alpha + B/D^beta with E = 1.69,
  A = 406.4, B = 410.7, alpha = 0.34, beta = 0.28. Minimising it on C = 6ND gives
  N_opt = G*(C/6)^a, D_opt = (C/6)^b / G with a = beta/(alpha+beta), b = alpha/(alpha+beta),
  G = (alpha*A / (beta*B))^(1/(alpha+beta)) (paper, Appendix D.2).

The checks compare the rule with the paper's Table 3, the closed-form optimum with a brute
force minimisation of Eq. 10 along the budget, and its exponents with Table 2 (0.46 /
0.54). The run also shows the catch: with the constants as printed (rounded), the fitted
optimum at Chinchilla's budget is 32B parameters on 93 tokens each, not 70B on 20;
Besiroglu et al. 2024 trace that to the rounding and to an unconverged fit, and their refit
agrees with Approaches 1 and 2. Size from the 20x rule (or your own fits), and use the law
for its shape.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Protocol

from aiprep.kit.compare import compare
from aiprep.kit.report import SolutionReport, print_check_of

SEED = 0
EXACT = 1e-9  # relative tolerance of checks that redo the same float64 arithmetic by hand
E, A, B, ALPHA, BETA = 1.69, 406.4, 410.7, 0.34, 0.28  # Hoffmann et al. 2022, Eq. 10
TABLE3_CHECK = "20 tokens/param rule vs Hoffmann Table 3, N and D (tolerance used)"
LOSS_CHECK = "loss law at Chinchilla 70B/1.4T and Gopher 280B/300B vs Eq. 10 (tolerance used)"
OPTIMUM_CHECK = "fitted optimum vs brute-force argmin of Eq. 10 on C = 6ND (tolerance used)"
EXPONENT_CHECK = "slopes d log N / d log C: rule 0.50, fit 0.46 vs Table 2 (tolerance used)"
BUDGET_CHECK = "6 * N * D spends exactly the budget, rule and fit, 5 budgets (tolerance used)"


# The functions a candidate writes; check(impl) calls only these on impl.
ANSWER = ("rule_of_thumb_size", "chinchilla_loss", "fitted_optimal_size")

# -----------------------------------------------------------------------------
# The answer: the sizing rules


def rule_of_thumb_size(compute: float, tokens_per_param: float = 20.0) -> tuple[float, float]:
    """(parameters, tokens) that spend ``compute`` FLOPs at ``tokens_per_param`` tokens per
    parameter."""
    # C = 6 * N * D and D = r * N  =>  C = 6 * r * N^2
    params = math.sqrt(compute / (6.0 * tokens_per_param))
    return params, tokens_per_param * params


def chinchilla_loss(params: float, tokens: float) -> float:
    """Predicted pre-training loss (nats per token on MassiveText) of ``params`` parameters
    trained on ``tokens`` tokens: irreducible entropy + model-size term + data term."""
    return float(E + A / params**ALPHA + B / tokens**BETA)


def fitted_optimal_size(compute: float) -> tuple[float, float]:
    """(parameters, tokens) minimising ``chinchilla_loss`` subject to 6 * N * D = compute."""
    # d/dN [A N^-alpha + B (C/6N)^-beta] = 0  =>  alpha A N^-alpha = beta B D^-beta
    g = (ALPHA * A / (BETA * B)) ** (1.0 / (ALPHA + BETA))
    a = BETA / (ALPHA + BETA)  # N grows with the data term's exponent...
    b = ALPHA / (ALPHA + BETA)  # ...and D with the model term's: a + b = 1
    return g * (compute / 6.0) ** a, (compute / 6.0) ** b / g


# -----------------------------------------------------------------------------
# The harness: the paper's tables and a brute-force optimum


class Answer(Protocol):
    def rule_of_thumb_size(
        self, compute: float, tokens_per_param: float = 20.0
    ) -> tuple[float, float]: ...

    def chinchilla_loss(self, params: float, tokens: float) -> float: ...

    def fitted_optimal_size(self, compute: float) -> tuple[float, float]: ...


@dataclass(frozen=True)
class Row:
    """One row of Hoffmann et al. Table 3: parameters, FLOPs, tokens."""

    params: float
    flops: float
    tokens: float


@dataclass(frozen=True)
class Scenarios:
    table3: tuple[Row, ...]
    budgets: tuple[float, ...]  # FLOPs at which the fit is checked
    chinchilla: tuple[float, float]  # (N, D)
    gopher: tuple[float, float]
    table2_a: tuple[float, float]  # N ~ C^a: Approach 1, Approach 3


def make_data(seed: int = SEED) -> Scenarios:
    """Hoffmann et al. 2022: Table 3 (Approach 1's compute-optimal sizes), Chinchilla and
    Gopher, Table 2's exponents. Published figures, so ``seed`` changes nothing."""
    rows = (
        Row(400e6, 1.92e19, 8.0e9),
        Row(1e9, 1.21e20, 20.2e9),
        Row(10e9, 1.23e22, 205.1e9),
        Row(67e9, 5.76e23, 1.5e12),
        Row(175e9, 3.85e24, 3.7e12),
        Row(280e9, 9.90e24, 5.9e12),
        Row(520e9, 3.43e25, 11.0e12),
        Row(1e12, 1.27e26, 21.2e12),
        Row(10e12, 1.30e28, 216.2e12),
    )
    budgets = (1e19, 1e21, 5.76e23, 1e25, 1e27)
    return Scenarios(rows, budgets, (70e9, 1.4e12), (280e9, 300e9), (0.50, 0.46))


def argmin_on_budget(compute: float, steps_per_decade: int = 20000) -> float:
    """N minimising Eq. 10 with D = C / 6N, by scanning log10 N from 1e6 to 1e15."""
    best_n, best_loss = 0.0, math.inf
    for i in range(9 * steps_per_decade + 1):
        n = 10.0 ** (6.0 + i / steps_per_decade)
        d = compute / (6.0 * n)
        loss = E + A / n**ALPHA + B / d**BETA
        if loss < best_loss:
            best_n, best_loss = n, loss
    return best_n


def check(impl: Answer) -> SolutionReport:
    """The rule against Table 3, the law against Eq. 10, the optimum against brute force."""
    report = SolutionReport(solution="training.chinchilla_sizing")
    data = make_data()
    _table3(report, impl, data)
    _loss(report, impl, data)
    _fitted(report, impl, data)
    return report


def _table3(report: SolutionReport, impl: Answer, data: Scenarios) -> None:
    # the rows whose own FLOPs equal 6ND to 2 %; the 67B row prints 1.5T tokens for
    # 5.76e23 FLOPs, which 6ND puts at 1.43T, so it is reported but not used
    rows = [r for r in data.table3 if abs(6 * r.params * r.tokens / r.flops - 1) < 0.02]
    got = [impl.rule_of_thumb_size(r.flops) for r in rows]
    report.metric("Table 3 rows used (FLOPs = 6ND to 2 %)", f"{len(rows)} of {len(data.table3)}")
    report.metric(
        "20x rule at Table 3 budgets, N",
        ", ".join(f"{n / 1e9:.3g}" for n, _ in got),
        "B",
    )
    report.metric(
        "Table 3 tokens per parameter",
        ", ".join(f"{r.tokens / r.params:.1f}" for r in data.table3),
    )
    expected = [r.params for r in rows] + [r.tokens for r in rows]
    report.check_close(
        TABLE3_CHECK,
        compare([n for n, _ in got] + [d for _, d in got], expected, atol=0.0, rtol=0.05),
        "Table 3 is Approach 1's fit, whose tokens per parameter drift from 20.0 at 400M to "
        "21.6 at 10T, so a flat 20 lands up to sqrt(21.6/20) - 1 = 4 % off; 5 % allowed; "
        "C = 2ND (the backward pass forgotten) gives N sqrt(3) = 1.73x too large",
    )


def _loss(report: SolutionReport, impl: Answer, data: Scenarios) -> None:
    points = (data.chinchilla, data.gopher)
    got = [impl.chinchilla_loss(n, d) for n, d in points]
    by_hand = [1.69 + 406.4 / n**0.34 + 410.7 / d**0.28 for n, d in points]
    report.metric(
        "Eq. 10 loss: Chinchilla 70B/1.4T, Gopher 280B/300B", f"{got[0]:.4f}, {got[1]:.4f}"
    )
    report.metric(
        "Chinchilla / Gopher compute, 6ND", f"{6 * 70e9 * 1.4e12:.3g}, {6 * 280e9 * 300e9:.3g}"
    )
    report.check_close(
        LOSS_CHECK,
        compare(got, by_hand, atol=0.0, rtol=EXACT),
        "Eq. 10 with its printed constants, the same float64 arithmetic (1e-9); leaving out "
        "the irreducible E = 1.69 (a loss that goes to 0) is 87 % low, swapping alpha and "
        "beta moves it by up to 0.16",
    )


def _fitted(report: SolutionReport, impl: Answer, data: Scenarios) -> None:
    budgets = (1e21, 5.76e23, 1e25)
    got = [impl.fitted_optimal_size(c)[0] for c in budgets]
    brute = [argmin_on_budget(c) for c in budgets]
    report.check_close(
        OPTIMUM_CHECK,
        compare(got, brute, atol=0.0, rtol=1e-3),
        "a scan of log10 N in steps of 5e-5 (0.012 % in N) along C = 6ND, at 1e21, 5.76e23 "
        "and 1e25 FLOPs, so 0.1 %; swapped exponents or a dropped prefactor G = 1.34 miss "
        "by 26 % or more",
    )
    lo, hi = 1e21, 1e25
    slopes = []
    for f in (impl.rule_of_thumb_size, impl.fitted_optimal_size):
        ratio = f(hi)[0] / f(lo)[0] if f(lo)[0] else math.nan
        slopes.append(math.log(ratio) / math.log(hi / lo) if ratio > 0 else math.nan)
    report.metric("d log N / d log C: rule, fit", f"{slopes[0]:.4f}, {slopes[1]:.4f}")
    report.check_close(
        EXPONENT_CHECK,
        compare(slopes, list(data.table2_a), atol=0.015),
        "Table 2 prints a = 0.50 (Approach 1) and 0.46 (Approach 3); alpha and beta are "
        "printed to 2 decimals, which moves beta/(alpha+beta) over 0.433-0.463, so 0.015; "
        "swapped exponents give 0.55, Kaplan's allocation 0.73",
    )
    spent = []
    for c in data.budgets:
        for n, d in (impl.rule_of_thumb_size(c), impl.fitted_optimal_size(c)):
            spent.append(6.0 * n * d)
    report.check_close(
        BUDGET_CHECK,
        compare(spent, [c for c in data.budgets for _ in range(2)], atol=0.0, rtol=EXACT),
        "C = 6ND by construction, float64 rounding only (1e-9); a sizing that uses C = 2ND "
        "spends 3x the budget",
    )
    n_fit, d_fit = impl.fitted_optimal_size(5.76e23)
    if n_fit > 0 and d_fit > 0:  # the sizes at Gopher's budget, for the answer text
        n_rule, d_rule = impl.rule_of_thumb_size(5.76e23)
        report.metric(
            "fitted optimum at 5.76e23 FLOPs (Gopher's budget)",
            f"{n_fit / 1e9:.1f}B on {d_fit / 1e12:.2f}T",
        )
        report.metric("fitted optimum tokens per parameter at 5.76e23", d_fit / n_fit)
        best = impl.chinchilla_loss(n_fit, d_fit)
        off = [impl.chinchilla_loss(k * n_fit, d_fit / k) - best for k in (0.5, 2.0)]
        report.metric(
            "loss penalty at 0.5x / 2x the fitted N, same budget", f"{off[0]:.4f}, {off[1]:.4f}"
        )
        report.metric("20x rule at 5.76e23", f"{n_rule / 1e9:.1f}B on {d_rule / 1e12:.2f}T")


if __name__ == "__main__":
    print_check_of(__name__)
