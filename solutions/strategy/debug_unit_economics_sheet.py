"""Fix a pitch deck's unit-economics calculator: a 1000x price unit, context sent once, an
annual price against a monthly cost.

The founder's sheet (``ORIGINAL``) prices an LLM chat product: cost per user per month =
conversations x tokens x price, then gross margin and CAC payback. It prints a cost of half a
cent per user per month, a ~100 % gross margin and a payback of a third of a month. Three
classic bugs make the business look good:

1. **Units.** The prices are written per 1K tokens (0.003 / 0.015 USD, i.e. 3 / 15 USD per
   1M) and the code divides the token count by 1,000,000: the cost is 1000x too low.
2. **Context.** A chat API is stateless: turn k re-sends the system prompt and the whole
   conversation so far. Input tokens of a t-turn conversation are
   t*s + u*t(t+1)/2 + r*t(t-1)/2 (system s, user message u, reply r tokens), quadratic in t;
   the sheet counts s + t*u, the context once.
3. **Annual vs monthly.** The plan is sold at an annual price (USD per user per year); the
   sheet sets it against a monthly cost for the margin and divides CAC by a year of revenue
   to get "months" of payback: revenue 12x too high.

The fixed functions (the answer) take the prices and the plan as inputs. The checks compare
them with independent computations: a turn-by-turn simulation of the transcript (each request
billed on everything it sends), hand cases, the margin identity and a month-by-month
cumulative gross profit for the payback. The seed facts run ``ORIGINAL`` as printed and
measure each bug: what it claims against what is true, and the factor of each bug alone.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Protocol

from aiprep.kit.compare import compare
from aiprep.kit.report import SolutionReport, print_check_of
from aiprep.kit.seed_code import run_seed

EXACT = 1e-9  # relative tolerance of checks that redo the same float64 arithmetic by hand

# The founder's calculator (slide 12 of the deck), as the candidate is handed it.
ORIGINAL = """
PRICE_IN = 0.003    # USD per 1K input tokens (the model's price page)
PRICE_OUT = 0.015   # USD per 1K output tokens
PLAN = 192.0        # USD per user per year (annual plan)
CAC = 60.0          # USD to acquire one paying user


def input_tokens_per_conversation(turns, system_tokens, user_tokens, reply_tokens):
    # the system prompt, then each user message
    return system_tokens + turns * user_tokens


def cost_per_user_month(conversations, turns, system_tokens, user_tokens, reply_tokens):
    tokens_in = conversations * input_tokens_per_conversation(
        turns, system_tokens, user_tokens, reply_tokens)
    tokens_out = conversations * turns * reply_tokens
    return tokens_in / 1_000_000 * PRICE_IN + tokens_out / 1_000_000 * PRICE_OUT


def gross_margin(cost_month):
    return (PLAN - cost_month) / PLAN


def cac_payback_months(cost_month):
    return CAC / (PLAN * gross_margin(cost_month))


cost = cost_per_user_month(conversations=90, turns=8, system_tokens=1000,
                           user_tokens=150, reply_tokens=400)
