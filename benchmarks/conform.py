"""Speed of ``testopeninference conform``: scoring every covered cassette through a running gateway.

    python benchmarks/conform.py [--runs N] [--no-litellm]

Target (issue 15, "Speed"): at most 10 s plus the gateway's own latency. Three
gateways, each started once per run by ``--gateway-cmd`` (start-up is not
counted: the figure is the scoring, as the scorecard reports it):

- this repository's proxy (``openai_proxy.py``, SimpleSpanProcessor): every
  covered cassette (46);
- the example gateway (``examples/gateway/gateway.py``, BatchSpanProcessor at
  ``OTEL_BSP_SCHEDULE_DELAY=10`` ms): its chat, completion and embeddings cassettes;
- LiteLLM's proxy (``examples/litellm/``, from its cached virtualenv, made on
  first use; the README's command, with its baseline, under an allow-listed
  environment): its 39 chat, completion and embeddings cassettes. Its own
  latency is part of the figure, so a figure under 10 s meets the target.

Prints, per gateway, the median scoring time over ``--runs`` runs, the time per
cassette, the outcomes and the ratio to the 10 s target.
"""

from __future__ import annotations

import argparse
import io
import json
import os
import shlex
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Callable

from testopeninference.cli import main as cli

PROJECT = Path(__file__).resolve().parent.parent
TARGET_SECONDS = 10.0
GATEWAYS = {
    "own proxy": [
        "--gateway-cmd", "env OPENAI_BASE_URL={openai_base_url} ANTHROPIC_BASE_URL={fake_base_url} "
        "CO_API_URL={fake_base_url} OTEL_EXPORTER_OTLP_ENDPOINT={otlp_endpoint} "
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


def score_litellm(argv: list[str]) -> dict[str, object]:
    """``conform`` on LiteLLM as a process of its own, with nothing of ours in its environment (as the README's
    ``env -i``): LiteLLM gets PATH, HOME, the locale and ``litellm.env``."""
    with tempfile.TemporaryDirectory() as directory:
        card = Path(directory) / "card.json"
        env = {"PATH": os.environ.get("PATH", ""), "HOME": directory, "LANG": "C.UTF-8"}
        subprocess.run([sys.executable, "-m", "testopeninference", *argv, "--json", str(card)], cwd=PROJECT,
                       env=env, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, check=False, timeout=600)
        data: dict[str, object] = json.loads(card.read_text())
        return data


def litellm_argv() -> list[str]:
    """The README's command for LiteLLM (``tests/integration/litellm_gateway.py``), its virtualenv made once."""
    sys.path.insert(0, str(PROJECT))
    from testopeninference.recorder.proxy_env import default_cache_dir
    from tests.integration.litellm_gateway import BASELINE, conform_arguments, litellm_executable

    executable = litellm_executable(default_cache_dir(os.environ), lambda line: print(line, file=sys.stderr))
    return [*conform_arguments(executable, absolute=True), "--baseline", str(BASELINE)]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--no-litellm", action="store_true", help="leave LiteLLM out (no virtualenv is made)")
    args = parser.parse_args()
    runs: dict[str, tuple[Callable[[list[str]], dict[str, object]], list[str]]] = {
        name: (score, argv) for name, argv in GATEWAYS.items()}
    if not args.no_litellm:
        runs["LiteLLM"] = (score_litellm, litellm_argv())
    for name, (scorer, argv) in runs.items():
        cards = [scorer(argv) for _ in range(args.runs)]
        seconds = statistics.median(float(str(card["seconds"])) for card in cards)
        count = len(cards[0]["cassettes"])  # type: ignore[arg-type]
        outcomes: dict[str, int] = cards[-1]["summary"]  # type: ignore[assignment]
        summary = ", ".join(f"{n} {outcome}" for outcome, n in outcomes.items() if n)
        print(f"{name:16} {count:3} cassettes  {seconds:6.2f} s  ({1000 * seconds / count:5.1f} ms each; {summary})  "
              f"target <= {TARGET_SECONDS:g} s  ratio {seconds / TARGET_SECONDS:.2f}")


if __name__ == "__main__":
    main()
