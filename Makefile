# The two commands of the README: `make demo` and `make test`.  Both create .venv and install the
# pinned stack (.ci/requirements.lock) on first use.
PYTHON ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
DEMO_DIR ?= demo-output

.PHONY: demo test test-fast sdist bench clean

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

test: $(STAMP)
	$(BIN)/python -m pytest

test-fast: $(STAMP)
	$(BIN)/python -m pytest -m "not slow"

sdist: $(STAMP)
	$(BIN)/python -c "from setuptools import build_meta; print('dist/' + build_meta.build_sdist('dist'))"

bench: $(STAMP)
	$(BIN)/python -m benchmarks.preprocess
	$(BIN)/python -m benchmarks.tokenize
	$(BIN)/python -m benchmarks.pretrain_step

clean:
	rm -rf $(VENV) $(DEMO_DIR) dist build *.egg-info
