"""Long prompt, RAG or fine-tuning: what each costs for a corpus of C tokens and Q queries.

Three ways to make an API model answer from your documents, each a cost in three parts
(one-off, fixed per month, per query), all in USD at a provider's per-1M-token prices:

- Long prompt: put the corpus (as much as the context window holds) in every query. No
  one-off, but every query pays for min(C, window - question - answer) input tokens; a
  prompt cache bills the repeated prefix at the cached-input price (OpenAI: half the input
  price for GPT-4o mini) on the share of queries that hit it.
- RAG (Lewis et al. 2020): embed the corpus once (C tokens at the embedding price), store
  the vectors (C / chunk vectors of d float32s per month), and per query embed the question
  and send the top-k chunks: k * chunk input tokens instead of C.
- Fine-tuning: train once on C tokens for E epochs (billed C * E tokens at the training
  price), then serve short prompts at the fine-tuned model's higher per-token prices.

Over a horizon of H months at Q queries a month a plan costs
one_off + H * (monthly + Q * per_query), a line in Q; two plans cross where the lines meet,
Q* = (A_b - A_a) / (H * (p_a - p_b)) with A = one_off + H * monthly. The checks redo the
plans by hand, hold the fine-tuning bill to a provider's documented worked example, find
the crossovers with a scan of Q, and hold the window cap. What the cost model leaves out
decides as often: fine-tuning teaches form more than facts (Ovadia et al. 2023: RAG beat
unsupervised fine-tuning on knowledge questions), RAG can cite and stays fresh when a
document changes, a capped long prompt silently drops most of a large corpus.
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
PER_M = 1e6  # prices are USD per 1M tokens
FLOAT32_BYTES = 4
LONG_CHECK = (
    "long prompt per query vs hand, corpora inside the window, cache 0 / 90 % (tolerance used)"
)
CAP_CHECK = "long prompt per query for corpora beyond the 128K window vs hand (tolerance used)"
RAG_CHECK = "RAG one-off, monthly, per query vs hand (tolerance used)"
FT_CHECK = "fine-tuning bill vs Ori's documented example and by hand (tolerance used)"
CROSSOVER_CHECK = "crossover volumes: closed form vs a scan of Q (tolerance used)"
EQUAL_CHECK = "totals: equal at each crossover, and at 100k queries/month by hand (tolerance used)"


# The functions a candidate writes; check(impl) calls only these on impl.
ANSWER = (
    "long_prompt_plan",
    "rag_plan",
    "finetune_plan",
    "total_cost",
    "crossover_queries",
)

# -----------------------------------------------------------------------------
# The answer: three plans as (one-off USD, USD per month, USD per query)


def long_prompt_plan(
    corpus_tokens: float,
    context_window: float,
    query_tokens: float,
    output_tokens: float,
    input_price: float,
    cached_input_price: float,
    output_price: float,
    cache_hit_rate: float,
) -> tuple[float, float, float]:
    """(one-off USD, USD per month, USD per query) of stuffing the corpus into every prompt.

    corpus_tokens: tokens; context_window: tokens the model accepts (prompt + answer);
    query_tokens, output_tokens: tokens per query; input_price, cached_input_price,
    output_price: USD per 1M tokens; cache_hit_rate: share of queries (0..1) whose corpus
    prefix is billed at the cached price.
    """
    context = min(corpus_tokens, context_window - query_tokens - output_tokens)  # the cap
    corpus_price = cache_hit_rate * cached_input_price + (1.0 - cache_hit_rate) * input_price
    # the corpus is paid on EVERY query: it is input, not a one-off
    per_query = (context * corpus_price + query_tokens * input_price) / PER_M
    per_query += output_tokens * output_price / PER_M
    return 0.0, 0.0, per_query


def rag_plan(
    corpus_tokens: float,
    chunk_tokens: float,
    top_k: int,
    query_tokens: float,
    output_tokens: float,
    embedding_price: float,
    embedding_dims: int,
    storage_price_gb_month: float,
    input_price: float,
    output_price: float,
) -> tuple[float, float, float]:
    """(one-off USD, USD per month, USD per query) of retrieval-augmented generation.

    corpus_tokens, chunk_tokens: tokens; top_k: chunks retrieved per query; query_tokens,
    output_tokens: tokens per query; embedding_price, input_price, output_price: USD per 1M
    tokens; embedding_dims: floats per vector (float32); storage_price_gb_month: USD per GB
    (1e9 bytes) per month.
    """
    one_off = corpus_tokens * embedding_price / PER_M  # the corpus is embedded once
    vectors = math.ceil(corpus_tokens / chunk_tokens)
    monthly = vectors * embedding_dims * FLOAT32_BYTES / 1e9 * storage_price_gb_month
    prompt = top_k * chunk_tokens + query_tokens  # retrieved chunks + the question
    per_query = (prompt * input_price + output_tokens * output_price) / PER_M
    per_query += query_tokens * embedding_price / PER_M  # only the question is embedded
    return one_off, monthly, per_query


def finetune_plan(
    corpus_tokens: float,
    epochs: int,
    validation_tokens: float,
    training_price: float,
    query_tokens: float,
    output_tokens: float,
    tuned_input_price: float,
    tuned_output_price: float,
) -> tuple[float, float, float]:
    """(one-off USD, USD per month, USD per query) of fine-tuning, then short prompts.

    corpus_tokens, validation_tokens: tokens (validation evaluated once); epochs: passes
    over the corpus, each billed; training_price, tuned_input_price, tuned_output_price:
    USD per 1M tokens; query_tokens, output_tokens: tokens per query.
    """
    one_off = (corpus_tokens * epochs + validation_tokens) * training_price / PER_M
    per_query = (query_tokens * tuned_input_price + output_tokens * tuned_output_price) / PER_M
    return one_off, 0.0, per_query


def total_cost(plan: tuple[float, float, float], queries_per_month: float, months: float) -> float:
    """USD over ``months`` months at ``queries_per_month`` queries a month."""
    one_off, monthly, per_query = plan
    return one_off + months * (monthly + queries_per_month * per_query)


def crossover_queries(
    plan_a: tuple[float, float, float], plan_b: tuple[float, float, float], months: float
) -> float:
    """Queries per month at which the two plans cost the same over ``months`` months;
    ``math.inf`` when they never cross at a positive volume."""
    fixed_a = plan_a[0] + months * plan_a[1]  # what is paid whatever the volume
    fixed_b = plan_b[0] + months * plan_b[1]
    slope = months * (plan_a[2] - plan_b[2])  # USD per (query per month)
    if slope == 0.0:
        return math.inf
    q = (fixed_b - fixed_a) / slope
    return q if q > 0.0 else math.inf


# -----------------------------------------------------------------------------
# The harness: published prices, hand computations and a scan


Plan = tuple[float, float, float]  # (one-off USD, USD per month, USD per query)


class Answer(Protocol):
    """The ANSWER functions, as check() calls them (signatures above)."""

    long_prompt_plan: Callable[..., Plan]
    rag_plan: Callable[..., Plan]
    finetune_plan: Callable[..., Plan]
    total_cost: Callable[[Plan, float, float], float]
    crossover_queries: Callable[[Plan, Plan, float], float]


@dataclass(frozen=True)
class Prices:
    """OpenAI list prices, USD per 1M tokens (GPT-4o mini, its fine-tuned variant,
    text-embedding-3-small), and an assumed vector-storage price."""

    input: float = 0.15
    cached_input: float = 0.075  # 50 % of input
    output: float = 0.60
    context_window: float = 128_000  # tokens
    training: float = 3.00  # per 1M training tokens (tokens x epochs)
    tuned_input: float = 0.30
    tuned_output: float = 1.20
    embedding: float = 0.02
    embedding_dims: int = 1536
    storage_gb_month: float = 0.25  # assumed: a managed vector store, USD per GB-month


@dataclass(frozen=True)
class Workload:
    """A support assistant over a company's documents (stated inputs)."""

    corpus_tokens: float  # tokens
    queries_per_month: float
    months: float = 12.0
    query_tokens: float = 200.0  # the user's question
    output_tokens: float = 300.0  # the answer
    chunk_tokens: float = 500.0
    top_k: int = 5
    epochs: int = 3
    cache_hit_rate: float = 0.9  # share of queries whose corpus prefix is cached


