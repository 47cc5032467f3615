# The training run of `rlbench bench agents --sb3` in Stable-Baselines3 (recurrent-ppo: sb3-contrib's RecurrentPPO).
# argv: agent, environment id, seed, the tuned keys as JSON; or `--probe` (exit 0 when the imports work, 3 when not).
# MinAtar ids are the minatar package's Gymnasium ones, with rlbench's MinAtarCNN; rlbench's `...NoVel` ids are
# Gymnasium's environment with rl-baselines3-zoo's MaskVelocityWrapper; `normalize` is SB3's VecNormalize
# (observations and rewards), frozen for the evaluation.
import json, resource, sys, time
try:
    import gymnasium as gym
    import stable_baselines3 as sb3
    import torch
    from stable_baselines3.common.env_util import make_vec_env
    from stable_baselines3.common.evaluation import evaluate_policy
    from stable_baselines3.common.monitor import Monitor
    from stable_baselines3.common.vec_env import DummyVecEnv, VecNormalize
except ImportError:
    sys.exit(3)
if sys.argv[1] == "--probe":
    sys.exit(0)
agent, env_id, seed, config = sys.argv[1], sys.argv[2], int(sys.argv[3]), json.loads(sys.argv[4])
torch.set_num_threads(2)
steps = int(float(config.pop("n_timesteps")))
n_envs = int(config.pop("n_envs", 1))
normalize = config.pop("normalize", False)
def linear(start):
    return lambda progress_remaining: progress_remaining * start
for key, value in list(config.items()):
    if isinstance(value, str) and value.startswith("lin_"):
        config[key] = linear(float(value[4:]))
if "policy_kwargs" in config:
    kwargs = config["policy_kwargs"]
    if "activation_fn" in kwargs:
        kwargs["activation_fn"] = {"tanh": torch.nn.Tanh, "relu": torch.nn.ReLU, "elu": torch.nn.ELU,
                                   "leaky_relu": torch.nn.LeakyReLU}[kwargs["activation_fn"]]

class MaskVelocity(gym.ObservationWrapper):
    """rl-baselines3-zoo's MaskVelocityWrapper: the velocities read 0."""
    def __init__(self, env, indices):
        super().__init__(env)
        self.indices = indices
    def observation(self, observation):
        observation = observation.copy()
        observation[self.indices] = 0
        return observation

masked = {"CartPoleNoVel-v1": ("CartPole-v1", [1, 3]), "PendulumNoVel-v1": ("Pendulum-v1", [2])}
def make_env():
    base, indices = masked.get(env_id, (env_id, None))
    env = gym.make(base)
    return MaskVelocity(env, indices) if indices else env

minatar = env_id.startswith("MinAtar/")
def make_evaluation_env():
    # rlbench's evaluation stops an episode of an environment without a time limit after 1,000 steps (Freeway ends
    # itself after 2,501).
    if minatar:
        return gym.wrappers.TimeLimit(make_env(), max_episode_steps=2501 if "Freeway" in env_id else 1000)
    return make_env()

if minatar:
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

if agent == "recurrent-ppo":
    try:
        import sb3_contrib
    except ImportError:
        sys.exit(3)
    algorithm, policy, versions = sb3_contrib.RecurrentPPO, "MlpLstmPolicy", "sb3-contrib %s, " % sb3_contrib.__version__
else:
    algorithm, policy, versions = {"ppo": sb3.PPO, "dqn": sb3.DQN, "a2c": sb3.A2C}[agent], "MlpPolicy", ""
venv = make_vec_env(make_env, n_envs=n_envs, seed=seed)
if normalize:
    venv = VecNormalize(venv, gamma=config.get("gamma", 0.99))
model = algorithm(policy, venv, seed=seed, device="cpu", **config)
start = time.perf_counter()
model.learn(total_timesteps=steps)
wall = time.perf_counter() - start
evaluation = DummyVecEnv([lambda: Monitor(make_evaluation_env())])
if normalize:
    evaluation = VecNormalize(evaluation, training=False, norm_reward=False)
    evaluation.obs_rms = venv.obs_rms
mean, std = evaluate_policy(model, evaluation, n_eval_episodes=100, deterministic=True)
# The mean return of the last 100 training episodes (Monitor's, before any normalization), as rlbench's metrics.csv.
training = [info["r"] for info in model.ep_info_buffer]
print(json.dumps({"name": "sb3_train", "agent": agent, "env": env_id, "seed": seed, "steps": model.num_timesteps,
                  "wall_s": wall, "steps_per_s": model.num_timesteps / wall, "eval_mean": float(mean),
                  "eval_std": float(std), "train_last100_mean": sum(training) / len(training) if training else None, "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
                  "versions": "%s%s, torch %s" % (versions, sb3.__version__, torch.__version__)}))
