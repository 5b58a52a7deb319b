"""The optimize pipeline: a recipe (typed config) and the executor that runs it into a run directory."""
