"""``hpchub doctor``: checks of a site (``checks.py`` pure, ``run.py`` gathers the facts)."""
