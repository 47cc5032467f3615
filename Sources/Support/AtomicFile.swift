import Foundation

/// Whole-file writes that never leave a half-written file behind.
public enum AtomicFile {
    /// Writes `data` to `url` atomically: a temporary file in the same directory is written, flushed to disk,
    /// then renamed over `url`. If anything fails midway the previous file at `url` is untouched and the
    /// temporary file is removed. `permissions` (such as 0o755 for a script) default to the process's usual ones.
    public static func write(_ data: Data, to url: URL, permissions: Int? = nil) throws {
        let dir = url.deletingLastPathComponent()
        let temp = dir.appendingPathComponent(".\(url.lastPathComponent).tmp-\(getpid())-\(UInt32.random(in: 0...UInt32.max, using: &tempNameGenerator))")
        let attributes = permissions.map { [FileAttributeKey.posixPermissions: $0] }
        guard FileManager.default.createFile(atPath: temp.path, contents: nil, attributes: attributes) else {
            // Errors name the file asked for: the temporary name means nothing to the user.
            throw AtomicFileError.cannotWrite(url.path, String(cString: strerror(errno)))
        }
        do {
            let handle = try FileHandle(forWritingTo: temp)
            do {
                try handle.write(contentsOf: data)
                try handle.synchronize()
                try handle.close()
            } catch {
                try? handle.close()
                throw AtomicFileError.cannotWrite(url.path, Files.reason(error))
            }
            guard rename(temp.path, url.path) == 0 else {
                throw AtomicFileError.cannotWrite(url.path, String(cString: strerror(errno)))
            }
        } catch {
            try? FileManager.default.removeItem(at: temp)
            throw error
        }
    }

    /// Temporary names only need to differ between concurrent writers; they never affect results.
    nonisolated(unsafe) private static var tempNameGenerator = SystemRandomNumberGenerator()
}

public enum AtomicFileError: Error, CustomStringConvertible {
    /// The file asked for, and the system's reason.
    case cannotWrite(String, String)
    public var description: String {
        switch self {
        case let .cannotWrite(path, why): "cannot write \(path): \(why)"
        }
    }
}
