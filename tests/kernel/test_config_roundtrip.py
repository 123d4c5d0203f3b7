"""Every registered component: its config loads, dumps and loads back identically; example pipelines validate."""

import pytest
import yaml
from paths import ROOT

from ragkit import registry
from ragkit.config import load_pipeline, parse_pipeline

# The fields a type requires; everything else keeps its default.
REQUIRED = {
    ("embedder", "ollama"): {"model": "nomic-embed-text"},
    ("embedder", "sentence_transformers"): {"model_path": "/models/st"},
    ("store", "qdrant"): {"location": ":memory:"},
    ("reranker", "cross_encoder"): {"model_dir": "/models/ce"},
    ("generator", "anthropic"): {"model": "claude-sonnet-4-5"},
    ("generator", "gemini"): {"model": "gemini-2.5-flash"},
    ("generator", "ollama"): {"model": "llama3.2"},
    ("generator", "openai"): {"model": "gpt-4o-mini"},
}
SINGLE = {"chunker", "embedder", "store", "retriever", "reranker", "compressor", "router"}
CASES = [(role, name) for role in registry.ROLES for name in registry.names(role)]


@pytest.mark.parametrize("role,name", CASES)
def test_component_round_trips(role, name):
    block = {"type": name, **REQUIRED.get((role, name), {})}
    data = {"generators": {"g": block}, "default_generator": "g"} if role == "generator" else {role: block}
    if role == "router":
        data["generators"] = {"local": {"type": "llamacpp"}, "strong": {"type": "llamacpp", "n_ctx": 4096}}
    first = parse_pipeline(data)
    text = first.dump_yaml()
    second = parse_pipeline(yaml.safe_load(text))
    assert second == first
    assert second.dump_yaml() == text


@pytest.mark.parametrize("path", sorted((ROOT / "examples" / "pipelines").glob("*.yaml")), ids=lambda p: p.name)
def test_example_pipelines_validate_and_round_trip(path):
    config = load_pipeline(path)
    assert parse_pipeline(config.dump()) == config


def test_secrets_are_names_not_values(monkeypatch):
    monkeypatch.setenv("OPENAI_API_KEY", "sk-live-SECRET-123")
    config = load_pipeline(ROOT / "examples" / "pipelines" / "routed.yaml")
    assert config.generators["strong"].config.api_key_env == "OPENAI_API_KEY"
    assert "SECRET" not in config.dump_yaml() and "SECRET" not in repr(config)


def test_router_naming_undefined_generator_fails_before_building():
    with pytest.raises(Exception, match="not defined under generators"):
        parse_pipeline(
            {"router": {"type": "rules", "strong_generator": "gpt"}, "generators": {"local": {"type": "llamacpp"}}}
        )


def test_threshold_outside_unit_interval_is_reported_with_path():
    with pytest.raises(Exception) as e:
        parse_pipeline({"router": {"type": "rules", "threshold": 1.5, "strong_generator": "local"}})
    assert "router.threshold" in str(e.value)
