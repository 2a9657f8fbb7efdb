"""Fix the seed's DQN: `.numpy()` on NumPy arrays, no `env`, and a target network that is not one.

The seed's DQN for "autonomous driving" uses an ``env`` it never creates, calls
``.numpy()`` on what ``model.predict`` returns (already a NumPy array: AttributeError),
calls ``.reshape`` on a tuple, and breaks off in the middle of the update. Worse, its
"target network" ``tf.keras.Model(inputs=model.input, outputs=model.output)`` is the
online network under a second name: same layers, same weights, so the target moves with
every update and the stabilising point of a target network is gone. The harness runs the
seed on a stand-in environment with its interface and records the AttributeError, and
shows that the seed's target changes when the online weights change: facts about the seed
(``report.seed_fact``), outside the candidate's verdict. The checks then test the fixed
pieces directly: the target network is an independent copy, epsilon-greedy actions are
ints in range (greedy at epsilon 0, uniform at 1), and TD targets match values computed
by hand. The seed's ``next_actions`` (the target network's argmax) is not Double DQN:
evaluated with the target network again it is vanilla DQN's max_a' Q_target(s', a');
Double DQN picks the argmax with the online network and evaluates it with the target.
"""

from __future__ import annotations

import types
from typing import Any, Protocol

import numpy as np
import tensorflow as tf
import tf_keras as keras

from aiprep.kit.compare import Comparison, compare
from aiprep.kit.report import SolutionReport, print_check_of
from aiprep.kit.seed_code import SeedRun, run_seed
from solutions.rl.dqn_lane_keeping import LaneKeepingEnv, build_q_network
from solutions.rl.dqn_lane_keeping import td_targets as td_targets  # re-exported: an ANSWER

SEED = 0
OBS_DIM, NUM_ACTIONS = 5, 3  # the seed's input_shape and action_space
GAMMA = 0.9  # the seed's
N_STATES = 64  # probe states for the greedy and copy checks
N_RANDOM_ACTIONS = 900  # draws at epsilon = 1: each action ~300 +- 14
# Equality checks (reference_comparisons): |got - expected| <= ATOL + RTOL * |expected|.
# Q-values here are of order 1 and each comparison is the same float32 computation twice,
# or one multiply-add against float64 hand values: a few eps (1.2e-7) relative at most.
ATOL, RTOL = 1e-6, 1e-5
TARGET_COPY_CHECK = "target equals online at creation (tolerance used)"
TARGET_FROZEN_CHECK = "target unchanged after an online update (tolerance used)"
TD_CHECK = "TD targets vs hand-computed (tolerance used)"
# A batch of 5 transitions: rewards (5,), the target network's Q(s', .) (5, 3), terminated (5,).
TD_REWARDS = np.array([1.0, 0.5, -1.0, 0.0, 0.9], np.float32)
TD_NEXT_Q = np.array(
    [[1.0, 2.0, 3.0], [-1.0, -2.0, -0.5], [4.0, 0.0, 1.0], [0.2, 0.1, 0.3], [5.0, 5.0, 5.0]],
    np.float32,
)
TD_TERMINATED = np.array([0.0, 0.0, 1.0, 0.0, 1.0], np.float32)
# By hand, in float64: r + 0.9 * (1 - terminated) * max_a' Q'(s', a').
TD_EXPECTED = np.array([1 + 0.9 * 3, 0.5 + 0.9 * -0.5, -1.0, 0.9 * 0.3, 0.9])

# The seed's code (seed 000, "5. 强化学习"), verbatim up to where the article breaks off
# mid-line ("target_q_values Futures API: ..." is unrelated text pasted in).
ORIGINAL = """
# 导入必要的库
import numpy as np
import tensorflow as tf
from collections import deque
import random

# 参数设置
learning_rate = 0.001
gamma = 0.9
epsilon = 1.0
epsilon_min = 0.01
epsilon_decay = 0.99
batch_size = 64
memory_size = 10000

# 创建经验回放
memory = deque(maxlen=memory_size)

# 创建Q网络
input_shape = (5,)
action_space = 3

model = tf.keras.Sequential([
    tf.keras.layers.Dense(64, activation='relu', input_shape=input_shape),
    tf.keras.layers.Dense(64, activation='relu'),
    tf.keras.layers.Dense(action_space, activation='linear')
])

model.compile(optimizer=tf.keras.optimizers.Adam(learning_rate=learning_rate), loss='mse')

# 目标网络
target_model = tf.keras.Model(inputs=model.input, outputs=model.output)
target_model.set_weights(model.get_weights())

# 训练模型
episodes = 1000
for episode in range(episodes):
    state = env.reset()
    done = False
    total_reward = 0

    while not done:
        if random.uniform(0, 1) < epsilon:
            action = random.randrange(action_space)
        else:
            action = np.argmax(model.predict(state.reshape(-1, 5)))

        next_state, reward, done, _ = env.step(action)
        total_reward += reward

        # 存储经验
        memory.append((state, action, reward, next_state, done))

        # 从经验回放中采样
        if len(memory) > batch_size:
            batch = random.sample(memory, batch_size)

            states, actions, rewards, next_states, dones = zip(*batch)
            next_actions = [target_model.predict(next_state.reshape(-1, 5)).numpy()[0].argmax() for next_state in next_states]

            target_q_values = model.predict(states.reshape(-1, 5))
            # ... (the seed breaks off here)
"""  # noqa: E501 (the seed's lines, verbatim)

