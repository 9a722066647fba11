"""The KcBERT model card's comment cleaner, to the character.

KcBERT kept Hangul, jamo, ASCII, a few punctuation marks and emoji, replaced every other run of
characters (Hanja, other scripts, symbols) with a space, removed URLs, stripped the ends and
squeezed character repeats to two (soynlp's ``repeat_normalize``).  The card used ``emoji.UNICODE_EMOJI``; in emoji 2.x the same
set of emoji lives in ``emoji.EMOJI_DATA``.

Example:

>>> from kcbert_tf.text.cleaning import clean
>>> clean("ㅋㅋㅋㅋㅋ 진짜 웃기다 😂😂😂 漢字 https://example.com/a")
'ㅋㅋ 진짜 웃기다 😂😂😂'
"""

from __future__ import annotations

import re

import emoji

__all__ = ["clean", "repeat_normalize", "KEEP_PATTERN", "URL_PATTERN", "MIN_CHARS"]

#: A cleaned comment shorter than this many characters is dropped (``--min-chars``).
MIN_CHARS = 10

_EMOJIS = "".join(emoji.EMOJI_DATA.keys())

#: Runs of characters outside the kept set; each run becomes one space.
KEEP_PATTERN = re.compile(f"[^ .,?!/@$%~％·∼()\x00-\x7Fㄱ-ㅣ가-힣{_EMOJIS}]+")

#: The card's URL pattern; matches are removed.
URL_PATTERN = re.compile(
    r"https?:\/\/(www\.)?[-a-zA-Z0-9@:%._\+~#=]{1,256}\.[a-zA-Z0-9()]{1,6}\b([-a-zA-Z0-9()@:%_\+.~#?&//=]*)"
)


#: soynlp's patterns (soynlp 0.0.493, ``soynlp/normalizer/_normalizer.py``): a word character
#: repeated four or more times, and whitespace runs.
_REPEATS = re.compile(r"(\w)\1{3,}")
_SPACES = re.compile(r"\s+")


def repeat_normalize(text: str, num_repeats: int = 2) -> str:
    """soynlp's ``repeat_normalize``, written out: a run of four or more of one word character
    becomes ``num_repeats`` of it, whitespace runs one space, the ends stripped.  Importing soynlp
    imports scikit-learn and SciPy for its other tools (1.3 s of every start-up here);
    ``tests/test_cleaning.py`` checks this against soynlp's own function."""
    if num_repeats > 0:
        text = _REPEATS.sub("\\1" * num_repeats, text)
    return _SPACES.sub(" ", text).strip()


def clean(text: str) -> str:
    """Clean one comment exactly as KcBERT's ``clean()`` does."""
    text = KEEP_PATTERN.sub(" ", text)
    text = URL_PATTERN.sub("", text)
    text = text.strip()
    return repeat_normalize(text, num_repeats=2)
