"""The ``testopeninference`` command: record, inspect and compare golden spans.

Our errors print ``Error: <message>`` and exit 1; a difference found by
``diff`` (or ``conform``) exits 1 too, and so do ``list`` and ``record`` after
reporting a broken cassette (the others are listed or recorded); usage errors exit 2 (argparse),
and so does every error of ``conform`` (a bad option value, a broken cassette, a gateway that
never gets ready): its 1 always means a cassette failed.
"""

from __future__ import annotations

import argparse
import base64
from importlib import metadata
import contextlib
import json
import os
from dataclasses import replace
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING, Callable, Iterable, Sequence, TextIO

from testopeninference.recorder import layers
from testopeninference.recorder.backends.early import EarlyProxy, start_early
from testopeninference.recorder.config import RecordMode, Settings
from testopeninference.recorder.conventions import CONVENTIONS, get_convention
from testopeninference.recorder.layers import cassette_library
from testopeninference.recorder.resources import refuse_packaged
from testopeninference.recorder.signals import interrupt_on_termination
from testopeninference.recorder.endpoints import endpoint_of
from testopeninference.conform.command import SETUP_FAILED as CONFORM_SETUP_FAILED
from testopeninference.conform.command import add_arguments as add_conform_arguments, run_conform
from testopeninference.errors import ConfigurationError, InvalidCassetteError, TestOpenInferenceError

# What only some commands need is imported in them: ``record`` starts its proxy before the recorder's modules load.
if TYPE_CHECKING:
    from opentelemetry.proto.common.v1.common_pb2 import KeyValue
    from opentelemetry.proto.trace.v1.trace_pb2 import Span

    from testopeninference.recorder.cassette import CassetteLibrary
    from testopeninference.recorder.collector import InMemoryOTLPCollector
    from testopeninference.recorder.conventions import Convention
    from testopeninference.recorder.fake_openai import CassetteReplayer
    from testopeninference.recorder.session import SpanRecorder
    from testopeninference.recorder.span_saver import SpanSaver
    from testopeninference.status import GoldenStatus

    Subcommands = argparse._SubParsersAction[argparse.ArgumentParser]  # what add_subparsers() gives
Command = Callable[[argparse.Namespace, TextIO], int]
"""What a subcommand runs: the parsed arguments and the output stream in, the exit status out."""


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="testopeninference",
        description="Golden OpenTelemetry spans for AI gateways (OpenInference, OpenTelemetry GenAI, OpenLLMetry).",
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {metadata.version('testopeninference')}")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    for add in (_add_record, _add_new, _add_list, _add_show, _add_diff, _add_serve, _add_conform, _add_prune):
        add(commands)
    return parser


def _add_record(commands: Subcommands) -> None:
    record = _command(commands, "record", _record, "record missing golden spans (all cassettes by default)")
    record.add_argument("names", nargs="*", metavar="NAME", help="cassettes to record (default: all)")
    record.add_argument("--force", action="store_true", help="re-record goldens that already exist")
    record.add_argument("--backend", default=None, help="local, docker or auto (default: RECORD_BACKEND or local)")
    record.add_argument("--allow-version-mismatch", action="store_true", default=None,
                        help="record even when installed packages differ from requirements.txt")
    record.add_argument("-j", "--concurrency", type=_positive_int, default=None, metavar="N",
                        help="cassettes in flight at once (default: TESTOPENINFERENCE_RECORD_CONCURRENCY or 4)")


def _add_new(commands: Subcommands) -> None:
    new = _command(commands, "new", _new, "record a new cassette from the live API, and its golden")
    new.description = (new.description or "") + (" The request goes through the instrumented proxy to the live API "
                         "of the path's provider (OPENAI_API_KEY and OPENAI_BASE_URL, the AZURE_OPENAI_* settings, "
                         "ANTHROPIC_API_KEY and ANTHROPIC_BASE_URL, CO_API_KEY and CO_API_URL); the scrubbed exchange "
                         "is saved.")
    new.add_argument("name", metavar="NAME", help="cassette name, e.g. chat-my-shape")
    new.add_argument("--path", default="/v1/chat/completions",
                     help="API path, e.g. /v1/messages or /v2/rerank (default /v1/chat/completions)")
    new.add_argument("--body", required=True, help="JSON request body: a file, or - for standard input")
    new.add_argument("--description", default="", help="one line: the request shape it exercises")


