"""Pruning: ``config`` (PruneConfig), ``structured`` / ``unstructured`` (how), ``importance`` and
``attention`` (what structured pruning ranks and finds), ``step`` (``prune()``)."""
