"""Parameters and FLOPs of a decoder-only transformer, from its config alone.

Parameters, per layer (d = d_model, f = FFN width, g = KV heads x head size):
- attention: q and o are d x d, k and v are d x g (grouped-query attention shares each KV
  head among heads / kv_heads query heads, so g = d for plain multi-head attention);
- MLP: a GELU MLP has two d x f matrices, a SwiGLU MLP three (gate, up, down);
- norms: LayerNorm has a scale and a bias (2d), RMSNorm a scale only (d); two per layer;
- biases (GPT-2/3 style): one per output unit of every linear layer;
plus the token embedding V x d, the output head V x d unless tied to the embedding, learned
positions P x d (none with RoPE) and the final norm. GPT-style models with f = 4d come to
about 12*L*d^2; Llama uses f = 8d/3 rounded (11008 for d = 4096) with three matrices.

FLOPs (Kaplan et al. 2020, Table 1; Hoffmann et al. 2022, Appendix F): a forward pass costs
2 FLOPs (a multiply and an add) per weight of every matrix a token goes through, the output
head included, plus the attention itself: QK^T and the weighted sum of V cost 2*S*d each
per token and layer for a context of S. The backward pass does two matmuls for each forward
one (gradient with respect to the input and to the weight), so training costs 3x the
forward pass: C = 6*N*D for N parameters and D tokens, leaving out attention, which adds
S/(6d) of that in a GPT-style layer (17 % for a 7B model at 4096 tokens, 4 % for 70B at
2048).

The checks build tiny GPT-style and Llama-style models in Keras and compare the formulas
with `count_params()` and with the matmul FLOPs TensorFlow's own traced graphs contain
(forward and training step), then with published figures: LLaMA's parameter counts (Touvron
et al. 2023, Table 2: 6.7B, 13.0B, 32.5B, 65.2B; Llama 2 7B has the 7B config) and GPT-3's
training compute (Brown et al. 2020, Table D.1: 3.14e23 FLOPs for 175B on 300B tokens).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any, Protocol

import numpy as np

from aiprep.kit.compare import compare
from aiprep.kit.report import SolutionReport, print_check_of

if TYPE_CHECKING:
    import tensorflow as tf

SEED = 0
LLAMA_CHECK = "LLaMA 7B/13B/33B/65B parameters vs Touvron et al. Table 2 (tolerance used)"
GPT3_CHECK = "GPT-3 175B on 300B tokens: 6ND vs Table D.1's 3.14e23 FLOPs (tolerance used)"
TINY_PARAMS_CHECK = "tiny GPT-style and Llama-style (GQA) models vs count_params() (off by)"
TINY_FLOPS_CHECK = "forward FLOPs per token vs the traced graph's matmuls (tolerance used)"
BACKWARD_CHECK = "training FLOPs vs 2N x the traced training/forward ratio (tolerance used)"


# The functions a candidate writes; check(impl) calls only these on impl.
ANSWER = ("param_count", "forward_flops_per_token", "training_flops")


@dataclass(frozen=True)
class DecoderConfig:
    """A decoder-only transformer as its config file describes it."""

    vocab: int
    d_model: int
    layers: int
    heads: int
    kv_heads: int  # == heads for multi-head attention, fewer for GQA, 1 for MQA
    ffn: int  # MLP inner width
    mlp: str = "swiglu"  # "swiglu" (gate, up, down) or "gelu" (up, down)
    norm: str = "rmsnorm"  # "rmsnorm" (scale) or "layernorm" (scale and bias)
    bias: bool = False  # biases on every linear layer (GPT-2/3), none (Llama)
    tied: bool = False  # output head shares the token embedding matrix
    max_positions: int = 0  # learned position embeddings; 0 with RoPE


# -----------------------------------------------------------------------------
# The answer: the counts


def param_count(cfg: DecoderConfig) -> int:
    """Trainable parameters of the model ``cfg`` describes."""
    d, f = cfg.d_model, cfg.ffn
    kv = cfg.kv_heads * (d // cfg.heads)  # width of k and v: KV heads x head size
    attention = d * d + d * kv + d * kv + d * d  # q, k, v, o
    mlp_matrices = 3 if cfg.mlp == "swiglu" else 2  # SwiGLU's gate is a third d x f matrix
    mlp = mlp_matrices * d * f
    norm = 2 * d if cfg.norm == "layernorm" else d  # LayerNorm has a bias, RMSNorm does not
    biases = 0
    if cfg.bias:  # one per output unit: q k v o, then the MLP's inner and output layers
        biases = d + 2 * kv + d + (mlp_matrices - 1) * f + d
    per_layer = attention + mlp + 2 * norm + biases  # two norms: before attention, before MLP
    embeddings = cfg.vocab * d + cfg.max_positions * d
    head = 0 if cfg.tied else cfg.vocab * d  # a tied head reuses the embedding: 0 new weights
    return cfg.layers * per_layer + embeddings + head + norm  # + the final norm


def forward_flops_per_token(cfg: DecoderConfig, seq: int) -> float:
    """Matmul FLOPs of one forward pass per token, with a context of ``seq`` tokens.

    2 per weight of every matrix (projections, MLP, output head; a lookup in the embedding
    table is not a matmul), plus QK^T and attention x V: 2 * seq * heads * head_size each,
    per layer, computed for all ``seq`` positions (no causal skipping).
    """
    d, f = cfg.d_model, cfg.ffn
    kv = cfg.kv_heads * (d // cfg.heads)
    mlp_matrices = 3 if cfg.mlp == "swiglu" else 2
    matrices = cfg.layers * (2 * d * d + 2 * d * kv + mlp_matrices * d * f) + cfg.vocab * d
    attention = cfg.layers * 2 * (2 * seq * d)  # QK^T and AV; the heads together are d wide
    return 2.0 * matrices + attention


def training_flops(params: float, tokens: float) -> float:
    """FLOPs of training ``params`` parameters on ``tokens`` tokens: forward 2N + backward
    4N per token (Kaplan et al. 2020)."""
    return 6.0 * params * tokens


# -----------------------------------------------------------------------------
# The harness: tiny Keras models for the exact counts, published configs for the rest


class Answer(Protocol):
    def param_count(self, cfg: DecoderConfig) -> int: ...

    def forward_flops_per_token(self, cfg: DecoderConfig, seq: int) -> float: ...

    def training_flops(self, params: float, tokens: float) -> float: ...


@dataclass(frozen=True)
class Scenarios:
    """The tiny models, the published configs and what the papers print."""

    tiny_gpt: DecoderConfig
    tiny_llama: DecoderConfig
    seq: int
    llama: tuple[DecoderConfig, ...]
    llama_published: tuple[float, ...]  # Table 2, billions
    gpt3: DecoderConfig
    gpt3_tokens: float
    gpt3_flops: float  # Table D.1


def make_data(seed: int = SEED) -> Scenarios:
    """Two tiny configs (GPT-style: learned positions, biases, LayerNorm, GELU 4d MLP, tied
    head; Llama-style: RoPE, RMSNorm, SwiGLU, 4 heads sharing 2 KV heads, untied) and the
    published configs: LLaMA 7B-65B (vocabulary 32000) and GPT-3 175B (vocabulary 50257,
    2048 positions). Configs, so ``seed`` changes nothing."""
    gpt = DecoderConfig(
        97, 32, 2, 4, 4, 128, mlp="gelu", norm="layernorm", bias=True, tied=True, max_positions=64
    )
    tiny_llama = DecoderConfig(97, 32, 2, 4, 2, 88)
    llama = tuple(
        DecoderConfig(32000, d, n, h, h, f)
        for d, n, h, f in ((4096, 32, 32, 11008), (5120, 40, 40, 13824), (6656, 60, 52, 17920))
        + ((8192, 80, 64, 22016),)
    )
    gpt3 = replace(gpt, vocab=50257, d_model=12288, layers=96, heads=96, kv_heads=96)
    gpt3 = replace(gpt3, ffn=4 * 12288, max_positions=2048)
    return Scenarios(gpt, tiny_llama, 64, llama, (6.7, 13.0, 32.5, 65.2), gpt3, 300e9, 3.14e23)


def build_model(cfg: DecoderConfig, seq: int) -> Any:
    """The decoder ``cfg`` describes, in Keras, for counting only (never trained). RoPE has
    no weights and no matmuls, so the Llama-style model leaves it out."""
    import tensorflow as tf
    import tf_keras as keras

    class RMSNorm(keras.layers.Layer):  # type: ignore[misc]
        def build(self, shape: Any) -> None:
            self.scale = self.add_weight(name="scale", shape=(shape[-1],), initializer="ones")

        def call(self, x: tf.Tensor) -> tf.Tensor:
            return x * tf.math.rsqrt(tf.reduce_mean(x * x, -1, keepdims=True) + 1e-6) * self.scale

    class Attention(keras.layers.Layer):  # type: ignore[misc]
        def call(self, q: tf.Tensor, k: tf.Tensor, v: tf.Tensor) -> tf.Tensor:
            hd = cfg.d_model // cfg.heads

            def split(t: tf.Tensor, n: int) -> tf.Tensor:  # (B, S, n*hd) -> (B, n, S, hd)
                return tf.transpose(tf.reshape(t, (-1, seq, n, hd)), (0, 2, 1, 3))

            q = split(q, cfg.heads)
            k = tf.repeat(split(k, cfg.kv_heads), cfg.heads // cfg.kv_heads, axis=1)  # GQA
            v = tf.repeat(split(v, cfg.kv_heads), cfg.heads // cfg.kv_heads, axis=1)
            scores = tf.matmul(q, k, transpose_b=True) / hd**0.5  # (B, H, S, S)
            causal = tf.linalg.band_part(tf.ones((seq, seq)), -1, 0)
            weights = tf.nn.softmax(scores - 1e9 * (1.0 - causal))
            out = tf.transpose(tf.matmul(weights, v), (0, 2, 1, 3))  # (B, S, H, hd)
            return tf.reshape(out, (-1, seq, cfg.d_model))

    class TiedHead(keras.layers.Layer):  # type: ignore[misc]
        def __init__(self, embedding: Any) -> None:
            super().__init__()
            self.embedding = embedding

        def call(self, h: tf.Tensor) -> tf.Tensor:
            return tf.matmul(h, self.embedding.embeddings, transpose_b=True)  # (B, S, V)

    class AddPositions(keras.layers.Layer):  # type: ignore[misc]
        def build(self, shape: Any) -> None:  # learned positions, (P, d)
            self.table = self.add_weight(name="table", shape=(cfg.max_positions, cfg.d_model))

        def call(self, h: tf.Tensor) -> tf.Tensor:
            return h + self.table[:seq]  # (B, S, d) + (S, d)

    def norm() -> Any:
        return keras.layers.LayerNormalization() if cfg.norm == "layernorm" else RMSNorm()

    def dense(units: int) -> Any:
        return keras.layers.Dense(units, use_bias=cfg.bias)

    tokens = keras.Input((seq,), dtype="int32")
    embedding = keras.layers.Embedding(cfg.vocab, cfg.d_model)
    h = embedding(tokens)  # (B, S, d)
    if cfg.max_positions:
        h = AddPositions()(h)
    kv = cfg.kv_heads * (cfg.d_model // cfg.heads)
    for _ in range(cfg.layers):
        x = norm()(h)
        a = Attention()(dense(cfg.d_model)(x), dense(kv)(x), dense(kv)(x))
        h = h + dense(cfg.d_model)(a)
        x = norm()(h)
        if cfg.mlp == "swiglu":
            inner = tf.nn.silu(dense(cfg.ffn)(x)) * dense(cfg.ffn)(x)  # gate * up
        else:
            inner = tf.nn.gelu(dense(cfg.ffn)(x))
        h = h + dense(cfg.d_model)(inner)
    h = norm()(h)
    logits = TiedHead(embedding)(h) if cfg.tied else dense(cfg.vocab)(h)
    return keras.Model(tokens, logits)


def matmul_flops(graph: tf.Graph) -> int:
    """2*m*n*k summed over the MatMul and BatchMatMul ops of a traced graph."""
    total = 0
    for op in graph.get_operations():
        if op.type == "MatMul":
            a, b = (t.shape.as_list() for t in op.inputs[:2])
            m = a[1] if op.get_attr("transpose_a") else a[0]
            n = b[0] if op.get_attr("transpose_b") else b[1]
            k = a[0] if op.get_attr("transpose_a") else a[1]
            total += 2 * m * n * k
        elif op.type.startswith("BatchMatMul"):
            a, b = (t.shape.as_list() for t in op.inputs[:2])
            m, k = (a[-1], a[-2]) if op.get_attr("adj_x") else (a[-2], a[-1])
            n = b[-2] if op.get_attr("adj_y") else b[-1]
            batch = math.prod(np.broadcast_shapes(tuple(a[:-2]), tuple(b[:-2])))
            total += 2 * batch * m * n * k
    return total


def traced_flops(model: Any, seq: int) -> tuple[int, int]:
    """(forward, training step) matmul FLOPs of one sequence, from the traced graphs."""
    import tensorflow as tf

    spec = tf.TensorSpec((1, seq), tf.int32)
    forward = tf.function(lambda t: model(t), autograph=False).get_concrete_function(spec)

    def step(t: tf.Tensor) -> list[tf.Tensor]:
        with tf.GradientTape() as tape:
            loss = tf.reduce_mean(model(t))
        return tape.gradient(loss, model.trainable_variables)  # type: ignore[no-any-return]

    train = tf.function(step, autograph=False).get_concrete_function(spec)
    return matmul_flops(forward.graph), matmul_flops(train.graph)


def check(impl: Answer) -> SolutionReport:
    """Published figures first (no TensorFlow), then the tiny Keras models."""
    report = SolutionReport(solution="training.param_flop_count")
    data = make_data()
    _published(report, impl, data)
    _tiny(report, impl, data)
    return report


def _published(report: SolutionReport, impl: Answer, data: Scenarios) -> None:
    got = [impl.param_count(c) / 1e9 for c in data.llama]
    report.metric("LLaMA 7B / 13B / 33B / 65B parameters", ", ".join(f"{v:.3f}" for v in got), "B")
    report.check_close(
        LLAMA_CHECK,
        compare(got, list(data.llama_published), atol=0.0, rtol=0.01),
        "Table 2 prints 6.7, 13.0, 32.5, 65.2 (0.1B rounding is 0.75 % of 6.7B); the count "
        "from the config gives 6.738, 13.016, 32.529, 65.286; the 12*L*d^2 shortcut or an "
        "untied head counted once misses 7B by 1.9 %, a SwiGLU counted as 2 matrices by 21 %",
    )
    n = impl.param_count(data.gpt3)
    flops = impl.training_flops(n, data.gpt3_tokens)
    report.metric("GPT-3 175B parameters (config count)", n / 1e9, "B")
    report.metric("GPT-3 training compute, 6ND", flops, "FLOPs")
    llama2 = impl.training_flops(impl.param_count(data.llama[0]), 2e12)
    report.metric("Llama 2 7B on 2T tokens, 6ND", llama2, "FLOPs")
    report.check_close(
        GPT3_CHECK,
        compare(flops, data.gpt3_flops, atol=0.0, rtol=0.005),
        "Table D.1 prints 3.14e23 (3 digits: 0.16 %) and counts parameters its own way "
        "(embeddings in or out moves N by 0.4 %), so 0.5 %; 6 x 174.6B x 300B = 3.143e23; "
        "forward only (2ND) is 3x too low, backward = forward (4ND) 1.5x",
    )


def _tiny(report: SolutionReport, impl: Answer, data: Scenarios) -> None:
    import tf_keras as keras

    keras.utils.set_random_seed(SEED)
    counted, built, flops, traced, ratios = [], [], [], [], []
    for cfg in (data.tiny_gpt, data.tiny_llama):
        model = build_model(cfg, data.seq)
        forward, train = traced_flops(model, data.seq)
        counted.append(float(impl.param_count(cfg)))
        built.append(float(model.count_params()))
        flops.append(impl.forward_flops_per_token(cfg, data.seq))
        traced.append(forward / data.seq)
        ratios.append(train / forward)
    report.metric("tiny GPT / Llama parameters (count_params)", f"{built[0]:.0f}, {built[1]:.0f}")
    report.metric(
        "tiny GPT / Llama traced forward FLOPs per token", f"{traced[0]:.0f}, {traced[1]:.0f}"
    )
    report.metric("traced training / forward matmul FLOPs", f"{ratios[0]:.3f}, {ratios[1]:.3f}")
    off = max(abs(a - b) for a, b in zip(counted, built, strict=True))
    report.check(
        TINY_PARAMS_CHECK,
        off,
        "==",
        0,
        "integers, so exact: every weight of the built model; 12*L*d^2 + V*d, a LayerNorm "
        "without its bias, or k and v counted with all 4 heads instead of the 2 KV heads are "
        "off by hundreds to thousands",
    )
    report.check_close(
        TINY_FLOPS_CHECK,
        compare(flops, traced, atol=0.0, rtol=1e-9),
        "the MatMul/BatchMatMul ops of the traced forward pass, 2*m*n*k each, over S = 64 "
        "tokens: integers, so exact up to float rounding (1e-9); leaving out QK^T and AV "
        "(4*L*S*d = 16384 of about 70000 per token) is 23 % low, and 2N, the 6ND rule "
        "read as exact, 15 %",
    )
    n = impl.param_count(data.tiny_llama)
    got = impl.training_flops(n, 1000.0)
    expected = 2.0 * ratios[1] * n * 1000.0
    report.check_close(
        BACKWARD_CHECK,
        compare(got, expected, atol=0.0, rtol=0.01),
        "the traced training step has exactly 3x the forward matmuls (each forward matmul "
        "gets two in the backward pass: input and weight gradients), so training is 2N x 3 "
        "per token; 1 % allows nothing else; 2ND or 4ND are 33-67 % off",
    )


if __name__ == "__main__":
    print_check_of(__name__)
