"""The task: problems, their generator and themes, the exact solver, prompts, reasoning traces, files."""
