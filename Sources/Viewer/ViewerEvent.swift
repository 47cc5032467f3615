import CSDL2

/// What the person at the window asked for. `ViewerWindow.pollEvents()` returns these; `LiveViewLoop` acts on them.
///
/// Keys: space pauses/resumes, `+` (or `=`) speeds up, `-` slows down, `R` restarts the episode, `S` saves a
/// screenshot, `Q` or Escape (or closing the window) ends.
public enum ViewerEvent: Sendable, Equatable, CustomStringConvertible {
    case quit
    case togglePause
    case faster
    case slower
    case restart
    case screenshot

    /// The event bound to an SDL key code (`SDL_Keycode`), if any. Only `faster`/`slower` auto-repeat while a key
    /// is held, so a held space bar does not flicker between paused and running.
    public static func forKey(_ keycode: Int32, isRepeat: Bool = false) -> ViewerEvent? {
        let event: ViewerEvent
        switch keycode {
        case Int32(SDLK_SPACE.rawValue): event = .togglePause
        case Int32(SDLK_PLUS.rawValue), Int32(SDLK_EQUALS.rawValue), Int32(SDLK_KP_PLUS.rawValue): event = .faster
        case Int32(SDLK_MINUS.rawValue), Int32(SDLK_KP_MINUS.rawValue): event = .slower
        case Int32(SDLK_r.rawValue): event = .restart
        case Int32(SDLK_s.rawValue): event = .screenshot
        case Int32(SDLK_q.rawValue), Int32(SDLK_ESCAPE.rawValue): event = .quit
        default: return nil
        }
        if isRepeat && event != .faster && event != .slower { return nil }
        return event
    }

    /// The viewer event an SDL event means for the window `windowID`, if any.
    init?(_ event: SDL_Event, windowID: UInt32) {
        switch event.type {
        case SDL_QUIT.rawValue:
            self = .quit
        case SDL_WINDOWEVENT.rawValue:
            guard event.window.windowID == windowID,
                  event.window.event == UInt8(SDL_WINDOWEVENT_CLOSE.rawValue) else { return nil }
            self = .quit
        case SDL_KEYDOWN.rawValue:
            // Synthetic events may carry window 0 (no focus); anything else must be ours.
            guard event.key.windowID == windowID || event.key.windowID == 0,
                  let mapped = ViewerEvent.forKey(event.key.keysym.sym, isRepeat: event.key.repeat != 0)
            else { return nil }
            self = mapped
        default:
            return nil
        }
    }

    public var description: String {
        switch self {
        case .quit: "quit"
        case .togglePause: "toggle pause"
        case .faster: "faster"
        case .slower: "slower"
        case .restart: "restart"
        case .screenshot: "screenshot"
        }
    }
}
