/// Why the viewer could not do what it was asked.
public enum ViewerError: Error, CustomStringConvertible, Equatable {
    /// No window can be opened here: no display server is configured or reachable. Callers print the reason in
    /// one line and carry on headless.
    case noDisplay(String)
    /// SDL refused an operation on an open window (renderer, texture, read-back).
    case sdl(operation: String, message: String)
    /// The window was used after `close()`.
    case closed
    /// A request that cannot be satisfied (empty grid, bad size, ...).
    case invalidArgument(String)

    public var description: String {
        switch self {
        case let .noDisplay(reason): "no display available: \(reason)"
        case let .sdl(operation, message): "SDL \(operation) failed: \(message)"
        case .closed: "the viewer window has been closed"
        case let .invalidArgument(message): "invalid viewer request: \(message)"
        }
    }
}
