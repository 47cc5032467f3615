import Foundation

/// How a run reports progress on the terminal.
public enum ProgressStyle: Sendable {
    /// A live bar when standard error is a terminal, plain log lines otherwise.
    case automatic
    case bar
    case lines
    case quiet
}

/// Progress on standard error: a bar redrawn in place on a terminal (five times a second), or a log line every ten
/// seconds otherwise; messages in between. Every trainer reports through one.
public struct ProgressReporter {
    public let style: ProgressStyle
    private var lastDraw = Date.distantPast

    /// `automatic` becomes a bar when standard error is a terminal, lines otherwise.
    public init(_ style: ProgressStyle) {
        switch style {
        case .automatic: self.style = isatty(STDERR_FILENO) == 1 ? .bar : .lines
        default: self.style = style
        }
    }

    /// Shows `fraction` done and the `stats` line, if a redraw is due (`force`: now).
    public mutating func draw(fraction: Double, stats: @autoclosure () -> String, force: Bool = false) {
        let now = Date()
        let interval: TimeInterval = style == .bar ? 0.2 : 10
        guard force || now.timeIntervalSince(lastDraw) >= interval else { return }
        lastDraw = now
        guard style != .quiet else { return }
        if style == .bar {
            let width = 24
            let done = min(1, max(0, fraction))
            let filled = Int(done * Double(width))
            let bar = String(repeating: "█", count: filled) + String(repeating: "░", count: width - filled)
            FileHandle.standardError.write(Data(String(format: "\r\u{1B}[2K%@ %3.0f%% %@", bar, done * 100, stats()).utf8))
        } else {
            log(stats())
        }
    }

    /// Ends the bar's line, so that the next message starts on its own.
    public func finishLine() {
        if style == .bar { FileHandle.standardError.write(Data("\n".utf8)) }
    }

    /// A message on its own line (nothing when quiet).
    /// Ends the bar and tells where a stopped run's checkpoint is and how to continue it (`at` names the point:
    /// "in epoch 3", "at step 5000").
    public func stopped(at point: String, checkpoint: URL, folder: URL) {
        finishLine()
        log("stopping \(point): checkpoint saved to \(checkpoint.path); continue with --resume \(folder.path)")
    }

    public func log(_ message: String) {
        guard style != .quiet else { return }
        FileHandle.standardError.write(Data((message + "\n").utf8))
    }
}

/// `m:ss`, or `h:mm:ss` from an hour on.
public func formatDuration(_ seconds: Double) -> String {
    guard seconds.isFinite else { return "?" }
    let s = Int(seconds.rounded())
    return s >= 3600 ? String(format: "%d:%02d:%02d", s / 3600, s / 60 % 60, s % 60) : String(format: "%d:%02d", s / 60, s % 60)
}
