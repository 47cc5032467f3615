import Agents
import Testing
import Training

/// The agents' typed configs: their declarations are the defaults runs start from and the listing shows.
@Suite struct AgentConfigTests {
    /// SB3's defaults as every agent accepted them before typed configs (`rlbench list agents` of then): a run's
    /// `config.yml` and checkpoint metadata start from these, so they must not drift.
    static let defaults: [String: String] = [
        "ppo": "batch_size: 64; clip_range: 0.2; clip_range_vf: 0; ent_coef: 0; gae_lambda: 0.95; gamma: 0.99; learning_rate: 0.0003; max_grad_norm: 0.5; n_envs: 1; n_epochs: 10; n_steps: 2048; n_timesteps: 1000000; normalize: false; normalize_advantage: true; policy_kwargs: {activation_fn: tanh, log_std_init: 0, net_arch: [64, 64], ortho_init: true}; sde_sample_freq: -1; target_kl: 0; use_sde: false; vf_coef: 0.5",
        "dqn": "batch_size: 32; buffer_size: 1000000; double_q: false; dueling: false; exploration_final_eps: 0.05; exploration_fraction: 0.1; exploration_initial_eps: 1; gamma: 0.99; gradient_steps: 1; learning_rate: 0.0001; learning_starts: 100; max_grad_norm: 10; n_steps: 1; n_timesteps: 100000; policy_kwargs: {activation_fn: relu, net_arch: [64, 64]}; target_update_interval: 10000; tau: 1; train_freq: 4",
        "a2c": "ent_coef: 0; gae_lambda: 1; gamma: 0.99; learning_rate: 0.0007; max_grad_norm: 0.5; n_envs: 1; n_steps: 5; n_timesteps: 1000000; normalize: false; normalize_advantage: false; policy_kwargs: {activation_fn: tanh, log_std_init: 0, net_arch: [64, 64], ortho_init: true}; rms_prop_eps: 1e-05; use_rms_prop: true; vf_coef: 0.5",
        "reinforce": "ent_coef: 0; gamma: 0.99; learning_rate: 0.003; max_grad_norm: 0.5; n_steps: 2048; n_timesteps: 200000; normalize_advantage: true; policy_kwargs: {activation_fn: tanh, log_std_init: 0, net_arch: [64, 64], ortho_init: true}; vf_coef: 0.5",
        "qlearning": "exploration_final_eps: 0.05; exploration_fraction: 0.5; exploration_initial_eps: 1; gamma: 0.99; learning_rate: 0.1; n_timesteps: 200000",
        // sb3-contrib's RecurrentPPO: PPO's keys with its defaults, and the recurrent policy_kwargs.
        "recurrent-ppo": "batch_size: 128; clip_range: 0.2; clip_range_vf: 0; ent_coef: 0; gae_lambda: 0.95; gamma: 0.99; learning_rate: 0.0003; max_grad_norm: 0.5; n_envs: 1; n_epochs: 10; n_steps: 128; n_timesteps: 1000000; normalize: false; normalize_advantage: true; policy_kwargs: {activation_fn: tanh, enable_critic_lstm: true, log_std_init: 0, lstm_hidden_size: 256, n_lstm_layers: 1, net_arch: [64, 64], ortho_init: true, shared_lstm: false}; sde_sample_freq: -1; target_kl: 0; use_sde: false; vf_coef: 0.5",
        "sarsa": "exploration_final_eps: 0.05; exploration_fraction: 0.5; exploration_initial_eps: 1; gamma: 0.99; learning_rate: 0.1; n_timesteps: 200000",
    ]

    @Test func everyAgentDeclaresItsKeysOnceWithHelpAndSB3sDefaults() {
        for type in AgentCatalog.all {
            let d = type.descriptor
            let keys = d.help.map(\.key)
            #expect(Set(keys).count == keys.count, "\(d.name) declares a key twice")
            #expect(Set(keys) == Set(d.defaults.keys), "\(d.name): every key has a default and a help line")
            #expect(d.help.allSatisfy { !$0.help.isEmpty }, "\(d.name)")
            let yaml = HyperParameters(defaults: d.defaults).yaml.split(separator: "\n").joined(separator: "; ")
            #expect(yaml == Self.defaults[d.name], "\(d.name)")
        }
    }

