"""Decode throughput from memory bandwidth: why batch-1 LLM decoding is memory-bound.

A roofline calculator (Williams et al. 2009), checked against the datasheet and hand
arithmetic.

- One decoding step generates one token for each of ``batch`` sequences. It must stream
  every weight from GPU memory once (whatever the batch) and each sequence's own KV cache:
  bytes = params * weight_bits / 8 + batch * context * KV bytes per token.
- It computes 2 FLOPs per parameter per token (a multiply and an add) plus the attention
  over the context: FLOPs = batch * (2 * params + 2 * layers * context * d_model)
  (Kaplan et al. 2020, Table 1, forward pass).
- The step takes max(bytes / bandwidth, FLOPs / peak) (the roofline): tokens/s = batch / that.
  At batch 1 in fp16 the arithmetic intensity is 2 FLOPs per 2 bytes = 1 FLOP/byte, against
  an H100 SXM ridge point of 989 TFLOPS / 3.35 TB/s = 295 FLOP/byte: the GPU's math units
  idle while the weights stream in. Batching reuses each weight for ``batch`` tokens, so
  throughput grows almost linearly until the intensity reaches the ridge point (batch ~295
  in fp16, ~74 with int4 weights); the KV cache, read per sequence, does not amortize.

Llama-2-70B in fp16 on one H100 SXM: 140 GB / 3.35 TB/s = 41.8 ms per step, at most 23.9
tokens/s at batch 1. These are upper bounds (no kernel reaches the datasheet bandwidth), and
the 140 GB do not fit one 80 GB GPU: with tensor parallelism over N GPUs each reads 1/N of
the weights, so the bound scales with N, less the all-reduce time.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from aiprep.kit.compare import compare
from aiprep.kit.report import SolutionReport, print_check_of
from solutions.compression.kv_cache_memory_estimate import ModelConfig, kv_bytes_per_token

SEED = 0
EXACT = 1e-9  # relative tolerance of checks that redo the same float64 arithmetic by hand

BATCH1_CHECK = "70B fp16, H100 SXM, batch 1, 1 token of context: tokens/s (tolerance used)"
RIDGE_CHECK = "H100 SXM ridge point, dense BF16 FLOP/s / bandwidth (tolerance used)"
BYTES_CHECK = "70B bytes per step: weights + KV at batch 1, 8, 64 x 4096 (tolerance used)"
FLOPS_CHECK = "70B FLOPs per step vs Kaplan's 2N + 2 L n_ctx d (tolerance used)"
ROOFLINE_CHECK = "70B tokens/s at batch 1..1024 x 4096 context vs roofline (tolerance used)"
PLATEAU_CHECK = "70B fp16 at batch 2048, short context / compute bound 989T / 2N"
INT4_CHECK = "70B batch 1 x 4096: tokens/s int4 / fp16 (tolerance used)"


# The functions a candidate writes; check(impl) calls only these on impl.
ANSWER = ("step_bytes", "step_flops", "ridge_point", "decode_tokens_per_s")
BASED_ON = "compression.kv_cache_memory_estimate"  # its model configs and KV bytes per token


@dataclass(frozen=True)
class Gpu:
    """One accelerator from its data sheet."""

    name: str
    bandwidth: float  # bytes/s of HBM
    flops: float  # dense fp16/bf16 tensor FLOP/s (without the 2:4 sparsity factor)


# -----------------------------------------------------------------------------
# The answer: a roofline for one decoding step


def step_bytes(
    m: ModelConfig, batch: int, context: int, weight_bits: int, kv_bits: int = 16
) -> float:
    """Bytes one decoding step reads from GPU memory: all weights once, plus the KV cache of
    ``batch`` sequences of ``context`` tokens each (K and V, per layer, per K/V head)."""
    weights = m.params * weight_bits / 8  # shared by the whole batch
    kv_per_token = kv_bytes_per_token(m, kv_bits / 8)  # 2 x layers x kv_heads x head_dim x B
    return weights + batch * context * kv_per_token  # each sequence reads its own cache


def step_flops(m: ModelConfig, batch: int, context: int) -> float:
    """FLOPs of one decoding step: per token 2 per parameter (multiply + add) and the
    attention scores and weighted sum over ``context`` tokens."""
    return batch * (2 * m.params + 2 * m.layers * context * m.hidden)


def ridge_point(gpu: Gpu) -> float:
    """FLOPs per byte above which a kernel is compute-bound on ``gpu``."""
    return gpu.flops / gpu.bandwidth


def decode_tokens_per_s(
    m: ModelConfig, gpu: Gpu, batch: int, context: int, weight_bits: int, kv_bits: int = 16
) -> float:
    """Upper bound on generated tokens per second (all sequences together) on one ``gpu``:
    the step takes as long as the slower of streaming its bytes and doing its FLOPs."""
    memory_s = step_bytes(m, batch, context, weight_bits, kv_bits) / gpu.bandwidth
    compute_s = step_flops(m, batch, context) / gpu.flops  # weights dequantized to fp16
    return batch / max(memory_s, compute_s)


# -----------------------------------------------------------------------------
# The harness: published configurations and figures, and the checks against them


class Answer(Protocol):
    def step_bytes(
        self, m: ModelConfig, batch: int, context: int, weight_bits: int, kv_bits: int = 16
    ) -> float: ...

    def step_flops(self, m: ModelConfig, batch: int, context: int) -> float: ...

    def ridge_point(self, gpu: Gpu) -> float: ...

    def decode_tokens_per_s(
        self,
        m: ModelConfig,
        gpu: Gpu,
        batch: int,
        context: int,
        weight_bits: int,
        kv_bits: int = 16,
    ) -> float: ...


@dataclass(frozen=True)
class Scenarios:
    """Llama-2-70B and the GPUs of the question."""

    llama70: ModelConfig
    h100: Gpu
    others: tuple[Gpu, ...]
    context: int


def make_data(seed: int = SEED) -> Scenarios:
    """Llama-2-70B (70B parameters; config.json: 80 layers, hidden 8192, 64 heads, 8 K/V
    heads); H100 SXM (3.35 TB/s, 989 TFLOPS dense BF16), A100 80GB SXM (2,039 GB/s, 312
    TFLOPS BF16) and H200 (4.8 TB/s, 989 TFLOPS) from NVIDIA's data sheets; 4096 tokens of
    context. Published figures, so ``seed`` changes nothing."""
    return Scenarios(
        llama70=ModelConfig(
            "Llama-2-70B", layers=80, hidden=8192, heads=64, kv_heads=8, params=70e9
        ),
        h100=Gpu("H100 SXM", 3.35e12, 989e12),
        others=(Gpu("A100 80GB SXM", 2.039e12, 312e12), Gpu("H200", 4.8e12, 989e12)),
        context=4096,
    )


def _hand_bytes(m: ModelConfig, batch: int, context: int, weight_bits: int) -> float:
    """Weights + batch x context x 320 KiB (Llama-2-70B's fp16 KV per token), by hand."""
    return m.params * weight_bits / 8 + batch * context * (2 * 80 * 8 * 128 * 2)


def _hand_tokens(m: ModelConfig, gpu: Gpu, batch: int, context: int, weight_bits: int) -> float:
    """The roofline by hand, from the hand-computed bytes and Kaplan's FLOPs."""
    flops = batch * (2 * m.params + 2 * 80 * context * 8192)
    seconds = max(_hand_bytes(m, batch, context, weight_bits) / gpu.bandwidth, flops / gpu.flops)
    return batch / seconds


def check(impl: Answer) -> SolutionReport:
    """The roofline against the data sheet, Kaplan's FLOPs and hand arithmetic."""
    report = SolutionReport(solution="compression.decode_throughput_estimate")
    data = make_data()
    _batch_one(report, impl, data)
    _bytes_and_flops(report, impl, data)
    _batching(report, impl, data)
    return report


def _batch_one(report: SolutionReport, impl: Answer, data: Scenarios) -> None:
    m, h100 = data.llama70, data.h100
    got = impl.decode_tokens_per_s(m, h100, 1, 1, 16)
    report.metric("70B fp16, H100 SXM, batch 1: upper bound", got, "tokens/s")
    report.check_close(
        BATCH1_CHECK,
        compare(got, h100.bandwidth / (m.params * 2 + 2 * 80 * 8 * 128 * 2), atol=0.0, rtol=EXACT),
        "3.35e12 B/s / 140e9 B of fp16 weights (+ one token of KV) = 23.9 tokens/s, "
        "float64 arithmetic; dividing the peak FLOP/s by the FLOPs instead gives 7064, "
        "counting weight bits as bytes 3.0",
    )
    ridge = impl.ridge_point(h100)
    report.metric("H100 SXM ridge point", ridge, "FLOP/byte")
    report.check_close(
        RIDGE_CHECK,
        compare(ridge, 989e12 / 3.35e12, atol=0.0, rtol=EXACT),
        "H100 SXM data sheet: 989 TFLOPS dense BF16 / 3.35 TB/s = 295.2 FLOP/byte; batch-1 "
        "fp16 decoding does 1 FLOP per byte, 295x below it",
    )
    for gpu in (h100, *data.others):
        report.metric(
            f"{gpu.name}: 70B batch 1 x 4096, fp16 / int4 weights",
            " / ".join(
                f"{impl.decode_tokens_per_s(m, gpu, 1, data.context, b):.1f}" for b in (16, 4)
            ),
            "tokens/s",
        )


def _bytes_and_flops(report: SolutionReport, impl: Answer, data: Scenarios) -> None:
    m, s = data.llama70, data.context
    batches = (1, 8, 64)
    got = [impl.step_bytes(m, b, s, 16) for b in batches]
    report.metric(
        "70B fp16 bytes per step, batch 1 / 8 / 64 x 4096",
        " / ".join(f"{g / 1e9:.1f}" for g in got),
        "GB",
    )
    report.check_close(
        BYTES_CHECK,
        compare(got, [_hand_bytes(m, b, s, 16) for b in batches], atol=0.0, rtol=EXACT),
        "140e9 B of weights + batch x 4096 x 327,680 B of KV (2 x 80 x 8 x 128 x 2 B per "
        "token): 141.3 / 150.7 / 225.9 GB; exact arithmetic; leaving the KV cache out "
        "misses by 86 GB (38 %) at batch 64",
    )
    flops = [impl.step_flops(m, b, s) for b in batches]
    report.check_close(
        FLOPS_CHECK,
        compare(flops, [b * (2 * 70e9 + 2 * 80 * s * 8192) for b in batches], atol=0.0, rtol=EXACT),
        "Kaplan et al. 2020, Table 1: C_forward = 2N + 2 n_layer n_ctx d_attn per token "
        "(d_attn = 8192; 140 + 5.4 GFLOP at 4096 tokens) times the batch; exact; 1 FLOP per "
        "parameter (a multiply-add counted once) is half",
    )


def _batching(report: SolutionReport, impl: Answer, data: Scenarios) -> None:
    m, h100, s = data.llama70, data.h100, data.context
    batches = (1, 8, 64, 256, 1024)
    got = [impl.decode_tokens_per_s(m, h100, b, s, 16) for b in batches]
    report.metric(
        "70B fp16, H100 SXM, 4096 context: tokens/s at batch 1 / 8 / 64 / 256 / 1024",
        " / ".join(f"{g:.0f}" for g in got),
    )
    short = [impl.decode_tokens_per_s(m, h100, b, 1, 16) for b in batches]
    report.metric("the same at 1 token of context", " / ".join(f"{g:.0f}" for g in short))
    report.check_close(
        ROOFLINE_CHECK,
        compare(got, [_hand_tokens(m, h100, b, s, 16) for b in batches], atol=0.0, rtol=1e-6),
        "batch / max(bytes / 3.35e12, FLOPs / 989e12), by hand; float64 rounding only; at "
        "4096 tokens the KV reads grow with the batch (85.9 GB at 64 against 140 GB of "
        "weights), so ignoring them overstates batch 64 by 1.6x",
    )
    bound = h100.flops / (2 * m.params)
    plateau = impl.decode_tokens_per_s(m, h100, 2048, 1, 16)
    report.metric("compute bound 989e12 / (2 x 70e9)", bound, "tokens/s")
    report.check(
        PLATEAU_CHECK,
        plateau / bound,
        "<=",
        1.0 + 1e-6,
        "past the ridge point (batch ~295 in fp16) a step is compute-bound: 989 TFLOPS / "
        "140 GFLOP per token = 7064 tokens/s is a ceiling (1e-6 for rounding); a bandwidth-"
        "only model keeps growing linearly, 2048 x 23.9 = 49,000 tokens/s (6.9x)",
    )
    ratio = impl.decode_tokens_per_s(m, h100, 1, s, 4) / impl.decode_tokens_per_s(m, h100, 1, s, 16)
    report.metric("70B batch 1 x 4096: int4 / fp16 tokens/s", ratio, "x")
    report.check_close(
        INT4_CHECK,
        compare(ratio, _hand_bytes(m, 1, s, 16) / _hand_bytes(m, 1, s, 4), atol=0.0, rtol=1e-6),
        "memory-bound, so the speed-up is the byte ratio (140 + 1.34) / (35 + 1.34) GB = "
        "3.89x, not 4x: the fp16 KV cache is not quantized; float64 rounding only",
    )


if __name__ == "__main__":
    print_check_of(__name__)
