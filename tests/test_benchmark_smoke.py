"""The benchmarks run end to end on a tiny size (the timing itself stays out of tests): each
prints its table and checks that ours gives the peer's results."""

from __future__ import annotations

import subprocess
import sys

import pytest

from conftest import REPO, shared_file


@pytest.mark.slow
def test_predict_speed_runs_and_agrees_with_transformers():
    shared_file("nsmc/train.txt")  # skips when the shared data is absent
    result = subprocess.run(
        [sys.executable, "-m", "benchmarks.predict_speed", "--layers", "1", "--hidden", "64", "--rows", "40"],
        cwd=REPO, capture_output=True, text=True, timeout=600,
    )
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-2000:]
    table = rows_after(result.stdout, "side ", 3)
    assert [line.split()[0] for line in table] == ["transformers", "kcbert-tf", "SavedModel"]
    assert "probabilities equal within 1e-4: yes" in result.stdout


def rows_after(stdout: str, header: str, count: int) -> list[str]:
    """The ``count`` lines after the first line of ``stdout`` that starts with ``header``: a
    benchmark table's rows."""
    lines = stdout.splitlines()
    start = lines.index(next(line for line in lines if line.startswith(header))) + 1
    return lines[start : start + count]


def _run_benchmark(*argv: str) -> str:
    result = subprocess.run([sys.executable, "-m", *argv], cwd=REPO, capture_output=True, text=True, timeout=900)
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-2000:]
    return result.stdout


@pytest.mark.slow
def test_preprocess_benchmark_runs_and_keeps_what_the_loop_keeps():
    shared_file("comments/news_comments.txt")
    stdout = _run_benchmark("benchmarks.preprocess", "--lines", "30000", "--repeats", "1")
    rows = [line for line in stdout.splitlines() if line.startswith("| ") and "x |" in line]
    assert len(rows) == 3 and len({row.split("|")[2].strip() for row in rows}) == 1  # the same kept count


@pytest.mark.slow
def test_pretraining_data_benchmark_runs_and_packs_the_fast_tokenizers_tokens():
    shared_file("comments/news_comments.txt")
    shared_file("kcbert/vocab.txt")
    stdout = _run_benchmark("benchmarks.pretraining_data_speed", "--comments", "3000")
    assert "the same comment tokens packed" in stdout and stdout.rstrip().endswith(": yes")


@pytest.mark.slow
def test_finetune_parity_benchmark_runs_on_a_tiny_model_over_two_seeds():
    shared_file("nsmc/train.txt")
    stdout = _run_benchmark("benchmarks.finetune_parity", "--tasks", "nsmc", "--epochs", "1", "--train-size", "256",
                            "--eval-size", "64", "--layers", "1", "--hidden", "64", "--seeds", "1,2")
    table = rows_after(stdout, "| side ", 3)[1:]
    assert [row.split("|")[1].strip() for row in table] == ["transformers (PyTorch loop)", "kcbert-tf finetune"]
    for row in table:  # mean ± sd of the two seeds, each seed's best
        cells = [cell.strip() for cell in row.split("|")]
        assert " ± " in cells[2] and cells[3].startswith("1: ") and ", 2: " in cells[3], row
    assert len([line for line in stdout.splitlines() if ", seed " in line and " per epoch: " in line]) == 4
    assert "the difference exceeds the seeds' spread" in stdout or "the difference is within the seeds' spread" in stdout


@pytest.mark.slow
def test_pretraining_value_benchmark_runs_both_arms_over_two_seeds():
    shared_file("comments/news_comments.txt")
    shared_file("nsmc/train.txt")
    shared_file("kcbert/vocab.txt")
    stdout = _run_benchmark("benchmarks.pretraining_value", "--pretrain-steps", "4", "--pretrain-batch-size", "16",
                            "--layers", "1", "--hidden", "64", "--train-size", "256", "--eval-size", "64",
                            "--finetune-epochs", "1", "--seeds", "1,2")
    table = rows_after(stdout, "| arm ", 3)[1:]
    assert [row.split("|")[1].strip() for row in table] == ["pretrained", "random"]
    for row in table:  # mean ± sd of the two seeds, each seed's best
        cells = [cell.strip() for cell in row.split("|")]
        assert " ± " in cells[7] and cells[8].startswith("1: ") and ", 2: " in cells[8], row
    gain = next(line for line in stdout.splitlines() if line.startswith("gain from pretraining"))
    assert "sd over the seeds" in gain and ("exceeds the seeds' spread" in gain or "is within the seeds' spread" in gain)


