"""The extractive-QA data path (KorQuAD 1.0): reading SQuAD files, features, decoding, the metric.

Features are checked against transformers itself: run_qa.py's own recipe, written out below, with
transformers' fast tokenizer for the real KcBERT vocab, on every question of the KorQuAD 1.0 dev
file (split in memory only: its license forbids modified copies).
"""

from __future__ import annotations

import collections
import json
import logging

import numpy as np
import pytest

from conftest import reference_tokenizer, shared_file
from kcbert_tf.errors import UserError
from kcbert_tf.tasks.qa.korquad_metric import exact_match, f1_score, korquad_scores, normalize_answer
from kcbert_tf.tasks.qa.decoding import decode_answers, n_best
from kcbert_tf.tasks.qa.features import QAFeatures, build_features, context_windows
from kcbert_tf.tasks.qa.squad_files import QAExample, read_squad, split_by_article

MAX_LENGTH, STRIDE, MAX_QUERY = 300, 128, 64


@pytest.fixture(scope="module")
def korquad() -> str:
    return str(shared_file("korquad/KorQuAD_v1.0_dev.json"))


@pytest.fixture(scope="module")
def dev(korquad) -> list[QAExample]:
    return read_squad(korquad, training=False).examples


@pytest.fixture(scope="module")
def dev_features(reference, dev) -> tuple[QAFeatures, QAFeatures]:
    """Our training and evaluation features of the dev file, with transformers' tokenizer."""
    return ours(reference, dev, training=True), ours(reference, dev, training=False)


@pytest.fixture(scope="module")
def reference(kcbert_vocab, tmp_path_factory):
    """transformers' fast tokenizer for the real vocab."""
    return reference_tokenizer(kcbert_vocab, tmp_path_factory.mktemp("reference-tokenizer"))


def encoder(tokenizer):
    """The ``encode_with_offsets`` interface, made from transformers' fast tokenizer."""

    def encode(texts):
        out = tokenizer(list(texts), add_special_tokens=False, return_offsets_mapping=True)
        return [(ids, [tuple(span) for span in spans]) for ids, spans in zip(out["input_ids"], out["offset_mapping"])]

    return encode


def ours(tokenizer, examples, *, training, **settings) -> QAFeatures:
    return build_features(
        examples,
        encoder(tokenizer),
        cls_id=tokenizer.cls_token_id,
        sep_id=tokenizer.sep_token_id,
        pad_id=tokenizer.pad_token_id,
        training=training,
        **settings,
    )


# --- run_qa.py's recipe (transformers examples/pytorch/question-answering), written out ---------


def truncated_questions(tokenizer, questions: list[str], max_query: int = MAX_QUERY) -> list[str]:
    """Each question cut after its ``max_query``-th token (KcBERT-Finetune's ``max_query_length``)."""
    encoded = tokenizer(questions, add_special_tokens=False, return_offsets_mapping=True)["offset_mapping"]
    return [q if len(spans) <= max_query else q[: spans[max_query - 1][1]] for q, spans in zip(questions, encoded)]


def run_qa_features(tokenizer, examples, max_length=MAX_LENGTH, stride=STRIDE, max_query=MAX_QUERY):
    """prepare_train_features and prepare_validation_features of run_qa.py (pad_on_right), on
    questions pre-truncated to ``max_query`` tokens: the encoding, start/end labels, offsets with
    None outside the context."""
    questions = truncated_questions(tokenizer, [example.question.lstrip() for example in examples], max_query)
    tokenized = tokenizer(
        questions,
        [example.context for example in examples],
        truncation="only_second",
        max_length=max_length,
        stride=stride,
        return_overflowing_tokens=True,
        return_offsets_mapping=True,
        padding="max_length",
    )
    starts, ends, offsets = [], [], []
    for i, offset_mapping in enumerate(tokenized["offset_mapping"]):
        input_ids = tokenized["input_ids"][i]
        cls_index = input_ids.index(tokenizer.cls_token_id)
        sequence_ids = tokenized.sequence_ids(i)
        example = examples[tokenized["overflow_to_sample_mapping"][i]]
        start_char = example.answer_starts[0]
        end_char = start_char + len(example.answer_texts[0])
        token_start_index = 0
        while sequence_ids[token_start_index] != 1:
            token_start_index += 1
        token_end_index = len(input_ids) - 1
        while sequence_ids[token_end_index] != 1:
            token_end_index -= 1
        if not (offset_mapping[token_start_index][0] <= start_char and offset_mapping[token_end_index][1] >= end_char):
            starts.append(cls_index)
            ends.append(cls_index)
        else:
            while token_start_index < len(offset_mapping) and offset_mapping[token_start_index][0] <= start_char:
                token_start_index += 1
            starts.append(token_start_index - 1)
            while offset_mapping[token_end_index][1] >= end_char:
                token_end_index -= 1
            ends.append(token_end_index + 1)
        offsets.append([(o if sequence_ids[k] == 1 else None) for k, o in enumerate(offset_mapping)])
    return tokenized, np.array(starts), np.array(ends), offsets