def _add_list(commands: Subcommands) -> None:
    listing = _command(commands, "list", _list,
                       "list cassettes: endpoint, golden status (present, missing, stale), description")
    listing.add_argument("--coverage", action="store_true",
                         help="a table of golden status per convention (\"-\" where a convention has none)")


def _add_show(commands: Subcommands) -> None:
    show = _command(commands, "show", _show, "print a golden span's attributes as a table")
    show.add_argument("name", metavar="NAME", help="cassette name, or a span JSON file")


def _add_diff(commands: Subcommands) -> None:
    diff = _command(commands, "diff", _diff, "compare two spans leniently; exit 1 when they differ", dirs=False)
    diff.add_argument("expected", metavar="EXPECTED", help="span JSON file (protojson or OTLP/JSON) or cassette name")
    diff.add_argument("actual", metavar="ACTUAL", help="span JSON file (protojson or OTLP/JSON)")
    diff.add_argument("--ignore", action="append", default=[], metavar="KEY",
                      help="attribute key or fnmatch pattern to ignore (repeatable)")
    diff.add_argument("--gateway", action="store_true",
                      help="ACTUAL is a gateway's span: its name and kind are notes, not differences")
    diff.add_argument("--full", action="store_true", help="show values whole instead of cut at 80 characters")
    diff.add_argument("-v", "--verbose", action="count", default=0, help="-vv is --full")
    diff.add_argument("--cassettes-dir", type=Path, default=None, help=argparse.SUPPRESS)
    diff.add_argument("--spans-dir", type=Path, default=None, help="golden spans directory, for a cassette name")


def _add_serve(commands: Subcommands) -> None:
    serve = _command(commands, "serve", _serve, "run the fake OpenAI server and the OTLP collector in the foreground")
    serve.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1)")
    serve.add_argument("--openai-port", type=int, default=0, help="fake OpenAI server port (default: any free one)")
    serve.add_argument("--otlp-port", type=int, default=4318, help="OTLP/HTTP collector port (default 4318)")
    serve.add_argument("--grpc-port", type=int, default=4317, help="OTLP/gRPC receiver port (default 4317; 0: any)")
    serve.add_argument("--no-grpc", action="store_true", help="receive no OTLP/gRPC (or TESTOPENINFERENCE_GRPC=false)")
    serve.add_argument("--save-spans", type=Path, default=None, metavar="DIR",
                       help="write each span received to DIR/<trace id>-<span name>.json, for diff")
    serve.add_argument("--max-spans", type=int, default=None, help="spans kept, the oldest dropped (default 100000)")
    serve.add_argument("--requests-kept", type=int, default=None, help="requests kept per cassette (default 100)")
    serve.add_argument("--max-connections", type=int, default=None, help="connections per server (default 100)")
    serve.add_argument("--header-timeout", type=float, default=None, help="seconds for request headers (default 10)")
    serve.add_argument("--body-timeout", type=float, default=None, help="seconds a body may stall (default 30)")
    serve.add_argument("--idle-timeout", type=float, default=None, help="seconds an idle connection is kept (default 5)")
    serve.add_argument(
        "--ignore-body-key", dest="ignore_body_keys", action="append", default=[], metavar="KEY",
        help="a request body key left out of matching (repeatable; dotted, * for any key or list index: "
        "tools.*.strict); added to [tool.testopeninference] ignore-body-keys",
    )
    serve.add_argument("--seconds", type=float, default=None, help=argparse.SUPPRESS)  # bounded runs, for tests

    send = _command(commands, "send", _send, "send a cassette's request to a gateway, in a trace of its own")
    send.description = (f"{send.description} Prints the status, the trace id to find its spans by (serve "
                        "--save-spans names files by it) and the reply; exits 1 when the status is not the cassette's.")
    send.add_argument("name", metavar="NAME", help="cassette name")
    send.add_argument("--gateway", required=True, metavar="URL", help="the gateway's address, e.g. http://127.0.0.1:8080")
    send.add_argument("--path-prefix", default="", metavar="PREFIX", help="before the cassette's path: /openai")
    send.add_argument("--model-prefix", default="", metavar="PREFIX", help="before the model's name: gw::")
    send.add_argument("--header", action="append", default=[], metavar="'NAME: VALUE'", help="an extra header")
    send.add_argument("--timeout", type=float, default=30.0, help="seconds for the whole reply (default 30)")

