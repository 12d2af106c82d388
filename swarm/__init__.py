"""Swarm: run very large batches of LLM agent tasks over Celery workers that share one Redis."""

__version__ = "0.1.0"