def assert_same_as_run_qa(tokenizer, examples, features=None):
    tokenized, starts, ends, offsets = run_qa_features(tokenizer, examples)
    mine, evaluation = features or (ours(tokenizer, examples, training=t) for t in (True, False))
    assert len(mine) == len(evaluation) == len(tokenized["input_ids"])
    for features in (mine, evaluation):
        np.testing.assert_array_equal(features.token_ids, tokenized["input_ids"])
        np.testing.assert_array_equal(features.segment_ids, tokenized["token_type_ids"])
        np.testing.assert_array_equal(features.padding_mask, tokenized["attention_mask"])
        np.testing.assert_array_equal(features.example_index, tokenized["overflow_to_sample_mapping"])
        assert features.token_ids.dtype == np.int32
    expected = np.array([[o if o is not None else (-1, -1) for o in row] for row in offsets])
    np.testing.assert_array_equal(evaluation.offsets, expected)
    return mine, evaluation, starts, ends


# --- reading -------------------------------------------------------------------------------------


def test_the_dev_file_reads_whole(korquad, dev):
    assert len(dev) == 5774 and len({e.id for e in dev}) == 5774
    assert len({e.article for e in dev}) == 140 and len({e.context for e in dev}) == 960
    assert all(e.aligned and len(e.answer_texts) == 1 for e in dev)
    first = dev[0]
    assert (first.id, first.title) == ("6548850-0-0", "임종석")
    assert (first.answer_texts, first.answer_starts) == (("1989년 2월 15일",), (0,))
    assert first.question == "임종석이 여의도 농민 폭력 시위를 주도한 혐의로 지명수배 된 날은?"
    training = read_squad(korquad, training=True)
    assert training.examples == dev and training.misaligned == 0


def write(tmp_path, content) -> str:
    path = tmp_path / "qa.json"
    if isinstance(content, bytes):
        path.write_bytes(content)
    else:
        path.write_text(content if isinstance(content, str) else json.dumps(content), encoding="utf-8")
    return str(path)


def squad(*questions, context="서울은 한국의 수도이다.") -> dict:
    return {"data": [{"title": "서울", "paragraphs": [{"context": context, "qas": list(questions)}]}]}


def question(qid="q1", text="서울", start=0, **extra) -> dict:
    return {"id": qid, "question": "한국의 수도는?", "answers": [{"text": text, "answer_start": start}], **extra}


def test_misaligned_answers_are_counted_skipped_for_training_and_kept_for_evaluation(tmp_path, caplog):
    path = write(tmp_path, squad(question("q1"), question("q2", "수도", 0), question("q3", "수도", 99)))
    with caplog.at_level(logging.WARNING, logger="kcbert_tf.tasks.qa.squad_files"):
        training = read_squad(path, training=True)
    assert [e.id for e in training] == ["q1"] and training.misaligned == 2
    assert "2 question(s) with an answer not at its answer_start skipped" in caplog.text
    evaluation = read_squad(path, training=False)
    assert [e.id for e in evaluation] == ["q1", "q2", "q3"] and evaluation.misaligned == 2
    assert [e.aligned for e in evaluation] == [True, False, False]


