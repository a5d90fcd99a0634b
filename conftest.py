"""Project-wide pytest setup. The testopeninference plugin itself loads through its pytest11 entry point."""

pytest_plugins = ["pytester"]
