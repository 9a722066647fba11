"""The model: the Hugging Face config, the KerasHub backbone and task heads, the model directory,
and the one module that reaches inside Keras and KerasHub."""
