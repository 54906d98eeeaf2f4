"""The check-and-submit episode as a TRL environment: `GRPOTrainer(environment_factory=...)`.

    from trainer.integrations.trl_tools import scheduling_environment, tool_dataset

    factory = scheduling_environment("http://127.0.0.1:8000", checks=3)
    trainer = GRPOTrainer(model=..., args=GRPOConfig(max_tool_calling_iterations=6, ...),
                          train_dataset=tool_dataset("http://127.0.0.1:8000", n=256),
                          environment_factory=factory)

The classes live in `trainer.client.tool_env` (a client of the service, used by this project's own
tool-episode training and evaluation too); this module is the name users import. How TRL drives them,
and why SmolLM2 needs `tool_calling_tokenizer`: that module's docstring.
"""

from trainer.client.tool_env import (
    TOOL_NAMES,
    SchedulingToolEnv,
    TrainingToolEnv,
    describe_check,
    last_message_text,
    scheduling_environment,
    tool_calling_tokenizer,
    tool_dataset,
    tool_schemas,
    training_environment,
)

__all__ = [
    "TOOL_NAMES",
    "SchedulingToolEnv",
    "TrainingToolEnv",
    "describe_check",
    "last_message_text",
    "scheduling_environment",
    "tool_calling_tokenizer",
    "tool_dataset",
    "tool_schemas",
    "training_environment",
]
