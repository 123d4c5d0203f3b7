"""Pipeline YAML: validation with paths and lines, round trips, schema, secrets by reference."""

import json
import textwrap

import pytest

from ragkit.config import ConfigValidationError, json_schema, load_pipeline, parse_pipeline
from ragkit.errors import ConfigError


def write(tmp_path, text):
    p = tmp_path / "pipe.yaml"
    p.write_text(textwrap.dedent(text))
    return p


def test_defaults_validate_without_building_anything():
    config = load_pipeline(None)
    assert config.components["embedder"].type == "minilm_onnx"
    assert config.default_generator == "local"


def test_typo_key_reports_path_and_line(tmp_path):
    p = write(
        tmp_path,
        """\
        index_dir: idx
        retrieval:
          top_k: 5
          candidatez: 10
        """,
    )
    with pytest.raises(ConfigValidationError) as e:
        load_pipeline(p)
    problems = e.value.problems
    assert any(pr.path == "retrieval.candidatez" and pr.line == 4 for pr in problems), problems


def test_every_problem_is_reported(tmp_path):
    p = write(
        tmp_path,
        """\
        retrieval:
          top_k: many
        budget:
          reserved_output_tokens: -3
        unknown_section: 1
        """,
    )
    with pytest.raises(ConfigValidationError) as e:
        load_pipeline(p)
    paths = {pr.path: pr.line for pr in e.value.problems}
    assert paths["retrieval.top_k"] == 2
    assert paths["budget.reserved_output_tokens"] == 4
    assert paths["unknown_section"] == 5


def test_unknown_type_lists_registered(tmp_path):
    p = write(
        tmp_path,
        """\
        retriever:
          type: hybrd
        """,
    )
    with pytest.raises(ConfigValidationError) as e:
        load_pipeline(p)
    msg = str(e.value)
    assert "hybrd" in msg and "hybrid" in msg and "line 2" in msg


def test_default_generator_must_exist():
    with pytest.raises(ConfigValidationError, match="not under generators"):
        parse_pipeline({"default_generator": "strong"})


def test_bad_yaml_syntax_is_located(tmp_path):
    p = write(tmp_path, "retrieval:\n  top_k: [1, 2\n")
    with pytest.raises(ConfigValidationError) as e:
        load_pipeline(p)
    assert e.value.problems[0].line is not None


def test_missing_file_is_config_error(tmp_path):
    with pytest.raises(ConfigError, match="cannot read"):
        load_pipeline(tmp_path / "nope.yaml")


def test_round_trip_settings(tmp_path):
    p = write(
        tmp_path,
        """\
        index_dir: somewhere
        retrieval: {top_k: 3, candidates: 30}
        budget: {reserved_output_tokens: 100, context_window: 4096}
        retry: {max_attempts: 2, deadline_s: 10}
        """,
    )
    first = load_pipeline(p)
    second = parse_pipeline(first.dump())
    assert second.dump() == first.dump()
    assert second.settings["retry"].max_attempts == 2
    assert parse_pipeline(json.loads(json.dumps(first.dump()))) == second


def test_schema_is_json_and_names_roles():
    schema = json_schema()
    json.dumps(schema)
    assert {"embedder", "store", "generators", "retry"} <= set(schema["properties"])
    assert schema["additionalProperties"] is False
