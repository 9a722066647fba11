"""The model: the Hugging Face config, the head vocabulary (:mod:`~kcbert_tf.model.heads`), the
KerasHub backbone and task heads, the model directory and its task record, and the one module
that reaches inside Keras and KerasHub.  A new model size is a config in ``configs/``."""
