"""Text: KcBERT's ``clean()``, the comment input formats and TFRecord formats, the vocab, the
in-graph tokenizer, vocab training and sequence packing (no model, no TensorFlow training)."""