print(f"cost per user per month: ${cost:.2f}")
print(f"gross margin: {gross_margin(cost):.0%}")
print(f"CAC payback: {cac_payback_months(cost):.1f} months")
"""

INPUT_CHECK = "input tokens per conversation vs a turn-by-turn transcript, 5 cases (1e-9)"
COST_CHECK = "cost per user per month vs billing each request of the transcript, 4 cases (1e-9)"
UNIT_CHECK = "1M input + 1M output tokens at 0.003 / 0.015 USD per 1K cost 3 + 15 USD (1e-9)"
MARGIN_CHECK = "gross margin of an annual plan vs a monthly cost, 4 hand cases (1e-9)"
PAYBACK_CHECK = "CAC payback months vs month-by-month cumulative gross profit, 3 cases (1e-9)"
NO_PAYBACK_CHECK = "no payback when the monthly cost reaches the monthly price: inf, 2 cases"

# The functions a candidate writes; check(impl) calls only these on impl.
ANSWER = (
    "input_tokens_per_conversation",
    "cost_per_user_month",
    "gross_margin",
    "cac_payback_months",
)

# -----------------------------------------------------------------------------
# The answer: the calculator, fixed


def input_tokens_per_conversation(
    turns: int,  # user messages in the conversation
    system_tokens: float,  # tokens of the system prompt
    user_tokens: float,  # tokens per user message
    reply_tokens: float,  # tokens per model reply
) -> float:
    """Input tokens billed for one conversation. The API is stateless: turn k sends the
    system prompt, the k - 1 earlier user messages and replies, and the new message."""
    # sum over k = 1..t of [s + k*u + (k - 1)*r]
    return (
        turns * system_tokens
        + user_tokens * turns * (turns + 1) / 2
        + reply_tokens * turns * (turns - 1) / 2
    )


def cost_per_user_month(
    conversations: float,  # conversations per user per month
    turns: int,  # user messages per conversation
    system_tokens: float,  # tokens of the system prompt
    user_tokens: float,  # tokens per user message
    reply_tokens: float,  # tokens per model reply
    input_price_per_1k: float,  # USD per 1K input tokens
    output_price_per_1k: float,  # USD per 1K output tokens
) -> float:
    """Inference cost in USD per user per month. Prices are per 1K tokens: divide the token
    counts by 1,000 (per 1M would be / 1e6 with a 1000x larger price)."""
    tokens_in = conversations * input_tokens_per_conversation(
        turns, system_tokens, user_tokens, reply_tokens
    )
    tokens_out = conversations * turns * reply_tokens  # each reply is generated once
    return tokens_in / 1_000 * input_price_per_1k + tokens_out / 1_000 * output_price_per_1k


def gross_margin(
    annual_price: float,  # USD per user per year (the plan)
    cost_month: float,  # USD of inference per user per month
) -> float:
    """Gross margin, a fraction of revenue: revenue and cost over the same month."""
    revenue_month = annual_price / 12  # USD per user per month
    return (revenue_month - cost_month) / revenue_month


def cac_payback_months(
    cac: float,  # USD to acquire one paying user
    annual_price: float,  # USD per user per year
    cost_month: float,  # USD of inference per user per month
) -> float:
    """Months of gross profit to earn back the CAC; inf when a month's gross profit is
    not positive (the user never pays back)."""
    profit_month = annual_price / 12 - cost_month  # USD of gross profit per user per month
    return cac / profit_month if profit_month > 0 else math.inf


# -----------------------------------------------------------------------------
# The harness: the deck's scenario, independent computations and the seed run as printed


class Answer(Protocol):
    def input_tokens_per_conversation(
        self, turns: int, system_tokens: float, user_tokens: float, reply_tokens: float
    ) -> float: ...

    def cost_per_user_month(
        self,
        conversations: float,
        turns: int,
        system_tokens: float,
        user_tokens: float,
        reply_tokens: float,
        input_price_per_1k: float,
        output_price_per_1k: float,
    ) -> float: ...

    def gross_margin(self, annual_price: float, cost_month: float) -> float: ...

    def cac_payback_months(self, cac: float, annual_price: float, cost_month: float) -> float: ...


@dataclass(frozen=True)
class Usage:
    conversations: float  # per user per month
    turns: int  # user messages per conversation
    system_tokens: float  # tokens
    user_tokens: float  # tokens per message
    reply_tokens: float  # tokens per reply


@dataclass(frozen=True)
class Deck:
    usage: Usage = Usage(90, 8, 1000, 150, 400)  # the sheet's scenario
    input_price_per_1k: float = 0.003  # USD per 1K input tokens (= 3 per 1M, Sonnet 4 list)
    output_price_per_1k: float = 0.015  # USD per 1K output tokens (= 15 per 1M)
    annual_price: float = 192.0  # USD per user per year (16 a month)
    cac: float = 60.0  # USD per paying user
    others: tuple[Usage, ...] = (  # more usage patterns for the hand checks
        Usage(30, 1, 500, 200, 300),  # one-shot requests: no history to re-send
        Usage(20, 20, 2000, 100, 600),  # long sessions: history dominates
        Usage(200, 3, 0, 50, 80),  # no system prompt
    )


def make_data(seed: int = 0) -> Deck:
    """The deck's scenario and usage patterns (deterministic: ``seed`` is unused)."""
    return Deck()


def transcript_input_tokens(u: Usage) -> float:
    """Input tokens of one conversation, by simulating it: the messages list grows turn by
    turn and each request sends all of it (independent of the closed form)."""
    messages = [u.system_tokens]
    billed = 0.0
    for _ in range(u.turns):
        messages.append(u.user_tokens)
        billed += sum(messages)  # the request: everything so far
        messages.append(u.reply_tokens)  # the reply joins the history
    return billed


def billed_cost(u: Usage, price_in_1k: float, price_out_1k: float) -> float:
    """USD per user per month, billing each request of the simulated transcript."""
    per_conversation = 0.0
    messages = [u.system_tokens]
    for _ in range(u.turns):
        messages.append(u.user_tokens)
        per_conversation += (
            sum(messages) / 1000 * price_in_1k + u.reply_tokens / 1000 * price_out_1k
        )
        messages.append(u.reply_tokens)
    return u.conversations * per_conversation


