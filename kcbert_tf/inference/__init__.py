"""Using a trained model: fill-mask (and, later, predict)."""
