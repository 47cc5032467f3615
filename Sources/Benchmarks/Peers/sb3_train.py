# The training run of `rlbench bench agents --sb3` in Stable-Baselines3.
# argv: agent, environment id, seed, the tuned keys as JSON; or `--probe` (exit 0 when the imports work, 3 when not).
import json, resource, sys, time
try:
    import gymnasium as gym
    import stable_baselines3 as sb3
    import torch
    from stable_baselines3.common.env_util import make_vec_env
    from stable_baselines3.common.evaluation import evaluate_policy
    from stable_baselines3.common.monitor import Monitor
except ImportError:
    sys.exit(3)
if sys.argv[1] == "--probe":
    sys.exit(0)
agent, env_id, seed, config = sys.argv[1], sys.argv[2], int(sys.argv[3]), json.loads(sys.argv[4])
torch.set_num_threads(2)
steps = int(float(config.pop("n_timesteps")))
n_envs = int(config.pop("n_envs", 1))
if config.pop("normalize", False):
    sys.exit("normalize is not supported by this comparison")
def linear(start):
    return lambda progress_remaining: progress_remaining * start
for key, value in list(config.items()):
    if isinstance(value, str) and value.startswith("lin_"):
        config[key] = linear(float(value[4:]))
algorithm = {"ppo": sb3.PPO, "dqn": sb3.DQN, "a2c": sb3.A2C}[agent]
model = algorithm("MlpPolicy", make_vec_env(env_id, n_envs=n_envs, seed=seed), seed=seed, device="cpu", **config)
start = time.perf_counter()
model.learn(total_timesteps=steps)
wall = time.perf_counter() - start
mean, std = evaluate_policy(model, Monitor(gym.make(env_id)), n_eval_episodes=100, deterministic=True)
print(json.dumps({"name": "sb3_train", "agent": agent, "env": env_id, "seed": seed, "steps": model.num_timesteps,
                  "wall_s": wall, "steps_per_s": model.num_timesteps / wall, "eval_mean": float(mean),
                  "eval_std": float(std), "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
                  "versions": "%s, torch %s" % (sb3.__version__, torch.__version__)}))
