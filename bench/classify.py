"""Inbound classification speed: classify() against a bare email.message_from_bytes.

Reads the golden corpus (tests/corpus/*.eml), repeats it to ``--messages``
messages, and times, on one core and in the same run, (1) the baseline that only
parses each message with the standard library and (2) the full classifier. The
ratio is what classification costs on top of parsing. Targets: 2,000 msgs/s and
a ratio within 3. Times are this process's CPU time (``time.process_time``), so
other work on a shared machine does not count against a single core's figure.
Figures are printed, never asserted.

    python bench/classify.py [--messages 20000] [--repeat 3] [--profile]
"""

from __future__ import annotations

import argparse
import cProfile
import email
import pstats
import time
from collections import Counter
from collections.abc import Callable
from datetime import UTC, datetime
from email.message import Message
from pathlib import Path

from mailfleet.inbound import Classification, classify

CORPUS = Path(__file__).resolve().parent.parent / "tests" / "corpus"
NOW = datetime(2025, 3, 5, 12, 0, tzinfo=UTC)


def load(messages: int) -> list[bytes]:
    """The corpus repeated (and cut) to ``messages`` raw messages."""
    corpus = [path.read_bytes() for path in sorted(CORPUS.glob("*.eml"))]
    if not corpus:
        raise SystemExit(f"no .eml files in {CORPUS}")
    return [corpus[i % len(corpus)] for i in range(messages)]


def ours(message_id: str) -> bool:
    return message_id.endswith("@brand-mail.com>")


def parse_only(raw: bytes) -> Message:
    return email.message_from_bytes(raw)


def classify_one(raw: bytes) -> Classification:
    return classify(raw, our_message_ids=ours, now=NOW)


def best_rate(func: Callable[[bytes], object], data: list[bytes], repeat: int) -> float:
    """Messages per second of the fastest of ``repeat`` passes over ``data``."""
    best = float("inf")
    for _ in range(repeat):
        start = time.process_time()
        for raw in data:
            func(raw)
        best = min(best, time.process_time() - start)
    return len(data) / best


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--messages", type=int, default=20_000)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--profile", action="store_true", help="print where classify spends")
    args = parser.parse_args()

    data = load(args.messages)
    kinds = Counter(classify_one(raw).kind.value for raw in set(data))
    megabytes = sum(len(raw) for raw in data) / 1e6
    print(f"corpus: {len(set(data))} distinct messages, {len(data)} in all, {megabytes:.1f} MB")
    print("kinds: " + ", ".join(f"{kind} {count}" for kind, count in sorted(kinds.items())))

    if args.profile:
        profiler = cProfile.Profile()
        profiler.enable()
        for raw in data:
            classify_one(raw)
        profiler.disable()
        pstats.Stats(profiler).sort_stats("cumulative").print_stats(25)

    baseline = best_rate(parse_only, data, args.repeat)
    full = best_rate(classify_one, data, args.repeat)
    ratio = baseline / full
    print(f"parse only (email.message_from_bytes): {baseline:10,.0f} msgs/s")
    print(f"classify:                              {full:10,.0f} msgs/s")
    print(f"classify costs {ratio:.2f}x the parse alone (target: within 3x, at least 2,000 msgs/s)")
    print(f"RESULT msgs_per_s={full:.0f} parse_only_msgs_per_s={baseline:.0f} ratio={ratio:.2f}")


if __name__ == "__main__":
    main()
