"""Reports: JSON, Markdown and self-contained HTML (tables and an accuracy-vs-latency plot)."""