@pytest.mark.slow
def test_finetune_speed_benchmark_runs_all_three_sides_on_a_tiny_model():
    shared_file("nsmc/train.txt")
    stdout = _run_benchmark("benchmarks.finetune_speed", "--cases", "small", "--tasks", "", "--train-size", "256",
                            "--eval-size", "64", "--layers", "1", "--hidden", "64")
    sides = [line.split("|")[1].strip() for line in stdout.splitlines() if line.startswith("| ") and "---" not in line
             and not line.startswith("| side")]
    assert sides == ["transformers, dynamic padding", "transformers, group_by_length", "kcbert-tf finetune"], stdout
    assert stdout.count("ours against transformers") == 2


@pytest.mark.slow
def test_startup_benchmark_reports_every_subcommand():
    stdout = _run_benchmark("benchmarks.startup")
    rows = {line.split("|")[1].strip(): line for line in stdout.splitlines() if line.startswith("| kcbert-tf ")}
    assert set(rows) >= {"kcbert-tf predict", "kcbert-tf finetune", "kcbert-tf preprocess"}
    assert "torch" not in rows["kcbert-tf predict"] and "Beam" not in rows["kcbert-tf predict"]


@pytest.mark.slow
def test_batch_predict_benchmark_runs_on_1_and_2_workers_and_agrees_with_predict():
    shared_file("nsmc/train.txt")
    stdout = _run_benchmark("benchmarks.batch_predict", "--layers", "1", "--hidden", "64", "--rows", "120",
                            "--small-rows", "10")
    table = rows_after(stdout, "side ", 3)
    assert [line.split(",")[0].split("  ")[0] for line in table] == ["kcbert-tf predict", "batch-predict",
                                                                     "batch-predict"]
    assert "model loaded 2 time(s)" in stdout  # once per worker process, 2 workers
    assert "labels equal, probabilities within 1e-4: yes" in stdout
    assert "paper estimate" in stdout


@pytest.mark.slow
def test_finetune_profile_runs_and_reads_its_trace():
    shared_file("nsmc/train.txt")
    stdout = _run_benchmark("benchmarks.finetune_profile", "--processes", "1", "--epochs", "1", "--train-size", "640",
                            "--eval-size", "64")
    row = rows_after(stdout, "process ", 1)[0].split()
    assert row[0] == "1" and int(row[5]) == 10  # 640 rows / 64 = 10 steps, each timed
    assert "inter-op" in stdout and "_MklMatMul" in stdout  # the trace was read back


@pytest.mark.slow
def test_the_ner_and_korquad_rows_run_with_the_transformers_side_padding_to_the_longest_row():
    """The rows `finetune_speed --tasks ner,qa` prints, on a tiny slice: both sides of both tasks
    finish and are scored."""
    shared_file("klue-ner/train.tsv")
    shared_file("korquad/KorQuAD_v1.0_dev.json")
    code = (
        "from benchmarks.parity_ner_qa import NerSettings, QaSettings, format_rows, ner_rows, qa_rows\n"
        "rows = ner_rows(settings=NerSettings(train=(0, 48), evaluation=(3000, 3032), epochs=1, batch_size=16,"
        " padding='longest'), layers=1, hidden=64)\n"
        "rows += qa_rows(settings=QaSettings(limit_train=24, eval_split=0.02, epochs=1, padding='longest'),"
        " layers=1, hidden=64)\n"
        "print(format_rows(rows))\n"
    )
    result = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, timeout=900)
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-2000:]
    stdout = result.stdout
    table = [line for line in stdout.splitlines() if line.startswith(("| KLUE-NER |", "| KorQuAD |"))]
    assert len(table) == 4 and not any("FAILED" in line for line in table), stdout[-3000:]


@pytest.mark.slow
def test_whole_word_masking_benchmark_pretrains_both_arms_and_reports_each_seed(tmp_path):
    shared_file("comments/news_comments.txt")
    shared_file("nsmc/train.txt")
    stdout = _run_benchmark("benchmarks.whole_word_masking", "--pretrain-steps", "4", "--pretrain-batch-size", "16",
                            "--layers", "1", "--hidden", "64", "--seeds", "1,2", "--tasks", "nsmc", "--nsmc-train", "200",
                            "--nsmc-eval", "100", "--keep", str(tmp_path))
    rows = [line for line in stdout.splitlines() if line.startswith("| nsmc (accuracy) |")]
    assert [row.split("|")[2].strip() for row in rows] == ["token", "whole-word"]
    assert all(len(row.split("|")[3].split(",")) == 2 for row in rows)  # a score per seed
    assert "nsmc: whole-word - token = " in stdout
    states = {arm: (tmp_path / arm / "pretrained" / "training_state.json").read_text() for arm in ("token", "whole-word")}
    assert '"whole_word_mask": true' in states["whole-word"] and '"whole_word_mask": false' in states["token"]


