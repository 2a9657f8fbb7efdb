"""Training memory per parameter, and whether 4 x V100-32GB can fine-tune a 65B model.

A back-of-envelope calculator, checked against the published figures it rests on.

- Model states (ZeRO, Rajbhandari et al. 2020, section 3.1): mixed-precision Adam keeps
  16-bit weights (2 bytes per parameter) and gradients (2) plus fp32 optimizer states: a
  master copy of the weights (4), Adam's first moment (4) and second moment (4), so
  2 + 2 + 12 = 16 bytes per parameter. ZeRO stage 1 shards the 12 optimizer bytes over the
  data-parallel GPUs, stage 2 the gradients too, stage 3 the weights too.
- Activations (Korthikanti et al. 2022, section 4.1): a transformer layer stores
  s*b*h*(34 + 5*a*s/h) bytes in 16-bit training without recomputation (s sequence length,
  b micro-batch, h hidden size, a heads); 34*s*b*h with selective recomputation (the
  attention scores recomputed, what FlashAttention does anyway); 2*s*b*h, the layer's input
  only, with full recomputation (gradient checkpointing).
- QLoRA (Dettmers et al. 2023, section 3): the frozen base in 4-bit NormalFloat (0.5 byte
  per parameter) plus its quantization constants: one fp32 absmax per block of 64 weights
  is 32/64 = 0.5 bit per parameter; double quantization stores them in 8 bits with one fp32
  constant per 256 of them: 8/64 + 32/(64*256) = 0.127 bit.

LLaMA-65B (65.2B parameters, 80 layers, hidden 8192, 64 heads; Touvron et al. 2023, Table
2) on 4 x V100 with 32 GiB each: a full fine-tune needs about 1 TB of model states alone;
LoRA on a 16-bit frozen base needs 130 GB for the base, more than the 124 GB usable; QLoRA
needs about 40 GB and fits (and fits one 48 GB GPU, as the QLoRA paper claims).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from aiprep.kit.compare import compare
from aiprep.kit.report import SolutionReport, print_check_of

SEED = 0
GB = 1e9  # papers quote decimal gigabytes
GIB = 2**30  # GPU memory is sized in binary gibibytes: a "32 GB" V100 holds 32 GiB
USABLE = 0.9  # planning margin: CUDA context, allocator fragmentation, temporary buffers
EXACT = 1e-9  # relative tolerance of checks that redo the same float64 arithmetic by hand
ZERO_24GB_CHECK = "ZeRO sec. 3.1: GPT-2 1.5B model states = 24 GB (tolerance used)"
ZERO_FIG1_CHECK = "ZeRO Fig. 1: 7.5B on 64 GPUs, GB per GPU, stages 0-3 (tolerance used)"
ACTIVATION_CHECK = "activations of LLaMA-65B vs Korthikanti sec. 4.1 term by term (tolerance used)"
DQ_CHECK = "QLoRA sec. 3: quantization-constant bits per parameter, DQ and not (tolerance used)"
TOTALS_CHECK = "LLaMA-65B full / LoRA / QLoRA totals vs hand arithmetic (tolerance used)"
QLORA_780_CHECK = "LLaMA-65B full fine-tune / QLoRA's '>780 GB'"
QLORA_48_CHECK = "LLaMA-65B QLoRA total / one 48 GB GPU (QLoRA abstract)"
FULL_FITS_CHECK = "LLaMA-65B full fine-tune / usable memory of 4 x V100-32GB"
LORA_FITS_CHECK = "LLaMA-65B LoRA (16-bit base) / usable memory of 4 x V100-32GB"
QLORA_FITS_CHECK = "LLaMA-65B QLoRA / usable memory of 4 x V100-32GB"


# The functions a candidate writes; check(impl) calls only these on impl.
ANSWER = (
    "model_state_bytes",
    "activation_bytes",
    "quant_constant_bits",
    "finetune_memory_bytes",
)

# -----------------------------------------------------------------------------
# The answer: the calculator


def model_state_bytes(params: float, dp: int = 1, zero_stage: int = 0) -> float:
    """Bytes per GPU of weights, gradients and Adam states for mixed-precision training.

    ``params``: trained parameters; ``dp``: data-parallel GPUs sharing them; ``zero_stage``:
    0 (plain data parallel: every GPU holds everything), 1 (optimizer states sharded over
    ``dp``), 2 (and gradients), 3 (and weights).
    """
    weights = 2.0 * params  # fp16/bf16 copy used in forward and backward
    grads = 2.0 * params  # fp16/bf16 gradients
    optimizer = 12.0 * params  # fp32 master weights 4 + Adam m 4 + Adam v 4 (ZeRO's K = 12)
    if zero_stage >= 1:
        optimizer /= dp
    if zero_stage >= 2:
        grads /= dp
    if zero_stage >= 3:
        weights /= dp
    return weights + grads + optimizer


def activation_bytes(
    seq: int, batch: int, hidden: int, heads: int, layers: int, recompute: str = "none"
) -> float:
    """Bytes of activations stored for the backward pass (16-bit), all ``layers`` together.

    ``recompute``: "none" keeps every activation; "selective" recomputes the attention
    scores; "full" keeps only each layer's input and recomputes the layer in the backward
    pass (gradient checkpointing).
    """
    # Korthikanti et al. 2022, sec. 4.1: s*b*h*(34 + 5*a*s/h) per layer, 34*s*b*h without
    # the a*s*s score terms, 2*s*b*h for the input alone.
    sbh = seq * batch * hidden
    if recompute == "none":
        per_layer = sbh * (34 + 5 * heads * seq / hidden)  # 5*a*s^2*b: scores, softmax, dropout
    elif recompute == "selective":
        per_layer = 34.0 * sbh
    elif recompute == "full":
        per_layer = 2.0 * sbh  # the layer's 16-bit input
    else:
        raise ValueError(f"recompute must be none, selective or full, not {recompute!r}")
    return layers * per_layer


def quant_constant_bits(block: int = 64, double_quant: bool = True, block2: int = 256) -> float:
    """Bits per parameter spent on the 4-bit weights' quantization constants (absmax scales).

    One fp32 constant per ``block`` weights; with double quantization the constants are
    stored in 8 bits, plus one fp32 constant per ``block2`` of them.
    """
    if not double_quant:
        return 32.0 / block
    return 8.0 / block + 32.0 / (block * block2)


def finetune_memory_bytes(
    method: str, params: float, trainable: float, activations: float
) -> float:
    """Total bytes of one fine-tuning job, summed over its GPUs (before any sharding).

    ``method``: "full" (all ``params`` trained), "lora" (frozen 16-bit base plus
    ``trainable`` adapter parameters) or "qlora" (frozen NF4 base with double-quantized
    constants, plus the adapters). ``activations``: bytes from ``activation_bytes``.
    """
    # full: 16 B/param; LoRA: 2 B/param frozen base; QLoRA: (4 + 0.127) bits/param base
    adapters = model_state_bytes(trainable)  # the adapters train like any model: 16 B each
    if method == "full":
        return model_state_bytes(params) + activations
    if method == "lora":
        return 2.0 * params + adapters + activations
    if method == "qlora":
        return params * (4.0 + quant_constant_bits()) / 8.0 + adapters + activations
    raise ValueError(f"method must be full, lora or qlora, not {method!r}")


# -----------------------------------------------------------------------------
# The harness: published configurations and figures, and the checks against them


@dataclass(frozen=True)
class Model:
    """A decoder-only transformer as its paper describes it."""

    name: str
    params: float
    layers: int
    hidden: int
    heads: int
    ffn: int  # SwiGLU inner size (three hidden x ffn matrices)


@dataclass(frozen=True)
class Scenarios:
    """LLaMA-65B, the fine-tuning setting, and the GPUs asked about."""

    llama65: Model
    seq: int  # LLaMA's context length
    batch: int  # micro-batch per step
    lora_rank: int  # on every linear layer
    gpus: int
    gib_per_gpu: float


class Answer(Protocol):
    def model_state_bytes(self, params: float, dp: int = 1, zero_stage: int = 0) -> float: ...

    def activation_bytes(
        self, seq: int, batch: int, hidden: int, heads: int, layers: int, recompute: str = "none"
    ) -> float: ...

    def quant_constant_bits(
        self, block: int = 64, double_quant: bool = True, block2: int = 256
    ) -> float: ...

    def finetune_memory_bytes(
        self, method: str, params: float, trainable: float, activations: float
    ) -> float: ...


def make_data(seed: int = SEED) -> Scenarios:
    """LLaMA-65B (Touvron et al. 2023, Table 2; FFN 22016 from its released config), 2048
    tokens, micro-batch 1, LoRA rank 16 on every linear layer, 4 x V100 with 32 GiB.
    Published figures, so ``seed`` changes nothing."""
    llama65 = Model("LLaMA-65B", 65.2e9, layers=80, hidden=8192, heads=64, ffn=22016)
    return Scenarios(llama65, seq=2048, batch=1, lora_rank=16, gpus=4, gib_per_gpu=32)


def lora_params(model: Model, rank: int) -> float:
    """Adapter parameters: rank * (d_in + d_out) for each of the 7 linear layers per block."""
    h, f = model.hidden, model.ffn
    per_layer = 4 * rank * (h + h) + 3 * rank * (h + f)  # q, k, v, o; gate, up, down
    return float(model.layers * per_layer)


def korthikanti_terms(seq: int, batch: int, hidden: int, heads: int) -> dict[str, float]:
    """One layer's stored activations in bytes, term by term as section 4.1 lists them."""
    s, b, h, a = seq, batch, hidden, heads
    sbh, as2b = s * b * h, a * s * s * b
    return {
        "QKV input": 2 * sbh,
        "Q, K for QK^T": 4 * sbh,
        "scores: softmax output": 2 * as2b,
        "scores: dropout mask": 1 * as2b,
        "scores: dropout output": 2 * as2b,
        "V": 2 * sbh,
        "output projection input": 2 * sbh,
        "attention dropout mask": 1 * sbh,
        "MLP input": 2 * sbh,
        "GELU input": 8 * sbh,
        "GELU output": 8 * sbh,
        "MLP dropout mask": 1 * sbh,
        "two layernorm inputs": 4 * sbh,
    }


