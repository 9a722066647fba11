"""An answer span in a passage (KorQuAD 1.0, SQuAD v1 JSON): ``squad_files`` (the reader),
``features`` (windows over the context), ``decoding`` (n-best answers), ``korquad_metric`` (the
official EM and F1), ``task`` (:class:`~kcbert_tf.tasks.qa.task.QaTask` and prediction)."""
