import Foundation

/// Reading whole files and making folders, with errors that say plainly what is wrong (no such file, a directory
/// where a file should be, no permission) rather than Foundation's error codes.
public enum Files {
    /// The bytes of the file at `url`; a file of more than `maxBytes` is an error before it is read.
    public static func data(_ url: URL, maxBytes: Int? = nil) throws -> Data {
        var isDirectory: ObjCBool = false
        guard FileManager.default.fileExists(atPath: url.path, isDirectory: &isDirectory) else {
            throw FileError(path: url.path, reason: "no such file")
        }
        if isDirectory.boolValue { throw FileError(path: url.path, reason: "it is a directory, not a file") }
        if let maxBytes, let size = (try? FileManager.default.attributesOfItem(atPath: url.path))?[.size] as? Int,
           size > maxBytes {
            throw FileError(path: url.path, reason: "it has \(size) bytes, more than the limit of \(maxBytes)")
        }
        do { return try Data(contentsOf: url) } catch { throw FileError(path: url.path, reason: reason(error)) }
    }

    /// The UTF-8 text of the file at `url`; a file of more than `maxBytes` is an error before it is read.
    public static func text(_ url: URL, maxBytes: Int? = nil) throws -> String {
        guard let text = String(data: try data(url, maxBytes: maxBytes), encoding: .utf8) else {
            throw FileError(path: url.path, reason: "it is not UTF-8 text")
        }
        return text
    }

    /// Makes the folder `url` and any missing parents; an existing folder is fine, an existing file is an error.
    public static func makeDirectory(_ url: URL) throws {
        var isDirectory: ObjCBool = false
        if FileManager.default.fileExists(atPath: url.path, isDirectory: &isDirectory) {
            if isDirectory.boolValue { return }
            throw FileError(path: url.path, reason: "a file is in the way of this folder")
        }
        var ancestor = url.deletingLastPathComponent()
        while ancestor.path != "/" && !FileManager.default.fileExists(atPath: ancestor.path) {
            ancestor = ancestor.deletingLastPathComponent()
        }
        if FileManager.default.fileExists(atPath: ancestor.path, isDirectory: &isDirectory), !isDirectory.boolValue {
            throw FileError(path: url.path, reason: "\(ancestor.path) is a file, not a folder")
        }
        do {
            try FileManager.default.createDirectory(at: url, withIntermediateDirectories: true)
        } catch {
            throw FileError(path: url.path, reason: "cannot create this folder: \(reason(error))")
        }
    }

    /// The operating system's reason behind a Foundation file error ("Permission denied"), when it has one.
    static func reason(_ error: Error) -> String {
        let ns = error as NSError
        if let underlying = ns.userInfo[NSUnderlyingErrorKey] as? NSError, underlying.domain == NSPOSIXErrorDomain {
            return String(cString: strerror(Int32(underlying.code)))
        }
        if ns.domain == NSPOSIXErrorDomain { return String(cString: strerror(Int32(ns.code))) }
        switch ns.code {
        case NSFileReadNoPermissionError, NSFileWriteNoPermissionError: return "permission denied"
        case NSFileReadNoSuchFileError, NSFileNoSuchFileError: return "no such file"
        case NSFileWriteOutOfSpaceError: return "no space left on the device"
        default: return ns.localizedDescription
        }
    }
}

/// A file that cannot be read or a folder that cannot be made; `localizedDescription` is the reason alone, for
/// messages that name the file themselves.
public struct FileError: Error, LocalizedError, CustomStringConvertible {
    public let path: String
    public let reason: String
    public init(path: String, reason: String) { self.path = path; self.reason = reason }
    public var errorDescription: String? { reason }
    public var description: String { "\(path): \(reason)" }
}
