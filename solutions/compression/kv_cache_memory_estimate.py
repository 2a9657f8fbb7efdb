"""KV-cache memory of a 70B model at 4k context and batch 8, and which GPUs hold the model.

A back-of-envelope calculator, checked against the published figures it rests on.

- KV cache: every layer keeps a key and a value vector (the factor 2) of ``head_dim`` numbers
  for each of its ``kv_heads`` K/V heads, for every token of every sequence:
  bytes = 2 * layers * kv_heads * head_dim * bytes_per_element * tokens * batch.
  With grouped-query attention (GQA, Ainslie et al. 2023) ``kv_heads`` is smaller than the
  query heads: Llama-2-70B has 64 query heads but 8 K/V heads, an 8x smaller cache than the
  same model with multi-head attention.
- Weights: parameters * bits / 8 bytes: 70B is 140 GB in fp16, 70 GB in int8, 35 GB in int4
  (plus the quantization scales, a few percent).
- GPUs: vendors size memory in binary units (an "80 GB" A100 holds 80 GiB = 85.9e9 bytes),
  papers quote decimal GB; mixing them up is a 7 % error, enough to flip a tight fit. Plan on
  90 % of it: the CUDA context, the framework's workspace and activations take the rest
  (vLLM's default ``gpu_memory_utilization`` is 0.9).

Llama-2-70B (80 layers, hidden 8192, 64 heads, 8 KV heads, head_dim 128) in fp16 keeps
320 KiB per token: 4096 tokens x 8 sequences = 10 GiB, next to 140 GB of weights.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Protocol

from aiprep.kit.compare import compare
from aiprep.kit.report import SolutionReport, print_check_of

SEED = 0
GB = 1e9  # papers and parameter counts use decimal gigabytes
GIB = 2**30  # GPU memory is sized in binary gibibytes
KIB = 2**10
USABLE = 0.9  # share of a GPU's memory planned for weights + KV cache
EXACT = 1e-9  # relative tolerance of checks that redo the same float64 arithmetic by hand

OPT_CHECK = "OPT-13B KV bytes per token = vLLM paper's 800 KB (tolerance used)"
NVIDIA_CHECK = "Llama-2-7B KV, batch 1 x 4096 tokens, fp16 = NVIDIA's ~2 GB (tolerance used)"
LLAMA70_CHECK = "Llama-2-70B KV, batch 8 x 4096 tokens, fp16, in GiB (tolerance used)"
GQA_CHECK = "Llama-2-70B KV bytes, multi-head (64 K/V heads) / GQA (8)"
WEIGHTS_CHECK = "70B weights at 16 / 8 / 4 bits in GB (tolerance used)"
GPUS_CHECK = "GPUs needed, 70B x 3 precisions x 6 GPUs, +/- KV cache: mismatches vs hand"


# The functions a candidate writes; check(impl) calls only these on impl.
ANSWER = ("kv_bytes_per_token", "kv_cache_bytes", "weight_bytes", "gpus_needed")


@dataclass(frozen=True)
class ModelConfig:
    """A decoder-only transformer's attention shape, as its config file gives it."""

    name: str
    layers: int
    hidden: int
    heads: int  # query heads
    kv_heads: int  # key/value heads: = heads for multi-head attention, fewer with GQA / MQA
    params: float  # parameters, as the model's name rounds them


# -----------------------------------------------------------------------------
# The answer: the calculator


def kv_bytes_per_token(cfg: ModelConfig, bytes_per_element: float = 2.0) -> float:
    """Bytes of K and V one token leaves in the cache, all layers together.

    ``bytes_per_element``: 2 for an fp16/bf16 cache, 1 for fp8/int8.
    """
    head_dim = cfg.hidden // cfg.heads  # 8192 / 64 = 128 for Llama-2-70B
    # K and V (2) per layer, per K/V head (not per query head: GQA shares them)
    return 2 * cfg.layers * cfg.kv_heads * head_dim * bytes_per_element


def kv_cache_bytes(
    cfg: ModelConfig, seq_len: int, batch: int, bytes_per_element: float = 2.0
) -> float:
    """Bytes of KV cache for ``batch`` sequences of ``seq_len`` tokens each."""
    return kv_bytes_per_token(cfg, bytes_per_element) * seq_len * batch


