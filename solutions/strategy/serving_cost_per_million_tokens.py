"""What does serving cost per 1M tokens, and why do output tokens cost more than input?

A self-hosted deployment is billed by the GPU-hour, so its price per token is
(GPUs x $/GPU-hour) / (tokens per second x 3600 x utilization). The tokens per second differ
by phase, and that difference is the whole story:

- Decode (output tokens) is memory-bound. Each step makes one token for each of ``batch``
  sequences and must stream all the weights once (shared by the batch) plus each sequence's
  own KV cache: step time = max(bytes / bandwidth, FLOPs / peak), the roofline of
  compression.decode_throughput_estimate, whose ``step_bytes`` and ``step_flops`` this module
  reuses. With tensor parallelism over g GPUs each reads 1/g of the bytes, so bandwidth and
  FLOP/s add up (the all-reduces are left out: this is an upper bound). At batch 1 a 70B
  model in bf16 makes 97 tokens/s on 4 H100s whatever their FLOP/s; batching reuses each
  weight read for ``batch`` tokens, which is why $/1M output falls almost as 1/batch until
  the KV cache dominates.
- Prefill (input tokens) is compute-bound: the prompt's tokens go through the weights
  together, 2 FLOPs per parameter per token, so input tokens/s = g x peak x MFU / (2N).

So one GPU-second buys a few thousand output tokens but tens of thousands of input tokens:
output costs several times input, as API price lists show (4x at OpenAI).

The checks: the decode roofline against TensorRT-LLM's published static-batch throughput
(Llama 2 7B on A100 in FP16 and on H100 in FP8; the roofline is an upper bound, so the
measured figure must sit below it, and within a factor 2 of it), the prefill compute bound
against TensorRT-LLM's published time to first token (it must sit below the measured time),
and the prices redone by hand.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from aiprep.kit.compare import compare
from aiprep.kit.report import SolutionReport, print_check_of
from solutions.compression.decode_throughput_estimate import Gpu, step_bytes, step_flops
from solutions.compression.kv_cache_memory_estimate import ModelConfig
from solutions.strategy.training_run_cost import llama2_params

SEED = 0
EXACT = 1e-9  # relative tolerance of checks that redo the same float64 arithmetic by hand
TOKENS_PER_MILLION = 1e6

BENCHMARK_CHECK = "decode tokens/s: TensorRT-LLM measured / roofline, 7B A100 fp16 + H100 fp8"
PREFILL_CHECK = "prefill of 2048 tokens: MFU implied by TensorRT-LLM time to first token"
HAND_CHECK = "70B bf16 on 4 H100: tokens/s and $/1M in and out at batch 1/16/64, by hand"
BATCH_CHECK = "$/1M output at batch 1 over batch 8 and 64 vs the byte ratio (tolerance used)"

BASED_ON = "compression.decode_throughput_estimate"  # its roofline: step bytes and FLOPs


# The functions a candidate writes; check(impl) calls only these on impl.
ANSWER = ("decode_tokens_per_s", "prefill_tokens_per_s", "cost_per_million_tokens")

# -----------------------------------------------------------------------------
# The answer: tokens per second by phase, then dollars


def decode_tokens_per_s(
    m: ModelConfig,
    gpu: Gpu,
    gpus: int,
    batch: int,
    context: int,
    weight_bits: int,
    kv_bits: int = 16,
) -> float:
    """Upper bound on generated (output) tokens per second of the whole deployment.

    m: ModelConfig  # layers, hidden size, heads, K/V heads, parameters
    gpu: Gpu  # bandwidth in bytes/s, dense FLOP/s at the serving precision
    gpus: int  # GPUs the model is split over (tensor parallel)
    batch: int  # sequences decoded together
    context: int  # tokens in each sequence's KV cache (mean over the generation)
    weight_bits: int  # bits per weight: 16 for bf16/fp16, 8 for fp8/int8, 4 for int4
    kv_bits: int  # bits per KV-cache element
    """
    # one step streams all weights once (shared by the batch) + every sequence's KV cache...
    memory_s = step_bytes(m, batch, context, weight_bits, kv_bits) / (gpus * gpu.bandwidth)
    # ...and does 2 FLOPs per parameter per token (+ attention): it lasts the slower of the two
    compute_s = step_flops(m, batch, context) / (gpus * gpu.flops)
    return batch / max(memory_s, compute_s)


def prefill_tokens_per_s(m: ModelConfig, gpu: Gpu, gpus: int, mfu: float) -> float:
    """Prompt (input) tokens per second: compute-bound, 2 FLOPs per parameter per token.

    m: ModelConfig  # parameters in m.params
    gpu: Gpu  # dense FLOP/s at the serving precision in gpu.flops
    gpus: int  # GPUs the model is split over
    mfu: float  # fraction of the peak the prefill kernels reach (0-1)
    """
    return gpus * gpu.flops * mfu / (2.0 * m.params)


def cost_per_million_tokens(
    tokens_per_s: float, price_per_gpu_hour: float, gpus: int, utilization: float = 1.0
) -> float:
    """USD per 1M tokens of a deployment rented by the GPU-hour.

    tokens_per_s: float  # tokens per second of the deployment while it is busy
    price_per_gpu_hour: float  # USD per GPU-hour
    gpus: int  # GPUs in the deployment (all billed)
    utilization: float  # fraction of the paid hours it is busy at that rate (0-1)
    """
    dollars_per_hour = gpus * price_per_gpu_hour  # billed whether busy or idle
    tokens_per_hour = tokens_per_s * 3600.0 * utilization
    return dollars_per_hour / tokens_per_hour * TOKENS_PER_MILLION


# -----------------------------------------------------------------------------
# The harness: TensorRT-LLM's published measurements and hand arithmetic


class Answer(Protocol):
    def decode_tokens_per_s(
        self,
        m: ModelConfig,
        gpu: Gpu,
        gpus: int,
        batch: int,
        context: int,
        weight_bits: int,
        kv_bits: int = 16,
    ) -> float: ...

    def prefill_tokens_per_s(self, m: ModelConfig, gpu: Gpu, gpus: int, mfu: float) -> float: ...

    def cost_per_million_tokens(
        self, tokens_per_s: float, price_per_gpu_hour: float, gpus: int, utilization: float = 1.0
    ) -> float: ...


@dataclass(frozen=True)
class Measured:
    """One row of TensorRT-LLM's performance tables (docs/source/performance.md, v0.6.1)."""

    gpu: Gpu
    batch: int
    input_len: int
    output_len: int
    bits: int  # weights and KV cache
    tokens_per_s: float  # output tokens/s per GPU (decode), or ms to first token (prefill)


