"""The scorecard as plain text: one row per cassette, then the tally per attribute key."""

from __future__ import annotations

from typing import TextIO

from testopeninference.conform.outcomes import COMPARED, CassetteResult, Outcome, Scorecard, outcome_counts

TOP_DIFFERENCES = 3
WIDTH = 110


def print_scorecard(card: Scorecard, out: TextIO, *, verbose: bool = False) -> None:
    """The table of cassettes, the per-key tally, the stale baseline entries and a summary line."""
    name_width = max([8, *(len(r.cassette) for r in card.results)])
    print(f"{'CASSETTE':{name_width}}  {'OUTCOME':14}  TOP DIFFERENCES", file=out)
    for result in card.results:
        lines = _shown_lines(result, verbose)
        outcome = result.outcome.value + ("*" if result.accepted and result.passed else "")
        first = lines[0] if lines else ""
        print(_clip(f"{result.cassette:{name_width}}  {outcome:14}  {first}", verbose).rstrip(), file=out)
        for line in lines[1:]:
            print(_clip(f"{'':{name_width}}  {'':14}  {line}", verbose), file=out)
    if any(r.accepted for r in card.results):
        print("(* only differences the baseline accepts)", file=out)
    if card.tallies:
        print("", file=out)
        key_width = max([9, *(len(t.key) for t in card.tallies)])
        print(f"{'ATTRIBUTE':{key_width}}  CASSETTES  MISSING  UNEXPECTED  DIFFERENT  INVALID", file=out)
        for tally in card.tallies:
            print(f"{tally.key:{key_width}}  {tally.total:9}  {tally.missing:7}  {tally.unexpected:10}  "
                  f"{tally.different:9}  {tally.invalid:7}", file=out)
    _print_shared(card, out)
    for entry in card.stale:
        print(f"baseline entry no longer occurs (remove it): {entry}", file=out)
    for line in card.unscored:
        print(line, file=out)
    print("", file=out)
    print(summary_line(card), file=out)


def _print_shared(card: Scorecard, out: TextIO) -> None:
    """The spec problems the reference goldens have too, with how many cassettes: not counted."""
    counts: dict[str, int] = {}
    for result in card.results:
        for problem in result.shared:
            counts[problem] = counts.get(problem, 0) + 1
    if counts:
        print("", file=out)
        print("problems the reference goldens have too (not counted; --strict-spec counts them):", file=out)
        for problem, count in sorted(counts.items(), key=lambda item: (-item[1], item[0])):
            print(_clip(f"  {problem}  ({count} cassette(s))", False), file=out)


def summary_line(card: Scorecard) -> str:
    counts = outcome_counts(card.results)
    parts = [f"{count} {outcome.value}" for outcome, count in counts.items() if count]
    passed = sum(1 for r in card.results if r.passed)
    baseline = f"; baseline {card.baseline}: {passed} of {len(card.results)} pass" if card.baseline else ""
    stale = f", {len(card.stale)} stale entr{'y' if len(card.stale) == 1 else 'ies'}" if card.stale else ""
    return (f"{len(card.results)} cassette(s) scored against the {card.convention} goldens (level {card.level}) "
            f"in {card.seconds:.1f} s: {', '.join(parts)}{baseline}{stale}.")


def _shown_lines(result: CassetteResult, verbose: bool) -> list[str]:
    """The failing differences (all with ``verbose``, else the first few); a whole-cassette outcome's detail."""
    if result.outcome is Outcome.MATCH:
        return []
    if result.outcome not in COMPARED:
        detail = result.detail.splitlines()
        return detail if verbose else detail[:TOP_DIFFERENCES]
    lines = [found.line for found in result.failing]
    if not verbose and len(lines) > TOP_DIFFERENCES:
        lines = [*lines[:TOP_DIFFERENCES], f"(and {len(lines) - TOP_DIFFERENCES} more: --json or -v)"]
    return lines


def _clip(text: str, verbose: bool) -> str:
    return text if verbose or len(text) <= WIDTH else text[: WIDTH - 3] + "..."