def weight_bytes(params: float, bits: int) -> float:
    """Bytes of ``params`` weights stored in ``bits`` bits each (16, 8 or 4)."""
    return params * bits / 8  # bits to bytes: 8 bits a byte


def gpus_needed(total_bytes: float, gpu_gb: float, usable: float = USABLE) -> int:
    """How many GPUs of the vendor's ``gpu_gb`` "GB" hold ``total_bytes`` split evenly
    (tensor parallelism), using ``usable`` of each GPU's memory.

    The vendor's "80 GB" is 80 GiB (80 * 2**30 bytes).
    """
    per_gpu = usable * gpu_gb * GIB
    return math.ceil(total_bytes / per_gpu)


# -----------------------------------------------------------------------------
# The harness: published configurations and figures, and the checks against them


class Answer(Protocol):
    def kv_bytes_per_token(self, cfg: ModelConfig, bytes_per_element: float = 2.0) -> float: ...

    def kv_cache_bytes(
        self, cfg: ModelConfig, seq_len: int, batch: int, bytes_per_element: float = 2.0
    ) -> float: ...

    def weight_bytes(self, params: float, bits: int) -> float: ...

    def gpus_needed(self, total_bytes: float, gpu_gb: float, usable: float = USABLE) -> int: ...


@dataclass(frozen=True)
class Scenarios:
    """The models whose figures are published, the question's workload, and the GPUs."""

    opt13: ModelConfig
    llama7: ModelConfig
    llama70: ModelConfig
    seq_len: int
    batch: int
    gpus: dict[str, float]  # name -> the vendor's memory size in "GB"


def make_data(seed: int = SEED) -> Scenarios:
    """OPT-13B (Zhang et al. 2022, Table 1), Llama-2-7B (32 layers, 4096 hidden, 32 heads)
    and Llama-2-70B (its config.json: 80 layers, 8192 hidden, 64 heads, 8 K/V heads);
    4096 tokens (Llama 2's context) x batch 8; GPU sizes from the vendors' data sheets.
    Published figures, so ``seed`` changes nothing."""
    return Scenarios(
        opt13=ModelConfig("OPT-13B", layers=40, hidden=5120, heads=40, kv_heads=40, params=13e9),
        llama7=ModelConfig("Llama-2-7B", layers=32, hidden=4096, heads=32, kv_heads=32, params=7e9),
        llama70=ModelConfig(
            "Llama-2-70B", layers=80, hidden=8192, heads=64, kv_heads=8, params=70e9
        ),
        seq_len=4096,
        batch=8,
        gpus={
            "A100 40GB": 40,
            "A100 80GB": 80,
            "H100 SXM 80GB": 80,
            "H200 141GB": 141,
            "L40S 48GB": 48,
            "RTX 4090 24GB": 24,
        },
    )


def check(impl: Answer) -> SolutionReport:
    """The calculator against vLLM's, NVIDIA's and hand-computed figures, then the GPU table."""
    report = SolutionReport(solution="compression.kv_cache_memory_estimate")
    data = make_data()
    _published_kv(report, impl, data)
    _llama70_kv(report, impl, data)
    _weights_and_gpus(report, impl, data)
    return report


def _published_kv(report: SolutionReport, impl: Answer, data: Scenarios) -> None:
    opt = impl.kv_bytes_per_token(data.opt13)
    report.metric("OPT-13B KV per token, fp16", opt / KIB, "KiB")
    report.check_close(
        OPT_CHECK,
        compare(opt, 800 * KIB, atol=0.0, rtol=EXACT),
        "vLLM paper sec. 3: '2 (key and value vectors) x 5120 (hidden state size) x 40 "
        "(number of layers) x 2 (bytes per FP16)' = 819,200 B, which it calls 800 KB (KB of "
        "1024 B); the same integers, so only float rounding is allowed; forgetting the "
        "factor 2 for K and V gives 400",
    )
    seven = impl.kv_cache_bytes(data.llama7, 4096, 1)
    report.metric("Llama-2-7B KV, batch 1 x 4096 tokens, fp16", seven / GB, "GB")
    report.check_close(
        NVIDIA_CHECK,
        compare(seven, 1 * 4096 * 2 * 32 * 4096 * 2, atol=0.0, rtol=EXACT),
        "NVIDIA's 'Mastering LLM Techniques: Inference Optimization': '1 * 4096 * 2 * 32 * "
        "4096 * 2 bytes, which is ~2 GB' (batch x tokens x K,V x layers x hidden x bytes; "
        "hidden = heads x head_dim for multi-head attention) = 2.147e9 B; exact arithmetic",
    )


