"""The self-learning loop: training data, models, the promotion gate, the bundle, retraining triggers."""