def _add_conform(commands: Subcommands) -> None:
    conform = _command(commands, "conform", _conform,
                       "score a gateway's spans against the goldens; exit 1 when a cassette does not match")
    add_conform_arguments(conform)


def _add_prune(commands: Subcommands) -> None:
    prune = _command(commands, "prune", _prune, "remove goldens whose cassette no longer exists")
    prune.add_argument("--dry-run", action="store_true", help="only print what would be removed")


def _command(commands: Subcommands, name: str, run: Command, summary: str, dirs: bool = True) -> argparse.ArgumentParser:
    parser = commands.add_parser(name, help=summary, description=summary[0].upper() + summary[1:] + ".")
    if dirs:
        parser.add_argument("--cassettes-dir", type=Path, default=None, help="cassettes directory")
        parser.add_argument("--spans-dir", type=Path, default=None, help="golden spans directory")
    parser.add_argument("--convention", default=None, choices=list(CONVENTIONS),
                        help="instrumentation convention (default: TESTOPENINFERENCE_CONVENTION or openinference)")
    parser.set_defaults(run=run)
    return parser


def _settings(args: argparse.Namespace) -> Settings:
    return Settings.from_env(
        convention=getattr(args, "convention", None),
        cassettes_dir=getattr(args, "cassettes_dir", None),
        spans_dir=getattr(args, "spans_dir", None),
        backend=getattr(args, "backend", None),
        allow_version_mismatch=getattr(args, "allow_version_mismatch", None),
        **{key: getattr(args, key, None) for key in _SERVE_LIMITS},
    )


_SERVE_LIMITS = ("max_spans", "requests_kept", "max_connections", "header_timeout", "body_timeout", "idle_timeout")


def _record(args: argparse.Namespace, out: TextIO) -> int:
    """Record what is missing; the summary says what this run wrote, what another process wrote meanwhile
    (this run waited on its lock and found it there), what was already present and what is not covered.

    The proxy starts first, when anything may need recording, and imports while the cassettes are loaded and
    checked; then ``record_concurrency`` cassettes are in flight at once, each line printed as one finishes.
    A broken cassette is reported as failed (the others are recorded) and makes the exit status 1."""
    started = time.monotonic()
    settings = _settings(args)
    if args.concurrency is not None:
        settings = replace(settings, record_concurrency=args.concurrency)
    refuse_packaged(settings.spans_dir)
    library = cassette_library(settings)
    names = args.names or library.names()
    convention = get_convention(settings.convention)
    with contextlib.ExitStack() as stack:
        recorder = None
        if _may_record(settings, library, names, args.force):
            early = start_early(settings)  # the proxy imports while the recorder's modules load
            recorder = stack.enter_context(_recorder(settings, early))
        broken = _broken_cassettes(library, names, args.names)
        names = [name for name in names if name not in broken]
        uncovered = {n: convention.why_not_covered(n, endpoint_of(library.load(n))) for n in names}
        todo = [n for n in names if not uncovered[n] and (args.force or not _golden_exists(settings, library, n))]
        for name in names:
            if uncovered[name]:
                print(f"skipped   {name} (not covered: {uncovered[name]})", file=out)
            elif name not in todo:
                print(f"present   {name}", file=out)
        if todo and recorder is None:  # a golden removed since the first look
            recorder = stack.enter_context(_recorder(settings))
        written = _record_all(recorder, todo, args.force, out) if recorder is not None and todo else 0
    for name, why in broken.items():  # last, beside the summary, where they are seen
        print(f"failed    {name}: {why}", file=out)
    skipped = sum(1 for why in uncovered.values() if why)
    summary = _record_summary(written, len(todo), len(names) - len(todo) - skipped, skipped, convention.name)
    summary += f", {len(broken)} failed (broken cassettes)" if broken else ""
    print(f"{summary}, {time.monotonic() - started:.2f} s in total", file=out)
    return 1 if broken else 0


