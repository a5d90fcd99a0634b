"""The proxy's environment is an allow-list: no secret of the recording machine reaches it."""

from __future__ import annotations

from testopeninference.recorder.backends.environment import proxy_environment

SECRETS = {
    "ANTHROPIC_API_KEY": "sk-ant-secret",
    "AWS_SECRET_ACCESS_KEY": "aws-secret",
    "AWS_SESSION_TOKEN": "aws-token",
    "AZURE_CLIENT_SECRET": "azure-secret",
    "GITHUB_TOKEN": "ghp_secret",
    "OPENAI_API_KEY": "sk-proj-secret",
    "OTEL_EXPORTER_OTLP_HEADERS": "authorization=Bearer secret",
    "DATABASE_URL": "postgres://user:secret@db/x",
}
NEEDED = {"PATH": "/usr/bin", "HOME": "/home/me", "LANG": "C.UTF-8", "LC_ALL": "C.UTF-8", "TZ": "UTC",
          "TMPDIR": "/tmp", "VIRTUAL_ENV": "/venv", "PYTHONPATH": "/src"}


def test_only_allow_listed_variables_and_the_recorders_own_pass():
    env = proxy_environment({"OPENAI_API_KEY": "placeholder"}, {**SECRETS, **NEEDED})
    assert env == {**NEEDED, "OPENAI_API_KEY": "placeholder", "PYTHONUNBUFFERED": "1"}


def test_a_container_inherits_nothing_from_this_machine():
    assert proxy_environment({"OTEL_SERVICE_NAME": "x"}) == {"OTEL_SERVICE_NAME": "x", "PYTHONUNBUFFERED": "1"}
