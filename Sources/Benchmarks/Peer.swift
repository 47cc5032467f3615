import Foundation

/// The Python peers of the benchmarks (`Peers/*.py`, resources of this module): each measures in PyTorch or
/// Stable-Baselines3 what the Swift side measures, and exits with status 3 when its imports fail.
enum Peer {
    /// The text of `Peers/<name>.py`. Peers run as `python3 -c <text> arguments...`, so their `sys.argv[1:]` are the
    /// arguments, as from a file, and no path inside the build folder leaks into what they print.
    static func source(_ name: String) -> String {
        guard let url = Bundle.module.url(forResource: name, withExtension: "py", subdirectory: "Peers"),
              let text = try? String(contentsOf: url, encoding: .utf8) else {
            fatalError("the benchmark peer Peers/\(name).py is missing from the Benchmarks resources")
        }
        return text
    }

    /// Runs `python3 -c <Peers/name.py> arguments...` with stderr to `errors` (nil: discarded); its exit status and stdout.
    static func run(_ name: String, _ arguments: [String], errors: FileHandle? = nil) throws -> (status: Int32, out: Data) {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        process.arguments = ["python3", "-c", source(name)] + arguments
        let out = Pipe()
        process.standardOutput = out
        process.standardError = errors ?? FileHandle.nullDevice
        try process.run()
        let data = out.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        return (process.terminationStatus, data)
    }
}
