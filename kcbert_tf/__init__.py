"""kcbert-tf: KcBERT (a Korean comment-domain BERT) as a TensorFlow/Keras system.

The packages, in the order of the data flow:

- :mod:`kcbert_tf.text`: KcBERT's ``clean()``, comment input formats, TFRecord formats, the vocab,
  vocab training, the in-graph tokenizer, sequence packing;
- :mod:`kcbert_tf.model`: the Hugging Face config, the KerasHub backbone and masked-LM head, the
  model directory, the one place that reaches inside Keras and KerasHub;
- :mod:`kcbert_tf.training`: the tf.distribute strategy, the input pipeline, the learning-rate
  schedule, the fit/checkpoint core, pretraining;
- :mod:`kcbert_tf.conversion`: Hugging Face (transformers, safetensors) and SavedModel;
- :mod:`kcbert_tf.inference`: fill-mask;
- :mod:`kcbert_tf.errors` (the one user-error type), :mod:`kcbert_tf.output_dir` (staged output
  directories), and :mod:`kcbert_tf.cli`, the command layer, which nothing else imports.

The Beam jobs (``beam_jobs``) build on :mod:`kcbert_tf.text`.
"""

__version__ = "0.1.0"