@dataclass(frozen=True)
class Scenarios:
    llama7: ModelConfig
    llama70: ModelConfig
    h100: Gpu  # BF16
    decode_runs: tuple[Measured, ...]  # TP 1, static batch
    prefill_runs: tuple[Measured, ...]  # batch 1, 2048-token prompt; tokens_per_s = TTFT ms
    price_h100: float  # USD per GPU-hour
    gpus: int  # tensor parallel for the 70B case
    context: int  # mean KV length in the 70B case
    prefill_mfu: float  # stated MFU of prefill in the 70B case


def make_data(seed: int = SEED) -> Scenarios:
    """Llama 2 7B and 70B (config.json shapes; parameters counted from them); GPUs from
    NVIDIA's data sheets: A100 80GB SXM 2,039 GB/s and 312 TFLOP/s BF16, H100 SXM 3.35 TB/s,
    989 TFLOP/s BF16 and 1,979 TFLOP/s FP8 (dense); TensorRT-LLM's performance tables
    (v0.6.1 throughput, v0.5 first-token latency); $3.99 per H100 SXM GPU-hour (Lambda
    on-demand, 8x H100 SXM, 2026-09). Published figures, so ``seed`` changes nothing."""
    a100 = Gpu("A100 80GB SXM", 2.039e12, 312e12)
    h100_fp8 = Gpu("H100 SXM (FP8)", 3.35e12, 1979e12)
    return Scenarios(
        llama7=ModelConfig("Llama-2-7B", 32, 4096, 32, 32, llama2_params(32, 4096, 11008, 32, 32)),
        llama70=ModelConfig("Llama-2-70B", 80, 8192, 64, 8, llama2_params(80, 8192, 28672, 8, 64)),
        h100=Gpu("H100 SXM", 3.35e12, 989e12),
        decode_runs=(
            Measured(a100, 60, 128, 2048, 16, 1928.0),
            Measured(h100_fp8, 112, 128, 2048, 8, 6818.0),
        ),
        prefill_runs=(
            Measured(a100, 1, 2048, 1, 16, 133.0),
            Measured(h100_fp8, 1, 2048, 1, 8, 36.0),
        ),
        price_h100=3.99,
        gpus=4,
        context=2048,
        prefill_mfu=0.5,
    )


