"""Unit economics of an agent: what one task costs, and what to charge for it.

An agent task is k model calls. Every call re-sends the whole context: the prompt P (system
prompt, tool definitions, the user's request) plus everything the earlier calls added: each
call's output (a tool call) and the tool's result, d tokens a step. Call i (1-based) reads
P + (i - 1) d input tokens and writes o output tokens, so a task reads

    input  = k P + d k (k - 1) / 2        (quadratic in k)
    output = k o

With prompt caching the provider re-reads a prefix it saw in the previous call at a
fraction of the input price (Anthropic: cache hits at 0.1x the base input price, 5-minute
cache writes at 1.25x). Call i >= 2 finds the previous call's whole input cached, P +
(i - 2) d tokens, and writes the d new ones; over the task

    cached  = (k - 1) P + d (k - 1) (k - 2) / 2,    written = input - cached = P + (k - 1) d.

The discount touches the cached input only: output tokens are never cached.

The price that keeps a gross margin m is cost / (1 - m) (60 %: cost x 2.5), not cost x
(1 + m), which is a markup and leaves 37.5 %. Routing a share s of the calls, at random, to
a cheaper model mixes the two price lists: expected cost = (1 - s) cost_big + s cost_small
(without caching: a cache belongs to one model).

The checks hold the token sums to an explicit call-by-call simulation, the cost to list
prices by hand, the caching saving to the documented factor on the cached tokens alone, the
price to the margin identity, and the routed cost to a Monte Carlo over random routings.
With the default task (20 calls) the context re-sent makes 557k input tokens where the final
transcript is 49.7k: counting it once is 11x too cheap.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

import numpy as np

from aiprep.kit.compare import compare
from aiprep.kit.report import SolutionReport, print_check_of

SEED = 0
Price = tuple[float, float]  # (input, output) USD per 1M tokens
EXACT = 1e-9  # relative tolerance of checks that redo the same float64 arithmetic by hand
TASKS = 20_000  # simulated tasks with random routing
Z = 4.0  # Monte Carlo tolerance in standard errors

TOKENS_CHECK = "input tokens k P + d k(k-1)/2 vs a call-by-call simulation, 6 task shapes"
CACHED_CHECK = "cached prefix tokens vs a call-by-call simulation, 6 task shapes"
COST_CHECK = "task cost at Sonnet 4 list prices ($3 in, $15 out per 1M), by hand (1e-9)"
CACHE_CHECK = "caching saves (1 - 0.30/3) x input price on the cached tokens only (1e-9)"
MARGIN_CHECK = "price = cost / (1 - margin) and keeps the margin, 4 hand cases (1e-9)"
ROUTE_END_CHECK = "routing share 0 and 1 cost the big-only and the small-only task (1e-9)"
ROUTE_CHECK = "routed task cost vs 20,000 tasks with each call routed at random (4 SE)"


# The functions a candidate writes; check(impl) calls only these on impl.
ANSWER = (
    "input_tokens",
    "cached_input_tokens",
    "task_cost",
    "price_for_margin",
    "routed_task_cost",
)

# -----------------------------------------------------------------------------
# The answer: tokens per task, cost per task, price per task


def input_tokens(calls: int, prompt: float, step: float) -> float:
    """Input tokens of one task: ``calls`` model calls, each re-sending ``prompt`` (tokens:
    system prompt, tools, request) plus ``step`` tokens (output + tool result) per earlier
    call."""
    # sum over i = 0..k-1 of (P + i d)
    return calls * prompt + step * calls * (calls - 1) / 2.0


def cached_input_tokens(calls: int, prompt: float, step: float) -> float:
    """Of ``input_tokens``, the tokens each call finds cached: the previous call's whole
    input (same arguments, tokens)."""
    if calls < 2:
        return 0.0
    # call i >= 2 re-reads P + (i - 2) d: sum over j = 0..k-2 of (P + j d)
    return (calls - 1) * prompt + step * (calls - 1) * (calls - 2) / 2.0


def task_cost(
    calls: int,
    prompt: float,
    step: float,
    output: float,
    input_price: float,
    output_price: float,
    cache_read_price: float,
    cache_write_price: float,
) -> float:
    """USD of one task of ``calls`` calls (``prompt``, ``step`` as in ``input_tokens``;
    ``output`` tokens written per call). Prices in USD per 1M tokens: base input, output,
    cache hit (cached input) and cache write (new input); without caching pass the input
    price for both cache prices."""
    tokens_in = input_tokens(calls, prompt, step)
    cached = cached_input_tokens(calls, prompt, step)
    usd_in = cached * cache_read_price + (tokens_in - cached) * cache_write_price
    usd_out = calls * output * output_price  # output is never cached
    return (usd_in + usd_out) / 1e6


def price_for_margin(cost: float, margin: float) -> float:
    """Price (USD) that leaves gross ``margin`` (fraction of the price) over ``cost`` (USD):
    (price - cost) / price = margin."""
    return cost / (1.0 - margin)


def routed_task_cost(
    calls: int, prompt: float, step: float, output: float, share: float, big: Price, small: Price
) -> float:
    """Expected USD of one task (arguments as in ``task_cost``) when each call goes to the
    small model with probability ``share``; ``big`` and ``small`` are (input, output)
    prices in USD per 1M tokens, no caching."""
    # each call's cost is linear in the prices, so the expectation mixes the price lists
    mix_in = (1.0 - share) * big[0] + share * small[0]
    mix_out = (1.0 - share) * big[1] + share * small[1]
    return task_cost(calls, prompt, step, output, mix_in, mix_out, mix_in, mix_in)


# -----------------------------------------------------------------------------
# The harness: list prices, a call-by-call simulation and random routings


class Answer(Protocol):
    input_tokens: Callable[[int, float, float], float]
    cached_input_tokens: Callable[[int, float, float], float]
    task_cost: Callable[[int, float, float, float, float, float, float, float], float]
    price_for_margin: Callable[[float, float], float]
    routed_task_cost: Callable[[int, float, float, float, float, Price, Price], float]


@dataclass(frozen=True)
class Task:
    calls: int = 20  # model calls per task (assumed)
    prompt: float = 6_000  # tokens: system prompt + tools 5,000, the request 1,000 (assumed)
    step: float = 2_300  # tokens each call adds: 300 of tool call + 2,000 of tool result
    output: float = 300  # output tokens per call (assumed)
    margin: float = 0.60  # target gross margin


@dataclass(frozen=True)
class Prices:
    """Anthropic's price page, USD per 1M tokens."""

    input: float = 3.0  # Claude Sonnet 4, base input
    output: float = 15.0  # Claude Sonnet 4, output
    cache_read: float = 0.30  # Claude Sonnet 4, cache hits and refreshes (0.1x input)
    cache_write: float = 3.75  # Claude Sonnet 4, 5-minute cache writes (1.25x input)
    small_input: float = 0.80  # Claude Haiku 3.5, base input
    small_output: float = 4.0  # Claude Haiku 3.5, output


