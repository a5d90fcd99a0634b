"""``testopeninference conform``: score a gateway against the goldens, in one command.

The arguments (``add_arguments``) and the run (``run_conform``): start the fake
upstream and the collector, start the gateway (``--gateway-cmd``) or wait for
the one running (``--gateway-url``), score the chosen cassettes, apply the
baseline, print the scorecard and write the reports asked for. Exit status: 0
when every cassette matches (or differs only as the baseline accepts), 1
otherwise, ``SETUP_FAILED`` (2) whenever it could not score: every error it
raises (usage, a broken file, a gateway that never gets ready, dies or refuses
connections), so that 1 in CI always means a score.
"""

from __future__ import annotations

import argparse
import contextlib
import functools
import shlex
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, TextIO

from testopeninference.conform.baseline import Baseline, read_baseline, write_baseline
from testopeninference.conform.gateway_process import (DEFAULT_ENV, NO_PORT_HINT, GatewayProcess, fill_command,
                                                         fill_values, free_port, gateway_env, mentions_port,
                                                         read_env_file)
from testopeninference.conform.levels import LEVELS, get_level
from testopeninference.conform.outcomes import CassetteResult, Scorecard
from testopeninference.conform.reports.html import write_html
from testopeninference.conform.reports.json_report import write_json
from testopeninference.conform.reports.junit import write_junit
from testopeninference.conform.reports.terminal import print_scorecard
from testopeninference.errors import ConformUsageError, GatewayProcessError
from testopeninference.recorder.config import Settings
from testopeninference.recorder.layers import cassette_library

UNEXPLAINED_SHOWN = 5  # baseline entries without a reason named in the warning
SETUP_FAILED = 2
"""The exit status of every error ``conform`` raises: it did not score (1 is kept for a cassette that fails)."""
DYING_SECONDS = 1.0  # after a request got no reply: how long the gateway may take to exit, if it is dying

if TYPE_CHECKING:  # the run loads the recorder: imported when run, not for the CLI's argument parser
    from testopeninference.conform.run import ConformRun

EPILOG = """\
placeholders in --gateway-cmd: {openai_base_url} (the fake OpenAI server, with /v1), {fake_base_url}
(the same server without /v1, for Anthropic's and Cohere's base URLs), {otlp_endpoint}
(OTLP/HTTP base URL, as OTEL_EXPORTER_OTLP_ENDPOINT takes it), {otlp_grpc_endpoint} (OTLP/gRPC),
{port} (where the gateway must listen) and {python} (this Python).
the gateway gets, unless --no-default-env: OPENAI_BASE_URL={openai_base_url},
OTEL_EXPORTER_OTLP_ENDPOINT={otlp_endpoint} and OTEL_BSP_SCHEDULE_DELAY=100 (--env-file wins).
-k: terms are substrings of cassette names or endpoints, or fnmatch patterns, joined by and, or, not
and parentheses: -k 'chat and not streaming'.
exit status: 0 every cassette matches (or only baseline differences remain); 1 a cassette does not match
(or is not covered by the baseline); 2 conform could not score: a usage error, an unreadable or broken
cassette, golden or baseline, a gateway that never gets ready, dies or refuses connections."""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.epilog = EPILOG
    parser.formatter_class = argparse.RawDescriptionHelpFormatter
    target = parser.add_mutually_exclusive_group(required=True)
    target.add_argument("--gateway-url", metavar="URL", help="a running gateway (configure it with the printed URLs)")
    target.add_argument("--gateway-cmd", metavar="CMD", help="the command that starts the gateway (see placeholders)")
    parser.add_argument("--env-file", type=Path, metavar="FILE", help="KEY=VALUE lines added to the gateway's env")
    parser.add_argument("--no-default-env", action="store_true", help="do not set OPENAI_BASE_URL, "
                        "OTEL_EXPORTER_OTLP_ENDPOINT and OTEL_BSP_SCHEDULE_DELAY for the gateway (see below)")
    parser.add_argument("--ready-path", metavar="PATH", help="the gateway is ready when GET PATH answers below 500 "
                        "(default: when its port accepts connections)")
    parser.add_argument("--start-timeout", type=float, default=60.0, metavar="S",
                        help="seconds for the gateway to get ready (default 60)")
    parser.add_argument("--no-wait", action="store_true", help="with --gateway-url: start at once, no Enter")
    parser.add_argument("-k", dest="selection", default="", metavar="EXPR", help="cassettes to score (see below)")
    parser.add_argument("--header", action="append", default=[], metavar="'K: V'", help="a header sent (repeatable)")
    parser.add_argument("--path-prefix", default="", metavar="PREFIX", help="before each path: /openai")
    parser.add_argument("--model-prefix", default="", metavar="PREFIX", help="before each model: gw::")
    parser.add_argument("--ignore-body-key", dest="ignore_body_keys", action="append", default=[], metavar="KEY",
                        help="a request body key the gateway may change (repeatable; tools.*.strict); added to "
                        "[tool.testopeninference] ignore-body-keys")
    parser.add_argument("--span-name", default=None, metavar="NAME",
                        help="the gateway's span to compare (default: THE LLM or embedding span of the trace)")
    parser.add_argument("--timeout", type=float, default=10.0, metavar="S",
                        help="seconds to wait for each cassette's span (default 10)")
    parser.add_argument("--level", default="reference", choices=list(LEVELS),
                        help="reference (the golden's rules), subset (added attributes ignored), spec")
    parser.add_argument("--strict-spec", action="store_true", help="with --level spec: count the problems the "
                        "reference goldens have too (default: listed, not counted)")
    parser.add_argument("--json", type=Path, metavar="FILE", help="write the scorecard as JSON")
    parser.add_argument("--junit", type=Path, metavar="FILE", help="write JUnit XML, one test case per cassette")
    parser.add_argument("--html", type=Path, metavar="FILE", help="write a self-contained HTML report")
    parser.add_argument("--baseline", type=Path, metavar="FILE", help="accept the differences this file lists")
    parser.add_argument("--write-baseline", type=Path, metavar="FILE", help="save this run's differences")
    parser.add_argument("--openai-port", type=int, default=0, help="fake OpenAI server port (default: any free one)")
    parser.add_argument("--otlp-port", type=int, default=0, help="OTLP/HTTP collector port (default: any free one)")
    parser.add_argument("--grpc-port", type=int, default=0, help="OTLP/gRPC receiver port (default: any free one)")
    parser.add_argument("-v", "--verbose", action="store_true", help="every difference, values whole")


