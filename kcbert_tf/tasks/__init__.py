"""Fine-tuning tasks, grouped by task: the contract (:mod:`~kcbert_tf.tasks.contract`), the
registry (:mod:`~kcbert_tf.tasks.registry`), the one fine-tuning loop
(:mod:`~kcbert_tf.tasks.finetuning`) and a package per kind of task holding its reader, features,
metric, decoding and task class: :mod:`~kcbert_tf.tasks.sentence`, :mod:`~kcbert_tf.tasks.ner`,
:mod:`~kcbert_tf.tasks.qa`.  A new task is a new package here and one ``register_task`` line.
"""