def check(impl: Answer) -> SolutionReport:
    """The calculator against ZeRO, Korthikanti et al., QLoRA, and the 4 x V100 question."""
    report = SolutionReport(solution="distributed.training_memory_estimate")
    data = make_data()
    _published_states(report, impl)
    _activations(report, impl, data)
    _quantization(report, impl)
    _sixty_five_b(report, impl, data)
    return report


def _published_states(report: SolutionReport, impl: Answer) -> None:
    """ZeRO's own numbers: 24 GB for GPT-2 1.5B, and Figure 1's four bars."""
    gpt2 = impl.model_state_bytes(1.5e9) / GB
    report.metric("GPT-2 1.5B model states", gpt2, "GB")
    report.check_close(
        ZERO_24GB_CHECK,
        compare(gpt2, 24.0, atol=0.0, rtol=1e-6),
        "ZeRO sec. 3.1: 2 + 2 + K=12 bytes per parameter, 'at least 24 GB' for 1.5B; the same "
        "arithmetic, so only float rounding is allowed (1e-6); forgetting the fp32 master "
        "weights and Adam moments (4 B/param) gives 6 GB, 3e5 times outside",
    )
    fig1 = [impl.model_state_bytes(7.5e9, dp=64, zero_stage=k) / GB for k in range(4)]
    report.metric("7.5B on 64 GPUs, stages 0-3", ", ".join(f"{v:.2f}" for v in fig1), "GB")
    report.check_close(
        ZERO_FIG1_CHECK,
        compare(fig1, [120.0, 31.4, 16.6, 1.9], atol=0.05),
        "ZeRO Figure 1 (psi = 7.5B, N_d = 64, K = 12) prints 120, 31.4, 16.6 and 1.9 GB, "
        "rounded to 0.1 GB, so half of that, 0.05 GB, is allowed; sharding the wrong "
        "stage's tensors or the 4 B/param answer misses by GBs",
    )


