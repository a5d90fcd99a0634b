from io import StringIO
from pathlib import Path

import pytest

from testopeninference.cli import main
from tests.helpers import CASSETTES


def run(*argv: str) -> tuple[int, str, str]:
    out, err = StringIO(), StringIO()
    code = main(list(argv), out=out, err=err)
    return code, out.getvalue(), err.getvalue()


def test_list_shows_endpoint_golden_status_and_where_it_comes_from(tmp_path: Path, monkeypatch):
    (tmp_path / "chat-basic.json").write_text("{}")
    code, out, _ = run("list", "--spans-dir", str(tmp_path))
    assert code == 0
    assert out.splitlines()[0].split() == ["CASSETTE", "ENDPOINT", "GOLDEN", "FROM", "DESCRIPTION"]
    rows = {line.split()[0]: line.split()[1:4] for line in out.splitlines()[1:]}
    assert rows["chat-basic"] == ["chat", "present", "project"]  # the user's own golden wins
    assert rows["embeddings-basic"] == ["embeddings", "present", "package"]
    assert len(rows) == len(list(CASSETTES.glob("*.yaml")))
    monkeypatch.setenv("TESTOPENINFERENCE_LIBRARY", "false")  # only the user's own goldens
    rows = {line.split()[0]: line.split()[1:4] for line in run("list", "--spans-dir", str(tmp_path))[1].splitlines()[1:]}
    assert rows["embeddings-basic"] == ["embeddings", "missing", "project"]


def test_record_with_nothing_missing_starts_no_proxy(tmp_path: Path):
    (tmp_path / "chat-basic.json").write_text("{}")
    code, out, _ = run("record", "--spans-dir", str(tmp_path), "chat-basic")
    assert code == 0
    assert out.splitlines()[0] == "present   chat-basic"
    assert out.splitlines()[1].startswith("0 recorded, 1 present, ")


def test_invalid_cassette_name_is_one_error_line(tmp_path: Path):
    code, _, err = run("record", "--spans-dir", str(tmp_path), "../secrets")
    assert code == 1
    assert err.startswith("Error: invalid cassette name '../secrets'") and err.count("\n") == 1


def test_usage_errors_exit_2():
    with pytest.raises(SystemExit) as raised:
        run("frobnicate")
    assert raised.value.code == 2


def test_help_everywhere(capsys):
    for argv in (["--help"], ["record", "--help"], ["list", "--help"]):
        with pytest.raises(SystemExit) as raised:
            main(argv)
        assert raised.value.code == 0
    assert "--cassettes-dir" in capsys.readouterr().out


def test_show_prints_the_attributes_as_a_table():
    code, out, _ = run("show", "chat-bad-request")
    assert code == 0
    lines = out.splitlines()
    assert lines[0] == "name    ChatCompletion"
    assert lines[2].startswith("status  STATUS_CODE_ERROR BadRequestError: Error code: 400")
    assert any(line.startswith("llm.invocation_parameters  ") for line in lines)
    assert "event   exception" in lines
    assert all(len(line) <= 110 for line in lines)


def test_diff_exits_1_on_a_difference_and_0_on_a_match(tmp_path: Path):
    from tests.helpers import SPANS

    code, out, _ = run("diff", "chat-basic", str(SPANS / "chat-basic.json"))
    assert (code, out) == (0, "spans match\n")
    code, out, _ = run("diff", str(SPANS / "chat-basic.json"), str(SPANS / "chat-multiturn.json"))
    assert code == 1 and out.rstrip().endswith("difference(s)")
    code, out, _ = run("diff", "chat-basic", str(SPANS / "chat-basic.json"), "--ignore", "llm.*")
    assert code == 0


def test_diff_of_an_unreadable_file_is_an_error(tmp_path: Path):
    broken = tmp_path / "span.json"
    broken.write_text("{")
    code, _, err = run("diff", "chat-basic", str(broken))
    assert code == 1 and err.startswith("Error: ") and "span.json" in err


