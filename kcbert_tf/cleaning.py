"""``kcbert_tf.cleaning.clean``: the stable import path of KcBERT's ``clean()`` (a fixed point of the
project's design, which outside checks rely on).  The module that defines it is
:mod:`kcbert_tf.text.cleaning`; this one only names it here.

>>> clean("ㅋㅋㅋㅋ 진짜 웃기네요!!!")
'ㅋㅋ 진짜 웃기네요!!!'
"""

from kcbert_tf.text.cleaning import MIN_CHARS, clean

__all__ = ["clean", "MIN_CHARS"]
