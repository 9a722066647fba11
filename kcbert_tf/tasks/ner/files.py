"""Named-entity files for token classification, in the two formats KcBERT's users fine-tune on.

- **KLUE-NER** (``--task klue-ner``): a ``## klue-ner-…<TAB>tagged sentence`` line opens each
  sentence, then one character a line, ``CHAR<TAB>TAG`` (a space is a character too, tagged
  ``O`` or ``I-…`` inside an entity), a blank line between sentences; ``##`` lines before the first
  sentence are comments.  Tags are BIO over PS LC OG DT TI QT.  The labelled units are characters.
- **Word tags** (``--task word-tags``, the Naver NER / KoELECTRA ``naver-ner`` format): one
  sentence a line, ``words<TAB>tags``, the words separated by spaces and one tag per word,
  written ``PER-B``/``PER-I``/``O`` (``B-PER``, ``PER_B`` and ``-`` for ``O`` are read too).  The
  labelled units are words; the sentence is the words joined by single spaces.

Either way a sentence is a :class:`NerSentence`: its text, the character span of each unit and
the unit's BIO tag (``B-TYPE``, ``I-TYPE`` or ``O``), so everything after reading (label
alignment, metrics, predictions as character spans) is the same for both.  Texts are not cleaned:
the tags belong to the characters as written.  Bad input ends in one
:class:`~kcbert_tf.errors.UserError` naming the file, the line and the fix.

Example:

>>> import os, tempfile
>>> path = os.path.join(tempfile.mkdtemp(), "ner.tsv")
>>> _ = open(path, "w", encoding="utf-8").write("김철수 씨가 서울에 왔다\\tPER-B O LOC-B O\\n")
>>> sentence = read_ner_file(path, "word-tags")[0]
>>> sentence.text, sentence.tags
('김철수 씨가 서울에 왔다', ('B-PER', 'O', 'B-LOC', 'O'))
>>> entity_spans(sentence.units, sentence.tags)
[('PER', 0, 3), ('LOC', 7, 10)]
"""

from __future__ import annotations

import dataclasses
import os

from kcbert_tf.errors import UserError
from kcbert_tf.tasks.task_files import read_lines

__all__ = ["FORMATS", "NerSentence", "read_ner_file", "entity_spans", "label_set"]

#: The file formats: ``--task`` → what the units are.
FORMATS = {"klue-ner": "characters", "word-tags": "words"}


@dataclasses.dataclass(frozen=True)
class NerSentence:
    """One sentence: ``units[i]`` is the ``(start, end)`` character span of unit ``i`` (a character
    or a word) in ``text``, ``tags[i]`` its BIO tag."""

    id: str
    text: str
    units: tuple
    tags: tuple


def _bio(tag: str, where: str) -> str:
    """A tag in ``B-TYPE`` / ``I-TYPE`` / ``O`` form (``PER-B``, ``PER_B``, ``B_PER``, ``-`` read too)."""
    if tag in ("O", "-"):
        return "O"
    for sep in ("-", "_"):
        head, found, tail = tag.partition(sep)
        if found and head in ("B", "I") and tail:
            return f"{head}-{tail}"
        head, found, tail = tag.rpartition(sep)
        if found and tail in ("B", "I") and head:
            return f"{tail}-{head}"
    raise UserError(f"{where}: tag {tag!r} is not a BIO tag (B-TYPE, I-TYPE, TYPE-B, TYPE-I or O)")


