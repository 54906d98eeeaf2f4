"""The scoring engine: parse an answer, check it against its problem, score it by a reward profile.

Pure functions over `shared_schema` types and the problem index; compiled by mypyc, and the `default`
profile mirrored in C (`_core.c`). It imports the task's problems and solver, never the service.
"""
