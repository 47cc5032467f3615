// The SDL2 viewer.
