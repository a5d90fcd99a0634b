"""The command line as real processes: two concurrent recordings, and a reader that closes the pipe early."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.helpers import PROJECT, SPANS

NAMES = ["chat-basic", "embeddings-basic", "completion-basic"]


def command(*argv: str) -> list[str]:
    return [sys.executable, "-m", "testopeninference", *argv]


def test_two_concurrent_records_report_what_each_wrote_and_what_the_other_did(tmp_path: Path):
    runs = [subprocess.Popen(command("record", "--spans-dir", str(tmp_path), *NAMES), cwd=PROJECT, text=True,
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE) for _ in range(2)]
    outputs = [run.communicate(timeout=300) for run in runs]
    assert [run.returncode for run in runs] == [0, 0], outputs
    recorded = [{line.split()[1] for line in out.splitlines() if line.startswith("recorded ")} for out, _ in outputs]
    assert recorded[0] | recorded[1] == set(NAMES) and not recorded[0] & recorded[1], outputs
    for (out, _), mine in zip(outputs, recorded):
        others = {line.split()[1] for line in out.splitlines() if line.startswith(("found ", "present "))}
        assert others == set(NAMES) - mine, out
        summary = out.splitlines()[-1]
        assert summary.startswith(f"{len(mine)} recorded"), out
    for name in NAMES:
        assert (tmp_path / f"{name}.json").read_bytes() == (SPANS / f"{name}.json").read_bytes()


def test_diff_into_a_closed_pipe_exits_quietly_with_the_comparison_status():
    for other, status in (("chat-multiturn", 1), ("chat-basic", 0)):
        run = subprocess.Popen(command("diff", str(SPANS / "chat-basic.json"), str(SPANS / f"{other}.json")),
                               cwd=PROJECT, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        run.stdout.close()  # like `| head` that has already exited
        _, err = run.communicate(timeout=60)
        assert (run.returncode, err.decode()) == (status, ""), other


def test_serve_save_spans_writes_each_span_received_over_http_or_grpc_for_diff(tmp_path: Path):
    import signal

    import grpc
    import httpx
    from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest

    from testopeninference.recorder.span_file import read_span
    from testopeninference.recorder.span_saver import file_name_part

    saved = tmp_path / "saved"
    serve = subprocess.Popen(
        command("serve", "--openai-port", "0", "--otlp-port", "0", "--grpc-port", "0", "--save-spans", str(saved),
                "--seconds", "120"),
        cwd=PROJECT, text=True, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
    )
    try:
        heading = [serve.stdout.readline() for _ in range(5)]
        addresses = {line.split()[0] + line.split()[1]: line.split()[2] for line in heading if line.count(" ") > 2}
        span = read_span(SPANS / "chat-basic.json")
        span.trace_id, span.span_id = bytes(range(16)), b"\x01" * 8
        request = ExportTraceServiceRequest()
        request.resource_spans.add().scope_spans.add().spans.append(span)
        body = request.SerializeToString()
        answer = httpx.post(f"{addresses['OTLPcollector']}/v1/traces", content=body,
                            headers={"Content-Type": "application/x-protobuf"}, timeout=10)
        assert answer.status_code == 200, heading
        with grpc.insecure_channel(addresses["OTLP/gRPCreceiver"].removeprefix("http://")) as channel:
            channel.unary_unary("/opentelemetry.proto.collector.trace.v1.TraceService/Export")(body, timeout=10)
        stem = f"{bytes(range(16)).hex()}-{file_name_part(span.name)}"
        expected = [saved / f"{stem}-2.json", saved / f"{stem}.json"]
        for _ in range(200):
            if all(path.exists() for path in expected):
                break
            serve.poll() is None or pytest.fail(f"serve ended: {serve.communicate()}")
            time.sleep(0.05)
    finally:
        serve.send_signal(signal.SIGINT)
        out, err = serve.communicate(timeout=30)
    assert sorted(saved.iterdir()) == expected, (heading, out, err)
    assert out.splitlines()[-1] == "2 span(s) received.", out
    for path in expected:
        same = subprocess.run(command("diff", "chat-basic", str(path)), cwd=PROJECT, capture_output=True, timeout=60)
        assert same.returncode == 0, same
        other = subprocess.run(command("diff", "chat-multiturn", str(path)), cwd=PROJECT, capture_output=True,
                               timeout=60)
        assert other.returncode == 1, other


def test_diff_full_and_show_json_arrays_as_processes(tmp_path: Path):
    import json

    span = json.loads((SPANS / "embeddings-basic.json").read_text(encoding="utf-8"))
    span["name"] = "gateway embeddings"
    vector = next(a for a in span["attributes"] if a["key"].endswith("embedding.vector"))
    vector["value"]["arrayValue"]["values"][-1] = {"doubleValue": 0.5}
    next(a for a in span["attributes"] if a["key"] == "output.value")["value"]["stringValue"] = "y" * 300
    actual = tmp_path / "gateway.json"
    actual.write_text(json.dumps(span), encoding="utf-8")
    for options, whole in ((["-vv"], True), (["--full"], True), ([], False)):
        run = subprocess.run(command("diff", "embeddings-basic", str(actual), "--gateway", *options), cwd=PROJECT,
                             capture_output=True, text=True, timeout=60)
        assert run.returncode == 1, run.stderr
        assert (f"got '{'y' * 300}'" in run.stdout) is whole, options
    assert f"attribute {vector['key']!r}: at [" in run.stdout and "got 0.5" in run.stdout
    assert "note: name: expected 'CreateEmbeddings', got 'gateway embeddings' (not compared)" in run.stdout
    run = subprocess.run(command("show", str(actual)), cwd=PROJECT, capture_output=True, text=True, timeout=60)
    assert run.returncode == 0, run.stderr
    [line] = [line for line in run.stdout.splitlines() if line.startswith(vector["key"])]
    assert line.split(None, 1)[1].startswith("[") and "double_value" not in run.stdout
