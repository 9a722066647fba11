"""`kcbert-tf fill-mask` on a model directory of ours agrees with transformers on its export."""

from __future__ import annotations

import pytest

from kcbert_tf.cli import main as cli
from kcbert_tf.errors import UserError
from kcbert_tf.inference.fill_mask import fill_mask
from test_hugging_face import keras_directory, small_vocab


def test_ours_and_transformers_give_the_same_answers_for_every_mask(tmp_path, capsys):
    keras_directory(tmp_path / "keras")
    assert cli(["export-hf", "--model-dir", str(tmp_path / "keras"), "--output", str(tmp_path / "hf")]) == 0
    syllables = small_vocab(201)[5:12]
    texts = [
        f"{syllables[0]}{syllables[1]} [MASK] {syllables[2]}!!",
        f"[MASK] {syllables[3]} [MASK] ㅋㅋㅋㅋ",  # two masks; clean() shortens the laughter
        f"{syllables[4]} [MASK]",
    ]
    ours = fill_mask(str(tmp_path / "keras"), texts, top_k=3)
    reference = fill_mask(str(tmp_path / "hf"), texts, top_k=3)
    assert [len(answers) for answers in ours] == [1, 2, 1]
    for mine, theirs in zip(ours, reference):
        for top_mine, top_theirs in zip(mine, theirs, strict=True):
            assert [token for token, _ in top_mine] == [token for token, _ in top_theirs]
            assert [p for _, p in top_mine] == pytest.approx([p for _, p in top_theirs], abs=1e-4)
    capsys.readouterr()
    assert cli(["fill-mask", "--model", str(tmp_path / "keras"), "--top-k", "2", *texts[1:]]) == 0
    printed = capsys.readouterr().out
    assert "[MASK] 2:" in printed and ours[1][1][0][0] in printed


def test_a_text_without_a_mask_is_a_clear_error(tmp_path):
    keras_directory(tmp_path / "keras")
    with pytest.raises(UserError, match="no \\[MASK\\] in the text '마스크 없음'"):
        fill_mask(str(tmp_path / "keras"), ["좋아 [MASK]", "마스크 없음"])
    with pytest.raises(UserError, match="no such directory"):
        fill_mask(str(tmp_path / "nope"), ["[MASK]"])
