import Foundation
import Synchronization
import Testing

/// A private X server for the tests that open real windows: when `DISPLAY` is unset, starts `Xvfb` on a free
/// display number (:97 upwards; `-noreset`, so it does not restart between windows), points `DISPLAY` at it while
/// any suite with this trait runs (suites running in parallel share one server), and stops it afterwards. A shell
/// wrapper also stops it if the test process dies first.
public struct XvfbDisplayTrait: SuiteTrait, TestScoping {
    public init() {}

    public func provideScope(for test: Test, testCase: Test.Case?,
                             performing function: @Sendable () async throws -> Void) async throws {
        try SharedDisplay.acquire()
        defer { SharedDisplay.release() }
        try await function()
    }
}

/// The display the tests use, shared by every suite that holds it.
public enum SharedDisplay {
    private static let state = Mutex<(users: Int, display: String?, server: XvfbServer?)>((0, nil, nil))

    /// The display (`:97`, ...) while a suite holds it. Tests that start processes pass it to them explicitly,
    /// since a test may change `DISPLAY` for itself meanwhile.
    public static var display: String? { state.withLock { $0.display } }

    static func acquire() throws {
        try state.withLock { state in
            if state.users == 0 {
                if let display = ProcessInfo.processInfo.environment["DISPLAY"], !display.isEmpty {
                    state.display = display
                } else {
                    let server = try XvfbServer.start()
                    setenv("DISPLAY", server.display, 1)
                    state.display = server.display
                    state.server = server
                }
            }
            state.users += 1
        }
    }

    static func release() {
        state.withLock { state in
            state.users -= 1
            guard state.users == 0 else { return }
            if let server = state.server {
                unsetenv("DISPLAY")
                server.stop()
            }
            state.display = nil
            state.server = nil
        }
    }
}

extension Trait where Self == XvfbDisplayTrait {
    /// Runs the suite on a display, starting a private Xvfb when none is set.
    public static var xvfbDisplay: Self { XvfbDisplayTrait() }
}

public struct XvfbError: Error, CustomStringConvertible {
    public let description: String
}

/// A running Xvfb. Tests that start processes and type keys into their windows use a private server each, so no
/// other test's windows or keyboard state can interfere.
public final class XvfbServer: @unchecked Sendable {  // stop() is called once, by its owner
    /// The display name (`:97`, ...), for the `DISPLAY` of processes the test starts.
    public let display: String
    private let wrapper: Process
    private let stopFile: String

    private init(display: String, wrapper: Process, stopFile: String) {
        self.display = display
        self.wrapper = wrapper
        self.stopFile = stopFile
    }

    /// Starts are serialized, so two servers never race for one display number.
    private static let starting = Mutex(())

    /// Starts Xvfb on the first free display number from 97.
    public static func start() throws -> XvfbServer {
        try starting.withLock { _ in try startUnlocked() }
    }

    private static func startUnlocked() throws -> XvfbServer {
        guard let xvfb = CLI.executable(named: "Xvfb") else {
            throw XvfbError(description: "Xvfb is not installed, so the viewer tests cannot open a window; "
                + "install it with `scripts/setup --for-tests` (Debian package xvfb)")
        }
        var failures: [String] = []
        for number in 97..<140 where isFree(number) {
            let wrapper = Process()
            wrapper.executableURL = URL(fileURLWithPath: "/bin/sh")
            let stopFile = NSTemporaryDirectory() + "rlbench-xvfb-\(getpid())-\(number).stop"
            try? FileManager.default.removeItem(atPath: stopFile)
            // Xvfb in the background; the shell stops it when the stop file appears or the test process is gone.
            // (Signals are no use here: children of the test process may start with TERM blocked.) KILL cannot be
            // blocked, so the shell removes the server's lock and socket itself.
            wrapper.arguments = ["-c", """
                "$0" :\(number) -screen 0 1280x1024x24 -nolisten tcp -noreset >/dev/null 2>&1 & x=$!
                while [ ! -e "$1" ] && kill -0 \(getpid()) 2>/dev/null && kill -0 $x 2>/dev/null; do sleep 0.1; done
                kill -KILL $x 2>/dev/null; wait $x 2>/dev/null
                rm -f "$1" /tmp/.X\(number)-lock /tmp/.X11-unix/X\(number)
                """, xvfb, stopFile]
            try wrapper.run()
            let socket = "/tmp/.X11-unix/X\(number)"
            let deadline = Date().addingTimeInterval(10)
            while Date() < deadline && wrapper.isRunning && !FileManager.default.fileExists(atPath: socket) {
                Thread.sleep(forTimeInterval: 0.02)
            }
            let server = XvfbServer(display: ":\(number)", wrapper: wrapper, stopFile: stopFile)
            if wrapper.isRunning && FileManager.default.fileExists(atPath: socket) { return server }
            server.stop()
            failures.append(":\(number)")
        }
        throw XvfbError(description: "Xvfb did not start on any free display (tried \(failures.joined(separator: ", ")))")
    }

    /// Stops the server and waits for it.
    public func stop() {
        FileManager.default.createFile(atPath: stopFile, contents: nil)
        wrapper.waitUntilExit()
    }

    /// A display number nobody uses (no socket, no lock file).
    static func isFree(_ number: Int) -> Bool {
        !FileManager.default.fileExists(atPath: "/tmp/.X11-unix/X\(number)")
            && !FileManager.default.fileExists(atPath: "/tmp/.X\(number)-lock")
    }
}
