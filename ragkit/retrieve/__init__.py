"""Retrieve: hybrid dense + BM25 search, fusion, payload filters, reranking."""