def _record_summary(written: int, todo: int, present: int, skipped: int, convention: str) -> str:
    summary = f"{written} recorded"
    summary += f", {todo - written} written by another process" if todo > written else ""
    summary += f", {present} present"
    return summary + (f", {skipped} not covered by {convention}" if skipped else "")


def _broken_cassettes(library: CassetteLibrary, names: list[str], given: list[str]) -> dict[str, str]:
    """The cassettes of ``names`` that cannot be read, each with its error on one line; a ``given`` name
    that is invalid or unknown raises, before anything is recorded."""
    for name in given:
        library.path(name)
    broken = {}
    for name in names:
        try:
            endpoint_of(library.load(name))
        except InvalidCassetteError as error:
            broken[name] = " ".join(str(error).split())
    return broken


def _recorder(settings: Settings, early: EarlyProxy | None = None) -> SpanRecorder:
    """A recorder starting in the background; its modules load here, after an early proxy has started (which
    is stopped if the recorder cannot be made)."""
    try:
        from testopeninference.recorder.session import SpanRecorder

        return SpanRecorder(settings, early=early).start_in_background()
    except BaseException:
        if early is not None:
            early.close()
        raise


def _may_record(settings: Settings, library: CassetteLibrary, names: list[str], force: bool) -> bool:
    """Whether to start the proxy before the cassettes are checked: every name is a file, and a golden is due
    (with ``force``, or missing and covered by the convention; only those few cassettes are read here)."""
    try:
        if not all(library.path(name).is_file() for name in names):
            return False  # loading it fails, with suggestions: no proxy for nothing
        if force:
            return True
        convention = get_convention(settings.convention)
        missing = [name for name in names if not _golden_exists(settings, library, name)]
        return any(_covered(convention, library, name) for name in missing)
    except TestOpenInferenceError:
        return False  # an invalid name: checking them all says which


def _covered(convention: Convention, library: CassetteLibrary, name: str) -> bool:
    """Whether the convention has a golden for the cassette (a broken one has none to record)."""
    try:
        return not convention.why_not_covered(name, endpoint_of(library.load(name)))
    except InvalidCassetteError:
        return False


def _golden_exists(settings: Settings, library: CassetteLibrary, name: str) -> bool:
    """Whether the golden is there (the user's own or the packaged one)."""
    return layers.golden_location(settings, get_convention(settings.convention), library.path(name)).path.exists()


def _record_all(recorder: SpanRecorder, todo: list[str], force: bool, out: TextIO) -> int:
    """Record ``todo`` several at a time, one line per golden as it finishes; the number written."""
    recorder.wait_started()
    print(f"backend   {recorder.backend_name}", file=out, flush=True)
    written = 0
    for done, result in enumerate(recorder.record_many(todo, force=force), 1):
        written += result.recorded
        what = "recorded " if result.recorded else "found    "
        why = "" if result.recorded else " (written by another process meanwhile)"
        print(f"{what} {result.cassette} -> {_shown(result.path)}{why} ({result.seconds:.2f} s)  "
              f"{_bar(done, len(todo))}", file=out, flush=True)
    return written


def _positive_int(text: str) -> int:
    if not text.isdigit() or int(text) < 1:
        raise argparse.ArgumentTypeError(f"{text!r} is not a positive whole number")
    return int(text)


def _bar(done: int, total: int, width: int = 20) -> str:
    filled = round(width * done / total)
    return f"[{'#' * filled}{'.' * (width - filled)}] {done}/{total}"