# The functions a candidate writes; check(impl) calls only these on impl.
ANSWER = ("select_action", "make_target_network", "td_targets")
BASED_ON = "rl.dqn_lane_keeping"

# -----------------------------------------------------------------------------
# The answer: epsilon-greedy action, a real target network, TD targets
# (td_targets is the one of rl.dqn_lane_keeping: y = r + gamma * (1 - terminated) * max Q',
# vanilla DQN. The seed's next_actions = argmax of the TARGET net, evaluated by the target
# net, is the same max computed the long way. Double DQN differs: a' = argmax of the ONLINE
# net, its value from the target net.)


def select_action(
    q_net: keras.Model, state: np.ndarray, epsilon: float, rng: np.random.Generator
) -> int:
    """Epsilon-greedy action for one ``state`` (obs_dim,) float32: a Python int in [0, A).

    With probability ``epsilon`` a uniformly random action (explore), otherwise
    argmax_a Q(state, a) (exploit). Calls the network directly, not ``predict`` (which
    builds a dataset per call) and never ``.numpy()`` on a NumPy array.
    """
    num_actions = int(q_net.output_shape[-1])
    if rng.random() < epsilon:
        return int(rng.integers(num_actions))
    q = q_net(state[None, :].astype(np.float32), training=False)  # (1, A) tf.Tensor
    return int(tf.argmax(q[0]))  # np.int64 / tf scalars are not ints: cast


def make_target_network(q_net: keras.Model) -> keras.Model:
    """A separate network with ``q_net``'s architecture and a COPY of its current weights.

    ``keras.Model(inputs=q_net.input, outputs=q_net.output)`` (the seed) reuses the same
    layers, so it is the online network under another name. clone_model builds new layers
    (fresh weights); set_weights copies the values. Re-sync every N steps with
    ``target.set_weights(q_net.get_weights())``.
    """
    target = keras.models.clone_model(q_net)
    target.set_weights(q_net.get_weights())
    return target


# -----------------------------------------------------------------------------
# Running the seed's code on a stand-in environment, and the checks


class SeedInterfaceEnv:
    """LaneKeepingEnv behind the interface the seed expects: what its ``env`` must be.

    Observations (5,) float32: ``(x, 10 v)`` padded with three zero "sensors" to the
    seed's input_shape; ``step`` returns the old gym 4-tuple (obs, reward, done, info),
    done = terminated or truncated.
    """

    def __init__(self, seed: int) -> None:
        self.env = LaneKeepingEnv(seed)

    def reset(self) -> np.ndarray:
        return self._five(self.env.reset())

    def step(self, action: int) -> tuple[np.ndarray, float, bool, dict[str, Any]]:
        obs, reward, terminated, truncated = self.env.step(action)
        return self._five(obs), reward, terminated or truncated, {}

    @staticmethod
    def _five(obs: np.ndarray) -> np.ndarray:
        return np.concatenate([obs, np.zeros(3, np.float32)])  # (5,)


def run_original() -> SeedRun:
    """Run ORIGINAL with a stand-in ``env`` (the seed has none): what it raised, what it left.

    Without ``env`` it stops at once with a NameError; with one, it runs until the replay
    memory holds more than 64 transitions and then hits its next bug. The seed predates
    Keras 3: since TF 2.16 ``tf.keras`` is Keras 3, where ``model.input`` of a Sequential
    that was never called raises AttributeError before any of that. So ``tf.keras`` here is
    tf_keras, the Keras 2 it was written for (its only use of ``tf`` is ``tf.keras``).
    """
    namespace = {"env": SeedInterfaceEnv(SEED), "tf": types.SimpleNamespace(keras=keras)}
    keras.utils.set_random_seed(SEED)  # seeds Python's `random` too, used by the seed
    return run_seed(ORIGINAL, namespace, replace=[("import tensorflow as tf\n", "")])