    /// Decoding the defaults gives the declared config back, which encodes to the same defaults.
    @Test func defaultsRoundTrip() throws {
        func roundTrip<C: AgentConfig>(_: C.Type) throws {
            let decoded = try C(HyperParameters(defaults: C.defaults))
            #expect(decoded.settings.values == C.defaults, "\(C.self)")
        }
        try roundTrip(PPOAgent.Config.self)
        try roundTrip(RecurrentPPOAgent.Config.self)
        try roundTrip(A2CAgent.Config.self)
        try roundTrip(REINFORCEAgent.Config.self)
        try roundTrip(DQNAgent.Config.self)
        try roundTrip(TabularTDAgent.Config.self)
    }

    /// A key layered from a file or `--set` lands in the typed field, shared settings included; zoo forms decode too.
    @Test func layeredValuesReachTheTypedFields() throws {
        var hp = HyperParameters(defaults: PPOAgent.descriptor.defaults)
        try hp.apply(yaml: "gamma: 0.9\nlearning_rate: lin_0.001\nn_envs: 8\nnormalize: \"dict(norm_obs=True, norm_reward=True)\"",
                     source: "my.yml")
        try hp.apply(override: "policy_kwargs.net_arch=[32]")
        try hp.apply(override: "clip_range=0.1")
        let ppo = try PPOAgent.Config(hp)
        #expect(ppo.common.gamma == 0.9 && ppo.common.learningRate == .linear(0.001))
        #expect(ppo.rollout.numEnvs == 8 && ppo.rollout.normalize && ppo.clipRange == .constant(0.1))
        #expect(ppo.common.policy.policyLayers == [32] && ppo.common.policy.activation == .tanh)

        var dqn = HyperParameters(defaults: DQNAgent.descriptor.defaults)
        try dqn.apply(override: "train_freq=[8, step]")
        try dqn.apply(override: "gradient_steps=-1")
        try dqn.apply(override: "exploration_final_eps=0.1")
        let config = try DQNAgent.Config(dqn)
        #expect(config.trainFrequency == 8 && config.gradientSteps == -1 && config.exploration.final == 0.1)
    }

    /// Errors found after decoding name the key by its typed field, and where its value came from.
    @Test func checksAgainstTheEnvironmentNameTheKeyAndItsSource() throws {
        var hp = HyperParameters(defaults: PPOAgent.descriptor.defaults)
        try hp.apply(yaml: "use_sde: true", source: "sde.yml")
        #expect("\(hp.fail(\PPOAgent.Config.useSDE, "no"))" == "bad value for 'use_sde' in sde.yml: no")
        #expect { try PPOAgent(environment: EnvironmentFactory(id: "CartPole-v1"), hyperParameters: hp, seed: 0) } throws: {
            "\($0)".hasPrefix("bad value for 'use_sde' in sde.yml: state-dependent exploration needs continuous (Box) actions")
        }
        try hp.apply(yaml: "use_sde: false\npolicy_kwargs: {net_arch: [100000, 100000]}", source: "big.yml")
        #expect { try PPOAgent(environment: EnvironmentFactory(id: "CartPole-v1"), hyperParameters: hp, seed: 0) } throws: {
            "\($0)".hasPrefix("bad value for 'policy_kwargs' in big.yml: net_arch [100000, 100000] is too large")
        }
    }

    /// ε decays linearly from its initial to its final value over exploration_fraction of the run (DQN and tabular).
    @Test func explorationDecaysLinearly() throws {
        let config = try TabularTDAgent.Config(HyperParameters(defaults: TabularTDAgent.Config.defaults))
        #expect(config.exploration.epsilon(step: 0, total: 1000) == 1)
        #expect(abs(config.exploration.epsilon(step: 250, total: 1000) - 0.525) < 1e-12)
        #expect(config.exploration.epsilon(step: 500, total: 1000) == 0.05)
        #expect(config.exploration.epsilon(step: 900, total: 1000) == 0.05)
    }
}
