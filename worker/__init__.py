"""Celery worker: post-call re-transcription, batch jobs and signed webhooks.

Built by the post-call re-transcription issue.
"""
