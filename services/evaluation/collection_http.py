"""``ltrr simulate --collection DIR --url NAME=URL``: the collection loop's traffic and users driving running
services over HTTP, as a deployment sees them (``ltrr serve`` with ``ltrr ingest --follow`` beside it).

Every service gets the same requests and the same users (seeded per request, as in the in-process loop),
each from its own thread, paced at ``rate`` requests a second in wall-clock time: the service's own clock,
attribution windows and model reloads decide what the loop learns. Per request: the product's reward
(the best engagement posted minus the cost of the candidates the plan drew, as ingest computes it, with
this process's reward settings: give it the services' ``LTRR_`` reward settings), nDCG@10 of the page the
service answered, clicks, candidates drawn. A request the service did not answer with a page (an error, a
503, a timeout, a body that is not a search answer) is counted in ``errors`` and scores nDCG@10 0 and no
clicks, as its user saw nothing; its reward is NaN (it drew nothing to pay for, but it did not earn the
zero of a page nobody engaged: reward windows average served pages only). A service that falls more
than ``MAX_LAG_S`` behind its schedule goes on at the rate from there rather than sending the missed
requests in a burst; the largest lag and how often that happened are reported. With ``LTRR_FEEDBACK_KEY`` set here, feedback carries it.
"""

from __future__ import annotations

import logging
import math
import re
import threading
import time
from dataclasses import dataclass
from typing import Any, Callable, Mapping

import httpx
import numpy as np

from bandit.reward import RewardConfig, reward
from contracts import ConfigError
from contracts.events import Engagement
from services.evaluation.click_models import PLAY_AFTER_RELEVANT_CLICK, ClickModel
from services.evaluation.collection_traffic import CollectionTraffic, ndcg_at

logger = logging.getLogger(__name__)

TIMEOUT_S = 30.0
MAX_LAG_S = 1.0


@dataclass(frozen=True, slots=True)
class Target:
    name: str
    url: str


def parse_targets(values: list[str]) -> list[Target]:
    """``NAME=URL`` (or a bare URL, named ``learned``) for each ``--url``; names must be distinct."""
    targets = []
    for value in values:
        named = re.match(r"(?P<name>[^/]+?)=(?P<url>https?://.*)$", value)
        name, url = (named["name"], named["url"]) if named and "://" not in named["name"] else ("learned", value)
        if not url.startswith(("http://", "https://")):
            raise ConfigError.about("--url", f"expected NAME=http://host:port (or a bare http:// URL), got {value!r}")
        targets.append(Target(name, url.rstrip("/")))
    names = [target.name for target in targets]
    if len(set(names)) != len(names):
        raise ConfigError.about("--url", f"each service needs its own name, got {names}; write e.g. --url learned=URL --url uniform=URL")
    return targets


