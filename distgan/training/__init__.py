"""The trainer and what it owns: EMA, checkpoints, metrics, trackers, noise."""
