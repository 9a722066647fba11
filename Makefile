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

# The whole pipeline on the demo corpus (kcbert_tf/data/demo_comments.txt), into $(DEMO_DIR)/.
demo: $(STAMP)
	$(BIN)/kcbert-tf preprocess --input kcbert_tf/data/demo_comments.txt --output $(DEMO_DIR)/cleaned --overwrite
	@echo "--- $(DEMO_DIR)/cleaned/stats.json"; cat $(DEMO_DIR)/cleaned/stats.json

test: $(STAMP)
	$(BIN)/python -m pytest

test-fast: $(STAMP)
	$(BIN)/python -m pytest -m "not slow"

sdist: $(STAMP)
	$(BIN)/python -c "from setuptools import build_meta; print('dist/' + build_meta.build_sdist('dist'))"

bench: $(STAMP)
	$(BIN)/python benchmarks/preprocess.py

clean:
	rm -rf $(VENV) $(DEMO_DIR) dist build *.egg-info
