"""One of the processes of tests/api/test_ratelimit.py: 8 threads counting hits on one key.

Run as `python -m tests.api.ratelimit_worker URL KEY RATE HITS`; prints how many hits were
allowed. It counts through creditledger.api.ratelimit's Redis counter, as a web process does.
"""

from __future__ import annotations

import sys
import threading

from creditledger.api import ratelimit

THREADS = 8


def main(url: str, ident: str, rate: str, hits: int) -> int:
    counter = ratelimit._RedisCounter(url)
    limit, window = ratelimit.parse_rate(rate)
    allowed = [0] * THREADS
    start = threading.Barrier(THREADS)

    def run(index: int) -> None:
        start.wait()
        for _ in range(hits):
            count, _reset = counter.hit(f"ratelimit:{ratelimit.POLICY}:{ident}", window)
            allowed[index] += count <= limit

    threads = [threading.Thread(target=run, args=(i,)) for i in range(THREADS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return sum(allowed)


if __name__ == "__main__":
    print(main(sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])))