def _hand_decode(m: ModelConfig, gpu: Gpu, gpus: int, batch: int, context: int) -> float:
    """bf16 roofline by hand: weights 2 B/param + batch x context x KV bytes per token."""
    kv_per_token = 2 * m.layers * m.kv_heads * (m.hidden // m.heads) * 2
    memory_s = (2 * m.params + batch * context * kv_per_token) / (gpus * gpu.bandwidth)
    compute_s = batch * (2 * m.params + 2 * m.layers * context * m.hidden) / (gpus * gpu.flops)
    return batch / max(memory_s, compute_s)


def check(impl: Answer) -> SolutionReport:
    """The roofline against published measurements, the prices against hand arithmetic."""
    report = SolutionReport(solution="strategy.serving_cost_per_million_tokens")
    data = make_data()
    _benchmarks(report, impl, data)
    _prices(report, impl, data)
    return report


def _benchmarks(report: SolutionReport, impl: Answer, data: Scenarios) -> None:
    m = data.llama7
    ratios = []
    for run in data.decode_runs:
        mean_context = run.input_len + run.output_len // 2  # the cache grows 128 -> 2176
        bound = impl.decode_tokens_per_s(m, run.gpu, 1, run.batch, mean_context, run.bits, run.bits)
        ratios.append(run.tokens_per_s / bound if bound > 0 else float("inf"))
        report.metric(
            f"Llama 2 7B {run.gpu.name}, batch {run.batch}, 128 in / 2048 out: roofline vs "
            "TensorRT-LLM",
            f"{bound:,.0f} vs {run.tokens_per_s:,.0f} ({100 * ratios[-1]:.0f} %)",
            "tokens/s",
        )
    report.check_close(
        BENCHMARK_CHECK,
        compare(ratios, [0.75, 0.75], atol=0.25),
        "the roofline is an upper bound (datasheet bandwidth, no kernel or scheduling "
        "overhead), so the measured figure must be at most 100 % of it; at least 50 % because "
        "a model that misses a cost of the size of the weights or the KV reads is off by 2x "
        "or more: decode taken as compute-bound gives 8 %, the KV cache left out 21 %, batch "
        "ignored (batch-1 speed) 1,331 %",
    )
    implied = []
    for run in data.prefill_runs:
        bound_s = run.input_len / impl.prefill_tokens_per_s(m, run.gpu, 1, 1.0)
        implied.append(bound_s / (run.tokens_per_s / 1e3))
        report.metric(
            f"Llama 2 7B {run.gpu.name}, 2048-token prompt: compute bound vs TensorRT-LLM "
            "time to first token",
            f"{1e3 * bound_s:.1f} vs {run.tokens_per_s:.0f}",
            "ms",
        )
    report.metric(
        "prefill MFU implied, A100 fp16 / H100 fp8", " / ".join(f"{100 * x:.0f} %" for x in implied)
    )
    report.check_close(
        PREFILL_CHECK,
        compare(implied, [0.625, 0.625], atol=0.375),
        "a 2048-token prompt is a 2048-row matrix multiply, ~2048 FLOP per weight byte, far "
        "past the ridge (153 FLOP/byte on A100), so the time to first token must sit above the "
        "compute bound: implied MFU at most 100 %; prefill costed like decode (weights read "
        "per token) predicts 13.5 s for what took 133 ms (10,178 %); at least 25 % rejects a "
        "bound far too fast: 1 FLOP per parameter or the 2:4-sparse peak halves both, and "
        "puts H100 at 20 %",
    )


def _prices(report: SolutionReport, impl: Answer, data: Scenarios) -> None:
    m, gpu, g, ctx, price = data.llama70, data.h100, data.gpus, data.context, data.price_h100
    batches = (1, 16, 64)
    got, by_hand = [], []
    for b in batches:
        out_tps = impl.decode_tokens_per_s(m, gpu, g, b, ctx, 16, 16)
        got += [out_tps, impl.cost_per_million_tokens(out_tps, price, g)]
        hand = _hand_decode(m, gpu, g, b, ctx)
        by_hand += [hand, g * price / (hand * 3600) * 1e6]
    in_tps = impl.prefill_tokens_per_s(m, gpu, g, data.prefill_mfu)
    hand_in = g * 989e12 * data.prefill_mfu / (2 * m.params)
    got += [in_tps, impl.cost_per_million_tokens(in_tps, price, g, 0.5)]
    by_hand += [hand_in, g * price / (hand_in * 3600 * 0.5) * 1e6]
    report.metric(
        "70B bf16, 4 x H100, 2048 context: output tokens/s at batch 1 / 16 / 64",
        " / ".join(f"{got[2 * i]:,.0f}" for i in range(3)),
    )
    report.metric(
        "$/1M output tokens at $3.99/GPU-hour, batch 1 / 16 / 64, busy all the time",
        " / ".join(f"{got[2 * i + 1]:.2f}" for i in range(3)),
        "USD",
    )
    in_cost = impl.cost_per_million_tokens(in_tps, price, g)
    report.metric("input tokens/s at prefill MFU 50 %", in_tps)
    report.metric("$/1M input tokens, busy all the time", in_cost, "USD")
    report.metric(
        "output / input price ratio at batch 16 / 64",
        f"{got[3] / in_cost:.1f} / {got[5] / in_cost:.1f}" if in_cost > 0 else "n/a",
        "x",
    )
    report.metric("$/1M output at batch 64 and 50 % utilization", 2 * got[5], "USD")
    report.check_close(
        HAND_CHECK,
        compare(got, by_hand, atol=0.0, rtol=EXACT),
        "tokens/s = batch / max((2 B x 68.98e9 + batch x 2048 x 320 KiB) / (4 x 3.35 TB/s), "
        "FLOPs / (4 x 989 TFLOP/s)), $ = 4 x $3.99 / (tokens/s x 3600 x utilization) x 1e6, "
        "the same float64 arithmetic (1e-9); one byte per bf16 weight doubles batch-1 speed",
    )
    one = impl.cost_per_million_tokens(
        impl.decode_tokens_per_s(m, gpu, g, 1, ctx, 16, 16), price, g
    )
    ratios = []
    for b in (8, 64):
        cost_b = impl.cost_per_million_tokens(
            impl.decode_tokens_per_s(m, gpu, g, b, ctx, 16, 16), price, g
        )
        ratios.append(one / cost_b if cost_b > 0 else float("inf"))
    expected = [_hand_decode(m, gpu, g, b, ctx) / _hand_decode(m, gpu, g, 1, ctx) for b in (8, 64)]
    report.metric(
        "$/1M output, batch 1 over batch 8 / 64", " / ".join(f"{r:.1f}" for r in ratios), "x"
    )
    report.check_close(
        BATCH_CHECK,
        compare(ratios, expected, atol=0.0, rtol=1e-6),
        "memory-bound, so the saving is batch x step bytes(1) / step bytes(batch): 7.7x at 8 "
        "and 49x at 64 (the KV reads grow with the batch, the weights do not); float64 "
        "rounding only; a cost per token independent of batch gives 1x",
    )


if __name__ == "__main__":
    print_check_of(__name__)
