# %% [markdown]
# # KcBERT in Keras: from a transformers checkpoint to a fine-tuned classifier and back
#
# A notebook as a script (run it with `python examples/finetune_from_transformers.py`, or cell by
# cell in Jupyter / Colab / VS Code): on a CPU, from a Hugging Face BERT directory to a sentiment
# classifier fine-tuned on NSMC reviews, `predict` on raw strings, `save_to_preset` and
# KerasHub's `from_preset`, then back to transformers and its `pipeline("text-classification")`.
#
# Set `KCBERT_TF_DATA` to a directory holding `nsmc/train.txt` (NSMC, e9t/nsmc) to train on
# 2,000 real reviews; without it the example uses the project's own small labelled sample.
# Everything is written under `WORK` (default `example-output/`).

# %%
import json
import os
import pathlib
import shutil
from importlib import resources

import keras
import keras_hub
import numpy as np

import kcbert_tf

WORK = pathlib.Path(os.environ.get("WORK", "example-output"))
shutil.rmtree(WORK, ignore_errors=True)
WORK.mkdir(parents=True)
RESOURCES = resources.files("kcbert_tf") / "resources"

# %% [markdown]
# ## 1. A transformers directory to start from
#
# In real use this is KcBERT itself: `huggingface_hub.snapshot_download("beomi/kcbert-base")`
# gives a directory with `config.json`, `vocab.txt` and the weights.  To run offline, this cell
# makes a small one the same way a transformers user would: a WordPiece vocab trained on the
# project's demo comments, and a randomly initialized `BertForMaskedLM`.

# %%
import transformers

vocab = kcbert_tf.train_tokenizer(str(RESOURCES / "demo_comments.txt"), str(WORK / "vocab"), vocab_size=2000,
                                  limit_alphabet=1000)
hf_start = WORK / "hf-start"
config = transformers.BertConfig(vocab_size=vocab["vocab_size"], hidden_size=64, num_hidden_layers=2,
                                 num_attention_heads=2, intermediate_size=128, max_position_embeddings=128)
transformers.BertForMaskedLM(config).save_pretrained(hf_start)
shutil.copy(WORK / "vocab" / "vocab.txt", hf_start / "vocab.txt")
(hf_start / "tokenizer_config.json").write_text(json.dumps({"do_lower_case": False, "tokenizer_class": "BertTokenizer"}))

# %% [markdown]
# ## 2. Fine-tune on NSMC
#
# `kcbert_tf.finetune` takes the transformers directory as it is (it imports and verifies it
# against transformers first), trains with KcBERT-Finetune's NSMC settings (overridden here for
# a quick CPU run) and returns the fitted Keras model, which carries its preprocessor.

# %%
data = os.environ.get("KCBERT_TF_DATA")
if data and (pathlib.Path(data) / "nsmc" / "train.txt").exists():
    lines = (pathlib.Path(data) / "nsmc" / "train.txt").read_text(encoding="utf-8").split("\n")
    (WORK / "train.tsv").write_text("\n".join(lines[:1601]) + "\n", encoding="utf-8")
    (WORK / "eval.tsv").write_text("\n".join(lines[:1] + lines[1601:2001]) + "\n", encoding="utf-8")
    train, evaluation = str(WORK / "train.tsv"), str(WORK / "eval.tsv")
else:
    train, evaluation = str(RESOURCES / "demo_sentiment_train.tsv"), str(RESOURCES / "demo_sentiment_eval.tsv")

fitted = kcbert_tf.finetune("nsmc", train=train, eval=evaluation, init=str(hf_start), output=str(WORK / "nsmc"),
                            epochs=2, batch_size=16, learning_rate=1e-3, max_seq_length=64)
print("best epoch:", fitted.metrics["best"])

# %% [markdown]
# ## 3. Predict on raw strings
#
# The classifier cleans (KcBERT's `clean()`), tokenizes and packs the texts itself.

# %%
classifier = fitted.model
texts = ["이 영화 진짜 최고였다 ㅋㅋㅋㅋ 또 보고싶다", "시간 아깝다... 완전 실망 😡", "배우 연기가 너무 어색하다"]
probabilities = keras.ops.convert_to_numpy(keras.ops.softmax(classifier.predict(texts, verbose=0)))
for text, row in zip(texts, probabilities):
    print(classifier.labels[int(row.argmax())], row.round(3), text)

# %% [markdown]
# ## 4. A KerasHub preset
#
# `save_to_preset` writes a model directory (transformers' `config.json`, `vocab.txt`, the Keras
# weights, `task.json` with the preprocessor's settings): every `kcbert-tf` command reads it, and
# after `import kcbert_tf`, KerasHub's own `from_preset` loads it with its preprocessor.

# %%
classifier.save_to_preset(str(WORK / "preset"))
again = keras_hub.models.TextClassifier.from_preset(str(WORK / "preset"))
print(type(again).__name__, again.preprocessor.sequence_length, again.labels)
np.testing.assert_allclose(again.predict(texts, verbose=0), classifier.predict(texts, verbose=0), atol=1e-5)

# Fine-tune further with plain Keras: raw strings and label ids.
again.fit(x=texts, y=[1, 0, 0], batch_size=3, epochs=1, verbose=0)

# %% [markdown]
# ## 5. Back to transformers
#
# `export_hf` writes a `BertForSequenceClassification` directory and checks its logits against
# the Keras model's; transformers' `pipeline` then classifies with it (the texts cleaned as the
# model was trained).

# %%
kcbert_tf.export_hf(str(WORK / "preset"), str(WORK / "hf-nsmc"))
pipe = transformers.pipeline("text-classification", model=str(WORK / "hf-nsmc"), top_k=None)
for text, scores, row in zip(texts, pipe([kcbert_tf.clean(text) for text in texts]), probabilities):
    by_label = {score["label"]: score["score"] for score in scores}
    np.testing.assert_allclose([by_label[label] for label in classifier.labels], row, atol=1e-4)
    print(max(scores, key=lambda score: score["score"])["label"], text)

# %% [markdown]
# ## On a Cloud TPU
#
# The same steps under a `TPUStrategy` scope: build or load the model inside it, then `fit`.
#
# ```python
# resolver = tf.distribute.cluster_resolver.TPUClusterResolver("local")
# tf.config.experimental_connect_to_cluster(resolver)
# tf.tpu.experimental.initialize_tpu_system(resolver)
# strategy = tf.distribute.TPUStrategy(resolver)
# with strategy.scope():
#     classifier = keras_hub.models.TextClassifier.from_preset("gs://bucket/kcbert-base", num_classes=2)
# classifier.fit(x=texts, y=labels, batch_size=64, epochs=2)
# # or: kcbert_tf.finetune("nsmc", train=..., eval=..., init=..., output=..., strategy=strategy)
# ```
print("done")
