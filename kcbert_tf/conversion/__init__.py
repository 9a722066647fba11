"""Conversion: to and from Hugging Face (transformers, safetensors) and a TensorFlow SavedModel."""
