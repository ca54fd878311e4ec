"""Training: token-exact rollouts (``rollout``), SFT and GRPO on them (``sft_grpo``), models (``models``) and a
bundle as TRL's own ``environment_factory`` (``trl_environment``)."""