def _new(args: argparse.Namespace, out: TextIO) -> int:
    body = sys.stdin.read() if args.body == "-" else Path(args.body).read_text(encoding="utf-8")
    try:
        json.loads(body)
    except ValueError as error:
        raise ConfigurationError(f"--body is not JSON ({error}); give the request body the SDK call takes.") from None
    from testopeninference.recorder.session import SpanRecorder

    with SpanRecorder(_settings(args)) as recorder:
        result = recorder.record_new(args.name, args.path, body, args.description)
        print(f"recorded  {_shown(recorder.library.path(args.name))}", file=out)
    print(f"recorded  {_shown(result.path)}", file=out)
    return 0


def _list(args: argparse.Namespace, out: TextIO) -> int:
    from testopeninference.status import BROKEN, golden_statuses

    settings = _settings(args)
    if args.coverage:
        return _coverage(settings, out)
    library = cassette_library(settings)
    statuses = golden_statuses(settings)
    width = _name_width(status.cassette for status in statuses)
    print(f"{'CASSETTE':{width}} {'ENDPOINT':13} {'GOLDEN':8} {'FROM':8} DESCRIPTION", file=out)
    for status in statuses:
        cassette = library.load(status.cassette) if status.state != BROKEN else None
        endpoint, description = (endpoint_of(cassette).value, cassette.description) if cassette else ("?", "")
        line = f"{status.cassette:{width}} {endpoint:13} {status.state:8} {status.source:8} {description}"
        print(line.rstrip(), file=out)
        if status.reason:
            print(f"{'':{width}} {'':13} ({status.reason})", file=out)
    return _broken_status(statuses)


def _name_width(names: Iterable[str]) -> int:
    """The cassette column's width: the longest name's (at least the 36 of the usual names), so columns align."""
    return max([36, *(len(name) for name in names)])


def _broken_status(statuses: Sequence[GoldenStatus]) -> int:
    """1 when a cassette is broken (after every other one was listed), so CI notices; else 0."""
    from testopeninference.status import BROKEN

    return 1 if any(status.state == BROKEN for status in statuses) else 0


def _coverage(settings: Settings, out: TextIO) -> int:
    """One row per cassette, one column per convention; a broken cassette's error after the table."""
    from testopeninference.status import BROKEN, golden_statuses

    statuses = {name: golden_statuses(replace(settings, convention=name)) for name in CONVENTIONS}
    columns = {name: {s.cassette: s.state for s in found} for name, found in statuses.items()}
    widths = {name: max(len(name), 8) for name in CONVENTIONS}
    names = cassette_library(settings).names()
    width = _name_width(names)
    print(f"{'cassette':{width}} " + " ".join(f"{name:{widths[name]}}" for name in CONVENTIONS), file=out)
    for cassette in names:
        cells = [f"{columns[name][cassette]:{widths[name]}}" for name in CONVENTIONS]
        print(f"{cassette:{width}} " + " ".join(cells).rstrip(), file=out)
    broken = [s for s in statuses[settings.convention] if s.state == BROKEN]
    for status in broken:
        print(f"{status.cassette}: {status.reason}", file=out)
    return _broken_status(broken)


def _show(args: argparse.Namespace, out: TextIO) -> int:
    from google.protobuf import json_format
    from opentelemetry.proto.trace.v1.trace_pb2 import Span, Status

    from testopeninference.goldens import golden_location
    from testopeninference.recorder.span_file import log_records, read_logs

    span = _span_or_golden(args.name, _settings(args))
    print(f"name    {span.name}", file=out)
    print(f"kind    {Span.SpanKind.Name(span.kind)}", file=out)
    status = f"status  {Status.StatusCode.Name(span.status.code)} {span.status.message}".rstrip()
    print(_clip(status, 100), file=out)
    if not _is_file(args.name):
        print(_golden_line(_settings(args), args.name), file=out)
    _table(span.attributes, out, indent="")
    for event in span.events:
        print(f"event   {event.name}", file=out)
        _table(event.attributes, out, indent="  ")
    settings = _settings(args)
    logs = None if _is_file(args.name) else get_convention(settings.convention).logs_path(
        golden_location(replace(settings, record_mode=RecordMode.NONE), args.name).spans_dir, args.name)
    if logs is not None and logs.exists():
        for record in log_records(read_logs(logs)):
            body = json_format.MessageToDict(record.body) if record.HasField("body") else {}
            text = json.dumps(body, ensure_ascii=False)
            print(f"log     {record.event_name}  {_clip(text, 80)}", file=out)
            _table(record.attributes, out, indent="  ")
    return 0


