"""Goldens are byte for byte what Go's protojson writes: checked by a real Go program (tests/go/protojson_check).

The program reads each file into its OTLP message (a dynamicpb message built from the descriptors that the
opentelemetry-proto package holds, written here as a FileDescriptorSet), marshals it again with
``protojson.MarshalOptions{Multiline: true, Indent: "  "}`` and reports every file whose bytes differ from
Go's plus the one trailing newline our files carry. Skipped with the reason where ``go`` or the Go protobuf
sources (Debian's golang-google-protobuf-dev) are missing, except where TESTOPENINFERENCE_REQUIRE_GO=1 (set
by .ci/run): there they must run.
"""

from __future__ import annotations

import os
import random
import shutil
import struct
import subprocess
from pathlib import Path

import pytest
from google.protobuf import descriptor_pb2
from google.protobuf.descriptor import FileDescriptor
from opentelemetry.proto.logs.v1.logs_pb2 import LogsData
from opentelemetry.proto.trace.v1.trace_pb2 import Span, Status

from testopeninference.recorder.span_file import write_span
from tests.helpers import PROJECT, SPANS

CHECKER_SOURCE = PROJECT / "tests" / "go" / "protojson_check"
PROTOBUF_PACKAGE = Path("src/google.golang.org/protobuf/encoding/protojson")
GOPATHS = (Path("/usr/share/gocode"),)  # where Debian's golang-*-dev packages put Go sources
TRICKY_DOUBLES = [0.0, -0.0, 1e21, 1e20, 1e-7, 1e-6, 5e-324, 1.7976931348623157e308, 123456789.125, 0.1,
                  -1.5e-7, 2.5e-300, 9.999999999999999e20, float("nan"), float("inf"), float("-inf")]
TRICKY_INTS = [0, 1, -1, 2**53 + 1, 2**63 - 1, -(2**63)]


def random_doubles(count: int) -> list[float]:
    """Doubles from random bit patterns (a fixed seed): every exponent, subnormals, NaN payloads."""
    generator = random.Random(13)
    return [struct.unpack("<d", generator.getrandbits(64).to_bytes(8, "little"))[0] for _ in range(count)]


def skip_unless_required(reason: str) -> None:
    if os.environ.get("TESTOPENINFERENCE_REQUIRE_GO") == "1":
        pytest.fail(f"TESTOPENINFERENCE_REQUIRE_GO=1 but {reason}")
    pytest.skip(reason)


def go_path() -> Path | None:
    """The GOPATH that holds google.golang.org/protobuf's sources (GOPATH mode: builds offline)."""
    configured = [Path(entry) for entry in os.environ.get("GOPATH", "").split(os.pathsep) if entry]
    return next((root for root in (*configured, *GOPATHS) if (root / PROTOBUF_PACKAGE).is_dir()), None)


