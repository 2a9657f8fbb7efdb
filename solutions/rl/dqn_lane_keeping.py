"""DQN for lane keeping: a car learns to stay centred on the road against a crosswind.

A tiny driving environment ships with this module (pure NumPy, deterministic under a
seed): a car has a lateral offset and velocity, a per-episode crosswind pushes it off
the road, and the actions are steer left / straight / right. Reward is 1 - offset^2 per
step on the road; leaving the road ends the episode, and an episode is cut after 100
steps. A Deep Q-Network with experience replay, a target network synced every 100 steps,
epsilon-greedy exploration with linear decay and a Huber TD loss learns, in 2000
environment steps, a greedy policy that stays on the road for the whole episode, where
a random policy leaves it within ~20 steps. The seed's loop does not run (no environment,
``.numpy()`` on NumPy arrays, ``states.reshape`` on a tuple, a truncated update) and its
"target network" is the online network itself.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Protocol

import numpy as np
import tensorflow as tf
import tf_keras as keras

from aiprep.kit import events, synthetic
from aiprep.kit.compare import Comparison, compare
from aiprep.kit.report import SolutionReport, print_check_of

SEED = 0
MAX_STEPS = 100  # episode length cap (truncation, not failure)
TOTAL_STEPS = 2000  # environment steps of training
GAMMA = 0.95  # horizon ~1 / (1 - gamma) = 20 steps: enough to see the road edge coming
BATCH_SIZE = 64
BUFFER_SIZE = 10_000
WARMUP_STEPS = 256  # random transitions collected before the first update
TARGET_SYNC_EVERY = 100  # steps between copies of the online weights into the target net
EPSILON_START, EPSILON_END, EPSILON_DECAY_STEPS = 1.0, 0.05, 1000
LEARNING_RATE = 1e-3
EVAL_SEEDS = tuple(range(1000, 1020))  # 20 evaluation episodes, never seen in training
# TD targets vs hand values (reference_comparisons): |got - expected| <= ATOL + RTOL * |expected|.
ATOL, RTOL = 1e-6, 1e-5
TD_CHECK = "TD targets vs hand-computed (tolerance used)"


# The functions a candidate writes; check(impl) calls only these on impl.
ANSWER = ("build_q_network", "td_targets", "train_dqn")

# -----------------------------------------------------------------------------
# The environment: lane keeping under a crosswind


class LaneKeepingEnv:
    """A car on a straight road, seen from above; only the lateral motion matters.

    State: offset ``x`` from the lane centre in road half-widths (the road is |x| <= 1) and
    lateral velocity ``v`` per step. Each episode draws a crosswind ``w`` (0.01-0.02 per
    step, random side); every step adds a small gust. Actions: 0 steer left, 1 straight,
    2 steer right. Driving straight, the wind takes the car off the road in ~15-25 steps.
    Observations are float32 (2,): ``(x, 10 v)``, both of order 1 for the network.
    """

    num_actions = 3
    obs_dim = 2

    def __init__(self, seed: int) -> None:
        self.rng = synthetic.rng(seed)
        self.x = self.v = self.wind = 0.0
        self.t = 0

    def reset(self) -> np.ndarray:
        """Start a new episode (new start offset and wind); returns the observation (2,)."""
        self.x = float(self.rng.uniform(-0.3, 0.3))
        self.v = 0.0
        self.wind = float(self.rng.uniform(0.01, 0.02) * self.rng.choice([-1.0, 1.0]))
        self.t = 0
        return self._obs()

    def step(self, action: int) -> tuple[np.ndarray, float, bool, bool]:
        """Apply ``action``; returns (obs, reward, terminated, truncated), gymnasium-style.

        ``terminated``: the car left the road (a real end: no future reward).
        ``truncated``: the step cap was reached (the episode was cut, the car is fine).
        """
        steer = 0.03 * (int(action) - 1)  # -0.03, 0, +0.03
        gust = self.rng.normal(0.0, 0.005)
        self.v = 0.8 * self.v + steer + self.wind + gust  # damped lateral velocity
        self.x += self.v
        self.t += 1
        terminated = abs(self.x) > 1.0
        reward = 0.0 if terminated else 1.0 - self.x**2  # 1 on the centre line, 0 at the edge
        return self._obs(), reward, terminated, self.t >= MAX_STEPS

    def _obs(self) -> np.ndarray:
        return np.array([self.x, 10.0 * self.v], np.float32)


# -----------------------------------------------------------------------------
# The answer: Q-network, TD targets, replay buffer and the DQN training loop


def build_q_network(obs_dim: int, num_actions: int) -> keras.Model:
    """An MLP mapping observations (B, obs_dim) float32 to Q-values (B, num_actions).

    Linear output: Q-values are unbounded returns, not probabilities.
    """
    return keras.Sequential(
        [
            keras.layers.Input((obs_dim,)),  # (B, 2)
            keras.layers.Dense(32, activation="relu"),  # (B, 32)
            keras.layers.Dense(32, activation="relu"),  # (B, 32)
            keras.layers.Dense(num_actions),  # (B, 3): one Q-value per action
        ]
    )


def td_targets(
    rewards: tf.Tensor, next_q: tf.Tensor, terminated: tf.Tensor, gamma: float
) -> tf.Tensor:
    """One-step Q-learning targets y = r + gamma * (1 - terminated) * max_a' Q_target(s', a').

    This is vanilla DQN: the target network both picks and values a'. (Taking the target
    network's argmax and then its value at that action, as the seed's ``next_actions``
    starts to, is the same max.) Double DQN would pick a' = argmax of the ONLINE network
    and take its value from the target network, which curbs the max's overestimation.
    ``rewards`` (B,) float32, ``next_q`` (B, num_actions) float32 from the TARGET network,
    ``terminated`` (B,) float32 or bool, 1 where s' ended the episode for real (off the
    road). Truncated episodes are NOT terminated: the car was still driving, so their
    target still bootstraps. Returns (B,) float32.
    """
    rewards = tf.cast(rewards, tf.float32)
    alive = 1.0 - tf.cast(terminated, tf.float32)  # (B,): 0 kills the bootstrap term
    return rewards + gamma * alive * tf.reduce_max(tf.cast(next_q, tf.float32), axis=-1)


class ReplayBuffer:
    """A ring buffer of transitions (s, a, r, s', terminated) in preallocated NumPy arrays.

    Sampling uniformly from many past steps breaks the correlation between consecutive
    transitions, and reuses each transition in many updates.
    """

    def __init__(self, capacity: int, obs_dim: int) -> None:
        self.capacity, self.size, self.next = capacity, 0, 0
        self.obs = np.zeros((capacity, obs_dim), np.float32)
        self.actions = np.zeros(capacity, np.int32)
        self.rewards = np.zeros(capacity, np.float32)
        self.next_obs = np.zeros((capacity, obs_dim), np.float32)
        self.terminated = np.zeros(capacity, np.float32)

    def add(
        self,
        obs: np.ndarray,
        action: int,
        reward: float,
        next_obs: np.ndarray,
        terminated: bool,
    ) -> None:
        """Store one transition, overwriting the oldest once the buffer is full."""
        i = self.next
        self.obs[i], self.actions[i], self.rewards[i] = obs, action, reward
        self.next_obs[i], self.terminated[i] = next_obs, float(terminated)
        self.next = (i + 1) % self.capacity
        self.size = min(self.size + 1, self.capacity)

    def sample(self, batch_size: int, rng: np.random.Generator) -> tuple[np.ndarray, ...]:
        """(obs (B, D), actions (B,), rewards (B,), next_obs (B, D), terminated (B,))."""
        idx = rng.integers(0, self.size, size=batch_size)
        return (
            self.obs[idx],
            self.actions[idx],
            self.rewards[idx],
            self.next_obs[idx],
            self.terminated[idx],
        )


def train_dqn(
    q_net: keras.Model, env: LaneKeepingEnv, total_steps: int = TOTAL_STEPS, seed: int = SEED
) -> dict[str, list[float]]:
    """Train ``q_net`` in place with DQN for ``total_steps`` steps of ``env``.

    ``env`` has ``reset() -> obs`` and ``step(action) -> (obs, reward, terminated,
    truncated)`` and ``num_actions``; ``seed`` drives exploration and replay sampling.
    Returns {"episode_lengths": [...], "losses": [...]} for inspection.
    """
    rng = synthetic.rng(seed)
    # The target network is a separate copy with its own variables. The seed's
    # keras.Model(model.input, model.output) reuses the same layers: a "copy" that moves
    # with every update, so set_weights on it does nothing and the targets chase themselves.
    target_net = keras.models.clone_model(q_net)
    target_net.set_weights(q_net.get_weights())
    optimizer = keras.optimizers.Adam(learning_rate=LEARNING_RATE)
    huber = keras.losses.Huber()  # quadratic near 0, linear for |error| > 1: bounded gradients
    buffer = ReplayBuffer(BUFFER_SIZE, q_net.input_shape[-1])

    def pick_greedy(obs: tf.Tensor) -> tf.Tensor:
        return tf.argmax(q_net(obs[None], training=False)[0])

    # One compiled forward pass per step (~1 ms here); model.predict (the seed) sets up a
    # data pipeline on every call and is two orders of magnitude slower for one observation.
    greedy_action = tf.function(pick_greedy)

    def td_update(
        obs: tf.Tensor,  # (B, D)
        actions: tf.Tensor,  # (B,) int32
        rewards: tf.Tensor,  # (B,)
        next_obs: tf.Tensor,  # (B, D)
        terminated: tf.Tensor,  # (B,) 1.0 where s' is off the road
    ) -> tf.Tensor:
        # Targets from the frozen target net, outside the tape: no gradient flows into them.
        targets = td_targets(rewards, target_net(next_obs, training=False), terminated, GAMMA)
        with tf.GradientTape() as tape:
            q = q_net(obs, training=True)  # (B, A)
            q_taken = tf.gather(q, actions, batch_dims=1)  # (B,): Q(s, a) of the actions taken
            loss = huber(targets, q_taken)
        grads = tape.gradient(loss, q_net.trainable_variables)
        optimizer.apply_gradients(zip(grads, q_net.trainable_variables, strict=True))
        return loss

    train_step = tf.function(td_update)  # traced once into a graph, run at every update

    phase = "train DQN"
    events.start(phase, total_steps)
    history: dict[str, list[float]] = {"episode_lengths": [], "losses": []}
    obs = env.reset()
    for step in range(total_steps):
        # Epsilon-greedy, epsilon decaying linearly from 1 (pure exploration) to 0.05.
        epsilon = max(
            EPSILON_END,
            EPSILON_START - (EPSILON_START - EPSILON_END) * step / EPSILON_DECAY_STEPS,
        )
        if rng.random() < epsilon:
            action = int(rng.integers(env.num_actions))
        else:
            action = int(greedy_action(tf.constant(obs)))
        next_obs, reward, terminated, truncated = env.step(action)
        # Store `terminated` only: a truncated step still has a future worth bootstrapping.
        buffer.add(obs, action, reward, next_obs, terminated)
        obs = next_obs
        if terminated or truncated:
            history["episode_lengths"].append(env.t)
            obs = env.reset()

        if buffer.size >= WARMUP_STEPS:
            loss = train_step(*buffer.sample(BATCH_SIZE, rng))
            history["losses"].append(float(loss))
        if step % TARGET_SYNC_EVERY == 0:
            target_net.set_weights(q_net.get_weights())  # hard update of the target net
        if (step + 1) % 100 == 0:
            recent = history["episode_lengths"][-5:] or [0]
            events.advance(phase, step + 1, epsilon=epsilon, episode_length=float(np.mean(recent)))
    return history


# -----------------------------------------------------------------------------
# Data (the environment) and measurement


def make_data(seed: int = SEED) -> LaneKeepingEnv:
    """RL has no dataset: the data is the environment, a seeded LaneKeepingEnv."""
    return LaneKeepingEnv(seed)


def evaluate(
    policy: Callable[[np.ndarray], np.ndarray], seeds: tuple[int, ...]
) -> tuple[float, float, float]:
    """Run one episode per seed in lockstep; ``policy`` maps obs (n, 2) to actions (n,).

    Returns (mean return, mean episode length, fraction of episodes never leaving the road).
    """
    envs = [LaneKeepingEnv(s) for s in seeds]
    obs = np.stack([e.reset() for e in envs])  # (n, 2)
    returns = np.zeros(len(envs))
    running = np.ones(len(envs), bool)
    crashed = np.zeros(len(envs), bool)
    while running.any():
        actions = policy(obs)  # (n,): one batched forward pass for all episodes
        for i in np.flatnonzero(running):
            obs[i], reward, terminated, truncated = envs[i].step(int(actions[i]))
            returns[i] += reward
            crashed[i] = terminated
            running[i] = not (terminated or truncated)
    lengths = np.array([e.t for e in envs])
    return float(returns.mean()), float(lengths.mean()), float((~crashed).mean())


class Answer(Protocol):
    """What check(impl) calls: the ANSWER functions, as check calls them (the
    reference may take more parameters, with defaults)."""

    def build_q_network(self, obs_dim: int, num_actions: int) -> keras.Model: ...

    def td_targets(
        self, rewards: tf.Tensor, next_q: tf.Tensor, terminated: tf.Tensor, gamma: float
    ) -> tf.Tensor: ...

    def train_dqn(
        self, q_net: keras.Model, env: LaneKeepingEnv, *, total_steps: int, seed: int
    ) -> dict[str, list[float]]: ...


def reference_comparisons(impl: Answer) -> dict[str, Comparison]:
    """Every equality-type comparison: ``impl.td_targets`` vs targets computed by hand.

    Four transitions, two terminal. The hand values are float64; the candidate's are one
    float32 multiply-add each, so they agree to a few eps (1.2e-7) relative to |y| <= 3.7:
    ATOL = 1e-6, RTOL = 1e-5 hold on any CPU (measured 1.9e-7 apart, tolerance used 0.005,
    oneDNN on and off). A candidate who bootstraps through terminal states misses by 6.3
    where 0 is expected, 6.3e6 times outside.
    """
    rewards = np.array([1.0, 0.5, -1.0, 0.0], np.float32)  # (4,)
    next_q = np.array([[1.0, 2.0, 3.0], [4.0, -1.0, 0.0], [-2.0, -3.0, -1.0], [7.0, 1.0, 2.0]])
    terminated = np.array([0.0, 1.0, 0.0, 1.0], np.float32)
    alive = 1.0 - terminated.astype(np.float64)
    expected = rewards.astype(np.float64) + 0.9 * alive * next_q.max(axis=1)  # [3.7, 0.5, -1.9, 0]
    got = impl.td_targets(rewards, next_q.astype(np.float32), terminated, 0.9)
    return {TD_CHECK: compare(np.asarray(got, np.float64), expected, atol=ATOL, rtol=RTOL)}


def check(impl: Answer) -> SolutionReport:
    """Check ``impl.td_targets`` on known values, then train with ``impl.train_dqn``."""
    report = SolutionReport(solution="rl.dqn_lane_keeping")
    _td_targets(report, impl)
    q_net = _training(report, impl)
    _evaluation(report, q_net)
    _value_range(report, q_net)
    return report


def _td_targets(report: SolutionReport, impl: Answer) -> None:
    """1. TD targets on a hand-made batch: two transitions end the episode (no bootstrap)."""
    td = reference_comparisons(impl)[TD_CHECK]
    report.metric("max |td_targets - expected|", td.max_abs_diff)
    report.check_close(
        TD_CHECK,
        td,
        "y = r + gamma * (1 - terminated) * max Q_target(s'): no bootstrap past a crash; one "
        f"float32 multiply-add vs float64 hand values, a few eps relative: bound {ATOL:g} + "
        f"{RTOL:g}*|y| (reference 1.9e-7 apart); bootstrapping through the terminal rows (no "
        "1 - terminated) is 6.3 off at the last, 6.3e6 times outside; " + td.detail,
    )


def _training(report: SolutionReport, impl: Answer) -> keras.Model:
    """2. Train the candidate's network with the candidate's DQN loop; returns the network."""
    keras.utils.set_random_seed(SEED)
    env = make_data(SEED)
    q_net = impl.build_q_network(env.obs_dim, env.num_actions)
    with report.timed("train wall time"):
        impl.train_dqn(q_net, env, total_steps=TOTAL_STEPS, seed=SEED)
    report.metric("training environment steps", TOTAL_STEPS)
    return q_net


def _evaluation(report: SolutionReport, q_net: keras.Model) -> None:
    """3. Evaluate on 20 unseen episodes: greedy DQN policy vs random and steer-straight."""

    def greedy_actions(obs: tf.Tensor) -> tf.Tensor:
        return tf.argmax(q_net(obs, training=False), axis=-1)  # (n,)

    greedy = tf.function(greedy_actions)
    dqn_return, dqn_length, dqn_on_road = evaluate(
        lambda obs: greedy(tf.constant(obs)).numpy(), EVAL_SEEDS
    )
    report.metric("DQN greedy mean return", dqn_return)
    report.metric("best possible return (centred every step)", float(MAX_STEPS))
    report.metric("DQN greedy mean episode length", dqn_length, "steps")
    report.metric("DQN episodes that stay on the road", dqn_on_road)
    report.check(
        "DQN greedy steps on road / max steps",
        dqn_length / MAX_STEPS,
        ">=",
        0.9,
        "the learned policy keeps the car on the road for (almost) the whole episode "
        "(reference 1.0); a target never re-synced after the first copy: 0.715; the seed's "
        "shared-layer target: 0.13",
    )
    policy_rng = synthetic.rng(SEED + 1)
    random_return, random_length, _ = evaluate(
        lambda obs: policy_rng.integers(0, 3, size=len(obs)), EVAL_SEEDS
    )
    straight_return, straight_length, _ = evaluate(lambda obs: np.ones(len(obs), int), EVAL_SEEDS)
    report.metric("random policy mean return", random_return)
    report.metric("steer-straight mean return", straight_return)
    report.metric("random policy mean episode length", random_length, "steps")
    report.metric("steer-straight mean episode length", straight_length, "steps")
    report.check(
        "DQN return / random-policy return",
        dqn_return / random_return,
        ">=",
        4.0,
        "far beyond random steering (which leaves the road within ~20 steps; reference "
        "7.3x); a target never re-synced: 3.8x; the seed's shared-layer target: 0.6x",
    )


def _value_range(report: SolutionReport, q_net: keras.Model) -> None:
    """4. Sanity of the values: rewards are <= 1, so no discounted return exceeds
    1 / (1 - gamma) = 20. Q-values far above that are divergence (bootstrapping from a
    network that moves with every update), whatever the policy happens to do.
    """
    start_obs = np.stack([LaneKeepingEnv(s).reset() for s in EVAL_SEEDS])  # (20, 2)
    max_start_q = float(np.max(q_net(start_obs, training=False)))
    max_return = 1.0 / (1.0 - GAMMA)
    report.metric("max Q at evaluation start states", max_start_q)
    report.metric("max discounted return 1/(1-gamma)", max_return)
    report.check(
        "max Q at evaluation start states",
        max_start_q,
        "<=",
        1.1 * max_return,
        "Q-values stay within the possible discounted return (10% slack): no divergence",
    )


if __name__ == "__main__":
    print_check_of(__name__)