def _golden_line(settings: Settings, name: str) -> str:
    """Whether a cassette's golden is present or stale (and why), where it is and whose it is."""
    from testopeninference.status import golden_statuses

    [status] = golden_statuses(settings, [name])
    why = f": {status.reason}" if status.reason else ""
    return f"golden  {status.state}  {_shown(status.path)} ({status.source}){why}"


def _table(attributes: Sequence[KeyValue], out: TextIO, indent: str, width: int = 100) -> None:
    if not attributes:
        return
    from testopeninference.compare import plain_value

    key_width = max(len(a.key) for a in attributes)
    for attribute in attributes:
        kind = attribute.value.WhichOneof("value") or "empty"
        value = getattr(attribute.value, kind) if kind != "empty" else ""
        room = max(20, width - key_width - len(indent) - 2)
        if kind == "string_value":  # quoted, so "0" and 0 differ; a clipped string keeps its closing quote
            text = '"' + _clip(value.replace("\n", "\\n"), room - 2) + '"'
        elif kind in ("array_value", "kvlist_value"):  # as JSON, not protobuf text
            text = _clip(json.dumps(plain_value(attribute.value), ensure_ascii=False, default=_bytes_json), room)
        else:
            text = _clip(str(value).replace("\n", "\\n"), room)
        print(f"{indent}{attribute.key:{key_width}}  {text}", file=out)


def _bytes_json(value: object) -> str:
    """Bytes inside an array as protojson writes them: base64."""
    if isinstance(value, bytes):
        return base64.b64encode(value).decode()
    raise TypeError(f"{type(value).__name__} is not JSON")


def _clip(text: str, room: int) -> str:
    """``text`` cut to ``room`` characters, ending in "..." when cut."""
    return text if len(text) <= room else text[: room - 3] + "..."


def _diff(args: argparse.Namespace, out: TextIO) -> int:
    from testopeninference.compare import compare_spans
    from testopeninference.span_input import as_span

    expected = _span_or_golden(args.expected, _settings(args))
    found = compare_spans(expected, as_span(Path(args.actual)), ignore_keys=args.ignore, gateway=args.gateway,
                          full=args.full or args.verbose >= 2)
    differences = found.differences
    status = args.exit_status = 1 if differences else 0  # kept when stdout closes early (`| head`)
    for line in [*differences, *(f"note: {note}" for note in found.notes)]:
        print(line, file=out)
    print("spans match" if not differences else f"{len(differences)} difference(s)", file=out)
    return status


def _is_file(name: str) -> bool:
    """Whether ``name`` is an existing file; a name the OS refuses (too long, say) is not one."""
    try:
        return Path(name).is_file()
    except (OSError, ValueError):
        return False


def _span_or_golden(name: str, settings: Settings) -> Span:
    """A span file, or the golden of a cassette name."""
    from testopeninference.goldens import golden_location
    from testopeninference.recorder.span_file import read_span
    from testopeninference.span_input import as_span

    if _is_file(name):
        return as_span(Path(name))
    return read_span(golden_location(replace(settings, record_mode=RecordMode.NONE), name).path)


