"""A BIO label per word or character (KLUE-NER, word<TAB>tags files): ``files`` (the readers),
``token_labels`` (labels between units and tokens), ``metric`` (seqeval's entity F1), ``task``
(:class:`~kcbert_tf.tasks.ner.task.NerTask` and prediction)."""
