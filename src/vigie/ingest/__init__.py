"""Ingest: where media come from (folders today; archives, disk images, crawls and reports later)."""
