"""Celery worker: post-call re-transcription, batch jobs and signed webhooks.

`app` (the Celery app and the per-process context), `tasks/` (postcall, jobs, webhooks),
`runs` (job status, progress and storage around every task), `redaction`, `broker` (the
embedded SQLite transport) and `service` (queueing from the server, the embedded worker).
"""