@dataclass(frozen=True)
class Scenarios:
    prices: Prices
    large: Workload  # far beyond the context window
    small: Workload  # fits the window
    ori_example: tuple[float, int, float, float, float]  # tokens, epochs, val, $/1M, total


def make_data(seed: int = SEED) -> Scenarios:
    """List prices and two workloads; published figures and stated inputs, so ``seed``
    changes nothing."""
    return Scenarios(
        prices=Prices(),
        large=Workload(corpus_tokens=20e6, queries_per_month=100_000),
        small=Workload(corpus_tokens=60_000, queries_per_month=100_000),
        # Ori docs, fine-tuning billing: 5M tokens x 3 epochs + 1M validation at $0.46/1M
        ori_example=(5e6, 3, 1e6, 0.46, 7.36),
    )


def plans(impl: Answer, p: Prices, w: Workload) -> dict[str, Plan]:
    """The candidate's three plans for workload ``w`` (long prompt with its cache)."""
    return {
        "long prompt": impl.long_prompt_plan(
            w.corpus_tokens,
            p.context_window,
            w.query_tokens,
            w.output_tokens,
            p.input,
            p.cached_input,
            p.output,
            w.cache_hit_rate,
        ),
        "RAG": impl.rag_plan(
            w.corpus_tokens,
            w.chunk_tokens,
            w.top_k,
            w.query_tokens,
            w.output_tokens,
            p.embedding,
            p.embedding_dims,
            p.storage_gb_month,
            p.input,
            p.output,
        ),
        "fine-tune": impl.finetune_plan(
            w.corpus_tokens,
            w.epochs,
            0.0,
            p.training,
            w.query_tokens,
            w.output_tokens,
            p.tuned_input,
            p.tuned_output,
        ),
    }


