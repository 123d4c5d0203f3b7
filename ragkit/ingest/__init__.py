"""Ingest: load documents, chunk them, embed and index the chunks."""
