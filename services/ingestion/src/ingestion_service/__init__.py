"""Ingestion service: listening history (plays), live sync and imports."""
