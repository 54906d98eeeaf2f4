"""Training: GRPO and SFT (TRL + PEFT), remote reward functions, model preparation, CPU helpers."""