def scan_crossover(
    a: tuple[float, float, float], b: tuple[float, float, float], months: float
) -> float:
    """The volume where the cheaper plan changes, by walking Q over 1e-2..1e10 queries a
    month in steps of 10^(1/2000) (0.115 %) and bisecting the step where the sign flips."""

    def gap(q: float) -> float:  # the totals' difference, written out again
        return (a[0] + months * (a[1] + q * a[2])) - (b[0] + months * (b[1] + q * b[2]))

    steps = 12 * 2000
    prev_q, prev = 1e-2, gap(1e-2)
    for i in range(1, steps + 1):
        q = float(10.0 ** (-2 + i / 2000))
        now = gap(q)
        if (now > 0) != (prev > 0):
            lo, hi = prev_q, q
            for _ in range(60):
                mid = 0.5 * (lo + hi)
                if (gap(mid) > 0) == (prev > 0):
                    lo = mid
                else:
                    hi = mid
            return 0.5 * (lo + hi)
        prev_q, prev = q, now
    return math.inf


def check(impl: Answer) -> SolutionReport:
    """Each plan by hand, the fine-tuning bill against a documented example, the window
    cap, and the crossovers against a scan."""
    report = SolutionReport(solution="strategy.finetune_rag_long_prompt_cost")
    data = make_data()
    _long_prompt(report, impl, data)
    _rag_and_finetune(report, impl, data)
    _crossovers(report, impl, data)
    return report


def _long_prompt(report: SolutionReport, impl: Answer, data: Scenarios) -> None:
    p = data.prices
    q_tok, out_tok = 200.0, 300.0
    got: list[float] = []
    by_hand: list[float] = []
    for corpus in (2_000.0, 60_000.0, 127_500.0):  # all fit: window - 200 - 300 = 127,500
        for hit in (0.0, 0.9):
            plan = impl.long_prompt_plan(
                corpus, p.context_window, q_tok, out_tok, p.input, p.cached_input, p.output, hit
            )
            got.extend(plan)
            blended = 0.15 if hit == 0.0 else 0.9 * 0.075 + 0.1 * 0.15
            by_hand.extend([0.0, 0.0, (corpus * blended + 200 * 0.15 + 300 * 0.60) / 1e6])
    report.check_close(
        LONG_CHECK,
        compare(got, by_hand, atol=1e-12, rtol=EXACT),
        "(corpus x blended input price + question x input + answer x output) / 1e6 per query, "
        "nothing one-off; same float64 arithmetic (1e-9). Paying the corpus once instead of "
        "on every query moves it to the one-off and leaves $0.00021 per query",
    )
    capped = []
    for corpus in (1e6, 20e6):
        plan = impl.long_prompt_plan(
            corpus, p.context_window, q_tok, out_tok, p.input, p.cached_input, p.output, 0.9
        )
        capped.append(plan[2])
    at_cap = (127_500 * (0.9 * 0.075 + 0.1 * 0.15) + 200 * 0.15 + 300 * 0.60) / 1e6
    report.check_close(
        CAP_CHECK,
        compare(capped, [at_cap, at_cap], atol=0.0, rtol=EXACT),
        "a prompt holds at most 128,000 - 200 - 300 = 127,500 corpus tokens, so a 1M or 20M "
        "corpus costs what 127,500 tokens cost (1e-9); without the cap the 20M corpus bills "
        "154x more, for a prompt the API would reject",
    )
    report.metric("long prompt per query at the cap (90 % cached)", f"{at_cap:.5f}", "USD")
    share = 127_500 / data.large.corpus_tokens
    report.metric("share of the 20M-token corpus a capped prompt sees", f"{share:.2%}")
    # below this corpus size a cached long prompt is cheaper per query than RAG's k chunks
    blended = 0.9 * p.cached_input + 0.1 * p.input
    w = data.large
    small = (w.top_k * w.chunk_tokens * p.input + w.query_tokens * p.embedding) / blended
    report.metric("corpus below which the cached long prompt beats RAG per query", small, "tokens")