def months_to_recover(cac: float, profit_month: float) -> float:
    """Payback by accumulating gross profit month by month, the last month pro rata."""
    earned, month = 0.0, 0
    while earned + profit_month < cac:
        earned += profit_month
        month += 1
    return month + (cac - earned) / profit_month


def _usage_args(u: Usage) -> tuple[float, int, float, float, float]:
    return (u.conversations, u.turns, u.system_tokens, u.user_tokens, u.reply_tokens)


def check(impl: Answer) -> SolutionReport:
    """The seed's claims first (facts), then impl's functions against independent sums."""
    report = SolutionReport(solution="strategy.debug_unit_economics_sheet")
    deck = make_data()
    _seed(report, deck)
    _tokens_and_cost(report, impl, deck)
    _margin_and_payback(report, impl, deck)
    return report


def _seed(report: SolutionReport, deck: Deck) -> None:
    u = deck.usage
    seed = run_seed(ORIGINAL, {})
    report.metric("original raised", type(seed.error).__name__ if seed.error else "nothing")
    ns = seed.namespace
    cost = float(ns.get("cost", math.nan))
    true_cost = cost_per_user_month(
        *_usage_args(u), deck.input_price_per_1k, deck.output_price_per_1k
    )
    true_margin = gross_margin(deck.annual_price, true_cost)
    claimed_margin = float(ns["gross_margin"](cost))
    report.metric("original: claimed cost per user per month", cost, "USD")
    report.metric("true cost per user per month", true_cost, "USD")
    report.metric("original: claimed gross margin", claimed_margin)
    report.metric("true gross margin", true_margin)
    report.metric("original: claimed CAC payback", float(ns["cac_payback_months"](cost)), "months")
    report.metric(
        "true CAC payback", cac_payback_months(deck.cac, deck.annual_price, true_cost), "months"
    )
    report.seed_fact(
        "original: claimed margin - true margin",
        claimed_margin - true_margin,
        ">=",
        0.5,
        "the three bugs together turn a thin margin into ~100 %",
    )
    # bug 1 alone: the seed's cost function with its / 1_000_000 made / 1_000
    unit_fixed = run_seed(ORIGINAL, {}, replace=[("/ 1_000_000", "/ 1_000")]).namespace["cost"]
    report.metric("original: cost with / 1_000 instead of / 1_000_000, ratio", unit_fixed / cost)
    report.seed_fact(
        "original: price-unit bug alone, cost ratio (6 decimals)",
        round(unit_fixed / cost, 6),
        "==",
        1000,
        "per-1K prices divided by 1e6 instead of 1e3: exactly 1000x too cheap (up to float64 "
        "rounding, hence 6 decimals)",
    )
    # bug 2 alone: the seed's token count against the transcript
    seed_in = float(ns["input_tokens_per_conversation"](*_usage_args(u)[1:]))
    true_in = transcript_input_tokens(u)
    report.metric("original: input tokens per conversation", seed_in)
    report.metric("true input tokens per conversation", true_in)
    report.seed_fact(
        "original: context-once bug alone, true / claimed input tokens",
        true_in / seed_in,
        ">=",
        5,
        "8 turns: the history re-sent every turn is 24,600 tokens, not 2,200",
    )
    # bug 3 alone: the seed's margin at the true cost
    seed_margin_at_true = float(ns["gross_margin"](true_cost))
    report.metric("original: margin formula at the true cost", seed_margin_at_true)
    report.seed_fact(
        "original: annual-price bug alone, margin at the true cost - true margin",
        seed_margin_at_true - true_margin,
        ">=",
        0.4,
        "a year of revenue against a month of cost",
    )


