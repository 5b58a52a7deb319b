"""Command-line interface (thin: parse, build configs, call the API)."""
