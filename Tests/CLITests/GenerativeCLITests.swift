import Foundation
import Testing
import TestSupport

/// `rlbench run <model>`, `rlbench sample` and `rlbench list models` as a user types them.
@Suite struct GenerativeCLITests {
    @Test func trainSampleAndList() throws {
        let dir = CLI.temporaryDirectory()
        let run = try CLI.run(["run", "vae", "--data", "digits", "--epochs", "2", "--out", "v", "--plain", "--set", "conditional=true"], in: dir)
        #expect(run.status == 0, "\(run.err)")
        #expect(run.out.contains("done: vae on digits; eval.json: ") && run.out.contains("test_neg_elbo"), "\(run.out)")
        let checkpoint = dir.appendingPathComponent("v/final.safetensors").path
        for arguments in [["--out", "s.png"], ["--out", "s.npy", "--n", "5"], ["--out", "s.safetensors", "--label", "7"],
                          ["--interpolate", "--out", "i.png"], ["--reconstruct", "--out", "r.png"]] {
            let r = try CLI.run(["sample", checkpoint] + arguments, in: dir)
            #expect(r.status == 0, "sample \(arguments): \(r.err)")
            let out = arguments[arguments.firstIndex(of: "--out")! + 1]
            #expect(FileManager.default.fileExists(atPath: dir.appendingPathComponent(out).path), "sample \(arguments) wrote no \(out)")
        }
        let npy = try Data(contentsOf: dir.appendingPathComponent("s.npy"))
        #expect(npy.prefix(6) == Data([0x93] + Array("NUMPY".utf8)) && npy.count == 128 + 5 * 64 * 4)
        let list = try CLI.run(["list", "models"])
        for name in ["ae —", "vae —", "conv-vae —", "gan —", "dcgan —", "latent_size", "generator_loss", "pack"] {
            #expect(list.out.contains(name), "list models lacks \(name)")
        }
    }

    @Test func badInputIsAClearError() throws {
        let dir = CLI.temporaryDirectory()
        let agent = try CLI.run(["run", "ppo", "--steps", "300", "--out", "a", "--eval-episodes", "0", "--plain"], in: dir)
        #expect(agent.status == 0, "\(agent.err)")
        let cases: [([String], String)] = [
            (["run", "vae", "--data", "cifar"], "unknown data set 'cifar'"),
            (["run", "vae", "--data", "ring8"], "holds 2-D points"),
            (["run", "gan", "--data", "ring8", "--set", "conditional=true"], "needs labelled data"),
            (["run", "vae", "--data", "mnist", "--data-dir", "/nonexistent"], "no mnist files"),
            (["run", "vae", "--env", "CartPole-v1"], "--env is for agents"),
            (["run", "ppo", "--data", "digits"], "--data is for generative models"),
            (["run", "vae", "--epochs", "0"], "--epochs must be at least 1"),
            (["sample", "a/final.safetensors"], "is an agent checkpoint (ppo)"),
            (["sample", "/nonexistent.safetensors"], "cannot read"),
            (["sample", "x.safetensors", "--out", "s.jpg"], "--out must end in .png, .npy or .safetensors"),
        ]
        for (arguments, message) in cases {
            let r = try CLI.run(arguments, in: dir)
            #expect(r.status != 0 && r.err.contains(message), "\(arguments): \(r.err)")
        }
    }
}
