"""HTTP layer of the admin backend: dependencies and routes."""
