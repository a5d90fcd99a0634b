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
