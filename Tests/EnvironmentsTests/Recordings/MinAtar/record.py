"""Records MinAtar trajectories from the `minatar` package (PyPI 1.0.15) through its Gymnasium interface, with every
random number the package draws, for rlbench's parity tests (Tests/EnvironmentsTests/MinAtarParityTests.swift).

    python3 Tests/EnvironmentsTests/Recordings/MinAtar/record.py [OUTPUT_DIR]

One file per game, `<Game>-v1.jsonl.gz`: gzipped, one JSON object per line, each a run of `steps` steps from one seed (a fresh
`gym.make`, the package's RandomState seeded as `reset(seed=...)` seeds it), with a reset without seed after each
episode end, as an agent's loop does:

    {"env": "MinAtar/Breakout-v1", "seed": 0, "steps": 300, "episodes": 12, "player": "random",
     "actions": [..],                     # the agent's actions (a uniformly random policy, or a scripted player)
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
# A fourth run per game: a scripted player that reads the game's state (1 step in 5 random; 3 in 100 in Breakout and
# Space Invaders), for 1,500 steps, so that
# the rarer rules happen: Freeway's crossings (cars drawn again), Breakout's new rows of bricks, Asterix's and Space
# Invaders' difficulty ramps, Seaquest's surfacing with divers.
PLAYER_SEED, PLAYER_STEPS = 3, 1500


def scripted(game, env, rng):
    """The action (an index into the -v1 action set) a simple player picks from the game's internal state."""
    g = env.unwrapped.game.env
    actions = env.unwrapped.action_set
    def pick(name):
        return actions.index(g.action_map.index(name))
    if rng.random() < (0.03 if game in ("Breakout", "SpaceInvaders") else 0.2):
        return int(rng.integers(len(actions)))
    if game == "Breakout":                  # be where the ball is going
        target = min(max(g.ball_x + (1 if g.ball_dir in (1, 2) else -1), 0), 9)
        return pick("l") if target < g.pos else pick("r") if target > g.pos else pick("n")
    if game == "Freeway":                   # always up
        return pick("u")
    if game == "SpaceInvaders":             # out of the way of bullets, else under the nearest alien column, firing
        if g.e_bullet_map[6:9, g.pos].any():
            return pick("r") if g.pos < 9 and not g.e_bullet_map[6:9, g.pos + 1].any() else pick("l")
        ys, xs = np.nonzero(g.alien_map)
        if len(xs) <= 4:                    # few, fast aliens: aim where the lowest will be when a bullet gets there
            i = int(np.argmax(ys))
            interval = max(1, min(len(xs), g.enemy_move_interval))
            target = int(np.clip(xs[i] + g.alien_dir * ((9 - ys[i]) // interval), 0, 9))
        else:
            target = min(set(xs.tolist()), key=lambda x: abs(x - g.pos))
        return pick("f") if target == g.pos else pick("l") if target < g.pos else pick("r")
    if game == "Asterix":                   # leave a row an enemy is coming along, else wait
        threat = any(e is not None and not e[3] and e[1] == g.player_y and abs(e[0] - g.player_x) <= 3 for e in g.entities)
        if threat:
            return pick("u") if g.player_y > 1 else pick("d")
        return pick("n")
    if game == "Seaquest":                  # collect divers, come up for air, shoot along the row
        if g.oxygen < 60 and g.diver_count > 0 or g.diver_count == 6:
            return pick("u")
        if any(e[1] == g.sub_y for e in g.e_fish + g.e_subs):
            return pick("f")
        if g.divers:
            d = min(g.divers, key=lambda d: abs(d[1] - g.sub_y) + abs(d[0] - g.sub_x))
            if d[1] != g.sub_y:
                return pick("d") if d[1] > g.sub_y else pick("u")
            return pick("l") if d[0] < g.sub_x else pick("r")
        return pick("d") if g.sub_y < 4 else pick("n")
    raise ValueError(game)


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


def record(game, seed, steps, player=None):
    env = gym.make(f"MinAtar/{game}-v1")
    base = env.unwrapped
    random = LoggedRandomState(seed)
    base.game.random = base.game.env.random = random   # what reset(seed=seed) does, with a logging generator
    policy = np.random.default_rng(1000 + seed)
    observation, _ = env.reset()
    actions, observations, rewards, terminated = [], [packed(observation)], [], []
    episodes = 1
    for _ in range(steps):
        action = scripted(game, env, policy) if player else int(policy.integers(env.action_space.n))
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
            "episodes": episodes, "player": "scripted" if player else "random", "actions": actions, "draws": random.draws, "observations": observations,
            "rewards": rewards, "terminated": terminated}


def minatar_version():
    from importlib.metadata import version
    return version("minatar")


def main():
    register_envs()
    out = sys.argv[1] if len(sys.argv) > 1 else os.path.dirname(os.path.abspath(__file__))
    for game in GAMES:
        runs = [record(game, seed, STEPS) for seed in SEEDS] + [record(game, PLAYER_SEED, PLAYER_STEPS, player=True)]
        lines = [json.dumps(run, separators=(",", ":")) for run in runs]
        # mtime=0: the same recording gives the same bytes.
        with gzip.GzipFile(os.path.join(out, f"{game}-v1.jsonl.gz"), "wb", compresslevel=9, mtime=0) as f:
            f.write(("\n".join(lines) + "\n").encode())


if __name__ == "__main__":
    main()