def test_prune_removes_goldens_without_cassettes(tmp_path: Path):
    from tests.helpers import SPANS

    for name in ("chat-basic.json", "gone-away.json"):
        (tmp_path / name).write_bytes((SPANS / "chat-basic.json").read_bytes())
    code, out, _ = run("prune", "--spans-dir", str(tmp_path), "--dry-run")
    assert code == 0 and "would remove" in out and (tmp_path / "gone-away.json").exists()
    code, out, _ = run("prune", "--spans-dir", str(tmp_path))
    assert out.splitlines()[-1] == "1 orphaned golden(s)"
    assert not (tmp_path / "gone-away.json").exists() and (tmp_path / "chat-basic.json").exists()


def test_serve_prints_addresses_and_the_spans_it_receives():
    code, out, _ = run("serve", "--otlp-port", "0", "--grpc-port", "0", "--seconds", "0.3")
    assert code == 0
    lines = out.splitlines()
    assert lines[0].startswith("fake OpenAI server  http://127.0.0.1:")
    assert lines[1].startswith("OTLP collector      http://127.0.0.1:")
    assert lines[-1] == "0 span(s) received."


def test_list_marks_goldens_of_changed_cassettes_stale(tmp_path: Path):
    import shutil

    from testopeninference.recorder.manifest import Manifest, Provenance

    cassettes, spans = tmp_path / "cassettes", tmp_path / "spans"
    shutil.copytree(CASSETTES, cassettes)
    spans.mkdir()
    (spans / "chat-basic.json").write_text("{}")
    Manifest(spans).update(spans / "chat-basic.json", Provenance("0" * 64, {"openai": "0.0.1"}))
    code, out, _ = run("list", "--cassettes-dir", str(cassettes), "--spans-dir", str(spans))
    lines = out.splitlines()
    index = next(i for i, line in enumerate(lines) if line.startswith("chat-basic "))
    assert lines[index].split()[2] == "stale"
    assert lines[index + 1].strip() == "(its cassette changed)"


def test_prune_keeps_goldens_of_cassettes_whose_name_has_a_dot(tmp_path: Path):
    import shutil

    from tests.helpers import SPANS

    cassettes, spans = tmp_path / "cassettes", tmp_path / "spans"
    cassettes.mkdir()
    shutil.copy(CASSETTES / "chat-basic.yaml", cassettes / "chat.v2.yaml")
    events = spans / "otel-genai-events"
    events.mkdir(parents=True)
    for folder in (spans, events):
        for name in ("chat.v2.json", "chat.json", "gone.v2.json"):
            (folder / name).write_bytes((SPANS / "chat-basic.json").read_bytes())
    (events / "chat.v2.logs.json").write_text("{}")
    (events / "gone.logs.json").write_text("{}")
    (spans / "manifest.yaml").write_text("goldens: {}\nversions: {}\n")
    dirs = ("--cassettes-dir", str(cassettes), "--spans-dir", str(spans))
    code, out, _ = run("prune", *dirs, "--dry-run")
    assert code == 0
    assert out.splitlines() == [f"would remove  {spans / 'chat.json'}", f"would remove  {spans / 'gone.v2.json'}",
                                "2 orphaned golden(s)"]
    code, out, _ = run("prune", *dirs, "--convention", "otel-genai-events")
    assert sorted(p.name for p in events.iterdir()) == ["chat.v2.json", "chat.v2.logs.json"]
    assert sorted(p.name for p in spans.iterdir() if not p.name.startswith(".")) == ["chat.json", "chat.v2.json", "gone.v2.json", "manifest.yaml",
                                                      "otel-genai-events"]
    run("prune", *dirs)
    assert sorted(p.name for p in spans.iterdir() if not p.name.startswith(".")) == ["chat.v2.json", "manifest.yaml", "otel-genai-events"]