def make_data(seed: int = SEED) -> np.ndarray:
    """Probe states (N_STATES, 5) float32: the stand-in environment's observations."""
    env = SeedInterfaceEnv(seed)
    states: list[np.ndarray] = []
    state = env.reset()
    rng = np.random.default_rng(seed)
    while len(states) < N_STATES:
        states.append(state)
        state, _, done, _ = env.step(int(rng.integers(NUM_ACTIONS)))
        if done:
            state = env.reset()
    return np.stack(states)


def online_step(q_net: keras.Model) -> None:
    """Stand-in for an optimizer step: every weight moves by 0.1, away from zero.

    Q on the probe states moves by ~0.8, far more than rounding, so a target network that
    shares the online variables cannot hide.
    """
    q_net.set_weights([w + 0.1 * np.sign(w + 1e-3) for w in q_net.get_weights()])


class Answer(Protocol):
    """What check(impl) calls: the ANSWER functions, with the reference's signatures."""

    def select_action(
        self, q_net: keras.Model, state: np.ndarray, epsilon: float, rng: np.random.Generator
    ) -> int: ...

    def make_target_network(self, q_net: keras.Model) -> keras.Model: ...

    def td_targets(
        self, rewards: tf.Tensor, next_q: tf.Tensor, terminated: tf.Tensor, gamma: float
    ) -> tf.Tensor: ...


def reference_comparisons(impl: Answer) -> dict[str, Comparison]:
    """Every equality-type comparison: impl's target copy vs the online net, TD targets.

    Why ATOL + RTOL * |expected| with ATOL = 1e-6, RTOL = 1e-5: the target network holds a
    copy of the same weights, so it computes the same float32 numbers (0 apart on any CPU
    when the copy is right; a different kernel order would still stay within a few eps of
    |Q| ~ 1). The TD targets are one float32 multiply-add each against float64 hand values,
    within ~2 eps relative. Measured, oneDNN on and off: target 0 apart, TD targets 1.9e-7
    apart (tolerance used 0.008). Wrong answers land over 1e5 times outside: a fresh target
    (no set_weights) 0.37 off, a shared-layer target (the seed) 0.81, no terminal mask 4.5.
    """
    states = make_data()  # (64, 5)
    keras.utils.set_random_seed(SEED)
    q_net = build_q_network(OBS_DIM, NUM_ACTIONS)
    target_net = impl.make_target_network(q_net)
    q_before, t_before = q_net(states).numpy(), target_net(states).numpy()  # (64, 3) each
    online_step(q_net)
    t_after = target_net(states).numpy()
    got = impl.td_targets(TD_REWARDS, TD_NEXT_Q, TD_TERMINATED, GAMMA)
    return {
        TARGET_COPY_CHECK: compare(t_before, q_before, atol=ATOL, rtol=RTOL),
        TARGET_FROZEN_CHECK: compare(t_after, t_before, atol=ATOL, rtol=RTOL),
        TD_CHECK: compare(np.asarray(got, np.float64), TD_EXPECTED, atol=ATOL, rtol=RTOL),
    }


def check(impl: Answer) -> SolutionReport:
    """Run the seed; then check impl's target copy, epsilon-greedy actions and TD targets."""
    report = SolutionReport(solution="rl.fix_seed_dqn")
    _seed_facts(report)
    comparisons = reference_comparisons(impl)
    q_net, states = _target_network(report, comparisons)
    _epsilon_greedy(report, impl, q_net, states)
    _td_targets(report, impl, comparisons[TD_CHECK])
    return report


def _seed_facts(report: SolutionReport) -> None:
    """1. The seed, with an env substituted: it fails at `.numpy()` on a NumPy array. These
    are facts about the seed's code, not impl's: seed facts, outside the verdict."""
    seed = run_original()
    report.expect_raise(
        "original raises AttributeError",
        seed.error,
        AttributeError,
        "numpy",
        f"model.predict returns NumPy: {seed.error}",
    )
    # Its target network: change the online weights, look at the target's.
    online, target = seed.namespace["model"], seed.namespace["target_model"]
    online.set_weights([w + 1.0 for w in online.get_weights()])
    shared = all(
        np.array_equal(t, o)
        for t, o in zip(target.get_weights(), online.get_weights(), strict=True)
    )
    report.seed_fact(
        "original: target moves with the online network",
        float(shared),
        "==",
        1,
        "Model(inputs=model.input, outputs=model.output) reuses the same layers",
    )


