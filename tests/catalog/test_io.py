"""JSONL catalog reading and writing."""

from __future__ import annotations

import json

import pytest

from catalog import (
    CatalogError,
    Entity,
    generate_demo_catalog,
    read_entities,
    write_entities,
)


def test_jsonl_round_trip(tmp_path):
    entities = generate_demo_catalog(size=400, seed=7)
    path = tmp_path / "nested" / "catalog.jsonl"
    assert write_entities(path, entities) == 400
    assert read_entities(path) == entities


def test_non_ascii_text_survives(tmp_path):
    entity = Entity(id="track:1", type="track", title="Canção do Mar", artist="Björk", genres=("r&b",))
    write_entities(tmp_path / "c.jsonl", [entity])
    assert read_entities(tmp_path / "c.jsonl") == [entity]


def test_blank_lines_are_skipped(tmp_path):
    path = tmp_path / "c.jsonl"
    path.write_text('\n{"id": "a", "type": "track", "title": "A"}\n\n', encoding="utf-8")
    assert [e.id for e in read_entities(path)] == ["a"]


@pytest.mark.parametrize(
    ("bad_record", "field"),
    [
        ({"id": "x", "type": "song", "title": "X"}, "type"),
        ({"id": "", "type": "track", "title": "X"}, "id"),
        ({"id": "x", "type": "track", "title": "X", "popularity": "high"}, "popularity"),
        ({"id": "x", "type": "track", "title": "X", "genres": "pop"}, "genres"),
    ],
)
def test_bad_line_names_file_line_and_field(tmp_path, bad_record, field):
    path = tmp_path / "c.jsonl"
    good = json.dumps({"id": "ok", "type": "track", "title": "Fine"})
    path.write_text(f"{good}\n{good}\n{json.dumps(bad_record)}\n", encoding="utf-8")
    with pytest.raises(CatalogError) as raised:
        read_entities(path)
    assert f"{path}:3: {field}:" in str(raised.value)


def test_invalid_json_names_the_line(tmp_path):
    path = tmp_path / "c.jsonl"
    path.write_text('{"id": "ok", "type": "track", "title": "Fine"}\n{"id": \n', encoding="utf-8")
    with pytest.raises(CatalogError, match=r"c\.jsonl:2: not valid JSON"):
        read_entities(path)


def test_missing_file_is_named(tmp_path):
    with pytest.raises(CatalogError, match="path: catalog file .*missing.jsonl"):
        read_entities(tmp_path / "missing.jsonl")