@dataclass(frozen=True)
class Scenarios:
    task: Task
    prices: Prices
    shapes: tuple[tuple[int, float, float], ...]  # (calls, prompt, step) to simulate
    routes: np.ndarray  # (TASKS, calls) bool: call goes to the small model


def make_data(seed: int = SEED) -> Scenarios:
    """The default task, list prices, task shapes, and random routings of its calls."""
    task = Task()
    shapes: tuple[tuple[int, float, float], ...] = (
        (1, 6_000, 2_300),
        (2, 6_000, 2_300),
        (5, 500, 100),
        (20, 6_000, 2_300),
    )
    shapes += ((50, 2_000, 1_500), (100, 10_000, 800))
    routes = np.random.default_rng(seed).random((TASKS, task.calls)) < 0.5
    return Scenarios(task, Prices(), shapes, routes)


def simulate_calls(calls: int, prompt: float, step: float) -> tuple[float, float]:
    """(input tokens, cached tokens) of a task, one call at a time."""
    context, sent, cached, previous = prompt, 0.0, 0.0, 0.0
    for _ in range(calls):
        sent += context
        cached += previous  # the last call's whole input is a prefix of this one
        previous = context
        context += step  # this call's output and the tool's result join the context
    return sent, cached


def check(impl: Answer) -> SolutionReport:
    """Tokens against the simulation, cost and price by hand, routing against Monte Carlo."""
    report = SolutionReport(solution="strategy.agent_unit_economics")
    data = make_data()
    for part in (_tokens, _cost, _routing):
        part(report, impl, data)
    return report


