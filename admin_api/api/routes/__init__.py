"""Admin routes, one module per resource."""
