"""The HTTP service: the FastAPI app, its routes, errors, security, metrics, docs and playground.

The only package that imports FastAPI or Starlette: it validates, calls the task and the scoring engine,
and serialises.
"""
