"""OpenSearch plumbing shared by the OpenSearch retrievers: connecting, and one index's write/read verbs.

``connect`` validates the URL (``ConfigError``) and pings the cluster (``BackendUnavailable``).
``OpenSearchIndex`` wraps one index name: create it from a mapping, bulk index/delete through
``opensearchpy.helpers.bulk``, search and turn the response into ``Hit``s, report health. Transport
failures become ``BackendUnavailable``; a missing index becomes ``ArtifactError``. The algorithms
(which mapping, which query) live in ``lexical_opensearch`` and ``dense_opensearch``.

opensearch-py is imported when a client is made or an index is written, never at import time.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping
from typing import Any, Sequence
from urllib.parse import urlsplit

from contracts import ArtifactError, BackendUnavailable, ConfigError, Hit

logger = logging.getLogger(__name__)

BULK_CHUNK_SIZE = 500


def _opensearchpy() -> Any:
    try:
        import opensearchpy
        import opensearchpy.helpers
    except ImportError as error:
        raise ConfigError(
            "the OpenSearch retrievers need opensearch-py; `pip install opensearch-py` or use another backend"
        ) from error
    return opensearchpy


def _check_url(url: str) -> None:
    parts = urlsplit(url) if isinstance(url, str) else None
    try:
        port_ok = parts is not None and (parts.port is None or 0 < parts.port < 65536)
    except ValueError:
        port_ok = False
    if parts is None or parts.scheme not in ("http", "https") or not parts.hostname or not port_ok:
        raise ConfigError.about(
            "url", f"expected a URL like http://localhost:9200 (scheme http or https, a host and an optional port), got {url!r}"
        )


def connect(url: str, timeout: float = 10.0) -> Any:
    """An ``opensearchpy.OpenSearch`` client for ``url`` that has answered a ping.

    Raises ``ConfigError`` for a malformed URL or a non-positive timeout and ``BackendUnavailable``
    when the cluster does not answer.
    """
    _check_url(url)
    if not isinstance(timeout, (int, float)) or timeout <= 0:
        raise ConfigError(f"timeout: expected seconds > 0, got {timeout!r}")
    opensearchpy = _opensearchpy()
    client = opensearchpy.OpenSearch(hosts=[url], timeout=timeout, max_retries=1, retry_on_timeout=False)
    try:
        client.info()
    except (opensearchpy.exceptions.TransportError, opensearchpy.exceptions.ImproperlyConfigured) as error:
        raise BackendUnavailable(
            f"cannot reach OpenSearch at {url} ({_describe(error)}); start it "
            "(e.g. `docker compose --profile opensearch up -d opensearch`) or fix its URL"
        ) from error
    logger.info("connected to OpenSearch at %s", url)
    return client


def _describe(error: BaseException) -> str:
    text = str(getattr(error, "error", "") or error) or type(error).__name__
    return text if len(text) <= 200 else text[:200] + "..."


def client_for(client_or_url: Any, timeout: float) -> Any:
    """A client from a URL string (``connect``) or an already built ``opensearchpy.OpenSearch``."""
    if isinstance(client_or_url, str):
        return connect(client_or_url, timeout)
    if client_or_url is None or not hasattr(client_or_url, "search") or not hasattr(client_or_url, "indices"):
        raise ConfigError(
            f"client_or_url: expected an OpenSearch URL or an opensearchpy.OpenSearch client, "
            f"got {type(client_or_url).__name__}"
        )
    return client_or_url


def check_index_name(index: str) -> str:
    """OpenSearch index names: lowercase, no leading ``-_+``, none of ``\\/*?"<>| ,#:``."""
    bad = set('\\/*?"<>| ,#:')
    if (not isinstance(index, str) or not index or index != index.lower() or index[0] in "-_+"
            or index in (".", "..") or any(ch in bad for ch in index) or len(index.encode()) > 255):
        raise ConfigError(
            f"index: {index!r} is not a valid OpenSearch index name; use lowercase letters, digits, '-' and '_'"
        )
    return index


class OpenSearchIndex:
    """One index on one cluster, with the verbs the retrievers need."""

    def __init__(self, client: Any, index: str) -> None:
        self.client = client
        self.index = check_index_name(index)

    def _call(self, action: str, function: Any, *args: Any, **kwargs: Any) -> Any:
        opensearchpy = _opensearchpy()
        try:
            return function(*args, **kwargs)
        except opensearchpy.exceptions.NotFoundError as error:
            raise ArtifactError(
                f"index: OpenSearch index {self.index!r} does not exist ({action}); "
                "run `ltrr index` to build it"
            ) from error
        except (opensearchpy.exceptions.ConnectionError, opensearchpy.exceptions.ConnectionTimeout) as error:
            raise BackendUnavailable(
                f"OpenSearch did not answer while {action} on {self.index!r} "
                f"({_describe(error)}); start it or fix its URL"
            ) from error

    def delete_ids(self, ids: Sequence[str]) -> None:
        """Bulk-delete documents by id, unknown ids ignored; searchable without them on return."""
        if not ids or not self.exists():  # a bulk delete must not auto-create an unmapped index
            return
        actions = ({"_op_type": "delete", "_index": self.index, "_id": entity_id} for entity_id in set(ids))
        self.bulk(actions, refresh="wait_for", ignore_status=(404,))

    def exists(self) -> bool:
        return bool(self._call("checking the index", self.client.indices.exists, index=self.index))

    def recreate(self, body: Mapping[str, Any]) -> None:
        """Drop the index if present and create it with ``body`` (settings + mappings)."""
        self._call("dropping the index", self.client.indices.delete, index=self.index, ignore=404)
        self._call("creating the index", self.client.indices.create, index=self.index, body=dict(body))

    def ensure(self, body: Mapping[str, Any]) -> None:
        """Create the index with ``body`` unless it exists (a concurrent creator wins harmlessly)."""
        if not self.exists():
            self._call("creating the index", self.client.indices.create, index=self.index, body=dict(body),
                       ignore=400)

    def bulk(self, actions: Iterable[Mapping[str, Any]], refresh: bool | str = False,
             ignore_status: tuple[int, ...] = ()) -> int:
        """Send ``actions`` through ``helpers.bulk``; returns how many succeeded. Failures raise ``ArtifactError``."""
        opensearchpy = _opensearchpy()
        try:
            done, _ = self._call(
                "writing", opensearchpy.helpers.bulk, self.client, actions, chunk_size=BULK_CHUNK_SIZE,
                refresh=refresh, ignore_status=ignore_status,
            )
        except opensearchpy.helpers.BulkIndexError as error:
            first = error.errors[0] if error.errors else {}
            raise ArtifactError(
                f"index: {len(error.errors)} bulk operation(s) on {self.index!r} failed, first: {first}; "
                "check the index mapping (rebuild with `ltrr index`)"
            ) from error
        return int(done)

    def refresh(self) -> None:
        self._call("refreshing", self.client.indices.refresh, index=self.index)

    def hits(self, body: Mapping[str, Any]) -> list[Hit]:
        """Run a search body; ``Hit``s best first with ranks 1..n (ids are the documents' ``_id``)."""
        response = self._call("searching", self.client.search, index=self.index, body=dict(body))
        return [
            Hit(entity_id=str(found["_id"]), score=float(found["_score"] or 0.0), rank=rank)
            for rank, found in enumerate(response["hits"]["hits"], start=1)
        ]

    def count(self) -> int:
        return int(self._call("counting", self.client.count, index=self.index)["count"])

    def health(self) -> str:
        """``"ok"`` when the index exists and its primaries are allocated (green or yellow)."""
        opensearchpy = _opensearchpy()
        try:
            if not self.client.indices.exists(index=self.index):
                return f"OpenSearch index {self.index!r} does not exist; run `ltrr index`"
            status = self.client.cluster.health(index=self.index, timeout="2s")["status"]
        except opensearchpy.exceptions.TransportError as error:
            return f"OpenSearch unreachable for index {self.index!r}: {_describe(error)}"
        return "ok" if status in ("green", "yellow") else f"OpenSearch index {self.index!r} is {status}"

    def drop(self) -> None:
        """Delete the whole index (tests, teardown); a missing index is fine."""
        self._call("dropping the index", self.client.indices.delete, index=self.index, ignore=404)
