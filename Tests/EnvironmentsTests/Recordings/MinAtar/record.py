"""Records MinAtar trajectories from the `minatar` package (PyPI 1.0.15) through its Gymnasium interface, with every
random number the package draws, for rlbench's parity tests (Tests/EnvironmentsTests/MinAtarParityTests.swift).

    python3 Tests/EnvironmentsTests/Recordings/MinAtar/record.py [OUTPUT_DIR]

One file per game, `<Game>-v1.jsonl.gz`: gzipped, one JSON object per line, each a run of `steps` steps from one seed (a fresh
`gym.make`, the package's RandomState seeded as `reset(seed=...)` seeds it), with a reset without seed after each
episode end, as an agent's loop does:

    {"env": "MinAtar/Breakout-v1", "seed": 0, "steps": 300, "episodes": 12,
     "actions": [..],                     # the agent's actions (a uniformly random policy)
     "draws": [0.42, [0, 2, 1], ...],     # each draw of the package's RandomState, in order: rand() as a number,
                                          # randint(low, high) as [low, high, value]; vector draws one entry each
     "observations": ["00ff..", ...],     # the reset observation, then one per step: np.packbits of the bool
                                          # 10×10×channels array (HWC, C order), in hexadecimal
     "rewards": [..], "terminated": [..]} # per step; an observation after a terminated step is the reset's
"""
import gzip
import json
import os
import sys

import gymnasium as gym
import numpy as np
import minatar
from minatar.gym import register_envs

GAMES = ["Breakout", "SpaceInvaders", "Freeway", "Asterix", "Seaquest"]
SEEDS = [0, 1, 2]
STEPS = 300


class LoggedRandomState:
    """numpy's RandomState, logging each value it returns (the package calls only rand and randint)."""

    def __init__(self, seed):
        self.inner = np.random.RandomState(seed)
        self.draws = []

    def rand(self, *size):
        value = self.inner.rand(*size)
        self.draws += [float(v) for v in np.atleast_1d(value)]
        return value

    def randint(self, low, high=None, size=None):
        value = self.inner.randint(low, high, size)
        lo, hi = (0, low) if high is None else (low, high)
        self.draws += [[int(lo), int(hi), int(v)] for v in np.atleast_1d(value)]
        return value


def packed(observation):
    return np.packbits(np.asarray(observation, dtype=bool).reshape(-1)).tobytes().hex()


def record(game, seed, steps):
    env = gym.make(f"MinAtar/{game}-v1")
    base = env.unwrapped
    random = LoggedRandomState(seed)
    base.game.random = base.game.env.random = random   # what reset(seed=seed) does, with a logging generator
    policy = np.random.default_rng(1000 + seed)
    observation, _ = env.reset()
    actions, observations, rewards, terminated = [], [packed(observation)], [], []
    episodes = 1
    for _ in range(steps):
        action = int(policy.integers(env.action_space.n))
        observation, reward, done, truncated, _ = env.step(action)
        assert not truncated
        actions.append(action)
        rewards.append(float(reward))
        terminated.append(bool(done))
        if done:
            observation, _ = env.reset()
            episodes += 1
        observations.append(packed(observation))
    return {"env": f"MinAtar/{game}-v1", "package": f"minatar {minatar_version()}", "seed": seed, "steps": steps,
            "episodes": episodes, "actions": actions, "draws": random.draws, "observations": observations,
            "rewards": rewards, "terminated": terminated}


def minatar_version():
    from importlib.metadata import version
    return version("minatar")


def main():
    register_envs()
    out = sys.argv[1] if len(sys.argv) > 1 else os.path.dirname(os.path.abspath(__file__))
    for game in GAMES:
        lines = [json.dumps(record(game, seed, STEPS), separators=(",", ":")) for seed in SEEDS]
        # mtime=0: the same recording gives the same bytes.
        with gzip.GzipFile(os.path.join(out, f"{game}-v1.jsonl.gz"), "wb", compresslevel=9, mtime=0) as f:
            f.write(("\n".join(lines) + "\n").encode())


if __name__ == "__main__":
    main()
