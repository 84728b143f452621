"""Which strategy wins which kind of query, on the real Spotify catalog in ../shared/datasets/music.

    python benchmarks/bench_music.py --csv ../shared/datasets/music/spotify_songs.csv --out results/bench_music.json

Loads the ~28,000 real tracks, indexes them with the default lexical (tantivy) and dense (MiniLM + FAISS
flat) retrievers and a memory index holding only cold-start predictions (no clicks), then asks
generated queries of four kinds and reports Recall@10 per strategy and kind. The target of a title,
artist+title or misspelled query is the track it was made from (any track with the same normalized title
and artist also counts); a genre/mood phrase targets every track with that genre and mood, and its recall
is the fraction of the top 10 that qualify (precision@10, since the target sets are large).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from collections import defaultdict
from pathlib import Path

import numpy as np
from rich.console import Console
from rich.table import Table

os.environ.setdefault("HF_HUB_OFFLINE", "1")

from catalog.spotify import load_spotify  # noqa: E402
from memory_index.local_store import LocalMemoryStore  # noqa: E402
from retrievers.base import Retriever  # noqa: E402
from retrievers.dense_faiss import FaissDenseRetriever  # noqa: E402
from retrievers.embedding import Embedder  # noqa: E402
from retrievers.lexical_tantivy import TantivyLexicalRetriever  # noqa: E402
from retrievers.memory import MemoryRetriever  # noqa: E402
from retrievers.text import normalize_query  # noqa: E402
from retrievers.understanding import Gazetteer, build_query  # noqa: E402
from services.evaluation.bench_retrieval import CachedDocumentEmbedder  # noqa: E402
from services.evaluation.sim_users import misspell  # noqa: E402
from services.search.catalog_changes import cold_start  # noqa: E402

KINDS = ("exact title", "artist + title", "misspelled title", "genre + mood phrase")


def make_queries(tracks, per_kind: int, seed: int):
    rng = np.random.default_rng(seed)
    same_song: dict[tuple[str, str], set[str]] = defaultdict(set)
    for track in tracks:
        same_song[(normalize_query(track.title), normalize_query(track.artist))].add(track.id)
    by_tag: dict[tuple[str, str], set[str]] = defaultdict(set)
    for track in tracks:
        for genre in track.genres:
            for mood in track.moods:
                by_tag[(genre, mood)].add(track.id)
    tags = sorted(key for key, ids in by_tag.items() if len(ids) >= 20)
    named = [t for t in tracks if len(normalize_query(t.title)) >= 4 and t.artist]
    queries = []
    for kind in KINDS:
        for _ in range(per_kind):
            if kind == "genre + mood phrase":
                genre, mood = tags[int(rng.integers(len(tags)))]
                queries.append((kind, f"{mood} {genre} songs", by_tag[(genre, mood)]))
                continue
            track = named[int(rng.integers(len(named)))]
            targets = same_song[(normalize_query(track.title), normalize_query(track.artist))]
            if kind == "exact title":
                text = track.title
            elif kind == "artist + title":
                text = f"{track.artist} {track.title}"
            else:
                words = track.title.lower().split()
                longest = max(range(len(words)), key=lambda i: len(words[i]))
                words[longest] = misspell(words[longest], rng)
                text = " ".join(words)
            queries.append((kind, text, targets))
    return queries


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--csv", type=Path, default=Path("../shared/datasets/music/spotify_songs.csv"))
    parser.add_argument("--per-kind", type=int, default=500, help="Queries per kind.")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--cache-dir", type=Path, default=Path("results/cache"))
    parser.add_argument("--out", type=Path, default=Path("results/bench_music.json"))
    args = parser.parse_args()
    if not args.csv.is_file():
        sys.exit(f"--csv: {args.csv} not found; point it at spotify_songs.csv from ../shared/datasets/music")
    console = Console(stderr=True)
    tracks = load_spotify(args.csv)
    console.print(f"{len(tracks):,} tracks from {args.csv}")
    embedder = CachedDocumentEmbedder(Embedder(), args.cache_dir / f"spotify-{len(tracks)}-all-MiniLM-L6-v2.npy")
    with tempfile.TemporaryDirectory() as work:
        lexical = TantivyLexicalRetriever(Path(work) / "lexical")
        lexical.build(tracks)
        dense = FaissDenseRetriever(embedder, Path(work) / "dense")
        started = time.perf_counter()
        dense.build(tracks)
        console.print(f"dense index built in {time.perf_counter() - started:.0f} s")
        memory = LocalMemoryStore()
        cold_start(memory, tracks)
        retrievers: dict[str, Retriever] = {"lexical": lexical, "dense": dense, "memory": MemoryRetriever(memory)}
        gazetteer = Gazetteer.from_entities(tracks)
        recall: dict[str, dict[str, list[float]]] = defaultdict(lambda: defaultdict(list))
        for kind, text, targets in make_queries(tracks, args.per_kind, args.seed):
            query = build_query(text, gazetteer=gazetteer)
            for name, retriever in retrievers.items():
                top = [hit.entity_id for hit in retriever.search(query, 10)]
                if kind == "genre + mood phrase":
                    recall[kind][name].append(sum(entity_id in targets for entity_id in top) / 10)
                else:
                    recall[kind][name].append(float(any(entity_id in targets for entity_id in top)))
        lexical.close()
    result = {
        "catalog": str(args.csv), "tracks": len(tracks), "queries_per_kind": args.per_kind, "seed": args.seed,
        "recall@10": {kind: {name: float(np.mean(values)) for name, values in by_name.items()} for kind, by_name in recall.items()},
    }
    table = Table(title=f"Recall@10 by query kind, {len(tracks):,} Spotify tracks")
    table.add_column("query kind")
    for name in retrievers:
        table.add_column(name)
    for kind in KINDS:
        row = result["recall@10"][kind]
        best = max(row.values())
        table.add_row(kind, *(f"[bold]{row[n]:.3f}[/]" if row[n] == best else f"{row[n]:.3f}" for n in retrievers))
    Console().print(table)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
