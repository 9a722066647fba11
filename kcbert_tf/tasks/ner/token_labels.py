"""BIO labels between labelled units (characters or words) and WordPiece tokens, both ways.

Training (:func:`token_targets`): the first token that starts in a unit carries the unit's label,
every other token is :data:`IGNORED` in the loss, as KcBERT-Finetune and transformers' NER
examples do ("the first sub-token of a word").  When units are characters (KLUE-NER) an entity may
start inside a token; then the token holding the entity's first character carries its ``B-``
label.  Prediction (:func:`unit_tags`): each unit takes the label predicted for its first token;
a unit no token starts in (the rest of a token's characters, a space between two tokens, a word
cut off by truncation) continues the entity before it (``I-X``) when it lies inside a token of
that entity or the next labelled token continues it, and is ``O`` otherwise.  Token spans are the
tokenizer's character offsets (``KcBertWordPiece.encode_with_offsets``), so both directions work
on character spans.

Example (units are the characters of "서울시청", one entity; two tokens "서울" and "##시청"):

>>> units = [(0, 1), (1, 2), (2, 3), (3, 4)]
>>> tags = ["B-LC", "I-LC", "I-LC", "I-LC"]
>>> labels = {"O": 0, "B-LC": 1, "I-LC": 2}
>>> token_targets(units, tags, [(0, 2), (2, 4)], labels)
[1, 2]
>>> unit_tags(units, [(0, 2), (2, 4)], ["B-LC", "I-LC"])
['B-LC', 'I-LC', 'I-LC', 'I-LC']
"""

from __future__ import annotations

import bisect

import numpy as np

__all__ = ["IGNORED", "token_targets", "unit_tags", "ner_features", "predicted_unit_tags"]

#: The target of a token that does not carry a label (Keras and transformers ignore -100).
IGNORED = -100


def _first_tokens(units, offsets) -> list[int | None]:
    """For each unit, the index of the first token starting inside it (None: none does)."""
    unit_starts = [start for start, _ in units]
    first: list[int | None] = [None] * len(units)
    for index, (start, _) in enumerate(offsets):
        unit = bisect.bisect_right(unit_starts, start) - 1
        if unit >= 0 and start < units[unit][1] and first[unit] is None:
            first[unit] = index
    return first


def token_targets(units, tags, offsets, label_ids: dict) -> list[int]:
    """Per token (``offsets``: its character span), the label id it is trained on, or
    :data:`IGNORED`."""
    targets = [IGNORED] * len(offsets)
    first = _first_tokens(units, offsets)
    for unit, token in enumerate(first):
        if token is not None:
            targets[token] = label_ids[tags[unit]]
    token_starts = [start for start, _ in offsets]
    tag_of = {index: tag for tag, index in label_ids.items()}
    for unit, tag in enumerate(tags):  # an entity that starts inside a token
        if first[unit] is None and tag.startswith("B-"):
            token = bisect.bisect_right(token_starts, units[unit][0]) - 1
            if token >= 0 and units[unit][0] < offsets[token][1] and targets[token] != IGNORED:
                if not tag_of[targets[token]].startswith("B-"):
                    targets[token] = label_ids[tag]
    return targets


def unit_tags(units, offsets, token_tags) -> list[str]:
    """Per unit, its BIO tag from the tags predicted for the tokens (``offsets``: their spans;
    ``token_tags``: one tag per token, only the first token of each unit is read)."""
    first = _first_tokens(units, offsets)
    token_starts = [start for start, _ in offsets]
    following: list[int | None] = [None] * len(units)  # the first token of the next unit that has one
    for unit in range(len(units) - 2, -1, -1):
        following[unit] = first[unit + 1] if first[unit + 1] is not None else following[unit + 1]
    tags: list[str] = []
    for unit, token in enumerate(first):
        if token is not None:
            tags.append(token_tags[token])
            continue
        previous = tags[-1] if tags else "O"
        if previous == "O":
            tags.append("O")
            continue
        kind = previous[2:]
        start = units[unit][0]
        covering = bisect.bisect_right(token_starts, start) - 1
        inside = covering >= 0 and start < offsets[covering][1]
        continues = following[unit] is not None and token_tags[following[unit]] == f"I-{kind}"
        tags.append(f"I-{kind}" if inside or continues else "O")
    return tags


def ner_features(tokenizer, sentences, max_seq_length: int, label_ids: dict | None = None) -> dict:
    """The packed model inputs of ``sentences`` (int32 ``[N, max_seq_length]``), each kept
    token's character span, and (with ``label_ids``) the training targets, -100 where ignored."""
    count = len(sentences)
    token_ids = np.full((count, max_seq_length), tokenizer.pad_id, np.int32)
    padding_mask = np.zeros((count, max_seq_length), np.int32)
    targets = np.full((count, max_seq_length), IGNORED, np.int32)
    spans = []
    for row, (sentence, (ids, offsets)) in enumerate(zip(sentences, tokenizer.encode_with_offsets([s.text for s in sentences]))):
        ids, offsets = ids[: max_seq_length - 2], offsets[: max_seq_length - 2]
        token_ids[row, : len(ids) + 2] = [tokenizer.cls_id, *ids, tokenizer.sep_id]
        padding_mask[row, : len(ids) + 2] = 1
        if label_ids is not None:
            targets[row, 1 : len(ids) + 1] = token_targets(sentence.units, sentence.tags, offsets, label_ids)
        spans.append(offsets)
    inputs = {"token_ids": token_ids, "segment_ids": np.zeros_like(token_ids), "padding_mask": padding_mask}
    return {"inputs": inputs, "spans": spans, "targets": targets}


def predicted_unit_tags(logits: np.ndarray, sentences, spans, labels: list[str]) -> list[list[str]]:
    """Each sentence's unit tags from the model's logits ``[N, L, labels]`` (position 0 is [CLS])."""
    best = logits.argmax(-1)
    return [
        unit_tags(sentence.units, offsets, [labels[i] for i in best[row, 1 : len(offsets) + 1]])
        for row, (sentence, offsets) in enumerate(zip(sentences, spans))
    ]