def parse_headers(values: Sequence[str]) -> dict[str, str]:
    headers = {}
    for value in values:
        name, sep, content = value.partition(":")
        if not sep or not name.strip() or any(c.isspace() for c in name.strip()):
            raise ConformUsageError(f"--header {value!r} is not 'Name: value'; e.g. --header 'Authorization: "
                                    "Bearer sk-test'.")
        headers[name.strip()] = content.strip()
    return headers


def run_conform(args: argparse.Namespace, settings: Settings, out: TextIO) -> int:
    """Score the gateway and report; the exit status."""
    from testopeninference.conform.run import ConformOptions, ConformRun, chosen_cassettes

    level = get_level(args.level)
    if args.path_prefix and not args.path_prefix.startswith("/"):
        raise ConformUsageError(f"--path-prefix {args.path_prefix!r} must start with '/', e.g. /openai.")
    if args.env_file is not None and args.gateway_cmd is None:
        raise ConformUsageError("--env-file is for --gateway-cmd; a running gateway has its environment already.")
    options = ConformOptions(level, parse_headers(args.header), args.path_prefix, args.model_prefix, args.span_name,
                             args.timeout, strict_spec=args.strict_spec)
    baseline = _load_baseline(args, settings, out)
    cassettes = chosen_cassettes(settings, args.selection)
    extra_env = read_env_file(args.env_file) if args.env_file is not None else {}
    with ConformRun(settings, args.ignore_body_keys, openai_port=args.openai_port, otlp_port=args.otlp_port,
                    grpc_port=args.grpc_port) as run, contextlib.ExitStack() as stack:
        output = None
        check: Callable[[], None]
        if args.gateway_cmd is not None:
            process = stack.enter_context(_gateway_process(args, run, extra_env, out))
            url, output = process.url, process.output
            check = functools.partial(process.check_alive, wait=DYING_SECONDS)
        else:
            url, check = args.gateway_url.rstrip("/"), _nothing
            _announce(run, out)
            _wait_for_gateway(args, url, out)
        print(f"scoring {len(cassettes)} cassette(s) through {url} ...", file=out, flush=True)
        started = time.monotonic()
        results = run.score(url, cassettes, options, check, output=output)
        seconds = time.monotonic() - started
    return _report(args, settings, results, seconds, url, baseline, out)


def _gateway_process(args: argparse.Namespace, run: ConformRun, extra_env: dict[str, str],
                     out: TextIO) -> GatewayProcess:
    """The gateway of ``--gateway-cmd``, not started; says what it runs with, and warns when it has no {port}."""
    port = free_port()
    values = run.placeholders(port)
    hint = "" if mentions_port(args.gateway_cmd, extra_env) else NO_PORT_HINT.format(number=port)
    process = GatewayProcess(fill_command(args.gateway_cmd, values), port,
                             gateway_env(extra_env, values, defaults=not args.no_default_env),
                             ready_path=args.ready_path, start_timeout=args.start_timeout, not_ready_hint=hint)
    print(f"starting the gateway: {shlex.join(process.arguments)}", file=out)
    if not args.no_default_env:
        given = fill_values({key: value for key, value in DEFAULT_ENV.items() if key not in extra_env}, values)
        print(f"  with {' '.join(f'{key}={value}' for key, value in given.items())} (--no-default-env leaves "
              "them out)", file=out)
    if hint:
        print(f"warning: {hint}.", file=out)
    out.flush()
    return process


