"""KcBERT's comment cleaner as TensorFlow ops: :func:`clean_in_graph` gives, for every string,
exactly what :func:`kcbert_tf.text.cleaning.clean` gives, inside ``tf.function``, ``tf.data`` and
SavedModel signatures (no ``tf.py_function``).

``clean()`` is written with Python regular expressions; RE2 (TensorFlow's regex engine) differs from
them in four places, each handled here with tables read off Python itself:

1. the kept characters (ASCII, Hangul, jamo, a few marks, every code point of an emoji): every code
   point is run through ``KEEP_PATTERN``, the removed ones become an RE2 class of ranges;
2. the URL pattern's ``\\b`` is Unicode-aware in Python (``"https://naver.com에서"`` is no URL: no
   boundary between ``m`` and ``에``) and ASCII-only in RE2, which has no lookaround either.  After
   ``://`` a URL only holds characters of its path class ``P``, so a match always ends where the run
   of ``P`` characters ends; the boundary becomes an alternation over the character before it (a
   word character or a parenthesis) and the one after it (``P`` or not, word or not, or the end),
   a consumed character after it being put back by the rewrite (it is no ``h``, so no URL could
   have started there);
3. soynlp's repeat squeeze ``(\\w)\\1{3,}`` → two needs a backreference: it is done on code points
   (a character is dropped when it is a word character, its run of equal characters is 4 or
   longer and it is the third or later of the run);
4. Python's ``\\s`` and ``str.strip()`` also take ``\\x0b`` and ``\\x1c``-``\\x1f``, which RE2's
   ``\\s`` and ``tf.strings.strip`` do not: the whitespace class is listed explicitly.

Invalid UTF-8 is first made valid (each bad sequence → U+FFFD, which ``clean()`` removes), so a byte
string ``raw`` is cleaned like ``clean(raw.decode("utf-8", "replace"))``.  The tables are built in
plain Python on the first call (about a second, then cached); the graph holds only constants.

Example:

>>> import tensorflow as tf
>>> clean_in_graph(tf.constant(["ㅋㅋㅋㅋㅋ 진짜 웃기다 😂😂😂 漢字 https://example.com/a",
...                             "https://naver.com에서  봤음\\x1c"])).numpy().tolist() == [
...     "ㅋㅋ 진짜 웃기다 😂😂😂".encode(), "https://naver.com에서 봤음".encode()]
True
"""

from __future__ import annotations

import functools
import re
from re import _parser  # Python's regex parser: a pattern's class exactly as re compiles it
from typing import NamedTuple

import tensorflow as tf

from kcbert_tf.text.bert_char_classes import regex_class
from kcbert_tf.text.cleaning import KEEP_PATTERN, URL_PATTERN

__all__ = ["clean_in_graph", "strip_in_graph"]

Ranges = tuple[tuple[int, int], ...]

# The card's URL pattern, in parts: host characters, top-level domain characters, path characters.
_HOST = r"[-a-zA-Z0-9@:%._\+~#=]"
_TLD = r"[a-zA-Z0-9()]"
_PATH = r"[-a-zA-Z0-9()@:%_\+.~#?&//=]"
if URL_PATTERN.pattern != rf"https?:\/\/(www\.)?{_HOST}{{1,256}}\.{_TLD}{{1,6}}\b({_PATH}*)":
    raise ImportError("cleaning.URL_PATTERN changed: clean_in_graph's rewrite no longer applies")


class _Tables(NamedTuple):
    removed: str  # RE2 pattern: a run of characters clean() replaces with one space
    url: str  # RE2 pattern whose matches, rewritten to r"\1\2", remove the URLs
    whitespace: str  # RE2 pattern: a run of Python whitespace
    word_bounds: tuple[int, ...]  # word characters: [b0, b1), [b2, b3), ... of kept code points


def _ranges(code_points) -> Ranges:
    out: list[list[int]] = []
    for cp in sorted(code_points):
        if out and out[-1][1] == cp - 1:
            out[-1][1] = cp
        else:
            out.append([cp, cp])
    return tuple((lo, hi) for lo, hi in out)


def _cls(code_points) -> str:
    return regex_class(_ranges(code_points))


def _removed_ranges() -> Ranges:
    """The code points ``KEEP_PATTERN`` replaces, as ranges: the complement of its negated class,
    read off Python's own parse of it (scanning all of Unicode with the pattern takes 0.7 s)."""
    ((repeat, (_, _, body)),) = _parser.parse(KEEP_PATTERN.pattern).data
    ((kind, items),) = body.data
    if (repeat, kind, items[0][0]) != (_parser.MAX_REPEAT, _parser.IN, _parser.NEGATE):
        raise AssertionError("KEEP_PATTERN is no longer one negated character class repeated")
    listed = set()
    for op, value in items[1:]:
        if op is _parser.LITERAL:
            listed.add(value)
        elif op is _parser.RANGE:
            listed.update(range(value[0], value[1] + 1))
        else:
            raise AssertionError(f"KEEP_PATTERN's class holds {op}, which this reading does not expand")
    removed, start = [], 0
    for lo, hi in _ranges(listed | set(range(0xD800, 0xE000))) + ((0x110000, 0x110000),):  # surrogates: never text
        if start < lo:
            removed.append((start, lo - 1))
        start = hi + 1
    return tuple(removed)