def test_show_quotes_strings_and_a_clipped_one_keeps_its_closing_quote():
    code, out, _ = run("show", "chat-tools")
    assert code == 0
    values = {line.split()[0]: line.split(None, 1)[1] for line in out.splitlines()[3:]}
    assert values["llm.system"] == '"openai"'
    assert values["llm.token_count.total"] == "92"
    assert values["input.value"].startswith('"{') and values["input.value"].endswith('..."')


def test_serve_on_a_taken_port_names_it_and_the_option():
    import socket

    with socket.create_server(("127.0.0.1", 0)) as taken:
        port = taken.getsockname()[1]
        code, _, err = run("serve", "--otlp-port", str(port), "--seconds", "0.1")
    assert code == 1
    assert err.strip() == (
        f"Error: cannot listen on 127.0.0.1:{port} (Address already in use); choose other ports (this one with --otlp-port)."
    )


def test_serve_prints_the_grpc_endpoint_unless_no_grpc_turns_it_off():
    code, out, _ = run("serve", "--otlp-port", "0", "--grpc-port", "0", "--seconds", "0.1")
    assert code == 0
    (grpc_line,) = [line for line in out.splitlines() if line.startswith("OTLP/gRPC receiver  http://127.0.0.1:")]
    assert grpc_line.endswith("(the same, with OTEL_EXPORTER_OTLP_PROTOCOL=grpc)")
    code, out, _ = run("serve", "--otlp-port", "0", "--no-grpc", "--seconds", "0.1")
    assert code == 0 and "OTLP/gRPC" not in out


def test_serve_on_a_taken_grpc_port_names_it_and_the_option():
    import socket

    with socket.create_server(("127.0.0.1", 0)) as taken:
        port = taken.getsockname()[1]
        code, _, err = run("serve", "--otlp-port", "0", "--grpc-port", str(port), "--seconds", "0.1")
    assert code == 1
    assert err.strip() == (
        f"Error: cannot listen on 127.0.0.1:{port} (Address already in use); "
        "choose other ports (this one with --grpc-port, or --no-grpc)."
    )


def test_serve_refuses_a_save_spans_path_that_is_a_file(tmp_path: Path):
    (tmp_path / "a-file").write_text("")
    code, _, err = run("serve", "--otlp-port", "0", "--no-grpc", "--save-spans", str(tmp_path / "a-file"),
                       "--seconds", "0.1")
    assert code == 1
    assert err.startswith(f"Error: cannot use {tmp_path / 'a-file'} for --save-spans (")
    assert err.strip().endswith("name a directory you can write.")


def test_version_is_printed(capsys):
    from importlib import metadata

    with pytest.raises(SystemExit) as raised:
        run("--version")
    assert raised.value.code == 0
    assert capsys.readouterr().out.strip() == f"testopeninference {metadata.version('testopeninference')}"


def test_lock_files_stay_out_of_a_committed_spans_directory(tmp_path: Path):
    from testopeninference.recorder.locks import LOCKS_DIR, directory_lock, golden_lock

    with directory_lock(tmp_path), golden_lock(tmp_path, "openinference.chat-basic"):
        pass
    assert [p.name for p in tmp_path.iterdir()] == [LOCKS_DIR]
    assert (tmp_path / LOCKS_DIR / ".gitignore").read_text().splitlines()[-1] == "*"


def test_serve_prints_the_tolerated_body_keys():
    code, out, _ = run("serve", "--otlp-port", "0", "--seconds", "0.1",
                       "--ignore-body-key", "stream", "--ignore-body-key", "tools.*.strict")
    assert code == 0
    assert "tolerated body keys stream, tools.*.strict   (--ignore-body-key)" in out.splitlines()


def test_serve_refuses_a_malformed_body_key():
    code, _, err = run("serve", "--otlp-port", "0", "--seconds", "0.1", "--ignore-body-key", "tools..strict")
    assert code == 1
    assert err.startswith("Error: ignore_body_keys: 'tools..strict' is not a dotted key path")


