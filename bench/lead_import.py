"""Lead import speed: parse_leads against a bare csv.DictReader over the same file.

Generates an Apollo-style export (13 columns, about 1 % bad rows, one lead per
company on average so most domains are distinct — the hard case for address
validation), parses it in memory, and prints rows per second for both. The
baseline only splits cells into dicts; the ratio is what validation,
normalisation and reporting cost on top.

    python bench/lead_import.py [--rows 100000] [--repeat 3]
"""

from __future__ import annotations

import argparse
import csv
import io
import random
import time
from collections.abc import Callable

from mailfleet.leads import parse_leads

HEADERS = [
    "First Name",
    "Last Name",
    "Title",
    "Company",
    "Email",
    "Email Status",
    "Seniority",
    "Departments",
    "Person Linkedin Url",
    "Website",
    "City",
    "Country",
    "Time Zone",
]
FIRST = ["Anna", "Ben", "Chloé", "David", "Emma", "Farid", "Grace", "Hiro", "Inès", "Jon"]
LAST = ["Smith", "García", "Müller", "Okafor", "Tanaka", "Dubois", "Rossi", "Kowalski"]
TITLES = ["CEO", "Head of Sales", "VP Marketing", "Founder", "CTO", "Sales Manager"]
ZONES = ["America/New_York", "Europe/Paris", "Europe/London", "Asia/Tokyo", ""]
TLDS = ["com", "io", "co", "de", "fr", "net"]


def make_csv(rows: int, seed: int = 8058) -> str:
    """Return an export of ``rows`` leads, deterministic for ``seed``."""
    rng = random.Random(seed)
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(HEADERS)
    previous = ""
    for i in range(rows):
        first, last = rng.choice(FIRST), rng.choice(LAST)
        domain = f"company{rng.randrange(rows)}.{rng.choice(TLDS)}"
        email = f"{first.lower()}.{last.lower()}{i}@{domain}".encode("ascii", "ignore").decode()
        roll = rng.random()
        if roll < 0.004:
            email = email.replace("@", "@@")
        elif roll < 0.008:
            email = ""
        elif roll < 0.01 and previous:
            email = previous.upper()  # the same person again, differently cased
        previous = email
        company = f"Company {i} Ltd"
        writer.writerow(
            [
                first,
                last,
                rng.choice(TITLES),
                company,
                email,
                "Verified",
                "Director",
                "Sales",
                f"https://www.linkedin.com/in/{first.lower()}-{i}",
                f"https://{domain}",
                "Paris",
                "France",
                rng.choice(ZONES),
            ]
        )
    return out.getvalue()


def best_of(repeat: int, run: Callable[[], int]) -> tuple[float, int]:
    """Run ``run`` ``repeat`` times; return the fastest wall time and its row count."""
    best = float("inf")
    count = 0
    for _ in range(repeat):
        start = time.perf_counter()
        count = run()
        best = min(best, time.perf_counter() - start)
    return best, count


def main() -> None:
    """Measure and print both rates, then the RESULT line."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    text = make_csv(args.rows)

    def baseline() -> int:
        return sum(1 for _ in csv.DictReader(io.StringIO(text, newline="")))

    summary = None

    def leads() -> int:
        nonlocal summary
        result = parse_leads(io.StringIO(text, newline=""), source="bench.csv")
        summary = result.summary
        return result.summary.total_rows + result.summary.blank_rows

    base_s, base_rows = best_of(args.repeat, baseline)
    lead_s, lead_rows = best_of(args.repeat, leads)
    base_rate = base_rows / base_s
    lead_rate = lead_rows / lead_s
    print(f"rows: {args.rows:,}  file: {len(text) / 1e6:.1f} MB  repeat: best of {args.repeat}")
    print(f"csv.DictReader : {base_s:7.3f} s  {base_rate:12,.0f} rows/s")
    print(f"parse_leads    : {lead_s:7.3f} s  {lead_rate:12,.0f} rows/s")
    print(f"summary        : {summary}")
    print(
        f"RESULT leads_rows_per_s={lead_rate:.0f} baseline_rows_per_s={base_rate:.0f} "
        f"ratio={lead_rate / base_rate:.3f}"
    )


if __name__ == "__main__":
    main()