def _llama70_kv(report: SolutionReport, impl: Answer, data: Scenarios) -> None:
    m, s, b = data.llama70, data.seq_len, data.batch
    per_token = impl.kv_bytes_per_token(m)
    kv = impl.kv_cache_bytes(m, s, b)
    mha = ModelConfig(
        "Llama-2-70B with multi-head attention", 80, 8192, 64, kv_heads=64, params=70e9
    )
    by_hand = 2 * 80 * 8 * 128 * 2 * s * b  # K,V x layers x KV heads x head_dim x fp16
    report.metric("Llama-2-70B KV per token, fp16", per_token / KIB, "KiB")
    report.metric("Llama-2-70B KV, 8 x 4096 tokens, fp16", kv / GIB, "GiB")
    report.metric(
        "Llama-2-70B KV, 8 x 4096 tokens, fp8 cache", impl.kv_cache_bytes(m, s, b, 1.0) / GIB, "GiB"
    )
    report.check_close(
        LLAMA70_CHECK,
        compare(kv / GIB, by_hand / GIB, atol=0.0, rtol=EXACT),
        "2 x 80 layers x 8 KV heads x 128 x 2 B = 320 KiB per token, x 4096 x 8 = 10 GiB "
        "(10.74 GB); the same integers, so only float rounding is allowed; 64 query heads "
        "instead of 8 KV heads gives 80 GiB, a missing K/V factor 5 GiB",
    )
    ratio = impl.kv_bytes_per_token(mha) / per_token
    report.metric("KV cache, multi-head / GQA", ratio, "x")
    report.check(
        GQA_CHECK,
        ratio,
        "==",
        8.0,
        "the cache scales with K/V heads, not query heads: 64 / 8 = 8 exactly (integers in "
        "float64); counting query heads for the GQA model gives 1",
    )


def _weights_and_gpus(report: SolutionReport, impl: Answer, data: Scenarios) -> None:
    weights = [impl.weight_bytes(data.llama70.params, bits) for bits in (16, 8, 4)]
    report.metric(
        "70B weights, fp16 / int8 / int4", " / ".join(f"{w / GB:.0f}" for w in weights), "GB"
    )
    report.check_close(
        WEIGHTS_CHECK,
        compare([w / GB for w in weights], [140.0, 70.0, 35.0], atol=0.0, rtol=EXACT),
        "70e9 x 2, 1 and 0.5 bytes; exact arithmetic; bits taken for bytes gives 8x "
        "(1120 / 560 / 280 GB)",
    )
    kv = impl.kv_cache_bytes(data.llama70, data.seq_len, data.batch)
    kv_hand = 2 * 80 * 8 * 128 * 2 * data.seq_len * data.batch
    got: list[int] = []
    want: list[int] = []
    for gpu, size in data.gpus.items():
        row = []
        for bits, w in zip((16, 8, 4), weights, strict=True):
            w_hand = data.llama70.params * bits / 8
            for total, total_hand in ((w, w_hand), (w + kv, w_hand + kv_hand)):
                got.append(impl.gpus_needed(total, size))
                want.append(math.ceil(total_hand / (USABLE * size * GIB)))
            row.append(f"{got[-2]}/{got[-1]}")
        report.metric(f"{gpu}: GPUs for fp16 / int8 / int4 (weights / + 4k x 8 KV)", ", ".join(row))
    report.check(
        GPUS_CHECK,
        sum(g != w for g, w in zip(got, want, strict=True)),
        "==",
        0,
        "36 integers against ceil(bytes / (0.9 x size x 2**30)) by hand; several fits are "
        "tight (fp16 + KV on 80 GB: 1.95 GPUs' worth, int4 + KV on 48 GB: 0.99), so reading "
        "the vendor's GB as 1e9 bytes (7 % less) changes 5 of the counts",
    )


if __name__ == "__main__":
    print_check_of(__name__)
