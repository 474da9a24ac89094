"""The Celery peer of flow-activity-benchmark: the same round trip, measured the same way.

A no-op task on the same RabbitMQ broker, results returned over AMQP (the rpc:// backend,
Celery's closest match to a reply-to queue), a worker in its own process. Prints one JSON
object with throughput (round trips per second with `window` in flight) and sequential
latency percentiles.

    python3 celery_peer.py AMQP_URL --count 2000 --window 64 --sequential 300
"""
import argparse
import json
import os
import subprocess
import sys
import time

from celery import Celery

QUEUE = os.environ.get("CELERY_PEER_QUEUE", "bench.celery.%d" % os.getpid())
app = Celery("celery_peer", broker=os.environ.get("CELERY_PEER_BROKER", "amqp://guest:guest@127.0.0.1:5672//"), backend="rpc://")
app.conf.update(
    task_default_queue=QUEUE,
    task_acks_late=True,  # acknowledge after the task ran, as our worker does
    worker_prefetch_multiplier=4,
    broker_connection_retry_on_startup=True,
    result_persistent=True,
    task_publish_retry=True,
    broker_transport_options={"confirm_publish": True},  # publisher confirms, as ours
)
if os.environ.get("CELERY_PEER_QUEUE_TYPE") == "quorum":
    # The same durability as our work queues: a quorum queue (Celery 5.5+).
    app.conf.update(task_default_queue_type="quorum", worker_detect_quorum_queues=True)


@app.task(name="noop")
def noop():
    return {}


def percentile(values, fraction):
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(fraction * (len(ordered) - 1))))]


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("url")
    parser.add_argument("--count", type=int, default=2000)
    parser.add_argument("--window", type=int, default=64)
    parser.add_argument("--sequential", type=int, default=300)
    parser.add_argument("--concurrency", type=int, default=8)
    arguments = parser.parse_args()

    # kombu reads the path after the host as the vhost, so "/" must be spelled "//".
    broker = arguments.url + "/" if arguments.url.endswith("/") and not arguments.url.endswith("//") and arguments.url.count("/") == 3 else arguments.url
    environment = dict(os.environ, CELERY_PEER_BROKER=broker, CELERY_PEER_QUEUE=QUEUE)
    app.conf.broker_url = broker
    worker = subprocess.Popen(
        [sys.executable, "-m", "celery", "-A", "celery_peer", "worker", "--loglevel=WARNING", "--pool=threads",
         "--concurrency=%d" % arguments.concurrency, "-Q", QUEUE, "-n", "peer-%d@%%h" % os.getpid(), "--without-gossip", "--without-mingle", "--without-heartbeat"],
        cwd=os.path.dirname(os.path.abspath(__file__)), env=environment, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
    )
    try:
        # Warm up until the worker answers.
        deadline = time.time() + 60
        while True:
            try:
                noop.apply_async().get(timeout=5)
                break
            except Exception:
                if time.time() > deadline or worker.poll() is not None:
                    raise SystemExit("the Celery worker did not start: " + worker.stderr.read().decode()[-2000:])

        start = time.perf_counter()
        pending = []
        done = 0
        sent = 0
        while done < arguments.count:
            while sent < arguments.count and len(pending) < arguments.window:
                pending.append(noop.apply_async())
                sent += 1
            pending.pop(0).get(timeout=60)
            done += 1
        throughput = arguments.count / (time.perf_counter() - start)

        latencies = []
        for _ in range(arguments.sequential):
            began = time.perf_counter()
            noop.apply_async().get(timeout=60)
            latencies.append((time.perf_counter() - began) * 1000)
        print(json.dumps({
            "round_trips_per_second": throughput,
            "p50_ms": percentile(latencies, 0.50),
            "p99_ms": percentile(latencies, 0.99),
            "celery": __import__("celery").__version__,
        }))
    finally:
        worker.terminate()
        try:
            worker.wait(timeout=30)
        except subprocess.TimeoutExpired:
            worker.kill()


if __name__ == "__main__":
    main()
