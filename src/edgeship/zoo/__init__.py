"""Bundled real models and data: MiniLM, EfficientNet-Lite0 and a digits CNN, photos, sentences."""