BAD_FILES = [
    (b"\xff\xfe{", "not UTF-8"),
    ('{"data": [', "not JSON (line 1, column 11"),
    ([], "the top level is a list, not an object"),
    ({"version": "1"}, "the top level has no key 'data'"),
    ({"data": [{"title": "t"}]}, "data[0] has no key 'paragraphs'"),
    ({"data": [{"title": 3, "paragraphs": []}]}, "data[0]['title'] is an integer, not a string"),
    ({"data": [{"paragraphs": [{"qas": []}]}]}, "data[0].paragraphs[0] has no key 'context'"),
    ({"data": [{"paragraphs": [{"context": "c"}]}]}, "data[0].paragraphs[0] has no key 'qas'"),
    ({"data": [{"paragraphs": [{"context": "c", "qas": {}}]}]}, "paragraphs[0]['qas'] is an object, not a list"),
    (squad({"question": "q"}), "data[0].paragraphs[0].qas[0] has no key 'id'"),
    (squad({"id": "x1"}), "data[0].paragraphs[0].qas[0] (question id 'x1') has no key 'question'"),
    (squad({"id": "x1", "question": "q"}), "(question id 'x1') has no answer; training needs one"),
    (
        squad({"id": "x1", "question": "q", "answers": [{"text": "서울"}]}),
        "(question id 'x1')['answers'][0] has no key 'answer_start'",
    ),
    (
        squad({"id": "x1", "question": "q", "answers": [{"text": "서울", "answer_start": "0"}]}),
        "['answer_start'] is a string, not an integer",
    ),
    (
        squad(question("x1"), question("x2"), question("x1")),
        "data[0].paragraphs[0].qas[2]: question id 'x1' is also at data[0].paragraphs[0].qas[0]",
    ),
]


@pytest.mark.parametrize("content, message", BAD_FILES, ids=[m[:40] for _, m in BAD_FILES])
def test_a_bad_file_is_one_user_error_naming_the_file_and_the_place(tmp_path, content, message):
    path = write(tmp_path, content)
    with pytest.raises(UserError) as error:
        read_squad(path, training=True)
    assert str(error.value).startswith(path + ": ") and message in str(error.value), str(error.value)
    assert "\n" not in str(error.value)


def test_missing_files_and_unlabelled_questions(tmp_path):
    with pytest.raises(UserError, match="no such file"):
        read_squad(tmp_path / "absent.json", training=True)
    unlabelled = read_squad(write(tmp_path, squad({"id": 7, "question": "q"})), training=False)
    assert [(e.id, e.answer_texts) for e in unlabelled] == [("7", ())]


def test_split_by_article_is_deterministic_and_keeps_articles_whole(dev):
    train, held = split_by_article(dev, 0.1, seed=13)
    assert (train, held) == split_by_article(dev, 0.1, seed=13)
    assert len({e.article for e in held}) == 14 and len({e.article for e in train}) == 126
    assert not {e.article for e in train} & {e.article for e in held}
    assert not {e.title for e in train} & {e.title for e in held}
    order = {e.id: n for n, e in enumerate(dev)}
    assert sorted(order[e.id] for e in train + held) == list(range(len(dev)))
    assert all(order[a.id] < order[b.id] for side in (train, held) for a, b in zip(side, side[1:]))
    assert {e.article for e in split_by_article(dev, 0.1, seed=14)[1]} != {e.article for e in held}
    with pytest.raises(UserError, match="between 0 and 1"):
        split_by_article(dev, 1.0, seed=0)
    with pytest.raises(UserError, match="at least two"):
        split_by_article([e for e in dev if e.article == 0], 0.5, seed=0)


# --- features ------------------------------------------------------------------------------------


def test_features_are_run_qa_py_s_for_every_dev_question(reference, dev, dev_features):
    """Every question of the dev file is at most 64 tokens (the longest is 54), so the question cut
    changes nothing here and the comparison is exact: ids, segments, masks, example index, offsets,
    start/end labels."""
    lengths = [len(ids) for ids in reference([e.question for e in dev], add_special_tokens=False)["input_ids"]]
    assert max(lengths) == 54
    mine, evaluation, starts, ends = assert_same_as_run_qa(reference, dev, dev_features)
    assert len(mine) == 8144
    np.testing.assert_array_equal(mine.start_positions, starts)
    np.testing.assert_array_equal(mine.end_positions, ends)
    answered = mine.start_positions > 0
    assert answered.sum() == 6294 and (mine.end_positions[answered] >= mine.start_positions[answered]).all()
    # every example has at least one window holding its answer
    assert set(mine.example_index[answered]) == set(range(len(dev)))


