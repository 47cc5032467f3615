import CSDL2
import Foundation
import Synchronization

/// Process-wide SDL video initialisation shared by every open window: SDL is initialised when the first window
/// opens and shut down (`SDL_Quit`) when the last one closes, so a later attempt starts from a clean state.
enum SDLVideo {
    private static let openWindows = Mutex(0)

    /// Initialises SDL's video subsystem if no window is open yet; throws `noDisplay` when there is no display.
    static func acquire() throws {
        try openWindows.withLock { count in
            if count == 0 {
                if let problem = missingDisplayReason() { throw ViewerError.noDisplay(problem) }
                configureHints()
                guard SDL_Init(SDL_INIT_VIDEO) == 0 else {
                    let message = lastError()
                    SDL_Quit()
                    throw ViewerError.noDisplay("SDL could not start its video subsystem (\(message))")
                }
            }
            count += 1
        }
    }

    /// Balances one successful `acquire()`.
    static func release() {
        openWindows.withLock { count in
            precondition(count > 0, "SDLVideo.release() without acquire()")
            count -= 1
            if count == 0 { SDL_Quit() }
        }
    }

    /// Why no window can be opened, judged from the environment before SDL is touched; nil when a display
    /// server is configured (or the user chose an SDL video driver explicitly).
    static func missingDisplayReason() -> String? {
        #if os(Linux)
        if environment("SDL_VIDEODRIVER") != nil { return nil }
        if environment("DISPLAY") == nil && environment("WAYLAND_DISPLAY") == nil {
            return "neither DISPLAY nor WAYLAND_DISPLAY is set"
        }
        #endif
        return nil
    }

    /// A non-empty environment variable, read afresh (tests change `DISPLAY` while running).
    static func environment(_ name: String) -> String? {
        guard let raw = getenv(name) else { return nil }
        let value = String(cString: raw)
        return value.isEmpty ? nil : value
    }

    /// The most recent SDL error message.
    static func lastError() -> String {
        let message = String(cString: SDL_GetError())
        return message.isEmpty ? "unknown error" : message
    }

    private static func configureHints() {
        // Ctrl-C must keep its usual meaning for the training CLI instead of becoming an SDL quit event.
        SDL_SetHint(SDL_HINT_NO_SIGNAL_HANDLERS, "1")
        #if os(Linux)
        // Only ever talk to a desktop display server: otherwise SDL may fall back to KMS/DRM and take over the
        // console of a machine whose DISPLAY is stale.
        if environment("SDL_VIDEODRIVER") == nil {
            var drivers: [String] = []
            if environment("DISPLAY") != nil { drivers.append("x11") }
            if environment("WAYLAND_DISPLAY") != nil { drivers.append("wayland") }
            SDL_SetHint(SDL_HINT_VIDEODRIVER, drivers.joined(separator: ","))
        }
        #endif
    }
}
