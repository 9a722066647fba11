# The two commands of the README: `make demo` and `make test`.  Both create .venv and install the
# pinned stack (.ci/requirements.lock) on first use.
PYTHON ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
DEMO_DIR ?= demo-output

# The same strategy, data and training tests on the TPU VM stack (.ci/requirements-tpu.lock:
# TensorFlow 2.20 from tensorflow-tpu, on the CPU here; libtpu is left out, there is no TPU).
TPU_STACK_VENV := .venv-tf2.20
TPU_STACK_TESTS := tests/test_strategy.py tests/test_input_pipeline.py tests/test_pretraining.py \
	tests/test_replicas.py tests/test_keras_internals.py

.PHONY: demo test test-fast test-tpu-stack tpu-venv sdist bench clean

$(STAMP): .ci/requirements.lock pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -r .ci/requirements.lock
	$(BIN)/python -m pip install --quiet --disable-pip-version-check --no-deps --no-build-isolation -e .
	touch $(STAMP)

# The whole pipeline on the demo corpus (kcbert_tf/resources/demo_comments.txt), into $(DEMO_DIR)/:
# clean + dedup, a small WordPiece vocab, packed pretraining records, a tiny model pretrained
# for 300 CPU steps, exported to Hugging Face form and reloaded by transformers for fill-mask.
demo: $(STAMP)
	$(BIN)/kcbert-tf preprocess --input kcbert_tf/resources/demo_comments.txt --output $(DEMO_DIR)/cleaned --overwrite
	$(BIN)/kcbert-tf train-tokenizer --input '$(DEMO_DIR)/cleaned/*.tfrecord' --output $(DEMO_DIR)/vocab \
		--vocab-size 3000 --limit-alphabet 1000 --overwrite
	$(BIN)/kcbert-tf make-pretraining-data --input $(DEMO_DIR)/cleaned --vocab $(DEMO_DIR)/vocab \
		--output $(DEMO_DIR)/pretraining --max-seq-length 128 --overwrite
	rm -rf $(DEMO_DIR)/model
	$(BIN)/kcbert-tf pretrain --config configs/kcbert-tiny.json --data $(DEMO_DIR)/pretraining \
		--model-dir $(DEMO_DIR)/model --train-config configs/pretrain-tiny.json
	$(BIN)/kcbert-tf export-hf --model-dir $(DEMO_DIR)/model --output $(DEMO_DIR)/hf --overwrite
	$(BIN)/kcbert-tf fill-mask --hf-dir $(DEMO_DIR)/hf "오늘 경기 진짜 [MASK] 네요"

test: $(STAMP) $(TPU_STACK_VENV)/.installed
	$(BIN)/python -m pytest
	$(MAKE) test-tpu-stack

$(TPU_STACK_VENV)/.installed: .ci/requirements-tpu.lock pyproject.toml
	test -x $(TPU_STACK_VENV)/bin/python || $(PYTHON) -m venv $(TPU_STACK_VENV)
	grep -v '^libtpu==' .ci/requirements-tpu.lock > $(TPU_STACK_VENV)/requirements-cpu.txt
	$(TPU_STACK_VENV)/bin/python -m pip install --quiet --disable-pip-version-check --no-deps -r $(TPU_STACK_VENV)/requirements-cpu.txt
	$(TPU_STACK_VENV)/bin/python -m pip install --quiet --disable-pip-version-check --no-deps --no-build-isolation -e .
	touch $@

test-tpu-stack: $(TPU_STACK_VENV)/.installed
	$(TPU_STACK_VENV)/bin/python -c "import tensorflow as tf; print('TPU VM stack: TensorFlow', tf.__version__)"
	$(TPU_STACK_VENV)/bin/python -m pytest $(TPU_STACK_TESTS)

# On a Cloud TPU VM (Python 3.11): .venv with the TPU stack, libtpu included; then
# `.venv/bin/kcbert-tf pretrain --tpu local ...` (README: Cloud TPU).
tpu-venv:
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --disable-pip-version-check --no-deps -r .ci/requirements-tpu.lock
	$(BIN)/python -m pip install --disable-pip-version-check --no-deps --no-build-isolation -e .

test-fast: $(STAMP)
	$(BIN)/python -m pytest -m "not slow"

sdist: $(STAMP)
	$(BIN)/python -c "from setuptools import build_meta; print('dist/' + build_meta.build_sdist('dist'))"

bench: $(STAMP)
	$(BIN)/python -m benchmarks.preprocess
	$(BIN)/python -m benchmarks.tokenizer_speed
	$(BIN)/python -m benchmarks.pretrain_step
	$(BIN)/python -m benchmarks.resume

clean:
	rm -rf $(VENV) $(TPU_STACK_VENV) $(DEMO_DIR) dist build *.egg-info
