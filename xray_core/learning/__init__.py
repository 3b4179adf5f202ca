"""Learning: training frames, splits, signal models and their evaluation."""
