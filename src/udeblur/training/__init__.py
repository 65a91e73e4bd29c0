"""Training: the objective, the trainer, checkpoints and logs."""
