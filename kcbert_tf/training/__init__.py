"""Training: the tf.distribute strategy, the input pipeline, the learning-rate schedule, the
fit/checkpoint core shared by pretraining and fine-tuning, and pretraining itself."""
