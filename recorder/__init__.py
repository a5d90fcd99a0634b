"""The recorder: replays cassettes through an instrumented proxy and writes golden spans.

Data flow: ``cassette`` -> ``fake_openai`` (replays it) <- ``openai_proxy.py``
(OpenAI SDK + instrumentation, run by a ``backends`` entry) -> ``collector``
(OTLP/HTTP) -> ``span_file`` (normalised protojson in ``spans/``).
``SpanRecorder`` in ``recorder.session`` wires them together.

Kept free of imports so that ``import recorder.x`` loads only what it names.
"""
