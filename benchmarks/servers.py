"""Speed of the fake OpenAI server and the collector, for comparing two trees of this project.

    python benchmarks/servers.py [--tree PATH] [--replays N] [--batches N] [--gzip-mib N]

``--tree`` is the project tree to import the recorder from (default: this one), so the same
script can time an older checkout (one from before the recorder became ``testopeninference.recorder``
too). Prints (a) the median latency of sequential ``chat-basic`` replays over one keep-alive httpx
client, (b) collector ingest in spans/s for protobuf and OTLP/JSON bodies of 512 spans, each body
encoded once and posted over one keep-alive connection, with the ratio to its target, and (c) with ``--gzip-mib``, the collector's
time to answer one multi-member gzip body of that many MiB (1 KiB members of incompressible bytes).
"""

from __future__ import annotations

import argparse
import gzip
import importlib
import os
import statistics
import sys
import time
from pathlib import Path


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tree", type=Path, default=Path(__file__).resolve().parent.parent)
    parser.add_argument("--replays", type=int, default=2000)
    parser.add_argument("--batches", type=int, default=200)
    parser.add_argument("--gzip-mib", type=int, default=0)
    args = parser.parse_args()
    sys.path.insert(0, str(args.tree.resolve()))
    global RECORDER
    RECORDER = "testopeninference.recorder" if (args.tree / "recorder" / "resources.py").exists() else "recorder"
    print(f"tree {args.tree}")
    print(f"replay median   {replay_median_ms(args.tree, args.replays):.3f} ms  ({args.replays} chat-basic replays)")
    for media, target in INGEST_TARGETS.items():
        rate = ingest_spans_per_second(media, args.batches)
        print(f"ingest {media:24} {rate:>9,.0f} spans/s  target >= {target:,}  ratio {rate / target:.2f}")
    if args.gzip_mib:
        status, seconds = gzip_body_seconds(args.gzip_mib)
        print(f"gzip {args.gzip_mib} MiB of members  {seconds:.2f} s  (answered {status})")


RECORDER = "testopeninference.recorder"
INGEST_TARGETS = {"application/x-protobuf": 100_000, "application/json": 20_000}  # spans/s, issue 13


def _recorder(module: str):
    return importlib.import_module(f"{RECORDER}.{module}")


def replay_median_ms(tree: Path, count: int) -> float:
    import httpx

    CassetteLibrary = _recorder("cassette").CassetteLibrary
    fake_openai = _recorder("fake_openai")
    CassetteReplayer, FakeOpenAIServer = fake_openai.CassetteReplayer, fake_openai.FakeOpenAIServer

    library = CassetteLibrary(tree / "cassettes")
    request = library.load("chat-basic").request
    headers = {"X-Cassette-Name": "chat-basic", "Content-Type": "application/json"}
    times = []
    with FakeOpenAIServer(CassetteReplayer(library)) as server, httpx.Client() as client:
        url = f"{server.url}{request.path}"
        for _ in range(count):
            started = time.perf_counter()
            response = client.post(url, content=request.body.encode(), headers=headers)
            times.append(time.perf_counter() - started)
            assert response.status_code == 200, response.text
    return statistics.median(times) * 1000


def ingest_spans_per_second(media: str, batches: int, spans_per_batch: int = 512) -> float:
    import httpx
    from google.protobuf import json_format
    from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest

    InMemoryOTLPCollector = _recorder("collector").InMemoryOTLPCollector

    request = ExportTraceServiceRequest()
    scope_spans = request.resource_spans.add().scope_spans.add()
    for i in range(spans_per_batch):
        span = scope_spans.spans.add(trace_id=b"\x01" * 16, span_id=i.to_bytes(8, "big"), name=f"span {i}")
        span.attributes.add(key="llm.model_name").value.string_value = "gpt-4.1-nano"
    if media == "application/json":
        document = json_format.MessageToDict(request)
        for span in document["resourceSpans"][0]["scopeSpans"][0]["spans"]:  # OTLP/JSON ids are hex
            span["traceId"], span["spanId"] = "01" * 16, f"{int.from_bytes(bytes(8), 'big'):016x}"
        import json

        body = json.dumps(document).encode()
    else:
        body = request.SerializeToString()
    with InMemoryOTLPCollector() as collector, httpx.Client() as client:
        url = f"{collector.endpoint}/v1/traces"
        started = time.perf_counter()
        for _ in range(batches):
            response = client.post(url, content=body, headers={"Content-Type": media})
            assert response.status_code == 200, response.text
            collector.clear()
        elapsed = time.perf_counter() - started
    return batches * spans_per_batch / elapsed


def gzip_body_seconds(mebibytes: int) -> tuple[int, float]:
    """One POST of ``mebibytes`` MiB made of 1 KiB gzip members: the time to the collector's answer."""
    import httpx

    InMemoryOTLPCollector = _recorder("collector").InMemoryOTLPCollector
    member = gzip.compress(os.urandom(1024), compresslevel=1)
    body = member * (mebibytes * 1024 * 1024 // len(member))
    with InMemoryOTLPCollector() as collector, httpx.Client(timeout=3600) as client:
        started = time.perf_counter()
        response = client.post(f"{collector.endpoint}/v1/traces", content=body,
                               headers={"Content-Type": "application/x-protobuf", "Content-Encoding": "gzip"})
        return response.status_code, time.perf_counter() - started


if __name__ == "__main__":
    main()
