"""One error hierarchy, in ``testopeninference.errors``, and each "what to do" written once (issue 13)."""

from __future__ import annotations

import importlib
import inspect
import pkgutil
import re

import testopeninference
from testopeninference import errors, recorder
from tests.helpers import PROJECT


def _package_modules() -> list[str]:
    """Every module of the package; the recorder is walked on its own (an editable install maps it elsewhere)."""
    names = [info.name for package in (testopeninference, recorder)
             for info in pkgutil.walk_packages(package.__path__, package.__name__ + ".")]
    data = ("testopeninference.proxy", "testopeninference.cassettes", "testopeninference.spans")  # no error classes
    return sorted(name for name in names if not name.startswith(data) and not name.endswith(".__main__"))


def _exception_classes(module_name: str) -> list[type[BaseException]]:
    module = importlib.import_module(module_name)
    return [member for _, member in inspect.getmembers(module, inspect.isclass)
            if issubclass(member, BaseException) and member.__module__ == module_name]


def test_public_exception_classes_are_defined_only_in_errors() -> None:
    """Outside errors.py only private control-flow signals that never leave their module (``_Problem``)."""
    elsewhere = [f"{cls.__module__}.{cls.__name__}" for name in _package_modules() if name != "testopeninference.errors"
                 for cls in _exception_classes(name) if not cls.__name__.startswith("_")]
    assert elsewhere == []


def test_every_error_is_rooted_in_one_type_and_drawn_in_the_tree() -> None:
    classes = _exception_classes("testopeninference.errors")
    assert [cls.__name__ for cls in classes if not issubclass(cls, errors.TestOpenInferenceError)] == []
    tree = errors.__doc__ or ""
    assert [cls.__name__ for cls in classes if not re.search(rf"(── |^    ){cls.__name__}\b", tree, re.M)] == []


def test_moved_errors_keep_their_old_import_paths_and_behaviour() -> None:
    from testopeninference.recorder.safe_yaml import AliasRefusedError
    from testopeninference.trace_context import TracePropagationError
    import yaml

    assert AliasRefusedError is errors.AliasRefusedError and issubclass(AliasRefusedError, yaml.YAMLError)
    assert issubclass(TracePropagationError, errors.SpanMismatchError)
    assert issubclass(errors.BodyMismatchError, AssertionError)
    assert errors.RequestError(413, "too big").status == 413


def test_the_record_and_reinstall_advice_is_written_once() -> None:
    """The command lines of the advice are spelled in errors.py only; every message builds them from there."""
    sources = [*(PROJECT / "testopeninference").rglob("*.py"), *(PROJECT / "recorder").rglob("*.py")]
    spelled = {phrase: sorted(path.relative_to(PROJECT).as_posix() for path in sources
                              if phrase in path.read_text(encoding="utf-8"))
               for phrase in ("record --force", "pip install --force-reinstall", "pytest --record-spans")}
    assert spelled == {phrase: ["testopeninference/errors.py"] for phrase in spelled}


def test_the_advice_reads_as_before() -> None:
    assert errors.record_command("chat-basic") == "testopeninference record --force chat-basic"
    assert errors.record_command() == "testopeninference record --force"
    assert errors.record_command("chat-basic", force=False, options=" --convention otel-genai") == (
        "testopeninference record --convention otel-genai chat-basic")
    assert errors.repair_hint("chat-basic", packaged=False) == (
        "delete it and record it again (testopeninference record --force chat-basic, or pytest --record-spans)")
    assert errors.repair_hint("chat-basic", packaged=True) == errors.REINSTALL_HINT