def _activations(report: SolutionReport, impl: Answer, data: Scenarios) -> None:
    """Korthikanti's per-layer total against the sum of the terms section 4.1 lists."""
    m, s, b = data.llama65, data.seq, data.batch
    terms = korthikanti_terms(s, b, m.hidden, m.heads)
    sbh = s * b * m.hidden
    by_hand = [
        m.layers * sum(terms.values()),  # none: every term
        m.layers * sum(v for k, v in terms.items() if not k.startswith("scores")),
        m.layers * 2.0 * sbh,  # full: only the layer input
    ]
    got = [
        impl.activation_bytes(s, b, m.hidden, m.heads, m.layers, r)
        for r in ("none", "selective", "full")
    ]
    report.metric(
        "LLaMA-65B activations, s=2048 b=1: none / selective / full recompute",
        ", ".join(f"{v / GB:.1f}" for v in got),
        "GB",
    )
    report.check_close(
        ACTIVATION_CHECK,
        compare(got, by_hand, atol=0.0, rtol=EXACT),
        "the closed forms s*b*h*(34 + 5*a*s/h), 34*s*b*h and 2*s*b*h against the sum of the "
        "13 stored tensors section 4.1 lists (selective drops the a*s^2*b ones); exact "
        "arithmetic, 1e-9 relative; leaving activations out (0 bytes) misses by 153 GB",
    )


