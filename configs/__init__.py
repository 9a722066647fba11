"""The model and training configs, installed as the package ``kcbert_tf.configs``.

Found by name with :func:`kcbert_tf.config_files.resolve_config`.
"""