def _serve(args: argparse.Namespace, out: TextIO) -> int:
    from testopeninference.recorder.collector import InMemoryOTLPCollector
    from testopeninference.recorder.fake_openai import CassetteReplayer, FakeOpenAIServer

    settings = _settings(args)
    limits = settings.connection_limits()
    tolerated = list(dict.fromkeys([*settings.ignore_body_keys, *args.ignore_body_keys]))
    replayer = CassetteReplayer(cassette_library(settings), ignore_body_keys=tolerated,
                                requests_kept=settings.requests_kept)
    fake = FakeOpenAIServer(replayer, host=args.host, port=args.openai_port, limits=limits)
    grpc_port = None if args.no_grpc or not settings.grpc else args.grpc_port
    collector = InMemoryOTLPCollector(host=args.host, port=args.otlp_port, max_spans=settings.max_spans, limits=limits,
                                      grpc_port=grpc_port)
    saver = _span_saver(args.save_spans)
    with contextlib.ExitStack() as running:
        for server, port, option in ((fake, args.openai_port, "--openai-port"), (collector, args.otlp_port, "--otlp-port")):
            try:
                running.enter_context(server)
            except OSError as error:
                if error.filename == "OTLP/gRPC":
                    port, option = grpc_port, "--grpc-port, or --no-grpc"
                reason = os.strerror(error.errno) if error.errno else str(error)
                raise ConfigurationError(
                    f"cannot listen on {args.host}:{port} ({reason}); choose other ports (this one with {option})."
                ) from None
        print(f"fake OpenAI server  {fake.base_url}/v1   (X-Cassette-Name: <cassette>, or a unique body match)",
              file=out)
        print(f"OTLP collector      {collector.endpoint}   (OTEL_EXPORTER_OTLP_ENDPOINT)", file=out)
        print(f"tolerated body keys {_tolerated_sources(settings.ignore_body_keys, args.ignore_body_keys)}", file=out)
        if grpc_port is not None:
            print(f"OTLP/gRPC receiver  {collector.grpc_endpoint}   (the same, with OTEL_EXPORTER_OTLP_PROTOCOL=grpc)",
                  file=out)
        if saver is not None:
            print(f"saving spans to     {saver.directory}   (testopeninference diff <cassette> <file>)", file=out)
        print("Ctrl-C to stop.", file=out, flush=True)
        _report_spans(collector, out, args.seconds, saver, replayer)
    return 0


def _tolerated_sources(from_project: Sequence[str], from_flags: Sequence[str]) -> str:
    """The tolerated keys, each with every place it came from (a key given in both is credited to both)."""
    sources: dict[str, list[str]] = {}
    for keys, source in ((from_project, "[tool.testopeninference] ignore-body-keys"), (from_flags, "--ignore-body-key")):
        for key in dict.fromkeys(keys):
            sources.setdefault(key, []).append(source)
    groups: dict[str, list[str]] = {}
    for key, where in sources.items():
        groups.setdefault(" and ".join(where), []).append(key)
    return "; ".join(f"{', '.join(keys)}   ({source})" for source, keys in groups.items()) or "none"


def _send(args: argparse.Namespace, out: TextIO) -> int:
    """``send_cassette`` from the shell; exit 1 when the gateway's status is not the one the cassette recorded."""
    from testopeninference.kit import prefix_model, send_cassette

    cassette = cassette_library(_settings(args)).load(args.name)
    headers = dict(_header(text) for text in args.header)
    adapt = prefix_model(args.model_prefix) if args.model_prefix else None
    reply = send_cassette(args.gateway, cassette, headers=headers, path_prefix=args.path_prefix, adapt=adapt,
                          timeout=args.timeout)
    recorded = cassette.interactions[0].response.code
    print(f"status      {reply.status} (the cassette's: {recorded})", file=out)
    if reply.status != recorded and reply.status in (404, 405):
        print(f"sent to     {reply.url}: is --path-prefix the gateway's route (e.g. --path-prefix /openai)?", file=out)
    print(f"trace id    {reply.trace_id}", file=out)
    print(f"traceparent {reply.traceparent}", file=out)
    print(reply.body, file=out)
    return 0 if reply.status == recorded else 1


def _header(text: str) -> tuple[str, str]:
    name, colon, value = text.partition(":")
    if not colon or not name.strip():
        raise ConfigurationError(f"--header {text!r} is not 'NAME: VALUE'; write e.g. --header 'X-Tenant: blue'.")
    return name.strip(), value.strip()


def _span_saver(directory: Path | None) -> SpanSaver | None:
    if directory is None:
        return None
    from testopeninference.recorder.span_saver import SpanSaver

    try:
        return SpanSaver(directory)
    except OSError as error:
        raise ConfigurationError(
            f"cannot use {directory} for --save-spans ({error.strerror or error}); name a directory you can write."
        ) from None