def test_long_questions_are_cut_to_64_tokens(reference, dev):
    """Questions made longer than 64 tokens (a dev question followed by its context): the features
    equal run_qa.py's on the question text cut after its 64th token."""
    examples = [
        QAExample(e.id, e.title, e.question + " " + e.context[:300], e.context, e.answer_texts, e.answer_starts)
        for e in dev[:300]
    ]
    encoded = reference([e.question for e in examples], add_special_tokens=False)["input_ids"]
    assert min(map(len, encoded)) > MAX_QUERY
    # the cut text tokenizes to exactly the first 64 tokens (the reference is sound)
    cut = reference(truncated_questions(reference, [e.question for e in examples]), add_special_tokens=False)
    assert cut["input_ids"] == [ids[:MAX_QUERY] for ids in encoded]
    mine, _, starts, ends = assert_same_as_run_qa(reference, examples)
    np.testing.assert_array_equal(mine.start_positions, starts)
    np.testing.assert_array_equal(mine.end_positions, ends)
    questions = [encoded[i][:MAX_QUERY] for i in mine.example_index]
    np.testing.assert_array_equal(mine.token_ids[:, 1 : MAX_QUERY + 1], questions)
    assert (mine.token_ids[:, MAX_QUERY + 1] == reference.sep_token_id).all()
    assert (mine.segment_ids[:, : MAX_QUERY + 2] == 0).all() and (mine.segment_ids[:, MAX_QUERY + 2] == 1).all()


def test_an_answer_in_a_window_s_last_context_token(reference):
    """The one place we differ from run_qa.py: its label loop runs past the window's last context
    token onto [SEP] and padding (offsets (0, 0)) and labels max_length - 1."""
    context = "가 나 다 라 마 바 사 아 자 차 카 타 파 하 서울"
    example = QAExample("e", "", "어디?", context, ("서울",), (context.index("서울"),))
    settings = dict(max_length=16, stride=4, max_query=MAX_QUERY)
    tokenized, starts, ends, _ = run_qa_features(reference, [example], **settings)
    mine = ours(reference, [example], training=True, max_length=16, doc_stride=4)
    np.testing.assert_array_equal(mine.token_ids, tokenized["input_ids"])
    last = int(mine.padding_mask[-1].sum()) - 2  # the last window's last context token
    assert mine.start_positions[-1] == mine.end_positions[-1] == last == ends[-1]
    assert starts[-1] == 15 and tokenized["input_ids"][-1][15] in (reference.sep_token_id, reference.pad_token_id)
    np.testing.assert_array_equal(mine.start_positions[:-1], starts[:-1])
    np.testing.assert_array_equal(mine.end_positions, ends)


def test_windows_and_settings():
    assert context_windows(0, 5, 2) == [(0, 0)]
    assert context_windows(5, 5, 2) == [(0, 5)]
    assert context_windows(6, 5, 2) == [(0, 5), (3, 6)]
    windows = context_windows(1000, 233, 128)
    assert windows[0] == (0, 233) and windows[-1][1] == 1000
    assert all(b[0] == a[0] + 105 and a[1] - b[0] == 128 for a, b in zip(windows, windows[1:]))
    example = QAExample("e", "", "a b c d e f", "x", ("x",), (0,))

    def encode(texts):
        return [([5] * len(t.split()), [(i, i + 1) for i in range(len(t.split()))]) for t in texts]

    with pytest.raises(UserError, match="question id 'e': a max length of 16 leaves 7 context tokens"):
        build_features([example], encode, cls_id=2, sep_id=3, pad_id=0, training=True, max_length=16, doc_stride=7)
    empty = build_features([QAExample("e", "", "q", "", (), ())], encode, cls_id=2, sep_id=3, pad_id=0, training=True)
    assert empty.token_ids[0, :4].tolist() == [2, 5, 3, 3] and empty.start_positions.tolist() == [0]


def test_the_in_graph_tokenizer_gives_the_same_features(kcbert_vocab, dev, dev_features):
    from kcbert_tf.tasks.qa.features import features_with_tokenizer
    from kcbert_tf.text.tokenizer import load_tokenizer

    tokenizer = load_tokenizer(kcbert_vocab)
    if not hasattr(tokenizer, "encode_with_offsets"):
        pytest.skip("KcBertWordPiece.encode_with_offsets has not landed yet")
    for training, theirs in zip((True, False), dev_features):
        mine = features_with_tokenizer(dev, tokenizer, training=training)
        for name in ("token_ids", "segment_ids", "padding_mask", "example_index", "start_positions", "end_positions"):
            np.testing.assert_array_equal(getattr(mine, name), getattr(theirs, name), err_msg=name)
        np.testing.assert_array_equal(mine.offsets, theirs.offsets)


# --- decoding ------------------------------------------------------------------------------------

