"""Public fakes and contract-test mixins for people writing ragkit components."""

from ragkit.testing.contracts import EmbedderContract, GeneratorContract
from ragkit.testing.fakes import FakeEmbedder, FakeGenerator, InMemoryStore

__all__ = ["FakeEmbedder", "FakeGenerator", "InMemoryStore", "EmbedderContract", "GeneratorContract"]