@functools.cache
def _tables() -> _Tables:
    """The RE2 patterns and the word table, read off Python's own ``re`` (about a second)."""
    removed = _removed_ranges()
    kept, start = set(), 0
    for lo, hi in removed + ((0x110000, 0x110000),):
        kept.update(cp for cp in range(start, lo) if not 0xD800 <= cp <= 0xDFFF)
        start = hi + 1

    def among_kept(pattern: str) -> set[int]:
        compiled = re.compile(pattern)
        return {cp for cp in kept if compiled.fullmatch(chr(cp))}

    word, space = among_kept(r"\w"), among_kept(r"\s")
    if space != {cp for cp in kept if chr(cp).isspace()}:
        raise AssertionError("Python's \\s and str.strip() disagree on a kept character")
    host, tld, path = among_kept(_HOST), among_kept(_TLD), among_kept(_PATH)
    # The rewrite relies on every character after "://" being a path character.
    if not (host | tld | set(map(ord, "www."))) <= path:
        raise AssertionError("the URL path class no longer holds the host and TLD classes")
    # A match ends where the run of path characters ends (the final path* takes the rest of it),
    # so only the characters around the boundary decide; a consumed one comes back via \1 or \2.
    other = kept - path
    boundary = (
        # The TLD ends in a word character: the boundary needs a non-word character or the end.
        f"{_cls(tld & word)}(?:{_cls(path - word)}{_cls(path)}*|({_cls(other - word)})|\\z)"
        # ... or in a parenthesis: it needs a word character.
        f"|{_cls(tld - word)}(?:{_cls(path & word)}{_cls(path)}*|({_cls(other & word)}))"
    )
    url = f"https?://(?:www\\.)?{_cls(host)}{{1,256}}\\.{_cls(tld)}{{0,5}}(?:{boundary})"
    bounds = tuple(b for lo, hi in _ranges(word) for b in (lo, hi + 1))
    return _Tables(regex_class(removed) + "+", url, _cls(space) + "+", bounds)


def _squeeze_repeats(texts: tf.Tensor, word_bounds: tuple[int, ...]) -> tf.Tensor:
    """soynlp's ``(\\w)\\1{3,}`` → ``\\1\\1`` on a 1-D batch, on code points."""
    chars = tf.strings.unicode_decode(texts, "UTF-8")
    cps, splits = chars.flat_values, chars.row_splits
    size = tf.size(cps, out_type=tf.int64)
    # A run of equal code points starts at each text's start and wherever the code point changes.
    text_starts = tf.scatter_nd(splits[:-1, None], tf.ones_like(splits[:-1]), [size + 1])[:-1] > 0
    starts = text_starts | (cps != tf.concat([[-1], cps], 0)[:-1])
    run_bounds = tf.concat([tf.where(starts)[:, 0], [size]], 0)
    run = tf.cumsum(tf.cast(starts, tf.int64)) - 1
    position = tf.range(size) - tf.gather(run_bounds, run)
    run_length = tf.gather(run_bounds[1:] - run_bounds[:-1], run)
    is_word = tf.searchsorted(tf.constant(word_bounds, tf.int32), cps, side="right") % 2 == 1
    keep = ~(is_word & (run_length >= 4) & (position >= 2))
    kept_before = tf.concat([[0], tf.cumsum(tf.cast(keep, tf.int64))], 0)
    squeezed = tf.RaggedTensor.from_row_splits(
        tf.boolean_mask(cps, keep), tf.gather(kept_before, splits), validate=False
    )
    return tf.strings.unicode_encode(squeezed, "UTF-8")


#: Python's whitespace (``str.isspace``, what ``str.strip()`` strips), as ranges of code points.
PYTHON_WHITESPACE = ((0x09, 0x0D), (0x1C, 0x20), (0x85, 0x85), (0xA0, 0xA0), (0x1680, 0x1680), (0x2000, 0x200A),
                     (0x2028, 0x2029), (0x202F, 0x202F), (0x205F, 0x205F), (0x3000, 0x3000))


def strip_in_graph(texts) -> tf.Tensor:
    """``str.strip()`` of each string of ``texts`` (a ``tf.string`` tensor), same shape: Python's
    whitespace, Unicode's included, removed at both ends (``tf.strings.strip`` strips ASCII only).

    >>> strip_in_graph(tf.constant(["\\u3000 좋아\\t", " "])).numpy().tolist() == ["좋아".encode(), b""]
    True
    """
    space = regex_class(PYTHON_WHITESPACE)
    texts = tf.convert_to_tensor(texts, dtype=tf.string)
    return tf.strings.regex_replace(texts, f"^{space}+|{space}+$", "")


def clean_in_graph(texts) -> tf.Tensor:
    """``cleaning.clean`` of each string of ``texts`` (a ``tf.string`` tensor), same shape."""
    tables = _tables()
    texts = tf.convert_to_tensor(texts, dtype=tf.string)
    flat = tf.reshape(texts, [-1])
    flat = tf.strings.unicode_transcode(flat, "UTF-8", "UTF-8", errors="replace")
    flat = tf.strings.regex_replace(flat, tables.removed, " ")  # 1. other characters
    flat = tf.strings.regex_replace(flat, tables.url, r"\1\2")  # 2. URLs
    flat = _squeeze_repeats(flat, tables.word_bounds)  # 4. repeats
    # 4. whitespace runs → " ", then strip (3.'s strip is the same one: the squeeze above touches
    # word characters only, never whitespace).
    flat = tf.strings.regex_replace(flat, tables.whitespace, " ")
    flat = tf.strings.regex_replace(flat, "^ | $", "")
    return tf.reshape(flat, tf.shape(texts))