def _quantization(report: SolutionReport, impl: Answer) -> None:
    """QLoRA's double-quantization figure."""
    got = [impl.quant_constant_bits(), impl.quant_constant_bits(double_quant=False)]
    report.metric(
        "quantization constants with / without double quantization",
        f"{got[0]:.4f}, {got[1]:.4f}",
        "bit/param",
    )
    report.check_close(
        DQ_CHECK,
        compare(got, [0.127, 0.5], atol=0.0005),
        "QLoRA sec. 3 'Double Quantization': 32/64 = 0.5 bit per parameter, reduced to "
        "8/64 + 32/(64*256) = 0.127; printed to 3 decimals, so 0.0005 is allowed",
    )


def _sixty_five_b(report: SolutionReport, impl: Answer, data: Scenarios) -> None:
    """The question itself: LLaMA-65B on 4 x V100-32GB, full vs LoRA vs QLoRA."""
    m, s, b = data.llama65, data.seq, data.batch
    trainable = lora_params(m, data.lora_rank)
    act = impl.activation_bytes(s, b, m.hidden, m.heads, m.layers, "full")  # checkpointing
    full = impl.finetune_memory_bytes("full", m.params, m.params, act)
    lora = impl.finetune_memory_bytes("lora", m.params, trainable, act)
    qlora = impl.finetune_memory_bytes("qlora", m.params, trainable, act)
    usable = USABLE * data.gpus * data.gib_per_gpu * GIB
    act_by_hand = m.layers * 2.0 * s * b * m.hidden
    by_hand = [
        16 * m.params + act_by_hand,
        2 * m.params + 16 * trainable + act_by_hand,
        m.params * (4 + 8 / 64 + 32 / (64 * 256)) / 8 + 16 * trainable + act_by_hand,
    ]
    report.metric("LoRA rank-16 trainable parameters", trainable / 1e6, "M")
    report.metric("activations with full recomputation", act / GB, "GB")
    report.metric(
        "full fine-tune / LoRA / QLoRA total",
        f"{full / GB:.1f}, {lora / GB:.1f}, {qlora / GB:.1f}",
        "GB",
    )
    report.metric("usable memory of 4 x V100-32GB (90 % of 4 x 32 GiB)", usable / GB, "GB")
    report.metric("QLoRA per GPU, split over 4", qlora / data.gpus / GB, "GB")
    report.check_close(
        TOTALS_CHECK,
        compare([full, lora, qlora], by_hand, atol=0.0, rtol=EXACT),
        "16 B/param + activations; 2 B/param frozen base + 16 B per adapter parameter + "
        "activations; (4 + 0.127)/8 B/param + adapters + activations, redone by hand in "
        "float64 (1e-9 relative); a total that leaves out the activations misses by 2.7 GB, "
        "1e-9 * 40 GB is 40 B",
    )
    report.check(
        QLORA_780_CHECK,
        full / 780e9,
        ">=",
        1.0,
        "QLoRA's introduction: fine-tuning 65B takes '>780 GB' in 16-bit; 16 B/param is "
        "1043 GB (1.34x); forgetting the master weights and Adam states (4 B/param) gives "
        "264 GB, 0.34x",
    )
    report.check(
        QLORA_48_CHECK,
        qlora / (48 * GB),
        "<=",
        1.0,
        "QLoRA's abstract: 65B fine-tuned on a single 48 GB GPU; NF4 base 33.6 GB + rank-16 "
        "adapters 3.2 GB + checkpointed activations 2.7 GB is 0.82 of it; a base left in "
        "16-bit (130 GB) is 2.8x",
    )
    report.check(
        FULL_FITS_CHECK,
        full / usable,
        ">",
        1.0,
        "1043 GB needed against 124 GB usable (90 % of 4 x 32 GiB): 8.5x, so full fine-tuning "
        "does not fit even sharded with ZeRO-3; a calculator returning 0 would say it fits",
    )
    report.check(
        LORA_FITS_CHECK,
        lora / usable,
        ">",
        1.0,
        "the 16-bit frozen base alone is 130 GB, above the 124 GB usable (1.1x with adapters "
        "and activations): LoRA needs the base quantized; a base counted at 4 bits would "
        "say it fits (0.3x)",
    )
    report.check(
        QLORA_FITS_CHECK,
        qlora / usable,
        "<=",
        1.0,
        "about 40 GB against 124 GB usable (0.32x): QLoRA fits with the base split over the "
        "4 GPUs (10 GB each); a base counted in 16-bit would not (1.1x)",
    )


if __name__ == "__main__":
    print_check_of(__name__)
