"""Speed of ``testopeninference conform``: scoring every covered cassette through a running gateway.

    python benchmarks/conform.py [--runs N]

Target (issue 15, "Speed"): at most 10 s plus the gateway's own latency. Two
gateways, each started once per run by ``--gateway-cmd`` (start-up is not
counted: the figure is the scoring, as the scorecard reports it):

- this repository's proxy (``openai_proxy.py``, SimpleSpanProcessor): every
  covered cassette (46);
- the example gateway (``examples/gateway/gateway.py``, BatchSpanProcessor at
  ``OTEL_BSP_SCHEDULE_DELAY=10`` ms): its chat, completion and embeddings cassettes.

Prints, per gateway, the median scoring time over ``--runs`` runs, the time per
cassette, the outcomes and the ratio to the 10 s target.
"""

from __future__ import annotations

import argparse
import io
import json
import shlex
import statistics
import tempfile
from pathlib import Path

from testopeninference.cli import main as cli

PROJECT = Path(__file__).resolve().parent.parent
TARGET_SECONDS = 10.0
GATEWAYS = {
    "own proxy": [
        "--gateway-cmd", "env OPENAI_BASE_URL={openai_base_url} OTEL_EXPORTER_OTLP_ENDPOINT={otlp_endpoint} "
        f"{{python}} {shlex.quote(str(PROJECT / 'openai_proxy.py'))} --port {{port}}"],
    "example gateway": [
        "--gateway-cmd", f"env OPENAI_BASE_URL={{openai_base_url}} OTEL_EXPORTER_OTLP_ENDPOINT={{otlp_endpoint}} "
        f"OTEL_BSP_SCHEDULE_DELAY=10 {{python}} {shlex.quote(str(PROJECT / 'examples' / 'gateway' / 'gateway.py'))} "
        "--port {port}", "--ready-path", "/health", "--path-prefix", "/openai", "--model-prefix", "gw::",
        "--ignore-body-key", "stream", "-k", "(chat or completion or embeddings) and not azure"],
}


def score(argv: list[str]) -> dict[str, object]:
    with tempfile.TemporaryDirectory() as directory:
        card = Path(directory) / "card.json"
        cli(["conform", "--cassettes-dir", str(PROJECT / "cassettes"), "--spans-dir", str(PROJECT / "spans"),
             *argv, "--json", str(card)], io.StringIO(), io.StringIO())
        data: dict[str, object] = json.loads(card.read_text())
        return data


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    for name, argv in GATEWAYS.items():
        cards = [score(argv) for _ in range(args.runs)]
        seconds = statistics.median(float(str(card["seconds"])) for card in cards)
        count = len(cards[0]["cassettes"])  # type: ignore[arg-type]
        outcomes: dict[str, int] = cards[-1]["summary"]  # type: ignore[assignment]
        summary = ", ".join(f"{n} {outcome}" for outcome, n in outcomes.items() if n)
        print(f"{name:16} {count:3} cassettes  {seconds:6.2f} s  ({1000 * seconds / count:5.1f} ms each; {summary})  "
              f"target <= {TARGET_SECONDS:g} s  ratio {seconds / TARGET_SECONDS:.2f}")


if __name__ == "__main__":
    main()
