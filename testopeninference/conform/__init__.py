"""``testopeninference conform``: score any gateway's spans against the goldens, cassette by cassette.

``command`` (the CLI), ``run`` (drive the gateway), ``gateway_process`` (start
and stop it), ``selection`` (``-k``), ``levels``, ``outcomes``, ``baseline``
and ``reports``.
"""
