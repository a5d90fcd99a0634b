"""Build hook: of the repository's top-level modules, only the proxy's (``PROXY_MODULES``) go into the wheel.

``pyproject.toml`` maps the top level to ``testopeninference.proxy`` so that the
proxy, ``requirements.txt`` and the ``Dockerfile`` ship together; this keeps
``conftest.py`` (and any other top-level module) out of it.
"""

from setuptools import setup
from setuptools.command.build_py import build_py

PROXY_PACKAGE = "testopeninference.proxy"
PROXY_MODULES = {"openai_proxy", "anthropic_proxy", "cohere_proxy"}  # the proxy and its providers


class BuildPy(build_py):
    def find_package_modules(self, package, package_dir):
        modules = super().find_package_modules(package, package_dir)
        if package == PROXY_PACKAGE:
            modules = [entry for entry in modules if entry[1] in PROXY_MODULES]
        return modules


setup(cmdclass={"build_py": BuildPy})