def _tokens_and_cost(report: SolutionReport, impl: Answer, deck: Deck) -> None:
    usages = (deck.usage, *deck.others)
    got = [impl.input_tokens_per_conversation(*_usage_args(u)[1:]) for u in usages]
    got.append(impl.input_tokens_per_conversation(2, 100, 10, 1000))  # by hand: 200+30+1000
    want = [transcript_input_tokens(u) for u in usages] + [1230.0]
    report.metric("input tokens per conversation (deck scenario)", got[0])
    report.check_close(
        INPUT_CHECK,
        compare(got, want, atol=0.0, rtol=EXACT),
        "a simulated transcript whose every request sends the whole history (integers, exact "
        "in float64; 1e-9 relative); 2 turns of 10 with a 100-token system prompt and a "
        "1000-token reply: 110 + 1120 = 1230 by hand; counting the context once gives 2,200 "
        "instead of 24,600 in the deck's scenario. The one-turn case agrees either way",
    )
    price_in, price_out = deck.input_price_per_1k, deck.output_price_per_1k
    got_cost = [impl.cost_per_user_month(*_usage_args(u), price_in, price_out) for u in usages]
    want_cost = [billed_cost(u, price_in, price_out) for u in usages]
    report.metric("cost per user per month (deck scenario)", got_cost[0], "USD")
    report.check_close(
        COST_CHECK,
        compare(got_cost, want_cost, atol=0.0, rtol=EXACT),
        "each request of the simulated transcript billed on what it sends and generates "
        "(float64 sums in another order: 1e-9 relative); per-1K prices divided by 1e6 are "
        "1000x too cheap, context once is 11x too cheap on the input side here",
    )
    unit = impl.cost_per_user_month(1, 1, 0, 1e6, 1e6, price_in, price_out)
    # one conversation, one turn: 1M tokens in, 1M tokens out
    report.check_close(
        UNIT_CHECK,
        compare(unit, 3.0 + 15.0, atol=0.0, rtol=EXACT),
        "0.003 USD per 1K is 3 USD per 1M (Sonnet 4's list input price) and 0.015 per 1K is "
        "15 per 1M: 18 USD by hand (1e-9); dividing by 1e6 gives 0.018",
    )


def _margin_and_payback(report: SolutionReport, impl: Answer, deck: Deck) -> None:
    cases = ((192.0, 10.962), (120.0, 2.0), (240.0, 25.0), (192.0, 0.0))  # (USD/yr, USD/mo)
    got = [impl.gross_margin(a, c) for a, c in cases]
    want = [(16 - 10.962) / 16, (10 - 2) / 10, (20 - 25) / 20, 1.0]
    report.check_close(
        MARGIN_CHECK,
        compare(got, want, atol=0.0, rtol=EXACT),
        "192 USD a year is 16 a month: (16 - 10.962) / 16 = 0.3149; 120/yr at 2/mo: 0.80; "
        "240/yr at 25/mo: -0.25 (a loss); zero cost: 1.0. A year's price against a month's "
        "cost gives (192 - 10.962) / 192 = 0.943",
    )
    true_cost = impl.cost_per_user_month(
        *_usage_args(deck.usage), deck.input_price_per_1k, deck.output_price_per_1k
    )
    report.metric("gross margin (deck scenario)", impl.gross_margin(deck.annual_price, true_cost))
    u = deck.usage
    longer = impl.cost_per_user_month(
        u.conversations,
        u.turns + 4,
        u.system_tokens,
        u.user_tokens,
        u.reply_tokens,
        deck.input_price_per_1k,
        deck.output_price_per_1k,
    )
    report.metric("cost per user per month at 12 turns per conversation", longer, "USD")
    input_only = impl.cost_per_user_month(
        u.conversations,
        u.turns,
        u.system_tokens,
        u.user_tokens,
        u.reply_tokens,
        deck.input_price_per_1k,
        0.0,
    )
    report.metric("input tokens' share of the cost (deck scenario)", input_only / true_cost)
    pay_cases = ((60.0, 192.0, 10.962), (60.0, 120.0, 2.0), (300.0, 600.0, 20.0))
    got_pay = [impl.cac_payback_months(*c) for c in pay_cases]
    want_pay = [months_to_recover(cac, a / 12 - c) for cac, a, c in pay_cases]
    report.metric(
        "CAC payback (deck scenario)",
        impl.cac_payback_months(deck.cac, deck.annual_price, true_cost),
        "months",
    )
    report.check_close(
        PAYBACK_CHECK,
        compare(got_pay, want_pay, atol=0.0, rtol=EXACT),
        "gross profit (monthly price - monthly cost) accumulated month by month until it "
        "covers CAC, the last month pro rata (1e-9): 60 / 5.038 = 11.9 months for the deck; "
        "dividing CAC by a year of revenue calls 0.31 of it months",
    )
    never = [impl.cac_payback_months(60.0, 192.0, 16.0), impl.cac_payback_months(60.0, 120.0, 25.0)]
    report.check(
        NO_PAYBACK_CHECK,
        float(all(math.isinf(x) and x > 0 for x in never)),
        "==",
        1,
        "gross profit 0 (cost = 16/mo = 192/yr) and negative (25/mo against 10/mo): the user "
        "never pays back; a formula without the guard returns a division error or a negative "
        "payback",
    )


if __name__ == "__main__":
    print_check_of(__name__)
