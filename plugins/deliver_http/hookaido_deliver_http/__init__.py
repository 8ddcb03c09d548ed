"""Hookaido plugin package deliver_http."""