def _tokens(report: SolutionReport, impl: Answer, data: Scenarios) -> None:
    sims = [simulate_calls(*shape) for shape in data.shapes]
    counts = (
        (
            TOKENS_CHECK,
            impl.input_tokens,
            "whole tokens summed call by call (each call re-sends P and every earlier step), "
            "so to half a token; the context counted once (the final transcript, "
            "P + (k-1) d) is 11x low at 20 calls",
        ),
        (
            CACHED_CHECK,
            impl.cached_input_tokens,
            "each call finds the previous call's whole input cached and the first call "
            "nothing, summed call by call, to half a token; counting every input token as "
            "cached bills the 49.7k new ones at 0.1x",
        ),
    )
    for i, (name, count, detail) in enumerate(counts):
        got = [count(*shape) for shape in data.shapes]
        report.check_close(name, compare(got, [s[i] for s in sims], atol=0.5), detail)
    t = data.task
    total = impl.input_tokens(t.calls, t.prompt, t.step)
    report.metric("input tokens per task (20 calls)", total)
    report.metric("final transcript P + (k-1) d (the context counted once)", t.prompt + 19 * t.step)
    report.metric("output tokens per task", t.calls * t.output)
    report.metric(
        "input tokens at 10 / 20 / 40 calls",
        ", ".join(f"{impl.input_tokens(k, t.prompt, t.step):.0f}" for k in (10, 20, 40)),
    )


def _cost(report: SolutionReport, impl: Answer, data: Scenarios) -> None:
    t, p = data.task, data.prices
    shape = (t.calls, t.prompt, t.step, t.output)
    plain = impl.task_cost(*shape, p.input, p.output, p.input, p.input)
    cached = impl.task_cost(*shape, p.input, p.output, p.cache_read, p.cache_write)
    # 557,000 input tokens at 3 + 6,000 output tokens at 15, per 1M
    report.check_close(
        COST_CHECK,
        compare(plain, (557_000 * 3.0 + 6_000 * 15.0) / 1e6, atol=0.0, rtol=EXACT),
        "0.557M x 3 + 0.006M x 15 = 1.761 USD, float64 by hand (1e-9); the context counted "
        "once is 0.24 USD, the output tokens left out 1.671",
    )
    sent, hits = simulate_calls(t.calls, t.prompt, t.step)
    written = sent - hits
    # the documented factors, on the cached (and newly written) input only
    saving = hits * (p.input - p.cache_read) / 1e6 - written * (p.cache_write - p.input) / 1e6
    no_output = impl.task_cost(
        t.calls, t.prompt, t.step, 0.0, p.input, p.output, p.cache_read, p.cache_write
    )
    report.check_close(
        CACHE_CHECK,
        compare(
            [plain - cached, cached - no_output],
            [saving, t.calls * t.output * p.output / 1e6],
            atol=0.0,
            rtol=EXACT,
        ),
        f"price page: cache hits 0.30 = 0.1 x 3, 5-minute writes 3.75 = 1.25 x 3; "
        f"{hits:.0f} cached tokens save 2.70 each per 1M, {written:.0f} written cost 0.75 "
        "more, and the output (0.09 USD) is unchanged (1e-9); discounting the output too "
        "takes 0.081 off",
    )
    report.metric("cost per task, no caching", plain, "USD")
    report.metric("cost per task, prompt caching", cached, "USD")
    report.metric("caching: cost divided by", plain / cached if cached else math.nan)
    price = impl.price_for_margin(plain, t.margin)
    report.metric("price per task at 60 % gross margin, no caching", price, "USD")
    report.metric(
        "price per task at 60 % gross margin, caching",
        impl.price_for_margin(cached, t.margin),
        "USD",
    )
    report.metric("margin left by cost x 1.6 (a markup)", 1.0 - 1.0 / 1.6)
    cases = ((1.761, 0.6), (1.0, 0.5), (0.4286, 0.8), (2.0, 0.0))
    got = [impl.price_for_margin(c, m) for c, m in cases]
    kept = [(g - c) / g if g else math.nan for g, (c, _) in zip(got, cases, strict=True)]
    report.check_close(
        MARGIN_CHECK,
        compare(
            [*got, *kept],
            [1.761 / 0.4, 2.0, 0.4286 / 0.2, 2.0, *(m for _, m in cases)],
            atol=1e-12,  # the 0 % case's margin is 0
            rtol=EXACT,
        ),
        "cost / 0.4 at 60 %, x2 at 50 %, x5 at 80 %, x1 at 0 %, and (price - cost) / price "
        "must give the margin back (1e-9); cost x 1.6 is a markup that leaves 37.5 %",
    )