def _rag_and_finetune(report: SolutionReport, impl: Answer, data: Scenarios) -> None:
    p, w = data.prices, data.large
    mine = plans(impl, p, w)
    rag, ft = mine["RAG"], mine["fine-tune"]
    vectors = 20e6 / 500  # 40,000 chunks of 1536 float32s = 245.76 MB
    by_hand = [
        20e6 * 0.02 / 1e6,
        vectors * 1536 * 4 / 1e9 * 0.25,
        ((5 * 500 + 200) * 0.15 + 300 * 0.60 + 200 * 0.02) / 1e6,
    ]
    report.check_close(
        RAG_CHECK,
        compare(list(rag), by_hand, atol=1e-12, rtol=EXACT),
        "embedding the 20M-token corpus once ($0.40), 245.76 MB of vectors a month, and per "
        "query 5 chunks of 500 tokens + the question (1e-9); embedding the corpus on every "
        "query makes it $0.40 per query, 680x too much",
    )
    tokens, epochs, val, price, published = data.ori_example
    ori = impl.finetune_plan(tokens, epochs, val, price, 0.0, 0.0, 0.0, 0.0)[0]
    ft_hand = [20e6 * 3 * 3.00 / 1e6, 0.0, (200 * 0.30 + 300 * 1.20) / 1e6]
    report.check_close(
        FT_CHECK,
        compare([ori, *ft], [published, *ft_hand], atol=0.005, rtol=EXACT),
        "Ori prints $7.36 for 5M tokens x 3 epochs + 1M validation at $0.46/1M, to the cent "
        "(0.005); the 20M corpus x 3 epochs at $3/1M and the tuned per-query price by hand. "
        "Billing the corpus once instead of once per epoch gives $2.76 and $60",
    )
    report.metric("Ori example by the model", f"{ori:.2f}", "USD")
    report.metric("RAG one-off, monthly, per query (20M corpus)",
                  f"{rag[0]:.2f}, {rag[1]:.4f}, {rag[2]:.6f}", "USD")  # fmt: skip
    report.metric("fine-tune one-off, per query (20M corpus)", f"{ft[0]:.2f}, {ft[2]:.6f}", "USD")


def _crossovers(report: SolutionReport, impl: Answer, data: Scenarios) -> None:
    p = data.prices
    names = (("long prompt", "RAG"), ("long prompt", "fine-tune"), ("RAG", "fine-tune"))
    closed, scanned, totals_a, totals_b = [], [], [], []
    for label, w in (("20M", data.large), ("60K", data.small)):
        ps = plans(impl, p, w)
        for a, b in names:
            q = impl.crossover_queries(ps[a], ps[b], w.months)
            s = scan_crossover(ps[a], ps[b], w.months)
            closed.append(q)
            scanned.append(s)
            if math.isfinite(q) and q > 0:
                totals_a.append(impl.total_cost(ps[a], q, w.months))
                totals_b.append(impl.total_cost(ps[b], q, w.months))
            report.metric(
                f"crossover {a} / {b}, {label} corpus, 12 months", f"{q:,.1f}", "queries/month"
            )
        at = {k: impl.total_cost(v, w.queries_per_month, w.months) for k, v in ps.items()}
        for v in ps.values():  # the same totals written out: one-off + 12 (monthly + 1e5 p)
            totals_a.append(impl.total_cost(v, 100_000, 12))
            totals_b.append(v[0] + 12 * (v[1] + 100_000 * v[2]))
        report.metric(
            f"12-month totals at 100k queries/month, {label} corpus",
            ", ".join(f"{k} {v:,.0f}" for k, v in at.items()),
            "USD",
        )
        report.metric(
            f"cheapest at 100k queries/month, {label} corpus", min(at, key=at.__getitem__)
        )
        report.metric(
            f"per query, {label} corpus",
            ", ".join(f"{k} {v[2]:.6f}" for k, v in ps.items()),
            "USD",
        )

    def or_none(xs: list[float]) -> list[float]:  # -1 stands for "never crosses"
        return [x if math.isfinite(x) else -1.0 for x in xs]

    report.check_close(
        CROSSOVER_CHECK,
        compare(or_none(closed), or_none(scanned), atol=0.0, rtol=1e-6),
        "the scan walks Q in 0.115 % steps and bisects the step where the cheaper plan "
        "changes to float precision, so 1e-6; a crossover counted in total queries instead "
        "of queries per month lands 12x too high, one that forgets the monthly storage moves "
        "the RAG crossovers",
    )
    report.check_close(
        EQUAL_CHECK,
        compare(totals_a, totals_b, atol=1e-9, rtol=EXACT),
        "at Q* the two totals meet by construction, and at 100k queries a month each total is "
        "one-off + 12 x (monthly + 1e5 x per query) (1e-9); a total that leaves out the "
        "one-off (training, embedding) misses by the whole one-off",
    )


if __name__ == "__main__":
    print_check_of(__name__)
