"""Celery glue: ``celery -A workers worker`` finds :data:`app` here."""

from workers.celery_app import app

__all__ = ["app"]
