import Agents
import ArgumentParser
import CLIKit
import Environments
import Foundation
import Support
import Viewer

/// `rlbench play CHECKPOINT`: a trained agent plays in a window.
struct Play: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Watch a saved agent play in a window (deterministic policy).",
        discussion: """
        Keys: space pauses, +/- change speed, R restarts the episode, S saves a screenshot PNG, Q or closing the \
        window ends. Grid worlds show each cell's value (max Q or V) as a heat map and the greedy action as arrows. \
        Needs a display (DISPLAY or WAYLAND_DISPLAY); each finished episode's return is printed.
        """)

    @Argument(help: "A checkpoint written by `rlbench run` (e.g. runs/ppo-CartPole-v1-seed0/final.safetensors).")
    var checkpoint: String

    @Option(name: .long, help: "Environment id (default: the one the agent was trained on; must have the same spaces).")
    var env: String?

    @Option(name: .long, parsing: .unconditional, help: "Episodes to play before the window closes.",
            transform: parseCount("--episodes", in: 1...Limits.evaluationEpisodes))
    var episodes = 5

    @Option(name: .long, parsing: .unconditional, help: "Frames (environment steps) per second (default: the environment's own).")
    var fps: Double?

    @Option(name: .long, parsing: .unconditional, help: "Seed of the first episode (episode k uses seed + k).", transform: parseSeed)
    var seed: UInt64 = 1_000_000

    @Option(name: .long, parsing: .unconditional, help: "Window magnification.")
    var scale = 1.0

    @Option(name: .long, help: "Folder for screenshots (key S).")
    var screenshots = "."

    func validate() throws {
        if let fps, !(fps > 0 && fps.isFinite) { throw ValidationError("--fps must be a positive number, got \(fps)") }
        guard scale > 0 && scale.isFinite else { throw ValidationError("--scale must be a positive number") }
    }

    func run() throws {
        let (agent, descriptor, factory, _) = try fail { try SavedAgent.load(URL(fileURLWithPath: checkpoint), environment: env) }
        let player = EpisodePlayer(environment: try fail { try factory.make() }, agent: agent, seed: seed)
        let title = "\(descriptor.name) \(factory.id)".uppercased()
        let first = try fail { try player.nextFrame() }
        let window = try fail {
            let size = StatusPanel.compose(frame: first, status: status(title: title, player: player),
                                           indicators: ["SPACE PAUSE  +/- SPEED"])
            return try ViewerWindow(title: "rlbench — \(descriptor.name) playing \(factory.id)",
                                    width: size.width, height: size.height, scale: scale)
        }
        let loop = LiveViewLoop(window: window, fps: fps ?? Double(player.environment.spec?.renderFPS ?? 30),
                                screenshotDirectory: URL(fileURLWithPath: screenshots))
        let panel = LatestValue<ViewerStatus>()
        var reported = 0
        var lastEpisodeEnded: ContinuousClock.Instant?
        let end = try fail {
            try loop.run(source: player.frameSource, status: panel, while: {
                while reported < player.returns.count {
                    print(String(format: "episode %d: return %.2f", reported + 1, player.returns[reported]))
                    fflush(nil)  // each episode's line as it ends, also when piped
                    reported += 1
                }
                panel.publish(status(title: title, player: player))
                // After the last episode, hold its final frame on screen for a moment.
                guard reported >= episodes else { return true }
                if lastEpisodeEnded == nil {
                    lastEpisodeEnded = .now
                    loop.isPaused = true
                }
                return ContinuousClock.now - lastEpisodeEnded! < .milliseconds(750)
            })
        }
        if end == .finished { window.close() }
        if !player.returns.isEmpty {
            let mean = player.returns.reduce(0, +) / Double(player.returns.count)
            print(String(format: "%@ on %@: mean return %.2f over %d episodes", descriptor.name, factory.id, mean,
                         player.returns.count))
        }
    }

    private func status(title: String, player: EpisodePlayer) -> ViewerStatus {
        let finished = player.returns
        return ViewerStatus(title: title, episode: player.episode,
                            lastReturn: finished.last, meanReturn: finished.isEmpty ? nil : finished.reduce(0, +) / Double(finished.count),
                            notes: ["RETURN SO FAR \(ViewerStatus.format(player.episodeReturn))"], returns: finished)
    }
}
