"""kcbert-tf: KcBERT (a Korean comment-domain BERT) as a TensorFlow/Keras system.

The modules, in pipeline order: :mod:`kcbert_tf.cleaning` (the KcBERT ``clean()``),
:mod:`kcbert_tf.comment_sources` (reading raw comments), :mod:`kcbert_tf.records` (the TFRecord
formats) and :mod:`kcbert_tf.cli` (the ``kcbert-tf`` command).
"""

__version__ = "0.1.0"