def test_show_prints_array_attributes_as_json():
    code, out, _ = run("show", "embeddings-mixed-batch")
    assert code == 0
    values = {line.split()[0]: line.split(None, 1)[1] for line in out.splitlines()[3:]}
    assert values["embedding.embeddings.0.embedding.vector"].startswith("[0.010144689, -0.014617318, ")
    code, out, _ = run("show", "chat-basic", "--convention", "openllmetry")
    assert code == 0 and any(line.split() == ["gen_ai.response.finish_reasons", '["stop"]'] for line in out.splitlines())


def _gateway_span(tmp_path: Path) -> Path:
    """chat-basic as a gateway exports it: its own span name, another model, a long output."""
    import json

    from tests.helpers import SPANS

    span = json.loads((SPANS / "chat-basic.json").read_text(encoding="utf-8"))
    span["name"] = "litellm_request"
    for attribute in span["attributes"]:
        if attribute["key"] == "output.value":
            attribute["value"]["stringValue"] = "x" * 300
    path = tmp_path / "gateway.json"
    path.write_text(json.dumps(span), encoding="utf-8")
    return path


def test_diff_gateway_notes_the_name_and_full_or_vv_shows_values_whole(tmp_path: Path):
    actual = str(_gateway_span(tmp_path))
    code, out, _ = run("diff", "chat-basic", actual)
    assert code == 1 and out.splitlines()[0] == "name: expected 'ChatCompletion', got 'litellm_request'"
    assert "x" * 100 not in out
    code, out, _ = run("diff", "chat-basic", actual, "--gateway")
    lines = out.splitlines()
    assert code == 1 and lines[0].startswith("attribute 'output.value': expected '{")
    assert lines[-2:] == ["note: name: expected 'ChatCompletion', got 'litellm_request' (not compared)",
                          "1 difference(s)"]
    for option in ("--full", "-vv"):
        code, out, _ = run("diff", "chat-basic", actual, "--gateway", option)
        assert code == 1 and f"got '{'x' * 300}'" in out, option
    code, out, _ = run("diff", "chat-basic", actual, "--gateway", "-v")
    assert "x" * 100 not in out


def test_send_prints_status_trace_and_reply_and_exits_1_when_the_status_is_not_the_cassettes():
    import json
    import socket

    from testopeninference.kit import FakeOpenAI

    fake = FakeOpenAI(CASSETTES).start()  # answers as a gateway that changes nothing would
    try:
        code, out, _ = run("send", "chat-basic", "--gateway", fake.url, "--header", "X-Tenant: blue")
        assert code == 0, out
        lines = out.splitlines()
        assert lines[0] == "status      200 (the cassette's: 200)"
        trace_id = lines[1].split()[-1]
        assert len(trace_id) == 32 and lines[2] == f"traceparent 00-{trace_id}-{lines[2].split('-')[2]}-01"
        assert json.loads("\n".join(lines[3:]))["object"] == "chat.completion"
        assert fake.requests("chat-basic")[-1].headers["x-tenant"] == "blue"
        code, out, _ = run("send", "chat-basic", "--gateway", fake.url, "--model-prefix", "gw::")
        assert (code, out.splitlines()[0]) == (1, "status      409 (the cassette's: 200)")
    finally:
        fake.stop()
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        closed = f"http://127.0.0.1:{probe.getsockname()[1]}"
    code, _, err = run("send", "chat-basic", "--gateway", closed)
    assert code == 1
    assert err.startswith(f"Error: cassette chat-basic: POST {closed}/v1/chat/completions: the connection to {closed} "
                          "was refused (ConnectError")
    assert err.rstrip().endswith(f"is the gateway running, and listening at {closed}?")
    assert "within" not in err  # a refusal is immediate: no timeout to blame
    code, _, err = run("send", "chat-basic", "--gateway", closed, "--header", "no colon")
    assert (code, err) == (1, "Error: --header 'no colon' is not 'NAME: VALUE'; write e.g. --header 'X-Tenant: blue'.\n")


