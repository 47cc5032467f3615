import Agents
import Environments
import Foundation
import Imaging
import Testing
import TestSupport
import Viewer
import Training

/// The display side of `run --view` and `play`, without a window: frames, episodes, snapshots, grid overlays.
struct EpisodePlayerTests {
    @Test func framesFollowTheGreedyPolicyStepByStep() throws {
        let factory = EnvironmentFactory(id: "CartPole-v1")
        let agent = try PPOAgent(environment: factory, hyperParameters: HyperParameters(defaults: PPOAgent.descriptor.defaults),
                                 seed: 3)
        let player = EpisodePlayer(environment: try factory.make(), agent: agent, seed: 40)
        let reference = try factory.make()
        var observation = reference.reset(seed: 40)
        #expect(try player.nextFrame() == reference.render())
        #expect(player.episode == 1)
        var expectedReturn = 0.0
        var steps = 0
        while true {
            let result = try reference.step(agent.act(observation, deterministic: true))
            observation = result.observation
            expectedReturn += result.reward
            steps += 1
            #expect(try player.nextFrame() == reference.render(), "frame \(steps)")
            if result.terminated || result.truncated { break }
        }
        #expect(player.episodeEnded)
        #expect(player.returns == [expectedReturn])
        // The next frame starts episode 2 with seed 41.
        _ = reference.reset(seed: 41)
        #expect(try player.nextFrame() == reference.render())
        #expect(player.episode == 2 && !player.episodeEnded)
    }

    @Test func restartBeginsANewEpisode() throws {
        let factory = EnvironmentFactory(id: "MountainCar-v0")
        let agent = try DQNAgent(environment: factory, hyperParameters: HyperParameters(defaults: DQNAgent.descriptor.defaults),
                                 seed: 0)
        let player = EpisodePlayer(environment: try factory.make(), agent: agent, seed: 7)
        for _ in 0..<5 { _ = try player.nextFrame() }
        player.restart()
        let frame = try player.nextFrame()
        let reference = try factory.make()
        reference.reset(seed: 8)
        #expect(frame == reference.render())
        #expect(player.episode == 2 && player.episodeReturn == 0)
    }

    @Test func followsPolicySnapshotsAndDrawsValuesAndArrowsOnGrids() throws {
        // Train Q-learning on CliffWalking, keeping the snapshots it publishes.
        let directory = Scratch.directory("player")
        var options = RunOptions(agent: "qlearning", environment: "CliffWalking-v1", outputDirectory: directory)
        options.progress = .quiet
        options.evaluationEpisodes = 0
        let training = try TrainingRun(options)
        let snapshots = LatestValue<Data>()
        training.onPolicySnapshot = { snapshots.publish($0) }
        try training.run()
        #expect(snapshots.version >= 2, "a snapshot before training and one at its end")

        // A fresh (untrained) agent follows the newest snapshot: it walks the optimal path along the cliff.
        let factory = EnvironmentFactory(id: "CliffWalking-v1")
        let fresh = try QLearningAgent(environment: factory, hyperParameters: training.hyperParameters, seed: 99)
        let player = EpisodePlayer(environment: try factory.make(), agent: fresh, seed: 0, snapshots: snapshots)
        var frames = 0
        while !player.episodeEnded && frames < 1000 {
            _ = try player.nextFrame()
            frames += 1
        }
        #expect(player.policyStep == training.agent.stepsDone)
        #expect(player.returns == [-13])

        // The overlay shows max_a Q(s, a) and the greedy action of the trained table in every cell.
        let trained = try #require(training.agent as? QLearningAgent)
        let overlay = try #require(EpisodePlayer.overlay(for: fresh, states: 48))
        let values = try #require(overlay.values)
        for s in 0..<48 {
            let row = trained.q[(s * 4)..<(s * 4 + 4)]
            #expect(values[s] == row.max()!, "state \(s)")
            #expect(overlay.arrows?[s] == row.firstIndex(of: row.max()!)! - s * 4, "state \(s)")
        }
        // and the frames carry it: the start cell is tinted differently from a plain render.
        let plain = try factory.make()
        plain.reset(seed: 0)
        player.restart()
        #expect(try player.nextFrame() != plain.render())
    }
}
