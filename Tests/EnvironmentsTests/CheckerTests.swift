import Environments
import Imaging
import Testing

@Suite struct CheckerTests {
    /// The checks that reported an error.
    func failedChecks(_ env: Environment) -> Set<CheckIssue.Check> {
        Set(checkEnvironment(env).filter { $0.severity == .error }.map(\.check))
    }

    @Test func correctEnvironmentPasses() throws {
        let issues = checkEnvironment(CounterEnvironment(length: 7, randomLength: true))
        #expect(issues.isEmpty, "\(issues)")
        try requireValidEnvironment(CounterEnvironment())
    }

    @Test(arguments: Registry.ids)
    func everyRegisteredEnvironmentPasses(id: String) throws {
        let issues = checkEnvironment(try Registry.make(id))
        #expect(issues.isEmpty, "\(id): \(issues)")
    }

    @Test func wrappedEnvironmentsPass() throws {
        // Normalizers are only reproducible with frozen statistics: while training, the same seed meets new statistics.
        let normalize = NormalizeObservation(try Registry.make("Pendulum-v1"))
        let scale = ScaleReward(try Registry.make("MountainCarContinuous-v0"))
        #expect(failedChecks(normalize) == [.seeding])
        #expect(failedChecks(scale) == [.seeding])
        normalize.training = false
        scale.training = false
        let wrapped: [Environment] = [
            RecordEpisodeStatistics(try Registry.make("CartPole-v1")), normalize, scale,
            try OneHotObservation(try Registry.make("FrozenLake-v1")),
        ]
        for env in wrapped {
            let issues = checkEnvironment(env)
            #expect(issues.isEmpty, "\(type(of: env)): \(issues)")
        }
    }

    @Test func longObservationIsReported() throws {
        let issues = checkEnvironment(CounterEnvironment(defects: .longObservation))
        let issue = try #require(issues.first { $0.check == .resetObservation })
        #expect(issue.severity == .error)
        #expect(issue.message.contains("wrote past the 2 values"))
    }

    @Test func shortObservationIsReported() throws {
        let issues = checkEnvironment(CounterEnvironment(defects: .shortObservation))
        let issue = try #require(issues.first { $0.check == .resetObservation })
        #expect(issue.message.contains("did not write observation values 1"))
    }

    @Test func observationOutsideSpaceIsReported() throws {
        let issues = checkEnvironment(CounterEnvironment(defects: .outsideSpace))
        let issue = try #require(issues.first { $0.check == .resetObservation })
        #expect(issue.message.contains("outside the observation space"))
        #expect(issue.message.contains("element 0 = -5.0 not in [-1.0, 1000.0]"))
    }

    @Test func unreproducibleSeedingIsReported() throws {
        #expect(failedChecks(CounterEnvironment(defects: .unseeded)) == [.seeding])
        let issue = try #require(checkEnvironment(CounterEnvironment(defects: .unseeded)).first)
        #expect(issue.message.contains("different trajectories"))
    }

    @Test func steppingAfterEndIsReported() {
        #expect(failedChecks(CounterEnvironment(defects: .stepsAfterEnd)) == [.stepAfterEnd])
    }

    @Test func otherDefectsAreReported() {
        #expect(failedChecks(CounterEnvironment(defects: .nanReward)) == [.reward])
        #expect(failedChecks(CounterEnvironment(defects: .acceptsAnyAction)) == [.invalidAction])
        #expect(failedChecks(CounterEnvironment(defects: .emptyRender)) == [.render])
    }

    @Test func requireValidEnvironmentThrowsWithEveryError() {
        do {
            try requireValidEnvironment(CounterEnvironment(defects: [.unseeded, .stepsAfterEnd]))
            Issue.record("a broken environment passed")
        } catch let failure as EnvironmentCheckFailed {
            #expect(Set(failure.issues.map(\.check)) == [.seeding, .stepAfterEnd])
            #expect(failure.description.contains("error [seeding]"))
        } catch {
            Issue.record("unexpected error \(error)")
        }
    }

    @Test func malformedSpacesAreReported() {
        final class BadSpace: Environment {
            var spec: EnvSpec?
            var observationSpace: Space { .box(low: [0, 0], high: [1], shape: [2]) }
            var actionSpace: Space { .discrete(0) }
            func reset(seed: UInt64?, into observation: UnsafeMutableBufferPointer<Float>) {}
            func step(_ action: Action, into observation: UnsafeMutableBufferPointer<Float>) throws -> StepOutcome {
                StepOutcome(reward: 0, terminated: true, truncated: false)
            }
            func render() -> RGBImage { RGBImage(width: 1, height: 1) }
        }
        let issues = checkEnvironment(BadSpace())
        #expect(issues.map(\.check) == [.spaces])
        #expect(issues.first?.message.contains("observation space has shape [2] but 2 low and 1 high bounds") == true)
    }
}