def _report_spans(collector: InMemoryOTLPCollector, out: TextIO, seconds: float | None,
                  saver: SpanSaver | None = None, replayer: CassetteReplayer | None = None) -> None:
    """Print (and with ``saver``, write) each span as it arrives, and each request the fake server refused,
    until Ctrl-C (or ``seconds``); spans past ``--max-spans`` are counted."""
    deadline = None if seconds is None else time.monotonic() + seconds
    shown = 0  # spans received so far, kept or dropped
    refused = 0  # refusals printed so far
    try:
        while deadline is None or time.monotonic() < deadline:
            refused = _print_refusals(replayer, refused, out)
            spans, dropped = collector.spans(), collector.dropped_spans
            arrived = len(spans) + dropped - shown
            for item in spans[len(spans) - min(arrived, len(spans)) :]:
                saved = f"  -> {_save(saver, item.span)}" if saver is not None else ""
                print(f"span  {item.scope.name or '(no scope)'}  {item.span.name}{saved}", file=out, flush=True)
            shown += arrived
            time.sleep(0.2)
    except KeyboardInterrupt:
        pass
    dropped = collector.dropped_spans
    note = f", {dropped} dropped (the oldest, over --max-spans)" if dropped else ""
    print(f"{shown} span(s) received{note}.", file=out)


def _print_refusals(replayer: CassetteReplayer | None, mark: int, out: TextIO) -> int:
    """The refusals since ``mark``, one line each (the gateway itself only saw a 400 or 409); the new mark."""
    if replayer is None:
        return mark
    now = replayer.refusal_count
    for error in replayer.errors_since(mark)[: now - mark]:
        print(f"refused {error.describe()}", file=out, flush=True)
    return now


def _save(saver: SpanSaver, span: Span) -> Path:
    try:
        return saver.save(span)
    except OSError as error:
        raise ConfigurationError(
            f"cannot write a span into {saver.directory} ({error.strerror or error}); free space or choose "
            "another --save-spans directory."
        ) from None


def _conform(args: argparse.Namespace, out: TextIO) -> int:
    return run_conform(args, _settings(args), out)


def _prune(args: argparse.Namespace, out: TextIO) -> int:
    from testopeninference.recorder.locks import directory_lock
    from testopeninference.recorder.manifest import Manifest
    from testopeninference.status import orphaned_goldens

    settings = _settings(args)
    refuse_packaged(settings.spans_dir)
    orphans = orphaned_goldens(settings)
    if args.dry_run or not orphans:  # nothing to change: take no lock, so no spans directory is made
        for path in orphans:
            print(f"would remove  {_shown(path)}", file=out)
    else:
        with directory_lock(settings.spans_dir):
            for path in orphans:
                print(f"removed  {_shown(path)}", file=out)
                path.unlink()
                Manifest(settings.spans_dir).remove(path)
    print(f"{len(orphans)} orphaned golden(s)", file=out)
    return 0


def _shown(path: Path) -> str:
    """A path relative to the working directory when it is below it."""
    try:
        return str(path.resolve().relative_to(Path.cwd()))
    except ValueError:
        return str(path)


def main(argv: Sequence[str] | None = None, out: TextIO | None = None, err: TextIO | None = None) -> int:
    out, err = out or sys.stdout, err or sys.stderr
    args = build_parser().parse_args(argv)
    try:
        with interrupt_on_termination():  # SIGTERM and SIGHUP clean up (containers, proxies) like Ctrl-C
            run: Command = args.run
            return run(args, out)
    except TestOpenInferenceError as error:
        print(f"Error: {error}", file=err)
        return CONFORM_SETUP_FAILED if args.command == "conform" else 1
    except KeyboardInterrupt:
        print("Interrupted.", file=err)
        return 130
    except BrokenPipeError:  # e.g. `testopeninference diff A B | head`: the reader has what it wanted
        _silence_stdout()
        return getattr(args, "exit_status", 0)


def _silence_stdout() -> None:
    """Point stdout at /dev/null, so flushing it at exit raises no second BrokenPipeError."""
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        os.close(devnull)
    except (OSError, ValueError):  # stdout without a file descriptor (a StringIO in tests)
        pass


if __name__ == "__main__":
    sys.exit(main())