@pytest.fixture(scope="module")
def checker(tmp_path_factory, request) -> Path:
    """The Go program, built once per module; its build cache is kept in pytest's cache between runs."""
    go, root = shutil.which("go"), go_path()
    if go is None:
        skip_unless_required("no `go` on PATH (install Debian's golang-go to run these tests)")
    if root is None:
        skip_unless_required("no Go protobuf sources in GOPATH (install Debian's golang-google-protobuf-dev)")
    built = tmp_path_factory.mktemp("go") / "protojson_check"
    pytest_cache = getattr(request.config, "cache", None)  # absent under -p no:cacheprovider
    cache = pytest_cache.mkdir("go-build") if pytest_cache is not None else built.parent / "go-build"
    env = {**os.environ, "GO111MODULE": "off", "GOPATH": str(root), "GOFLAGS": "", "GOPROXY": "off",
           "GOCACHE": str(cache)}
    result = subprocess.run([go, "build", "-o", str(built), "."], cwd=CHECKER_SOURCE, env=env,
                            capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, f"go build failed:\n{result.stdout}{result.stderr}"
    return built


@pytest.fixture(scope="module")
def descriptors(tmp_path_factory) -> Path:
    """The OTLP trace and logs .proto files, with what they import, as a serialized FileDescriptorSet."""
    files = descriptor_pb2.FileDescriptorSet()
    seen: set[str] = set()

    def add(file: FileDescriptor) -> None:
        if file.name not in seen:
            seen.add(file.name)
            for dependency in file.dependencies:
                add(dependency)
            files.file.add().ParseFromString(file.serialized_pb)

    add(Span.DESCRIPTOR.file)
    add(LogsData.DESCRIPTOR.file)
    path = tmp_path_factory.mktemp("descriptors") / "otlp.pb"
    path.write_bytes(files.SerializeToString())
    return path


def run_checker(checker: Path, descriptors: Path, paths: list[Path]) -> subprocess.CompletedProcess:
    return subprocess.run([str(checker), str(descriptors), *map(str, paths)],
                          capture_output=True, text=True, timeout=120)


def test_every_golden_of_every_convention_is_byte_identical_to_go_protojson(checker: Path, descriptors: Path):
    paths = sorted(SPANS.rglob("*.json"))
    assert len(paths) > 200 and any(path.name.endswith(".logs.json") for path in paths)
    result = run_checker(checker, descriptors, paths)
    assert result.returncode == 0, result.stdout + result.stderr
    assert f"{len(paths)} of {len(paths)} files byte-identical" in result.stdout


def tricky_span() -> Span:
    """Every kind of scalar protojson writes, at the values where number forms are easiest to get wrong."""
    span = Span(trace_id=bytes(range(16)), span_id=b"\xff" * 8, name='n "q" \\ \n\t\x01\x1f é <&> \u2028',
                kind=Span.SPAN_KIND_CLIENT, start_time_unix_nano=2**64 - 1, end_time_unix_nano=2**63,
                flags=2**32 - 1, dropped_attributes_count=2**32 - 1,
                status=Status(code=Status.STATUS_CODE_ERROR, message="boom"))
    for i, number in enumerate(TRICKY_DOUBLES + random_doubles(2000)):
        span.attributes.add(key=f"double.{i}").value.double_value = number
    for i, number in enumerate(TRICKY_INTS):
        span.attributes.add(key=f"int.{i}").value.int_value = number
    array = span.attributes.add(key="array").value.array_value
    array.values.add().double_value = -0.0
    array.values.add().bool_value = False
    array.values.add().bytes_value = b"\x00\xfb\xff"
    nested = span.attributes.add(key="kvlist").value.kvlist_value.values.add(key="empty")
    nested.value.SetInParent()
    event = span.events.add(name="e", time_unix_nano=2**64 - 1)
    event.attributes.add(key="double").value.double_value = 1e-7
    span.links.add(trace_id=b"\x01" * 16, span_id=b"\x02" * 8, flags=256)
    return span


def tricky_logs() -> LogsData:
    logs = LogsData()
    record = logs.resource_logs.add().scope_logs.add().log_records.add(
        time_unix_nano=2**64 - 1, severity_number=9, severity_text="INFO", event_name="gen_ai.choice")
    record.body.double_value = 1e21
    record.attributes.add(key="int").value.int_value = -(2**63)
    return logs


def test_tricky_numbers_and_strings_are_written_as_go_protojson_writes_them(
    checker: Path, descriptors: Path, tmp_path: Path
):
    write_span(tmp_path / "tricky.json", tricky_span())
    write_span(tmp_path / "tricky.logs.json", tricky_logs())
    result = run_checker(checker, descriptors, [tmp_path / "tricky.json", tmp_path / "tricky.logs.json"])
    assert result.returncode == 0, result.stdout + result.stderr
    text = (tmp_path / "tricky.json").read_text()
    for written in ('"doubleValue": -0\n', '"doubleValue": 1e+21\n', '"doubleValue": "NaN"\n',
                    '"intValue": "-9223372036854775808"\n', '"startTimeUnixNano": "18446744073709551615"'):
        assert written in text


@pytest.mark.parametrize(
    "edit",
    [
        lambda text: text.replace('"doubleValue": 0', '"doubleValue": 0.0'),
        lambda text: text.replace('"name": ', '"name":  '),  # what protojson writes with detrand enabled
        lambda text: text.removesuffix("\n"),
    ],
    ids=["0.0", "two spaces after a colon", "no trailing newline"],
)
def test_a_file_go_would_write_otherwise_is_reported(checker: Path, descriptors: Path, tmp_path: Path, edit):
    span = Span(name="n")
    span.attributes.add(key="zero").value.double_value = 0.0
    path = tmp_path / "span.json"
    write_span(path, span)
    path.write_text(edit(path.read_text()))
    result = run_checker(checker, descriptors, [path])
    assert result.returncode == 1 and f"DIFFERS {path}: line " in result.stdout, result.stdout + result.stderr
