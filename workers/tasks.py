"""Thin Celery tasks: they build the per-process context once and call into ``swarm``."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from functools import cache

from celery.signals import worker_init

from swarm import runs
from swarm.agent import Agent
from swarm.errors import ConfigError, SwarmError
from swarm.keys import AGENT_QUEUE, RUNS
from swarm.logs import setup_logging
from swarm.orchestrator import Orchestrator, active_runs
from swarm.outputs import OutputWriter
from swarm.producer import Feeder
from swarm.providers.http import Http
from swarm.providers.kimi import KimiClient
from swarm.redisconn import connect, text
from workers.celery_app import app, settings

log = logging.getLogger("swarm.tasks")


Message = tuple[str, list[int], list[str]]


def messages(run_id: str, slots: Sequence[tuple[int, str]], size: int) -> list[Message]:
    """Compact messages (run_id, [slot, ...], [category, ...]) of ``size`` slots at most."""
    return [(run_id, [s for s, _ in slots[i:i + size]], [c for _, c in slots[i:i + size]])
            for i in range(0, len(slots), size)]


def publish(run_id: str, slots: Sequence[tuple[int, str]], size: int) -> None:
    """``size`` slots a message, sent in pipelined batches (kombu's producer batch: one Redis
    round trip per 1,000 messages)."""
    with app.producer_or_acquire() as producer, producer.batch(max_size=1000):
        for args in messages(run_id, slots, size):
            agent.apply_async(args, queue=AGENT_QUEUE, producer=producer,
                              argsrepr=repr(args), kwargsrepr="{}")


@cache
def _redis():  # type: ignore[no-untyped-def]
    return connect(settings.broker_url(), max_connections=settings.threads + 10,
                   ride_out_outages=True)


@cache
def _agent() -> Agent:
    key = settings.moonshot_api_key
    if key is None:
        raise ConfigError("MOONSHOT_API_KEY is not set on this worker")
    kimi = KimiClient(settings.kimi_base_url, key.get_secret_value(),
                      Http.per_thread(settings.kimi_timeout_s))
    return Agent(_redis(), kimi, OutputWriter(settings.output_dir), Feeder(_redis(), publish),
                 settings.kimi_max_attempts)


@worker_init.connect
def _on_worker_init(**_: object) -> None:
    """Refuse to start without what every task needs: a worker that took messages only to
    fail them would leave their slots to the sweep, again and again."""
    setup_logging(settings)
    try:
        _agent()
    except SwarmError as exc:
        log.critical("worker not started: %s", exc)
        raise SystemExit(2) from None  # Celery's signal dispatch swallows Exceptions only


@app.task(name="swarm.agent", acks_late=True, ignore_result=True)
def agent(run_id: str, slots: list[int], categories: list[str]) -> list[str]:
    """The slots of one message, one after the other on this thread."""
    worker = _agent()
    return [worker.run(run_id, s, c).status for s, c in zip(slots, categories, strict=True)]


@app.task(name="swarm.orchestrate", ignore_result=True)
def orchestrate() -> int:
    orch = Orchestrator(settings, _redis())
    return sum(1 for run_id in active_runs(_redis()) if orch.review(run_id) is not None)


@app.task(name="swarm.sweep", ignore_result=True)
def sweep() -> int:
    r = _redis()
    feeder = Feeder(r, publish)
    refed = 0
    for raw in r.zrevrange(RUNS, 0, 19):
        run_id = text(raw)
        meta = runs.meta(r, run_id)
        if meta and "finished_ms" not in meta:
            refed += feeder.sweep(runs.spec(r, run_id))
    return refed
