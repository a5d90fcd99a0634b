"""The ``testopeninference`` command: record and list golden spans.

Our errors print ``Error: <message>`` and exit 1; usage errors exit 2.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Sequence, TextIO

from recorder.cassette import CassetteLibrary
from recorder.config import Settings
from recorder.conventions import get_convention
from recorder.session import SpanRecorder
from testopeninference.catalogue import endpoint_of
from testopeninference.errors import ConfigurationError, TestOpenInferenceError


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="testopeninference", description="Golden OpenInference spans for AI gateways.")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    record = commands.add_parser("record", help="record missing golden spans", description="Record missing golden spans.")
    _add_dirs(record)
    record.add_argument("names", nargs="*", metavar="NAME", help="cassettes to record (default: all)")
    record.add_argument("--force", action="store_true", help="re-record goldens that already exist")
    record.add_argument("--backend", default=None, help="proxy backend (default: local, or RECORD_BACKEND)")
    record.add_argument(
        "--allow-version-mismatch",
        action="store_true",
        default=None,
        help="record even when installed packages differ from requirements.txt",
    )
    record.set_defaults(run=_record)

    new = commands.add_parser(
        "new",
        help="record a new cassette from the live API, and its golden",
        description="Send a request through the instrumented proxy to the live API (OPENAI_API_KEY, OPENAI_BASE_URL "
        "or the AZURE_OPENAI_* settings), save the scrubbed exchange as cassettes/NAME.yaml and record its golden.",
    )
    _add_dirs(new)
    new.add_argument("name", metavar="NAME", help="cassette name, e.g. chat-my-shape")
    new.add_argument("--path", default="/v1/chat/completions", help="API path (default /v1/chat/completions)")
    new.add_argument("--body", required=True, help="JSON request body: a file, or - for standard input")
    new.add_argument("--description", default="", help="one line: the request shape it exercises")
    new.set_defaults(run=_new)

    listing = commands.add_parser("list", help="list cassettes and their goldens", description="List cassettes.")
    _add_dirs(listing)
    listing.set_defaults(run=_list)
    return parser


def _add_dirs(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--cassettes-dir", type=Path, default=None, help="cassettes directory")
    parser.add_argument("--spans-dir", type=Path, default=None, help="golden spans directory")


def _settings(args: argparse.Namespace) -> Settings:
    return Settings.from_env(
        cassettes_dir=args.cassettes_dir,
        spans_dir=args.spans_dir,
        backend=getattr(args, "backend", None),
        allow_version_mismatch=getattr(args, "allow_version_mismatch", None),
    )


def _record(args: argparse.Namespace, out: TextIO) -> int:
    started = time.monotonic()
    settings = _settings(args)
    library = CassetteLibrary(settings.cassettes_dir)
    names = args.names or library.names()
    for name in names:
        library.load(name)  # fail on an unknown or broken cassette before starting anything
    convention = get_convention(settings.convention)
    todo = [n for n in names if args.force or not convention.span_path(settings.spans_dir, n).exists()]
    recorded = 0
    for name in names:
        if name not in todo:
            print(f"present   {name}", file=out)
    if todo:
        with SpanRecorder(settings) as recorder:
            print(f"backend   {recorder.backend_name}", file=out, flush=True)
            for name in todo:
                result = recorder.record(name, force=args.force)
                recorded += 1
                print(f"recorded  {name} -> {_shown(result.path)} ({result.seconds:.2f} s)", file=out, flush=True)
    elapsed = time.monotonic() - started
    print(f"{recorded} recorded, {len(names) - recorded} present, {elapsed:.2f} s in total", file=out)
    return 0


def _new(args: argparse.Namespace, out: TextIO) -> int:
    body = sys.stdin.read() if args.body == "-" else Path(args.body).read_text(encoding="utf-8")
    try:
        json.loads(body)
    except ValueError as error:
        raise ConfigurationError(f"--body is not JSON ({error}); give the request body the SDK call takes.") from None
    settings = _settings(args)
    with SpanRecorder(settings) as recorder:
        result = recorder.record_new(args.name, args.path, body, args.description)
    print(f"recorded  {_shown(recorder.library.path(args.name))}", file=out)
    print(f"recorded  {_shown(result.path)}", file=out)
    return 0


def _shown(path: Path) -> str:
    """A path relative to the working directory when it is below it."""
    try:
        return str(path.resolve().relative_to(Path.cwd()))
    except ValueError:
        return str(path)


def _list(args: argparse.Namespace, out: TextIO) -> int:
    settings = _settings(args)
    library = CassetteLibrary(settings.cassettes_dir)
    convention = get_convention(settings.convention)
    for name in library.names():
        cassette = library.load(name)
        status = "present" if convention.span_path(settings.spans_dir, name).exists() else "missing"
        print(f"{name:36} {endpoint_of(cassette).value:13} {status:8} {cassette.description}".rstrip(), file=out)
    return 0


def main(argv: Sequence[str] | None = None, out: TextIO | None = None, err: TextIO | None = None) -> int:
    out, err = out or sys.stdout, err or sys.stderr
    args = build_parser().parse_args(argv)
    try:
        return args.run(args, out)
    except TestOpenInferenceError as error:
        print(f"Error: {error}", file=err)
        return 1
    except KeyboardInterrupt:
        print("Interrupted.", file=err)
        return 130
    except BrokenPipeError:  # e.g. `testopeninference list | head`
        return 0


if __name__ == "__main__":
    sys.exit(main())
