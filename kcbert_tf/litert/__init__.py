"""KcBERT task models in LiteRT (the successor of TensorFlow Lite), int8 or fp32, served without
TensorFlow: ``kcbert-tf export-litert`` writes a LiteRT directory (:mod:`kcbert_tf.litert.export`,
the only module here that needs TensorFlow), and ``kcbert-tf predict`` / ``batch-predict`` run it
with ``ai-edge-litert`` and the ``tokenizers`` library alone (:mod:`kcbert_tf.litert.litert_dir`,
:mod:`kcbert_tf.litert.runner`), what ``pip install 'kcbert-tf[litert]'`` installs.
"""
