"""The Celery app and its settings, chosen for calls of 1-60 s made by threads.

- threads pool, ``worker_concurrency`` from WORKER_THREADS (else MAX_CONCURRENT up to 200);
- ``task_acks_late`` + prefetch multiplier 1: a message is acknowledged only after its task
  settled, and no thread hoards messages;
- ``task_ignore_result``: results live in our counters, not in a result backend;
- the broker's connection pools above the thread count (else acks fail and tasks run twice);
- ``visibility_timeout`` well above the longest call with its retries and waits;
- a Redis restart is ridden out: our commands retry (``swarm.redisconn``) and so does
  publishing;
- the beat's tasks on their own queue, consumed only by the beat's own worker
  (``celery worker --beat -Q swarm.beat``), so they never wait behind the backlog.
"""

from __future__ import annotations

from celery import Celery

from swarm.config import load_settings
from swarm.keys import AGENT_QUEUE, BEAT_QUEUE

settings = load_settings()
threads = settings.threads

app = Celery("swarm", broker=settings.broker_url(), include=["workers.tasks"])
app.conf.update(
    worker_pool="threads",
    worker_concurrency=threads,
    worker_prefetch_multiplier=1,
    task_acks_late=True,
    task_ignore_result=True,
    task_serializer="json",
    accept_content=["json"],
    task_default_queue=AGENT_QUEUE,
    task_routes={"swarm.orchestrate": {"queue": BEAT_QUEUE}, "swarm.sweep": {"queue": BEAT_QUEUE}},
    # Off: the threads pool cannot cancel a running thread (Celery raises NotImplementedError
    # for kill_job on every lost connection); a redelivered slot makes no second call anyway,
    # since admission checks its done-bit and lease.
    worker_cancel_long_running_tasks_on_connection_loss=False,
    # A Redis restart takes seconds: keep trying to publish window feeds for about a minute.
    task_publish_retry_policy={"max_retries": 20, "interval_start": 0.1,
                               "interval_step": 0.5, "interval_max": 5.0},
    broker_connection_retry_on_startup=True,
    broker_pool_limit=threads + 10,
    broker_transport_options={
        "visibility_timeout": 4 * 3600,
        "max_connections": threads + 20,
    },
    worker_send_task_events=settings.task_events,
    task_send_sent_event=False,
    worker_hijack_root_logger=False,
    beat_schedule={
        "orchestrate": {"task": "swarm.orchestrate", "schedule": settings.orchestrate_every_s},
        "sweep": {"task": "swarm.sweep", "schedule": settings.sweep_every_s},
    },
    beat_schedule_filename=str(settings.state_dir / "celerybeat-schedule"),
)
