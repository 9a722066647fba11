"""Packaged configs by name (kcbert_tf.config_files): checked against the repository's configs/."""

from __future__ import annotations

import json
import pathlib

import pytest

from conftest import REPO
from kcbert_tf.config_files import packaged_configs, resolve_config
from kcbert_tf.errors import UserError

CONFIGS = REPO / "configs"
NAMES = ["kcbert-base", "kcbert-large", "kcbert-tiny", "pretrain-base", "pretrain-large", "pretrain-tiny"]


def test_every_config_of_the_repository_is_packaged():
    assert packaged_configs() == sorted(path.stem for path in CONFIGS.glob("*.json")) == NAMES


@pytest.mark.parametrize("name", NAMES)
def test_a_name_resolves_to_the_repository_s_file(name):
    resolved = pathlib.Path(resolve_config(name, flag="--config"))
    assert resolved.is_absolute() and resolved.name == f"{name}.json"
    assert resolved.read_bytes() == (CONFIGS / f"{name}.json").read_bytes()


def test_a_name_with_json_resolves_to_the_same_file():
    with_suffix = resolve_config("pretrain-tiny.json", flag="--train-config")
    assert with_suffix == resolve_config("pretrain-tiny", flag="--train-config")
    assert pathlib.Path(with_suffix).read_bytes() == (CONFIGS / "pretrain-tiny.json").read_bytes()


def test_a_path_that_exists_wins_and_is_returned_as_given(tmp_path, monkeypatch):
    mine = tmp_path / "kcbert-base.json"  # named like a packaged config: the path still wins
    mine.write_text('{"vocab_size": 8}')
    assert resolve_config(str(mine), flag="--config") == str(mine)
    assert resolve_config(str(tmp_path), flag="--config") == str(tmp_path)  # a model directory
    monkeypatch.chdir(tmp_path)
    assert resolve_config("kcbert-base.json", flag="--config") == "kcbert-base.json"  # relative, in the cwd


def test_a_url_is_passed_on_untouched():
    assert resolve_config("gs://bucket/configs/kcbert-base.json", flag="--config") == "gs://bucket/configs/kcbert-base.json"


def test_an_unknown_name_says_the_flag_the_value_and_the_packaged_names():
    with pytest.raises(UserError) as raised:
        resolve_config("kcbert-huge", flag="--config")
    assert str(raised.value) == (
        "--config kcbert-huge: no such file, and not a packaged config; give a path or one of "
        "kcbert-base, kcbert-large, kcbert-tiny, pretrain-base, pretrain-large, pretrain-tiny"
    )


def test_a_missing_path_is_not_taken_for_a_packaged_name(tmp_path, monkeypatch):
    """Only a bare name is looked up: a path that is not there stays an error."""
    monkeypatch.chdir(tmp_path)
    with pytest.raises(UserError, match=r"^--train-config configs/pretrain-base\.json: no such file, and not a packaged"):
        resolve_config("configs/pretrain-base.json", flag="--train-config")


def test_pretrain_reads_the_packaged_training_config_by_name(tmp_path, monkeypatch):
    from kcbert_tf.training.pretraining import TrainConfig, load_train_config

    monkeypatch.chdir(tmp_path)  # not the checkout: the name is found in the package
    expected = json.loads((CONFIGS / "pretrain-base.json").read_text())
    train = load_train_config("pretrain-base")
    assert train == TrainConfig(**{k: v for k, v in expected.items() if not k.startswith("_")})


def test_pretrain_names_the_flag_of_an_unknown_config(tmp_path, capsys):
    from kcbert_tf.cli import main as cli

    status = cli(["pretrain", "--config", "kcbert-huge", "--data", str(tmp_path), "--model-dir", str(tmp_path / "m")])
    assert status == 2
    assert "--config kcbert-huge: no such file, and not a packaged config; give a path or one of kcbert-base" in (
        capsys.readouterr().err
    )
    assert not (tmp_path / "m").exists()
