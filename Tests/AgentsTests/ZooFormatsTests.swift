import Agents
import Testing
import Training

/// Sections copied from rl-baselines3-zoo's own `hyperparams/*.yml` load as they are.
@Suite struct ZooFormatsTests {
    /// An excerpt of the zoo's `hyperparams/ppo.yml`: keyed by environment id, with `!!float` tags, an anchor and a
    /// merge key, Python call strings and the `policy` class.
    static let zooFile = """
        atari:
          env_wrapper:
            - stable_baselines3.common.atari_wrappers.AtariWrapper
          policy: 'CnnPolicy'
          n_timesteps: !!float 1e7

        CartPole-v1:
          n_envs: 8
          n_timesteps: !!float 1e5
          policy: 'MlpPolicy'
          learning_rate: lin_0.001

        MountainCarContinuous-v0:
          normalize: true
          policy: 'MlpPolicy'
          policy_kwargs: "dict(log_std_init=-3.29, ortho_init=False)"

        HalfCheetahBulletEnv-v0: &pybullet-defaults
          normalize: "{'norm_obs': True, 'norm_reward': True}"
          policy_kwargs: "dict(log_std_init=-2,
                               ortho_init=False,
                               activation_fn=nn.ReLU,
                               net_arch=[dict(pi=[256, 256], vf=[128])]
                               )"
        Acrobot-v1:
          <<: *pybullet-defaults
          n_envs: 16
        """

    func ppo(_ environment: String) throws -> HyperParameters {
        var hp = HyperParameters(defaults: PPOAgent.descriptor.defaults)
        try hp.apply(yaml: Self.zooFile, source: "ppo.yml", environment: environment)
        return hp
    }

    @Test func theRunsEnvironmentSectionIsApplied() throws {
        let cartPole = try ppo("CartPole-v1")
        #expect(cartPole.values["n_envs"] == .number(8))
        #expect(cartPole.values["n_timesteps"] == .number(1e5))
        #expect(cartPole.values["learning_rate"] == .string("lin_0.001"))
        let mountainCar = try ppo("MountainCarContinuous-v0")
        #expect(mountainCar.values["n_envs"] == .number(1), "the CartPole section must not leak into another")
        #expect(mountainCar.values["normalize"] == .bool(true))
        let options = try PPOAgent.Config(mountainCar).common.policy
        #expect(options.logStdInit == -3.29 && options.orthoInit == false)
        #expect { try ppo("MountainCar-v0") } throws: {
            "\($0)".contains("sections are for Acrobot-v1, CartPole-v1") && "\($0)".contains("none for MountainCar-v0")
        }
    }

    @Test func pythonCallStringsAndMergeKeysBecomeMappings() throws {
        let acrobot = try ppo("Acrobot-v1")
        #expect(acrobot.values["n_envs"] == .number(16))
        #expect(acrobot.values["normalize"] == .bool(true))
        let options = try PPOAgent.Config(acrobot).common.policy
        let arch = try options.hiddenLayers(inputs: 6, outputs: 3)
        #expect(arch.policy == [256, 256] && arch.value == [128])
        #expect(options.activation == .relu && options.logStdInit == -2 && !options.orthoInit)
    }

    @Test func normalizeAndTrainFrequencyForms() throws {
        var ppo = HyperParameters(defaults: PPOAgent.descriptor.defaults)
        try ppo.apply(override: "normalize=dict(norm_obs=False, norm_reward=False)")
        #expect(ppo.values["normalize"] == .bool(false))
        #expect { try ppo.apply(override: "normalize={'norm_obs': True, 'norm_reward': False}") } throws: {
            "\($0)".contains("norm_obs and norm_reward must agree")
        }
        #expect { try ppo.apply(override: "policy_kwargs=dict(net_arch=[64, 64]") } throws: { "\($0)".contains("unbalanced") || "\($0)".contains("cannot read") }
        var dqn = HyperParameters(defaults: DQNAgent.descriptor.defaults)
        try dqn.apply(override: "train_freq=[4, step]")
        #expect(dqn.values["train_freq"] == .number(4))
        #expect { try dqn.apply(override: "train_freq=[1, episode]") } throws: { "\($0)".contains("[n, episode] is not supported") }
    }
}
