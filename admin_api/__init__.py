"""Admin backend: tenants, API keys, hot-word lists with versions, calls and transcripts.

FastAPI + SQLModel; never imports an engine. Built by the Admin-backend issue.
"""
