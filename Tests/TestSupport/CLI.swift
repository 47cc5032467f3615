import Foundation
import Testing

/// Runs the built `rlbench` binary (from `swift build -c release`, as scripts/test does) and other tools.
public enum CLI {
    public static let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
    /// The `rlbench` built beside the test bundle (any scratch path), else `.build/release/rlbench`.
    public static let binary: URL = {
        let besideTests = URL(fileURLWithPath: CommandLine.arguments[0]).deletingLastPathComponent().appendingPathComponent("rlbench")
        if FileManager.default.isExecutableFile(atPath: besideTests.path) { return besideTests }
        return root.appendingPathComponent(".build/release/rlbench")
    }()

    /// A process started by `start`; its output goes to temporary files, so it never blocks on a full pipe.
    public final class Running {
        public let process: Process
        let out: URL, err: URL

        init(_ executable: URL, _ arguments: [String], in directory: URL?, environment: [String: String]) throws {
            process = Process()
            process.executableURL = executable
            process.arguments = arguments
            if let directory { process.currentDirectoryURL = directory }
            if !environment.isEmpty {
                var merged = ProcessInfo.processInfo.environment
                for (key, value) in environment { merged[key] = value.isEmpty ? nil : value }
                process.environment = merged
            }
            let stem = Scratch.root.appendingPathComponent("process-\(UUID().uuidString)")
            out = stem.appendingPathExtension("out")
            err = stem.appendingPathExtension("err")
            FileManager.default.createFile(atPath: out.path, contents: nil)
            FileManager.default.createFile(atPath: err.path, contents: nil)
            process.standardOutput = try FileHandle(forWritingTo: out)
            process.standardError = try FileHandle(forWritingTo: err)
            try process.run()
        }

        public var isRunning: Bool { process.isRunning }

        /// Waits for the process and returns its exit status and output.
        public func finish() -> (status: Int32, out: String, err: String) {
            process.waitUntilExit()
            defer {
                try? FileManager.default.removeItem(at: out)
                try? FileManager.default.removeItem(at: err)
            }
            let read = { (url: URL) in String(decoding: (try? Data(contentsOf: url)) ?? Data(), as: UTF8.self) }
            return (process.terminationStatus, read(out), read(err))
        }
    }

    /// Starts `rlbench arguments` in `directory` without waiting; `environment` entries are added to (or, when
    /// empty, removed from) the inherited environment.
    public static func start(_ arguments: [String], in directory: URL? = nil,
                             environment: [String: String] = [:]) throws -> Running {
        guard FileManager.default.isExecutableFile(atPath: binary.path) else {
            throw CLIError(description: "\(binary.path) is missing: build with `swift build -c release` first (scripts/test does)")
        }
        return try Running(binary, arguments, in: directory, environment: environment)
    }

    /// Runs `rlbench arguments` and waits (see `start`).
    public static func run(_ arguments: [String], in directory: URL? = nil,
                           environment: [String: String] = [:]) throws -> (status: Int32, out: String, err: String) {
        try start(arguments, in: directory, environment: environment).finish()
    }

    /// Starts another program without waiting (see `start`).
    public static func startTool(_ executable: String, _ arguments: [String], in directory: URL? = nil,
                                 environment: [String: String] = [:]) throws -> Running {
        try Running(URL(fileURLWithPath: executable), arguments, in: directory, environment: environment)
    }

    /// Runs another program and waits.
    public static func runTool(_ executable: String, _ arguments: [String], in directory: URL? = nil,
                               environment: [String: String] = [:]) throws -> (status: Int32, out: String, err: String) {
        try Running(URL(fileURLWithPath: executable), arguments, in: directory, environment: environment).finish()
    }

    /// The path of an executable on `PATH`, if any.
    public static func executable(named name: String) -> String? {
        let path = ProcessInfo.processInfo.environment["PATH"] ?? "/usr/local/bin:/usr/bin:/bin"
        return path.split(separator: ":").map { "\($0)/\(name)" }.first { FileManager.default.isExecutableFile(atPath: $0) }
    }

    public static func temporaryDirectory() -> URL { Scratch.directory("cli") }
}

public struct CLIError: Error, CustomStringConvertible {
    public let description: String
}
