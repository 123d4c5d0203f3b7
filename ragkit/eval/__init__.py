"""Evaluation: retrieval and answer metrics, and the runners behind ``ragkit eval``."""
