"""Catalog: the ``Entity`` schema, JSONL/BEIR/Spotify loaders and the deterministic demo generator."""

from catalog.beir import BeirCollection, load_beir, load_qrels, load_queries
from catalog.demo import generate_demo_catalog
from catalog.io import read_entities, write_entities
from catalog.schema import CatalogError, Entity
from catalog.spotify import load_spotify

__all__ = [
    "BeirCollection", "CatalogError", "Entity", "generate_demo_catalog", "load_beir", "load_qrels",
    "load_queries", "load_spotify", "read_entities", "write_entities",
]
