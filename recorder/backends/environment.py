"""The proxy's environment: an allow-list, so no secret of the recording machine reaches it.

A deny-list (strip ``OPENAI_*``, ...) lets every other secret through
(``ANTHROPIC_API_KEY``, ``AWS_SECRET_ACCESS_KEY``, ``AZURE_CLIENT_SECRET``, ...).
The proxy gets only what a Python process needs to run, plus exactly what the
recorder sets (upstream, placeholder keys, OTLP endpoint).
"""

from __future__ import annotations

from typing import Mapping

# What any process needs (locale, home, temp files), and the Windows basics Python cannot start without.
INHERITED_NAMES = frozenset(
    {
        "PATH", "HOME", "USER", "LOGNAME", "LANG", "LANGUAGE", "TZ", "TMPDIR", "TEMP", "TMP",
        "SYSTEMROOT", "SYSTEMDRIVE", "WINDIR", "COMSPEC", "PATHEXT", "USERPROFILE", "APPDATA", "LOCALAPPDATA",
        # How this interpreter runs: its virtual environment and module search path.
        "VIRTUAL_ENV", "PYTHONPATH", "PYTHONHOME", "PYTHONNOUSERSITE", "PYTHONSAFEPATH", "PYTHONUTF8",
        "PYTHONIOENCODING", "PYTHONDONTWRITEBYTECODE", "PYTHONWARNINGS", "PYTHONHASHSEED",
    }
)
INHERITED_PREFIXES = ("LC_",)
ALWAYS = {"PYTHONUNBUFFERED": "1"}  # the proxy's output reaches error messages as it is written


def inherited(environ: Mapping[str, str]) -> dict[str, str]:
    """The allow-listed part of ``environ``."""
    return {k: v for k, v in environ.items() if k.upper() in INHERITED_NAMES or k.upper().startswith(INHERITED_PREFIXES)}


def proxy_environment(explicit: Mapping[str, str], environ: Mapping[str, str] | None = None) -> dict[str, str]:
    """The allow-listed part of ``environ`` (none for a container: the image has its own), plus ``explicit``."""
    env = inherited(environ) if environ is not None else {}
    env.update(explicit)
    env.update(ALWAYS)
    return env


PLACEHOLDER_API_KEY = "testopeninference-placeholder-key"
"""Given to the proxy's SDK clients: the fake server never checks it, and no real key is ever passed."""


def recording_environment(fake_base_url: str, otlp_endpoint: str) -> dict[str, str]:
    """What the recorder sets for a proxy: the fake server as every provider's upstream, the collector for its spans."""
    return {
        "OPENAI_BASE_URL": f"{fake_base_url}/v1",
        "OPENAI_API_KEY": PLACEHOLDER_API_KEY,
        "AZURE_OPENAI_ENDPOINT": fake_base_url,
        "AZURE_OPENAI_API_KEY": PLACEHOLDER_API_KEY,
        # Every provider's SDK talks to the same fake server; their keys stay unset (the proxy then sends
        # "unused"), so the names of real secrets never reach the proxy.
        "ANTHROPIC_BASE_URL": fake_base_url,
        "CO_API_URL": fake_base_url,
        "OTEL_EXPORTER_OTLP_ENDPOINT": otlp_endpoint,
        "OTEL_EXPORTER_OTLP_PROTOCOL": "http/protobuf",
        "OTEL_SERVICE_NAME": "testopeninference-proxy",
        "OTEL_BSP_SCHEDULE_DELAY": "10",  # ms: export each span right away, not after 5 s
    }
