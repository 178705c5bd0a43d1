"""Celery tasks: post-call re-transcription, batch jobs, webhook delivery."""
