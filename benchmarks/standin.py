"""A minimal single-user server for the scale benchmark (``benchmarks/scale.py``); stdlib only.

200 JupyterLabs do not fit on 2 cores, so each benchmark session runs this instead. It
registers with the hub exactly as ``batchspawner-singleuser`` does, then answers HTTP:

1. it binds a free port on 127.0.0.1 (the address of every node of the cluster in a box);
2. it POSTs ``{"port": N}`` to ``$JUPYTERHUB_API_URL/batchspawner`` with the server's own
   token (``Authorization: token $JUPYTERHUB_API_TOKEN``), which both spawners wait for;
3. it answers 200 (a small JSON body with the time it started, and the ``X-Hpchub-Standin``
   header) to any GET under ``$JUPYTERHUB_SERVICE_PREFIX`` (``/user/NAME/`` or
   ``/user/NAME/SERVER/``), 404 elsewhere.

The job runs it as ``batchspawner-singleuser jupyterhub-singleuser [ARGS]`` (both names are
scripts that exec this file with the system Python); the arguments are ignored. It needs no
package, so every job user can run it, and it stays at about 10 MB of memory.
"""

from __future__ import annotations

import json
import os
import signal
import sys
import time
import urllib.error
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

STANDIN_HEADER = "X-Hpchub-Standin"
STARTED = time.time()  # when the job started this server (the benchmark splits the spawn time with it)
REPORT_ATTEMPTS = 10


class Handler(BaseHTTPRequestHandler):
    prefix = "/"

    def do_GET(self) -> None:  # noqa: N802 (http.server's name)
        if not self.path.startswith(self.prefix.rstrip("/")):
            self.send_error(404)
            return
        body = json.dumps({"version": "standin", "path": self.path, "started": STARTED}).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.send_header(STANDIN_HEADER, "1")
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args) -> None:  # noqa: A002 (http.server's signature)
        pass  # quiet: 200 of these share one host


def report_port(port: int) -> None:
    """batchspawner-singleuser's callback: the hub learns the port from the server's own token."""
    url = os.environ["JUPYTERHUB_API_URL"].rstrip("/") + "/batchspawner"
    request = urllib.request.Request(
        url, data=json.dumps({"port": port}).encode(), method="POST",
        headers={"Authorization": f"token {os.environ['JUPYTERHUB_API_TOKEN']}", "Content-Type": "application/json"},
    )  # fmt: skip
    for attempt in range(REPORT_ATTEMPTS):
        try:
            with urllib.request.urlopen(request, timeout=30) as response:
                response.read()
            return
        except (urllib.error.URLError, OSError) as exc:
            print(f"standin: port report failed ({exc}), attempt {attempt + 1}", file=sys.stderr, flush=True)
            time.sleep(1)
    raise SystemExit("standin: the hub never took the port report")


def main() -> None:
    Handler.prefix = os.environ.get("JUPYTERHUB_SERVICE_PREFIX", "/")
    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    report_port(server.server_address[1])
    print(f"standin: serving {Handler.prefix} on port {server.server_address[1]}", flush=True)
    server.serve_forever()


if __name__ == "__main__":
    main()
