"""The queue SDK's message models are described before any handler thread sends a message.

azure-storage-queue 12.18 works out a generated model's fields on its first instance while
iterating the class; threads making the first instances at once can fail with "dictionary
changed size during iteration" (a job failed so in a four-process burst). Building a
`DelayedWorkQueue`, as the composition root does on one thread, describes every model first.
Each run is a fresh interpreter, where the classes are not described yet; without the
preparation about one run in five had a thread fail here.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[2]

RACE = """
import sys, threading
sys.setswitchinterval(1e-6)  # switch threads as often as possible: the race shows quickly
from azure.storage.queue import QueueClient
if sys.argv[1] == "prepared":
    from shared.queues import DelayedWorkQueue
    DelayedWorkQueue(QueueClient.from_connection_string("UseDevelopmentStorage=true", "q"))
from azure.storage.queue._generated.models import QueueMessage
failures = []
start = threading.Barrier(16)
def first_message():
    start.wait()
    try:
        QueueMessage(message_text="x")
    except RuntimeError as error:
        failures.append(error)
threads = [threading.Thread(target=first_message) for _ in range(16)]
for thread in threads:
    thread.start()
for thread in threads:
    thread.join()
print(len(failures))
"""

RUNS = 12


def failures(mode: str) -> int:
    done = subprocess.run(
        [sys.executable, "-c", RACE, mode],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    return int(done.stdout.strip())


def test_no_thread_fails_on_a_first_message_once_the_queue_is_built() -> None:
    assert [failures("prepared") for _ in range(RUNS)] == [0] * RUNS
