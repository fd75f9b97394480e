"""The project page, the admin page's project overview and their chart, see docs/pages.md.

- ``burndown``: the burn-down chart's data from grants and charges (pure).
- ``tables``: the pages' rows, the admin page's sorting (pure).
- ``chart``: the chart as inline SVG, drawn by matplotlib in a worker thread, cached briefly.
- ``gather``: what a page shows, read from the ledger with the API's visibility rules (no framework).
- ``handlers``: the JupyterHub page handlers and their routes; ``settings``: ``HPCHubPages``.
"""
