import Foundation

/// The largest sizes rlbench accepts, in one place. Each bounds an input that scales a run's memory or time, so that
/// a slip (an extra zero, `1e9` for `1e6`, a map or a config built to be huge) is an error naming the key, its value
/// and the limit before anything is written or allocated, rather than a crash for want of memory or a run that never
/// ends. The settings are checked where the typed configs are decoded (`ConfigField.int(…, max:)`, the configs'
/// `validate`), the files where they are read.
public enum Limits {
    // MARK: Training settings

    /// `n_envs`: environments stepped together.
    public static let environments = 1024
    /// Transitions in one rollout: `n_envs` × `n_steps` for PPO and A2C, REINFORCE's `n_steps`.
    public static let rolloutSteps = 1 << 24
    /// A rollout longer than this many steps and more than `rolloutOverrun` times the run's own steps is refused:
    /// the run would take one rollout's steps, not the steps asked for.
    public static let longRollout = 1 << 16
    public static let rolloutOverrun = 16
    /// Transitions DQN's replay buffer holds (`buffer_size`).
    public static let replayTransitions = 1 << 28
    /// `batch_size` of any trainer.
    public static let batchSize = 1 << 16
    /// Gradient steps of one update (DQN's `gradient_steps`).
    public static let gradientSteps = 1 << 16
    /// Passes over a rollout (PPO's `n_epochs`).
    public static let updateEpochs = 10_000
    /// Passes over a data set (`epochs` of classifiers and generative models, `--epochs`).
    public static let dataEpochs = 1 << 20
    /// Episodes of an evaluation (`--eval-episodes`, `eval --episodes`).
    public static let evaluationEpisodes = 1_000_000
    /// Environment steps of a run (`n_timesteps`, `--steps`).
    public static let timesteps = 1 << 40

    // MARK: Files

    /// Bytes of a YAML config (`--config`, a tuned file, `config.yml`).
    public static let configBytes = 1 << 20
    /// Values in a YAML config once its aliases are expanded (a config holds dozens; an alias bomb, billions).
    public static let configValues = 10_000
    /// Nesting depth of a YAML config (lists and mappings within each other).
    public static let configDepth = 64
    /// Bytes of a GridWorld map.
    public static let mapBytes = 1 << 22
    /// Cells of a GridWorld map (rows × columns).
    public static let mapCells = 1 << 20
    /// Bytes of an IDX data file after decompression (MNIST's training images are 47 MB).
    public static let idxBytes = 1 << 30
    /// Bytes of a MinAtar parity recording after decompression (each is under 300 KB).
    public static let recordingBytes = 1 << 26
    /// Bytes of a Stable-Baselines3 model zip `rlbench import` reads (an MlpPolicy's is tens of kilobytes to megabytes).
    public static let modelZipBytes = 1 << 30

    // MARK: Memory

    /// The most one run's large buffers (a rollout, a replay buffer) may take: half the machine's physical memory.
    public static var memoryBytes: Double { Double(ProcessInfo.processInfo.physicalMemory) / 2 }

    /// Why `bytes` for `what` cannot be allocated on this machine, or nil when they fit in `memoryBytes`.
    public static func memoryProblem(bytes: Double, for what: String) -> String? {
        guard bytes > memoryBytes else { return nil }
        return "\(what) would take \(gibibytes(bytes)), more than half of this machine's \(gibibytes(memoryBytes * 2)) of memory"
    }

    static func gibibytes(_ bytes: Double) -> String { String(format: "%.1f GiB", bytes / Double(1 << 30)) }
}
