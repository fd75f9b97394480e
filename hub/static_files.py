"""hpchub's static files (the spawn form's script): ``{hub}/hpchub/static/NAME`` serves
``static/NAME`` from the first directory of ``c.JupyterHub.template_paths`` that holds it, so a
site that overrides a template can ship its own script beside it; hpchub's own are in
``templates/static/``. Only plain file names are served (no directories, no dot files)."""

from __future__ import annotations

import os
import re

from tornado import web

STATIC_ROUTE_PREFIX = r"/hpchub/static"
_NAME = r"([A-Za-z0-9][A-Za-z0-9_.-]*\.(?:js|css))"


class TemplateStaticHandler(web.StaticFileHandler):
    """A static file looked up in the hub's template paths, in order."""

    def initialize(self) -> None:  # type: ignore[override]
        super().initialize(path="")

    async def get(self, path: str, include_body: bool = True) -> None:
        if not re.fullmatch(_NAME, path):
            raise web.HTTPError(404)
        for directory in self.settings.get("template_path") or []:
            root = os.path.join(directory, "static")
            if os.path.isfile(os.path.join(root, path)):
                self.root = root
                await super().get(path, include_body)
                return
        raise web.HTTPError(404)


ROUTES = [(rf"{STATIC_ROUTE_PREFIX}/{_NAME}", TemplateStaticHandler)]
