// SDL2 (Debian: libsdl2-dev). Only the Viewer module imports this.
#include <SDL.h>