def _routing(report: SolutionReport, impl: Answer, data: Scenarios) -> None:
    t, p = data.task, data.prices
    shape = (t.calls, t.prompt, t.step, t.output)
    big, small = (p.input, p.output), (p.small_input, p.small_output)
    ends = [impl.routed_task_cost(*shape, s, big, small) for s in (0.0, 1.0)]
    only = [
        impl.task_cost(*shape, *prices, prices[0], prices[0])  # no caching
        for prices in (big, small)
    ]
    report.check_close(
        ROUTE_END_CHECK,
        compare(ends, only, atol=0.0, rtol=EXACT),
        "no call routed is the big model's task, every call routed the small model's (1e-9)",
    )
    # call i reads P + i d and writes o; each simulated task routes its calls at random
    call_in = t.prompt + t.step * np.arange(t.calls)  # (calls,) input tokens of each call
    usd_in = np.where(data.routes, small[0], big[0])  # (TASKS, calls)
    usd_out = np.where(data.routes, small[1], big[1])
    per_task = (usd_in * call_in + usd_out * t.output).sum(axis=1) / 1e6  # (TASKS,)
    se = float(per_task.std() / math.sqrt(per_task.size))
    routed = impl.routed_task_cost(*shape, 0.5, big, small)
    report.metric("cost per task, half the calls on Haiku 3.5 (no caching)", routed, "USD")
    report.metric("cost per task, Haiku 3.5 only", only[1], "USD")
    short = (2, t.prompt, t.step, t.output)  # a 2-call task: little context to re-read
    report.metric(
        "2-call task: no caching, caching, half on Haiku 3.5",
        ", ".join(
            f"{c:.4f}"
            for c in (
                impl.task_cost(*short, p.input, p.output, p.input, p.input),
                impl.task_cost(*short, p.input, p.output, p.cache_read, p.cache_write),
                impl.routed_task_cost(*short, 0.5, big, small),
            )
        ),
        "USD",
    )
    report.check_close(
        ROUTE_CHECK,
        compare(routed, float(per_task.mean()), atol=Z * se),
        f"the mean of {TASKS:,} tasks whose calls each go to Haiku 3.5 with probability 0.5 "
        f"has standard error {se:.5f} USD, 4 allowed",
    )


if __name__ == "__main__":
    print_check_of(__name__)