#: How the dev answers round-trip through features and one-hot decoding (see the test below).
ROUND_TRIP = {
    "exact": 4507,
    "ends inside a token": 1262,  # KcBERT's WordPiece fuses particles: 임수경 | 임수경을
    "starts inside a token": 1,  # 16대 | 제16대
    "ends in a space": 3,  # '아타튀르크 ' takes the next token: 아타튀르크 공항
    "longer than 30 tokens": 1,  # too long for max_answer_length
}


def test_gold_positions_decode_back_to_the_gold_answers(reference, dev, dev_features):
    """One-hot logits at each training feature's gold positions, decoded over the evaluation
    features: every answer whose both ends fall on token boundaries (and is at most 30 tokens)
    comes back exactly; every other one is explained, with the reason computed from transformers'
    own offsets of the context."""
    training, evaluation = dev_features
    rows = np.arange(len(training))
    start = np.zeros(training.token_ids.shape, np.float32)
    end = np.zeros(training.token_ids.shape, np.float32)
    start[rows, training.start_positions] = 1
    end[rows, training.end_positions] = 1
    decoded = decode_answers(dev, evaluation, start, end)

    contexts = sorted({e.context for e in dev})
    encoded = reference(contexts, add_special_tokens=False, return_offsets_mapping=True)["offset_mapping"]
    spans = {context: np.array(offsets).reshape(-1, 2) for context, offsets in zip(contexts, encoded)}
    found = collections.Counter()
    for example in dev:
        gold = example.answer_texts[0]
        begin, stop = example.answer_starts[0], example.answer_starts[0] + len(gold)
        offsets = spans[example.context]
        first = np.flatnonzero(offsets[:, 0] <= begin)[-1]  # the token holding the first character
        last = np.flatnonzero(offsets[:, 1] >= stop)[0]  # the token holding the last one
        covered = example.context[offsets[first, 0] : offsets[last, 1]]
        if last - first + 1 > 30:
            reason = "longer than 30 tokens"
            assert decoded[example.id] != gold
        else:
            assert decoded[example.id] == covered, example.id
            if covered == gold:
                reason = "exact"
            elif gold != gold.rstrip():
                reason = "ends in a space"
            elif offsets[first, 0] != begin:
                reason = "starts inside a token"
            else:
                assert offsets[last, 1] != stop
                reason = "ends inside a token"
        found[reason] += 1
        assert (decoded[example.id] == gold) == (reason == "exact")
    assert dict(found) == ROUND_TRIP
    assert sum(decoded[e.id] == e.answer_texts[0] for e in dev) == ROUND_TRIP["exact"]


def one_window(offsets_of_context: list[tuple[int, int]], first: int = 3, length: int = 12) -> QAFeatures:
    offsets = np.full((1, length, 2), -1, np.int32)
    offsets[0, first : first + len(offsets_of_context)] = offsets_of_context
    zeros = np.zeros((1, length), np.int32)
    return QAFeatures(zeros, zeros, zeros, np.zeros(1, np.int32), offsets=offsets)


def test_decoding_keeps_spans_in_the_context_ordered_and_short():
    example = QAExample("e", "", "q", "가 나 다 라 마", ("나",), (2,))
    features = one_window([(0, 1), (2, 3), (4, 5), (6, 7), (8, 9)])  # context at positions 3..7
    rng = np.random.default_rng(0)
    start, end = rng.normal(size=(2, 1, 12))
    start[0, [0, 1, 9]] += 10  # [CLS], question, padding: never
    end[0, [0, 1, 9]] += 10
    start[0, 6] += 5  # an end before its start: never
    end[0, 4] += 5
    for longest in (30, 2, 1):
        pairs = [(a, b) for a in range(3, 8) for b in range(a, min(8, a + longest))]
        best = max(pairs, key=lambda pair: start[0, pair[0]] + end[0, pair[1]])
        text = example.context[features.offsets[0, best[0], 0] : features.offsets[0, best[1], 1]]
        assert decode_answers([example], features, start, end, max_answer_length=longest) == {"e": text}
        candidates = n_best([example], features, start, end, max_answer_length=longest)[0]
        assert sorted(c.tokens for c in candidates) == sorted(pairs)  # 12 positions < 20: all pairs
        assert candidates[0].tokens == best
        assert [c.score for c in candidates] == sorted((c.score for c in candidates), reverse=True)
    # the 4 best starts and ends: [CLS], question, padding, and the inverted pair (6, 4): nothing valid
    assert n_best([example], features, start, end, n_best_size=4) == [[]]
    assert decode_answers([example], features, start, end, n_best_size=4) == {"e": ""}


