"""Stack traces in goldens read the same whichever machine and Python 3.10-3.13 recorded them."""

from __future__ import annotations

from testopeninference.recorder.volatile import stable_stacktrace

FRAMES = (
    '  File "{root}/site-packages/openai/resources/chat/completions/completions.py", line 3414, in create\n'
    "    return await self._post(\n"
    "{detail}"
    '  File "{root}/site-packages/openai/_base_client.py", line 1870, in request\n'
    "    raise self._make_status_error_from_response(err.response) from None\n"
)
EXCEPTION = "openai.BadRequestError: Error code: 400 - {'error': {'message': 'bad'}}\n"
# What each Python prints below a multi-line call: nothing (3.10), carets (3.11, 3.12), an elision (3.13).
DETAILS = {
    "3.10": "",
    "3.11": "           ^^^^^^^^^^^^^^^^^\n",
    "3.13": "        ...<55 lines>...\n    )\n    ^\n",
}


def traceback(python: str, root: str) -> str:
    return "Traceback (most recent call last):\n" + FRAMES.format(root=root, detail=DETAILS[python]) + EXCEPTION


def test_every_python_and_machine_gives_the_same_text():
    texts = {stable_stacktrace(traceback(python, root)) for python in DETAILS
             for root in ("/usr/lib/python3/dist-packages/..", "/home/me/.venv/lib/python3.13", "C:\\\\venv\\\\Lib")}
    assert texts == {
        "Traceback (most recent call last):\n"
        '  File "site-packages/openai/resources/chat/completions/completions.py", line 3414, in create\n'
        "    return await self._post(\n"
        '  File "site-packages/openai/_base_client.py", line 1870, in request\n'
        "    raise self._make_status_error_from_response(err.response) from None\n" + EXCEPTION
    }


def test_standard_library_frames_lose_the_python_version():
    text = '  File "/usr/lib/python3.12/asyncio/tasks.py", line 3, in run\n    x()\n'
    assert stable_stacktrace(text) == '  File "stdlib/asyncio/tasks.py", line 3, in run\n    x()\n'


def test_indented_exception_lines_after_the_frames_are_kept():
    text = traceback("3.10", "/v") + "  more detail\n    and more\n"
    assert stable_stacktrace(text).endswith(EXCEPTION + "  more detail\n    and more\n")


def test_object_addresses_are_masked_like_ports():
    from testopeninference.recorder.volatile import stable_text

    text = "<openai._legacy_response.HttpxBinaryResponseContent object at 0x7f3d7af5ca90> via 127.0.0.1:43121"
    assert stable_text(text) == "<openai._legacy_response.HttpxBinaryResponseContent object at 0x<address>> via 127.0.0.1:<port>"
