"""Pipelines: ``aqwen-run``'s stages run in order (``runner``, ``run``), the agentic flywheel (``flywheel``) and
distillation from a teacher (``distill``)."""
