"""HTTP routes of the ASR service."""
