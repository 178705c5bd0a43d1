"""Database operations, one module per table family; routes stay thin."""