def test_send_names_the_url_and_the_path_prefix_when_the_gateway_answers_404():
    import http.server
    import threading

    class NotFound(http.server.BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            self.rfile.read(int(self.headers["Content-Length"]))
            body = b'{"detail":"Not Found"}'
            self.send_response(404)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: object) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), NotFound)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    gateway = f"http://127.0.0.1:{server.server_address[1]}"
    try:
        code, out, _ = run("send", "chat-basic", "--gateway", gateway, "--path-prefix", "/v1")
    finally:
        server.shutdown()
        server.server_close()
    assert code == 1
    assert out.splitlines()[:2] == [
        "status      404 (the cassette's: 200)",
        f"sent to     {gateway}/v1/v1/chat/completions: is --path-prefix the gateway's route (e.g. --path-prefix "
        "/openai)?"]


def test_serve_prints_each_refusal_as_it_happens_and_where_tolerated_keys_came_from(tmp_path: Path, monkeypatch):
    import io
    import threading
    import time

    import httpx

    from testopeninference.conform.gateway_process import free_port

    (tmp_path / "pyproject.toml").write_text('[tool.testopeninference]\nignore-body-keys = ["stream"]\n')
    monkeypatch.chdir(tmp_path)
    port = free_port()
    out = io.StringIO()
    serving = threading.Thread(target=main, args=(["serve", "--cassettes-dir", str(CASSETTES), "--openai-port",
                                                   str(port), "--otlp-port", "0", "--no-grpc", "--seconds", "4",
                                                   "--ignore-body-key", "user"],
                                                  out, io.StringIO()), daemon=True)
    serving.start()
    for _ in range(200):  # until it listens, at most about 20 s
        try:
            reply = httpx.post(f"http://127.0.0.1:{port}/v1/chat/completions", headers={"X-Cassette-Name": "chat-basic"},
                               json={"model": "gpt-4o-mini", "temperature": 0.5}, timeout=5)
            break
        except httpx.TransportError:
            time.sleep(0.1)
    assert reply.status_code == 409
    for _ in range(100):
        if "refused POST /v1/chat/completions -> 409" in out.getvalue():
            break
        time.sleep(0.1)
    serving.join(timeout=30)
    text = out.getvalue()
    assert "refused POST /v1/chat/completions -> 409 (cassette chat-basic)" in text, text
    assert ("tolerated body keys stream   ([tool.testopeninference] ignore-body-keys); user   (--ignore-body-key)"
            in text.splitlines()), text


def test_show_says_whether_the_golden_is_present_or_stale_and_why(tmp_path: Path):
    from tests.helpers import SPANS

    code, out, _ = run("show", "chat-basic")
    assert code == 0
    line = out.splitlines()[3]
    assert line.startswith("golden  present  ") and line.endswith("chat-basic.json (package)"), out
    cassettes, spans = tmp_path / "cassettes", tmp_path / "spans"
    cassettes.mkdir()
    spans.mkdir()
    (cassettes / "chat-basic.yaml").write_text((CASSETTES / "chat-basic.yaml").read_text() + "# edited\n")
    for name in ("chat-basic.json", "manifest.yaml"):
        (spans / name).write_bytes((SPANS / name).read_bytes())
    code, out, _ = run("show", "--cassettes-dir", str(cassettes), "--spans-dir", str(spans), "chat-basic")
    assert code == 0
    line = out.splitlines()[3]
    assert line.startswith(f"golden  stale  {spans / 'chat-basic.json'} (project): "), line
    assert "cassette" in line, line


BROKEN_CASSETTES = {
    "chat-broken": b"version: 2\ninteractions:\n  - request:\n      method: POST\n    bad: [\n",
    "chat-latin": b"version: 2\ndescription: caf\xe9\n",
    "chat-nowhere": (CASSETTES / "chat-basic.yaml").read_bytes().replace(b"/v1/chat/completions", b"/v1/nowhere"),
}