@pytest.mark.slow
def test_grad_accum_memory_benchmark_runs_each_k_at_one_global_batch(tmp_path):
    import json

    shared_file("comments/news_comments.txt")
    config = tmp_path / "small.json"
    config.write_text(json.dumps({
        "architectures": ["BertForMaskedLM"], "model_type": "bert", "vocab_size": 30000, "hidden_size": 64,
        "num_hidden_layers": 1, "num_attention_heads": 1, "intermediate_size": 128, "hidden_act": "gelu",
        "hidden_dropout_prob": 0.1, "attention_probs_dropout_prob": 0.1, "max_position_embeddings": 64,
        "type_vocab_size": 2, "initializer_range": 0.02, "layer_norm_eps": 1e-12, "pad_token_id": 0}))
    stdout = _run_benchmark("benchmarks.grad_accum_memory", "--config", str(config), "--length", "32", "--batch-size", "8",
                            "--steps", "1", "--accumulate", "1,4", "--keep", str(tmp_path / "work"))
    table = rows_after(stdout, "| ---: |", 2)
    assert [int(line.split("|")[1]) for line in table] == [1, 4]
    assert [int(line.split("|")[2]) for line in table] == [8, 2]


@pytest.mark.slow
def test_int8_accuracy_benchmark_scores_the_tf_fp32_and_int8_models_on_a_tiny_model():
    shared_file("nsmc/train.txt")
    shared_file("kcbert/vocab.txt")
    stdout = _run_benchmark("benchmarks.int8_accuracy", "--layers", "1", "--hidden", "32", "--train-size", "200",
                            "--eval-size", "50", "--epochs", "1")
    table = [[cell.strip() for cell in row.split("|")[1:-1]] for row in rows_after(stdout, "| model |", 4)[1:]]
    assert [row[0] for row in table] == ["TF model directory", "LiteRT fp32", "LiteRT int8"], stdout[-3000:]
    assert [row[1].rsplit(".", 1)[-1] for row in table[1:]] == ["tflite", "tflite"]
    for row in table:
        assert 0.0 <= float(row[3]) <= 1.0, row  # the held-out accuracy
    assert float(table[1][7]) < 1e-3  # LiteRT fp32 against TF: max abs probability difference
    assert "goal (|int8 - fp32| <= 0.5 points" in stdout


@pytest.mark.slow
def test_int8_speed_benchmark_runs_every_side_and_they_agree_with_torch():
    """`int8_speed` on a tiny classifier: all eight sides run (the plain loop, torch fp32 and int8,
    ONNX Runtime int8 and fp32, our TF and both LiteRT predicts), the fp32 ones give torch's
    probabilities and the int8 ones come near them."""
    shared_file("nsmc/train.txt")
    shared_file("kcbert/vocab.txt")
    stdout = _run_benchmark("benchmarks.int8_speed", "--layers", "1", "--hidden", "32", "--rows", "20")
    table = [[cell.strip() for cell in row.split("|")[1:-1]] for row in rows_after(stdout, "| side ", 9)[1:]]
    assert [row[0] for row in table] == [
        "transformers, plain loop", "torch fp32, sorted", "torch dynamic int8", "ONNX Runtime int8", "ONNX Runtime fp32",
        "kcbert-tf predict (TF)", "kcbert-tf predict, LiteRT int8", "kcbert-tf predict, LiteRT fp32"], stdout
    for row in table:
        assert float(row[1]) > 0 and row[3] and float(row[6].replace(",", "")) > 0, row  # compute may read "<0.01"
        if row[0] != "torch fp32, sorted":
            bound = 0.05 if "int8" in row[0] else 1.5e-4  # fp32: within 1e-4, plus predict's 4 written decimals
            assert float(row[9]) <= bound, row
    assert "fp32 sides equal torch fp32 within 1e-4: yes" in stdout
    assert stdout.count(", met") + stdout.count(", NOT met") == 3  # the three goals, judged
    assert "LiteRT int8" in stdout.split("model files: ")[1] and "ONNX int8" in stdout.split("model files: ")[1]
