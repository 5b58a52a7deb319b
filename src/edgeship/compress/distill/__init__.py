"""Knowledge distillation: ``config`` (DistillConfig), ``students`` (student specs), ``hidden_states``
(block-to-block matching), ``step`` (``distill()``)."""