def _target_network(
    report: SolutionReport, comparisons: dict[str, Comparison]
) -> tuple[keras.Model, np.ndarray]:
    """2a. impl's target network (compared in reference_comparisons): equal at creation,
    independent afterwards.

    Returns the online network of those comparisons, after its update, and the probe
    states (64, 5) for the epsilon-greedy checks.
    """
    states = make_data()  # (64, 5)
    keras.utils.set_random_seed(SEED)
    q_net = build_q_network(OBS_DIM, NUM_ACTIONS)  # the same weights as in the comparisons
    q_before = q_net(states).numpy()  # (64, 3)
    online_step(q_net)
    q_after = q_net(states).numpy()
    report.metric(
        "online Q change after the update (max abs)", float(np.abs(q_after - q_before).max())
    )
    copy_cmp, frozen_cmp = comparisons[TARGET_COPY_CHECK], comparisons[TARGET_FROZEN_CHECK]
    report.metric("target vs online at creation (max abs diff)", copy_cmp.max_abs_diff)
    report.metric("target change after the online update (max abs)", frozen_cmp.max_abs_diff)
    report.check_close(
        TARGET_COPY_CHECK,
        copy_cmp,
        f"a copy of the current weights, not a fresh initialisation: |diff| <= {ATOL:g} + "
        f"{RTOL:g}*|Q| (the same float32 computation on equal weights gives 0); a fresh "
        f"initialisation (clone_model without set_weights) is 0.37 off, 2.4e5 times outside; "
        + copy_cmp.detail,
    )
    report.check_close(
        TARGET_FROZEN_CHECK,
        frozen_cmp,
        f"its own variables: only an explicit sync may move it; |change| <= {ATOL:g} + "
        f"{RTOL:g}*|Q| (reference: 0); the seed's shared-layer target moves with the online "
        f"net by 0.81, 5.2e5 times outside; " + frozen_cmp.detail,
    )
    return q_net, states


def _epsilon_greedy(
    report: SolutionReport, impl: Answer, q_net: keras.Model, states: np.ndarray
) -> None:
    """2b. epsilon-greedy: ints in range, greedy at 0, uniform at 1."""
    best = q_net(states).numpy().argmax(axis=1)  # (64,): the greedy actions, before any call
    rng = np.random.default_rng(SEED)
    greedy = [impl.select_action(q_net, s, 0.0, rng) for s in states]
    randoms = [impl.select_action(q_net, states[0], 1.0, rng) for _ in range(N_RANDOM_ACTIONS)]
    actions = greedy + randoms
    valid = np.mean([type(a) is int and 0 <= a < NUM_ACTIONS for a in actions])
    report.check(
        "actions are Python ints in [0, 3)",
        float(valid),
        "==",
        1,
        f"share of {len(actions)} calls returning a Python int in range; env.step and replay "
        f"buffers expect ints; the seed's np.argmax returns np.int64 on the 64 greedy calls: "
        f"0.93",
    )
    agree = float(np.mean(np.array(greedy) == best))
    report.check(
        "epsilon 0: argmax of Q (agreement)",
        agree,
        "==",
        1,
        f"share of {N_STATES} probe states where the action is argmax Q; epsilon tested the "
        f"wrong way round (rng.random() > epsilon explores) acts at random here: 0.375",
    )
    counts = np.bincount(np.array(randoms, dtype=np.int64) % NUM_ACTIONS, minlength=NUM_ACTIONS)
    report.metric("epsilon 1: action counts", ", ".join(str(int(c)) for c in counts))
    report.check(
        "epsilon 1: least frequent action share",
        float(counts.min() / N_RANDOM_ACTIONS),
        ">=",
        0.27,
        f"uniform is 1/3; {N_RANDOM_ACTIONS} draws, std of a share ~0.016, so 0.27 is 4 std "
        f"below; epsilon tested the wrong way round is greedy here (900 of one action): 0",
    )


def _td_targets(report: SolutionReport, impl: Answer, td: Comparison) -> None:
    """2c. TD targets against r + gamma * (1 - done) * max_a' Q'(s', a'), by hand."""
    got = np.asarray(impl.td_targets(TD_REWARDS, TD_NEXT_Q, TD_TERMINATED, GAMMA))
    report.metric("TD targets", ", ".join(f"{v:.3f}" for v in got.ravel()))
    report.metric("max |TD targets - hand-computed|", td.max_abs_diff)
    report.check_close(
        TD_CHECK,
        td,
        f"expected 3.7, 0.05, -1.0 (terminal), 0.27, 0.9 (terminal); one float32 multiply-add "
        f"vs float64 hand values: a few eps relative (measured 1.9e-7), bound {ATOL:g} + "
        f"{RTOL:g}*|y|; bootstrapping through the terminal states (no 1 - terminated) is "
        f"4.5 off at the last, 4.5e5 times outside; " + td.detail,
    )


if __name__ == "__main__":
    print_check_of(__name__)
