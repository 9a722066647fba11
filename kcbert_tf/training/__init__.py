"""Training: the tf.distribute strategy, the input pipeline, the learning-rate schedule, the
fit/checkpoint core shared by pretraining and fine-tuning, pretraining itself and vocab training.
The fine-tuning loop, on this core, is :mod:`kcbert_tf.tasks.finetuning`."""