def _with_broken_cassettes(tmp_path: Path) -> tuple[str, ...]:
    cassettes = tmp_path / "cassettes"
    cassettes.mkdir(parents=True)
    for name, content in BROKEN_CASSETTES.items():
        (cassettes / f"{name}.yaml").write_bytes(content)
    (tmp_path / "spans").mkdir()
    return "--cassettes-dir", str(cassettes), "--spans-dir", str(tmp_path / "spans")


def test_list_marks_each_broken_cassette_with_its_error_lists_every_other_and_exits_1(tmp_path: Path):
    dirs = _with_broken_cassettes(tmp_path)
    code, out, err = run("list", *dirs)
    assert code == 1 and not err, err
    lines = out.splitlines()
    rows = {line.split()[0]: line.split()[1:4] for line in lines[1:] if not line.startswith(" ")}
    assert len(rows) == len(list(CASSETTES.glob("*.yaml"))) + 3  # every good cassette is listed too
    assert [rows[name] for name in BROKEN_CASSETTES] == [["?", "broken", "project"]] * 3
    index = next(i for i, line in enumerate(lines) if line.startswith("chat-broken "))
    assert lines[index + 1].strip() == (f"({tmp_path / 'cassettes' / 'chat-broken.yaml'}:6: malformed cassette YAML "
                                        "(did not find expected node content); fix or delete the file.)")
    index = next(i for i, line in enumerate(lines) if line.startswith("chat-latin "))
    assert "chat-latin.yaml: not UTF-8 text (byte 27: invalid continuation byte)" in lines[index + 1]
    code, out, _ = run("list", "--coverage", *dirs)
    assert code == 1 and "chat-broken: " in out and "chat-basic " in out


def test_record_all_goes_past_a_broken_cassette_reports_it_failed_and_exits_1(tmp_path: Path):
    code, out, err = run("record", *_with_broken_cassettes(tmp_path))
    assert code == 1 and not err, err
    lines = out.splitlines()
    assert "present   chat-basic" in lines  # every other cassette was looked at (their goldens are packaged)
    assert lines[-4].startswith(f"failed    chat-broken: {tmp_path / 'cassettes' / 'chat-broken.yaml'}:6: malformed")
    assert lines[-3].startswith("failed    chat-latin: ") and "not UTF-8" in lines[-3]
    assert lines[-2].startswith("failed    chat-nowhere: ") and "no known endpoint" in lines[-2]
    assert ", 3 failed (broken cassettes), " in lines[-1]
    code, out, err = run("record", *_with_broken_cassettes(tmp_path / "again"), "chat-basic")
    assert (code, out.splitlines()[0], err) == (0, "present   chat-basic", "")  # a named cassette: only it is read


def test_list_sizes_the_name_column_to_the_longest_name(tmp_path: Path):
    (tmp_path / "cassettes").mkdir()
    long_name = "chat-" + "x" * 45
    (tmp_path / "cassettes" / f"{long_name}.yaml").write_bytes((CASSETTES / "chat-basic.yaml").read_bytes())
    code, out, _ = run("list", "--cassettes-dir", str(tmp_path / "cassettes"), "--spans-dir", str(tmp_path / "s"))
    assert code == 0
    starts = {line.index(" chat ") for line in out.splitlines()[1:] if " chat " in line}
    assert starts == {len(long_name)}  # every row's endpoint in one column
    assert out.splitlines()[0].index("ENDPOINT") == len(long_name) + 1


def test_a_tolerated_key_given_in_two_places_is_credited_to_both():
    from testopeninference.cli import _tolerated_sources

    assert _tolerated_sources(["stream"], ["stream", "user"]) == (
        "stream   ([tool.testopeninference] ignore-body-keys and --ignore-body-key); user   (--ignore-body-key)")
    assert _tolerated_sources([], []) == "none"
