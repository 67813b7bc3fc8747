"""Training with `fit` (Sec. 3.5): the run's config, the trainer, its callbacks, the optimizer."""
