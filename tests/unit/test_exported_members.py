import subprocess
import sys

import testopeninference


def test_every_exported_name_exists():
    for name in testopeninference.__all__:
        assert getattr(testopeninference, name) is not None, name


def test_dir_lists_the_public_api():
    assert set(testopeninference.__all__) <= set(dir(testopeninference))


def test_unknown_attribute_raises():
    import pytest

    with pytest.raises(AttributeError):
        testopeninference.no_such_thing  # noqa: B018


def test_each_module_imports_on_its_own_in_a_fresh_interpreter():
    modules = ["testopeninference.recorder.config", "testopeninference.recorder.session", "testopeninference.recorder.cassette", "testopeninference.goldens",
               "testopeninference.cli", "testopeninference"]
    for module in modules:
        subprocess.run([sys.executable, "-c", f"import {module}"], check=True, timeout=60)
