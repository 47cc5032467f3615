// Gymnasium-compatible environments.
