"""Text primitives: KcBERT's ``clean()`` (also in the graph), the comment input formats and
TFRecord formats, the vocab, the in-graph tokenizer with offsets, model inputs and the one
sequence-length check, and sequence packing (no model, no task, no training)."""