def test_decoding_picks_the_best_window():
    example = QAExample("e", "", "q", "가 나 다", ("다",), (4,))
    windows = one_window([(0, 1), (2, 3)])
    second = one_window([(2, 3), (4, 5)])
    features = QAFeatures(
        *(np.concatenate([windows.token_ids, second.token_ids]),) * 3,
        np.zeros(2, np.int32),
        offsets=np.concatenate([windows.offsets, second.offsets]),
    )
    start = np.zeros((2, 12))
    end = np.zeros((2, 12))
    start[0, 3], end[0, 4] = 2, 2  # 가 나: 4
    start[1, 4], end[1, 4] = 3, 2  # 다: 5
    assert decode_answers([example], features, start, end) == {"e": "다"}
    with pytest.raises(ValueError, match="training=False"):
        decode_answers([example], QAFeatures(*(features.token_ids,) * 3, features.example_index), start, end)


# --- the metric ----------------------------------------------------------------------------------


def test_normalization():
    assert normalize_answer(' "《서울》" ') == "서울"
    assert normalize_answer("〈한국〉의 (수도) ‘서울’") == "한국 의 수도 서울"  # replaced by spaces
    assert normalize_answer("U.S.A.!? Seoul-City") == "usa seoulcity"  # ASCII punctuation removed
    assert normalize_answer("“서울”·「한양」") == "“서울”·「한양」"  # not in the official lists
    assert normalize_answer("  서울\t\n특별시  ") == "서울 특별시"


def test_exact_match_and_character_f1_by_hand():
    assert exact_match("서울특별시", "서울특별시") and exact_match("(서울)", "서울") and exact_match("Seoul.", "seoul")
    assert not exact_match("서울 특별시", "서울특별시")  # a space still counts for EM
    assert not exact_match("서울'시", "서울시") and f1_score("서울'시", "서울시") == 1.0  # ' becomes a space
    # 서울특별시 vs 서울: 2 common characters; precision 2/5, recall 2/2
    assert f1_score("서울특별시", "서울") == pytest.approx(2 * (2 / 5 * 2 / 2) / (2 / 5 + 2 / 2))
    assert f1_score("서울 특별시", "서울특별시") == 1.0  # spaces are not characters
    # multisets: 가가나 vs 가나나 share 가, 나 (2 of 3 each)
    assert f1_score("가가나", "가나나") == pytest.approx(2 / 3)
    # 1989년 2월 vs 1989년: 5 common of 7 predicted (spaces out), recall 5/5
    assert f1_score("1989년 2월", "1989년") == pytest.approx(2 * (5 / 7) / (5 / 7 + 1))
    assert f1_score("", "서울") == 0.0 and f1_score("서울", "") == 0.0 and f1_score("!!", "서울") == 0.0
    assert not exact_match("", "서울") and exact_match("", "《》")


def test_scores_take_the_best_ground_truth_and_average_times_100(caplog):
    examples = [
        QAExample("a", "", "q", "c", ("서울특별시", "서울"), (0, 0)),  # EM 1 (second), F1 1
        QAExample("b", "", "q", "c", ("대한민국",), (0,)),  # 한국: EM 0, F1 2·(1·1/2)/(1+1/2) = 2/3
        QAExample("c", "", "q", "c", ("1989년",), (0,)),  # no prediction: 0, 0
        QAExample("d", "", "q", "c", ("임종석",), (0,)),  # empty prediction: 0, 0
    ]
    with caplog.at_level(logging.WARNING, logger="kcbert_tf.tasks.qa.korquad_metric"):
        scores = korquad_scores(examples, {"a": "서울", "b": "한국", "d": ""})
    assert scores["exact_match"] == pytest.approx(100 * 1 / 4)
    assert scores["f1"] == pytest.approx(100 * (1 + 2 / 3) / 4)
    assert "1 of 4 questions have no prediction" in caplog.text
    assert korquad_scores(examples[:1], {"a": "서울특별시의"}) == pytest.approx(
        {"exact_match": 0.0, "f1": 100 * 2 * (5 / 6) / (5 / 6 + 1)}
    )
    with pytest.raises(UserError, match="question id 'x' has no answer"):
        korquad_scores([QAExample("x", "", "q", "c", (), ())], {"x": "a"})


def test_gold_answers_score_100_on_the_dev_file(dev):
    scores = korquad_scores(dev, {e.id: e.answer_texts[0] for e in dev})
    assert scores == {"exact_match": 100.0, "f1": 100.0}