def _read_klue(path: str, lines: list[str]) -> list[NerSentence]:
    sentences: list[NerSentence] = []
    current: tuple[str, int] | None = None  # (id, line number of the ## line)
    chars: list[str] = []
    tags: list[str] = []

    def finish() -> None:
        if current is None:
            return
        if not chars and not sentences:
            return  # a comment line before the first sentence (KLUE's file has a few, with tabs)
        if not chars:
            raise UserError(f"{path}:{current[1]}: sentence {current[0]} has no character lines")
        text = "".join(chars)
        sentences.append(NerSentence(current[0], text, tuple((i, i + 1) for i in range(len(text))), tuple(tags)))

    for number, line in enumerate(lines, start=1):
        line = line.rstrip("\r")
        if line.startswith("##"):
            if "\t" not in line:
                if current is None:
                    continue  # a comment before the first sentence
                raise UserError(f"{path}:{number}: a ## line inside sentence {current[0]}; separate sentences by a blank line")
            finish()
            current, chars, tags = (line[2:].split("\t", 1)[0].strip(), number), [], []
            continue
        if not line:
            continue
        if current is None:
            raise UserError(f"{path}:{number}: a character line before any '## id<TAB>sentence' line; is this a KLUE-NER file?")
        char, sep, tag = line.rpartition("\t")
        if not sep or len(char) != 1:
            raise UserError(
                f"{path}:{number}: expected one character, a tab and its tag (KLUE-NER), got {line!r}; "
                "for one sentence a line (words<TAB>tags) use --task word-tags"
            )
        chars.append(char)
        tags.append(_bio(tag.strip(), f"{path}:{number}"))
    finish()
    return sentences


def _read_word_tags(path: str, lines: list[str]) -> list[NerSentence]:
    sentences = []
    for number, line in enumerate(lines, start=1):
        line = line.rstrip("\r")
        if not line.strip():
            continue
        fields = line.split("\t")
        if len(fields) != 2:
            raise UserError(
                f"{path}:{number}: {len(fields)} tab-separated fields; a word-tags line is "
                "words<TAB>tags (for KLUE-NER's one character a line use --task klue-ner)"
            )
        words, tags = fields[0].split(), fields[1].split()
        if len(words) != len(tags):
            raise UserError(
                f"{path}:{number}: {len(words)} words but {len(tags)} tags; give one tag per word"
            )
        units, start = [], 0
        for word in words:
            units.append((start, start + len(word)))
            start += len(word) + 1
        bio = tuple(_bio(tag, f"{path}:{number}") for tag in tags)
        sentences.append(NerSentence(f"line {number}", " ".join(words), tuple(units), bio))
    return sentences


def read_ner_file(path: str | os.PathLike, file_format: str) -> list[NerSentence]:
    """The sentences of a NER file in ``file_format`` (:data:`FORMATS`)."""
    path = os.fspath(path)
    if file_format not in FORMATS:
        raise UserError(f"unknown NER format {file_format!r}; the formats are {', '.join(FORMATS)}")
    lines = read_lines(path, "the NER file: KLUE-NER's, or words<TAB>tags")
    sentences = _read_klue(path, lines) if file_format == "klue-ner" else _read_word_tags(path, lines)
    if not sentences:
        raise UserError(f"{path}: no sentence found (is it a {file_format} file?)")
    return sentences


def entity_spans(units, tags) -> list[tuple[str, int, int]]:
    """The entities of BIO-tagged units as ``(type, start, end)`` character spans.

    An entity starts at a ``B-X`` (or at an ``I-X`` that does not continue an ``X``, as conlleval
    and seqeval's default mode read it) and runs over the ``I-X`` after it.
    """
    found: list[tuple[str, int, int]] = []
    kind, start, end = None, 0, 0
    for (unit_start, unit_end), tag in zip(units, tags):
        prefix, _, name = tag.partition("-")
        if prefix == "I" and name == kind:
            end = unit_end
            continue
        if kind is not None:
            found.append((kind, start, end))
        kind, start, end = (name, unit_start, unit_end) if prefix in ("B", "I") else (None, 0, 0)
    if kind is not None:
        found.append((kind, start, end))
    return found


def label_set(sentences) -> list[str]:
    """The BIO labels of the sentences: ``O`` first, then ``B-X``/``I-X`` for each type, sorted
    (both prefixes of every type, so a type seen only as ``B`` can still continue)."""
    types = sorted({tag[2:] for sentence in sentences for tag in sentence.tags if tag != "O"})
    return ["O"] + [f"{prefix}-{name}" for name in types for prefix in ("B", "I")]
