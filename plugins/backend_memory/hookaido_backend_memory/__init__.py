"""Hookaido plugin package backend_memory."""
