"""Instrumentation conventions: which instrumentation the proxy installs and where its goldens live.

A convention names the proxy's ``--convention``, the instrumentation scope
whose span is the golden (frameworks such as FastAPI emit spans of their own,
so the golden is picked by scope, never by position), and the golden's path.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

from testopeninference.errors import ConfigurationError


@dataclasses.dataclass(frozen=True)
class Convention:
    name: str
    scope_name: str
    packages: tuple[str, ...]  # the pinned packages that shape its spans (recorded in the manifest)
    spans_subdir: str = ""  # "" keeps goldens directly in spans/

    def span_path(self, spans_dir: Path, cassette: str) -> Path:
        return Path(spans_dir) / self.spans_subdir / f"{cassette}.json"


OPENTELEMETRY_SDK = (
    "opentelemetry-api",
    "opentelemetry-sdk",
    "opentelemetry-semantic-conventions",
    "opentelemetry-instrumentation",
    "opentelemetry-exporter-otlp-proto-http",
    "opentelemetry-exporter-otlp-proto-common",
    "opentelemetry-proto",
    "protobuf",
)

OPENINFERENCE = Convention(
    name="openinference",
    scope_name="openinference.instrumentation.openai",
    packages=(
        "openai",
        "openinference-instrumentation-openai",
        "openinference-instrumentation",
        "openinference-semantic-conventions",
        *OPENTELEMETRY_SDK,
        "pydantic",
        "httpx",
    ),
)

CONVENTIONS: dict[str, Convention] = {OPENINFERENCE.name: OPENINFERENCE}


def get_convention(name: str) -> Convention:
    try:
        return CONVENTIONS[name]
    except KeyError:
        valid = ", ".join(sorted(CONVENTIONS))
        raise ConfigurationError(f"unknown convention {name!r}; use one of: {valid}.") from None
