"""The reports of a ``conform`` run: terminal table, JSON, JUnit XML and a self-contained HTML page."""
