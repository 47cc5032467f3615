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
evaluation_env = gym.make(env_id) if not env_id.startswith("MinAtar/") else None
if env_id.startswith("MinAtar/"):
    # The minatar package's Gymnasium ids, and rlbench's MinAtarCNN (the MinAtar paper's network) as a features
    # extractor: HWC observations permuted to NCHW, a 3x3 convolution of 16 channels, ReLU, 128 features, ReLU.
    from minatar.gym import register_envs
    from stable_baselines3.common.torch_layers import BaseFeaturesExtractor
    register_envs()

    class MinAtarCNN(BaseFeaturesExtractor):
        def __init__(self, observation_space, features_dim=128):
            super().__init__(observation_space, features_dim)
            h, w, c = observation_space.shape
            self.conv = torch.nn.Conv2d(c, 16, kernel_size=3)
            self.linear = torch.nn.Linear(16 * (h - 2) * (w - 2), features_dim)

        def forward(self, observations):
            x = torch.relu(self.conv(observations.permute(0, 3, 1, 2)))
            return torch.relu(self.linear(x.flatten(1)))

    kwargs = config.get("policy_kwargs", {})
    if kwargs.get("features_extractor_class", "MinAtarCNN") == "MinAtarCNN":
        kwargs["features_extractor_class"] = MinAtarCNN
        if agent != "dqn":
            kwargs["share_features_extractor"] = False      # rlbench's actor and critic each have their own
    config["policy_kwargs"] = kwargs
    # rlbench's evaluation stops an episode of an environment without a time limit after 1,000 steps (Freeway ends
    # itself after 2,501).
    evaluation_env = gym.wrappers.TimeLimit(gym.make(env_id), max_episode_steps=2501 if "Freeway" in env_id else 1000)
algorithm = {"ppo": sb3.PPO, "dqn": sb3.DQN, "a2c": sb3.A2C}[agent]
model = algorithm("MlpPolicy", make_vec_env(env_id, n_envs=n_envs, seed=seed), seed=seed, device="cpu", **config)
start = time.perf_counter()
model.learn(total_timesteps=steps)
wall = time.perf_counter() - start
mean, std = evaluate_policy(model, Monitor(evaluation_env), n_eval_episodes=100, deterministic=True)
print(json.dumps({"name": "sb3_train", "agent": agent, "env": env_id, "seed": seed, "steps": model.num_timesteps,
                  "wall_s": wall, "steps_per_s": model.num_timesteps / wall, "eval_mean": float(mean),
                  "eval_std": float(std), "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
                  "versions": "%s, torch %s" % (sb3.__version__, torch.__version__)}))
