"""Public fakes and contract-test mixins for people writing ragkit components."""

from ragkit.testing.contracts import EmbedderContract, GeneratorContract
from ragkit.testing.fakes import FakeEmbedder, FakeGenerator

__all__ = ["FakeEmbedder", "FakeGenerator", "EmbedderContract", "GeneratorContract"]
