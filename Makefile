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
	tests/test_replicas.py tests/test_keras_internals.py tests/test_gradient_accumulation.py \
	tests/test_whole_word_masking.py

.PHONY: demo test test-fast test-tpu-stack tpu-venv sdist bench clean

$(STAMP): .ci/requirements.lock pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check --use-pep517 -r .ci/requirements.lock
	$(BIN)/python -m pip install --quiet --disable-pip-version-check --no-deps --no-build-isolation -e .
	touch $(STAMP)

# The whole system on the demo corpus (kcbert_tf/resources/), into $(DEMO_DIR)/: clean + dedup, a
# WordPiece vocab, packed records, a tiny model pretrained for 300 CPU steps, exported to Hugging
# Face and reloaded by transformers, fill-mask, a sentiment classifier fine-tuned on a labelled
# sample, predictions for new sentences, the classifier exported; then a summary table.
# On real data: make demo CORPUS=$KCBERT_TF_DATA/comments/news_comments.txt LABELLED=$KCBERT_TF_DATA/nsmc/train.txt
CORPUS ?=
LABELLED ?=
DEMO_ARGS ?=
demo: $(STAMP)
	$(BIN)/kcbert-tf demo --output $(DEMO_DIR) $(if $(CORPUS),--corpus $(CORPUS)) $(if $(LABELLED),--labelled $(LABELLED)) $(DEMO_ARGS)

test: $(STAMP) $(TPU_STACK_VENV)/.installed
	$(BIN)/python -m pytest
	$(MAKE) test-tpu-stack

$(TPU_STACK_VENV)/.installed: .ci/requirements-tpu.lock pyproject.toml
	test -x $(TPU_STACK_VENV)/bin/python || $(PYTHON) -m venv $(TPU_STACK_VENV)
	grep -v '^libtpu==' .ci/requirements-tpu.lock > $(TPU_STACK_VENV)/requirements-cpu.txt
	$(TPU_STACK_VENV)/bin/python -m pip install --quiet --disable-pip-version-check --use-pep517 --no-deps -r $(TPU_STACK_VENV)/requirements-cpu.txt
	$(TPU_STACK_VENV)/bin/python -m pip install --quiet --disable-pip-version-check --no-deps --no-build-isolation -e .
	touch $@

test-tpu-stack: $(TPU_STACK_VENV)/.installed
	$(TPU_STACK_VENV)/bin/python -c "import tensorflow as tf; print('TPU VM stack: TensorFlow', tf.__version__)"
	$(TPU_STACK_VENV)/bin/python -m pytest $(TPU_STACK_TESTS)

# On a Cloud TPU VM (Python 3.11): .venv with the TPU stack, libtpu included; then
# `.venv/bin/kcbert-tf pretrain --tpu local ...` (README: Cloud TPU).
tpu-venv:
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --disable-pip-version-check --use-pep517 --no-deps -r .ci/requirements-tpu.lock
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
	$(BIN)/python -m benchmarks.finetune_parity
	$(BIN)/python -m benchmarks.finetune_speed
	$(BIN)/python -m benchmarks.pretraining_value
	$(BIN)/python -m benchmarks.whole_word_masking
	$(BIN)/python -m benchmarks.grad_accum_memory
	$(BIN)/python -m benchmarks.predict_speed
	$(BIN)/python -m benchmarks.int8_speed
	$(BIN)/python -m benchmarks.int8_accuracy
	$(BIN)/python -m benchmarks.pretraining_data_speed
	$(BIN)/python -m benchmarks.startup
	$(BIN)/python -m benchmarks.batch_predict
	$(BIN)/python -m benchmarks.finetune_profile

clean:
	rm -rf $(VENV) $(TPU_STACK_VENV) $(DEMO_DIR) dist build *.egg-info
