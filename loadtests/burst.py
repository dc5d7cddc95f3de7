"""A bounded burst of concurrent single-record requests against a running service.

Usage: python -m loadtests.burst --url http://127.0.0.1:3000 [--requests 5000] [--clients 64]

The record is the example of the service's OpenAPI document (a real training row).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys

import httpx

from loadtests.loadgen import closed_loop


def openapi_example_record(url: str) -> dict:
    """The record model's example from the service's OpenAPI document."""
    doc = httpx.get(f"{url}/docs.json", timeout=30).json()
    schemas = doc["components"]["schemas"]
    return next(s["example"] for name, s in schemas.items()
                if "Record" in name and "example" in s)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--url", default="http://127.0.0.1:3000")
    parser.add_argument("--requests", type=int, default=5000)
    parser.add_argument("--clients", type=int, default=64)
    args = parser.parse_args(argv)
    record = openapi_example_record(args.url)
    outcome = asyncio.run(closed_loop(f"{args.url}/predict", [record], args.clients,
                                      total=args.requests))
    print(json.dumps(outcome.summary(), indent=2))
    return 0 if outcome.failures == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
