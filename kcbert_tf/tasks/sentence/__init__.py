"""A label or a score per text or text pair (NSMC, hate speech, KorNLI, PAWS, Question Pair,
KorSTS, any TSV): ``files`` (the TSV reader), ``metric`` (accuracy, macro-F1, Pearson, Spearman),
``task`` (:class:`~kcbert_tf.tasks.sentence.task.SentenceTask` and prediction)."""
