import Foundation

/// Folders for the files tests write. They all sit in one folder per test process, which is removed when the
/// process exits, so a test run leaves nothing behind in the temporary directory.
public enum Scratch {
    /// This process's folder; created on first use, removed at exit.
    public static let root: URL = {
        let root = FileManager.default.temporaryDirectory.appendingPathComponent("rlbench-tests-\(getpid())-\(UUID().uuidString.prefix(8))")
        try! FileManager.default.createDirectory(at: root, withIntermediateDirectories: true)
        atexit { try? FileManager.default.removeItem(at: Scratch.root) }
        return root
    }()

    /// A new, empty folder whose name starts with `prefix`.
    public static func directory(_ prefix: String = "scratch") -> URL {
        let directory = root.appendingPathComponent("\(prefix)-\(UUID().uuidString)")
        try! FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        return directory
    }
}
