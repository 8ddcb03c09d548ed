"""Hookaido plugin package backend_sqlite."""