def _nothing() -> None:
    pass


def _report(args: argparse.Namespace, settings: Settings, results: list[CassetteResult], seconds: float,
            gateway: str, baseline: Baseline | None, out: TextIO) -> int:
    stale: tuple[str, ...] = ()
    unscored: tuple[str, ...] = ()
    if baseline is not None:
        results = baseline.apply(results)
        stale = tuple(entry.describe() for entry in baseline.stale(results))
        unscored = tuple(baseline.unscored(results, cassette_library(settings)))
    card = Scorecard(tuple(results), settings.convention, args.level, args.gateway_cmd or gateway, seconds,
                     str(baseline.path) if baseline is not None else None, stale, unscored)
    print_scorecard(card, out, verbose=args.verbose)
    writers: tuple[tuple[Path | None, Callable[[Path, Scorecard], None], str], ...] = (
        (args.json, write_json, "JSON"), (args.junit, write_junit, "JUnit XML"), (args.html, write_html, "HTML report"))
    for path, write, what in writers:
        if path is not None:
            _write(path, card, write, what)
            print(f"wrote {what} {path}", file=out)
    if args.write_baseline is not None:
        unexplained = write_baseline(args.write_baseline, results, settings.convention)
        print(f"wrote baseline {args.write_baseline}" + (f" ({unexplained} entries without a reason: fill them in)"
                                                          if unexplained else ""), file=out)
    return card.exit_status


def _load_baseline(args: argparse.Namespace, settings: Settings, out: TextIO) -> Baseline | None:
    """``--baseline``, checked against the run's convention; entries without a reason are listed."""
    if args.baseline is None:
        return None
    baseline = read_baseline(args.baseline)
    baseline.check_convention(settings.convention)
    unexplained = baseline.unexplained()
    if unexplained:
        shown = ", ".join(entry.describe() for entry in unexplained[:UNEXPLAINED_SHOWN])
        more = f" and {len(unexplained) - UNEXPLAINED_SHOWN} more" if len(unexplained) > UNEXPLAINED_SHOWN else ""
        print(f"warning: {len(unexplained)} baseline entr{'y' if len(unexplained) == 1 else 'ies'} without a "
              f"reason (say why each difference is accepted): {shown}{more}", file=out)
    return baseline


def _write(path: Path, card: Scorecard, write: Callable[[Path, Scorecard], None], what: str) -> None:
    try:
        write(path, card)
    except OSError as error:
        raise ConformUsageError(f"cannot write the {what} {path} ({error.strerror or error}); choose a file "
                                "you can write.") from None


def _announce(run: ConformRun, out: TextIO) -> None:
    print("Configure the gateway with:", file=out)
    print(f"  OpenAI base URL          {run.openai_base_url}   (OPENAI_BASE_URL)", file=out)
    print(f"  Anthropic, Cohere URL    {run.openai_base_url.removesuffix('/v1')}   (ANTHROPIC_BASE_URL, CO_API_URL)",
          file=out)
    print(f"  OTLP/HTTP endpoint       {run.collector.endpoint}   (OTEL_EXPORTER_OTLP_ENDPOINT)", file=out)
    print(f"  OTLP/gRPC endpoint       {run.collector.grpc_endpoint}   (the same, with "
          "OTEL_EXPORTER_OTLP_PROTOCOL=grpc)", file=out, flush=True)


def _wait_for_gateway(args: argparse.Namespace, url: str, out: TextIO) -> None:
    """--no-wait: go; --ready-path: probe until ready; else wait for Enter (or the end of standard input)."""
    if args.no_wait:
        return
    if args.ready_path is None:
        print("Press Enter when the gateway is configured and running.", file=out, flush=True)
        sys.stdin.readline()
        return
    import httpx  # here: every command's parser imports this module, few wait for a gateway

    deadline = time.monotonic() + args.start_timeout
    while time.monotonic() < deadline:
        try:
            if httpx.get(url + args.ready_path, timeout=1.0).status_code < 500:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.2)
    raise GatewayProcessError(f"the gateway at {url} did not answer GET {args.ready_path} below 500 within "
                              f"{args.start_timeout:g} s; is it running, configured with the URLs above?")