def drive(
    target: Target,
    traffic: CollectionTraffic,
    users: ClickModel,
    requests: int,
    seed: int,
    rate: float,
    config: RewardConfig,
    report: Callable[[int], None] | None = None,
    stop: threading.Event | None = None,
    feedback_key: str | None = None,
) -> dict[str, Any]:
    """One service's run: ``requests`` searches from ``traffic`` at ``rate`` a second, the users' feedback
    posted as they act; per-request metrics in request order. Ends early (with what it has) once ``stop``
    is set."""
    headers = {"X-Feedback-Key": feedback_key} if feedback_key else {}
    http = httpx.Client(base_url=target.url, timeout=TIMEOUT_S, headers=headers)
    metrics: dict[str, list[Any]] = {name: [] for name in ("reward", "ndcg@10", "clicks", "drawn", "kinds", "plans", "latency_ms")}
    errors: dict[str, int] = {}
    versions: dict[str, dict[str, int]] = {"policy": {}, "ranker": {}}  # model version -> requests it served
    started = time.monotonic()
    schedule, max_lag_s, rescheduled = started, 0.0, 0
    try:
        for index in range(requests):
            if stop is not None and stop.is_set():
                break
            delay = schedule + index / rate - time.monotonic()
            if delay > 0:
                time.sleep(delay)
            elif -delay > MAX_LAG_S:
                max_lag_s = max(max_lag_s, -delay)
                rescheduled += 1
                schedule += -delay  # go on at the rate from now: the missed slots are not sent in a burst
            intent = traffic.draw(index)
            rng = np.random.default_rng([seed, index, 7])
            sent = time.monotonic()
            answer = _post(http, "/search", {"query": intent.text, "k": 10, "user_id": intent.user_id, "session_id": intent.session_id}, errors)
            metrics["latency_ms"].append((time.monotonic() - sent) * 1000.0)
            metrics["kinds"].append(intent.kind)
            page = _page(answer, errors)
            if answer is None or page is None:
                for name, value in (("reward", math.nan), ("ndcg@10", 0.0), ("clicks", 0), ("drawn", 0), ("plans", "error")):
                    metrics[name].append(value)
            else:
                for kind, served in versions.items():
                    version = str(answer.get("model_versions", {}).get(kind, ""))
                    served[version] = served.get(version, 0) + 1
                engaged: list[tuple[Engagement, float]] = []
                positions = users.clicks(page, intent.grades, traffic.max_grade, rng)
                for position in positions:
                    entity_id = page[position - 1]
                    feedback = [Engagement.CLICK]
                    if intent.grades.get(entity_id, 0) > 0 and rng.random() < PLAY_AFTER_RELEVANT_CLICK:
                        feedback.append(Engagement.PLAY)
                    for event in feedback:
                        body = {"request_id": answer["request_id"], "entity_id": entity_id, "event": event.value, "position": position}
                        if _post(http, "/feedback", body, errors) is not None:
                            engaged.append((event, 0.0))
                plan = answer["plan"]
                drawn = sum(quota for strategy, quota in plan["quotas"].items() if strategy not in plan.get("skipped", {}))
                drawn += int(answer.get("fallback", 0))
                metrics["reward"].append(reward(engaged, drawn, config))
                metrics["ndcg@10"].append(ndcg_at(page, intent.grades, intent.query_id))
                metrics["clicks"].append(len(positions))
                metrics["drawn"].append(drawn)
                metrics["plans"].append(str(plan["name"]))
            if report is not None and ((index + 1) % 25 == 0 or index + 1 == requests):
                report(index + 1)
    finally:
        http.close()
    return {"name": target.name, "url": target.url, **metrics, "errors": errors, "model_versions": versions,
            "seconds": time.monotonic() - started, "max_lag_s": max_lag_s, "rescheduled": rescheduled}


def _page(answer: dict[str, Any] | None, errors: dict[str, int]) -> list[str] | None:
    """The answer's result ids, or ``None`` (counted as an error) when it is not a search answer."""
    if answer is None:
        return None
    try:
        page = [str(item["id"]) for item in answer["results"]]
        plan = answer["plan"]
        if not isinstance(plan["quotas"], dict) or not isinstance(answer["request_id"], str):
            raise TypeError("plan.quotas or request_id")
        return page
    except (KeyError, TypeError) as error:
        key = "/search answer without a page"
        errors[key] = errors.get(key, 0) + 1
        if errors[key] <= 3:
            logger.warning("/search answered 200 without a usable page (%r)", error)
        return None


def _post(http: httpx.Client, path: str, body: Mapping[str, Any], errors: dict[str, int]) -> dict[str, Any] | None:
    try:
        response = http.post(path, json=body)
    except httpx.HTTPError as error:
        key = f"{path} {error.__class__.__name__}"
        errors[key] = errors.get(key, 0) + 1
        return None
    if response.status_code != 200:
        key = f"{path} {response.status_code}"
        errors[key] = errors.get(key, 0) + 1
        if errors[key] <= 3:
            logger.warning("%s answered %d: %s", path, response.status_code, response.text[:300])
        return None
    try:
        answer: Any = response.json()
    except ValueError:
        answer = None
    if not isinstance(answer, dict):
        key = f"{path} 200 not a JSON object"
        errors[key] = errors.get(key, 0) + 1
        return None
    return answer


def drive_all(
    targets: list[Target],
    make_traffic: Callable[[], CollectionTraffic],
    users: ClickModel,
    requests: int,
    seed: int,
    rate: float,
    config: RewardConfig,
    report: Callable[[str, int], None] | None = None,
    feedback_key: str | None = None,
) -> dict[str, dict[str, Any]]:
    """Every target at once, each from its own thread over its own copy of the same traffic; one thread's
    failure stops the others and is raised."""
    if not rate > 0:
        raise ConfigError.about("--rate", f"expected requests a second > 0, got {rate}")
    runs: dict[str, dict[str, Any]] = {}
    failures: list[BaseException] = []
    stop = threading.Event()

    def run(target: Target) -> None:
        try:
            progress = None if report is None else (lambda done: report(target.name, done))
            runs[target.name] = drive(target, make_traffic(), users, requests, seed, rate, config, progress, stop, feedback_key)
        except BaseException as error:  # re-raised in the caller's thread below
            failures.append(error)
            stop.set()

    threads = [threading.Thread(target=run, args=(target,), name=f"drive-{target.name}", daemon=True) for target in targets]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    if failures:
        raise failures[0]
    return {target.name: runs[target.name] for target in targets}
