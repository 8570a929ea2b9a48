"""nginx run for real in front of the test server (nginx must be installed)."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
from pathlib import Path

import pytest

from tests.conftest import wait_for

NGINX = shutil.which("nginx") or "/usr/sbin/nginx"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Nginx:
    """nginx in its own folder, with config (server blocks and the like) inside
    its http block, listening on port."""

    def __init__(self, *, folder: Path, config: str, port: int) -> None:
        if not Path(NGINX).exists():
            pytest.fail("This test runs nginx: install it (apt-get install nginx).")
        self.folder, self.port = folder, port
        self.url = f"http://127.0.0.1:{port}"
        for name in ("body", "proxy", "fastcgi", "uwsgi", "scgi"):
            (folder / name).mkdir()
        # Run as root (CI), nginx's workers would be "nobody", who may not read
        # pytest's private temporary folders.
        user = "user root;" if os.geteuid() == 0 else ""
        (folder / "nginx.conf").write_text(
            f"""
            {user}
            pid {folder}/nginx.pid;
            error_log {folder}/error.log;
            events {{}}
            http {{
                access_log {folder}/access.log;
                include /etc/nginx/mime.types;
                default_type application/octet-stream;
                client_body_temp_path {folder}/body;
                proxy_temp_path {folder}/proxy;
                fastcgi_temp_path {folder}/fastcgi;
                uwsgi_temp_path {folder}/uwsgi;
                scgi_temp_path {folder}/scgi;
                {config}
            }}
            """
        )
        self.proc = subprocess.Popen(
            [NGINX, "-p", str(folder), "-c", str(folder / "nginx.conf"),
             "-g", "daemon off;"],
            stderr=subprocess.PIPE,
        )  # fmt: skip

    def wait(self) -> None:
        def answers() -> bool:
            assert self.proc.poll() is None, self.proc.stderr.read().decode()
            with socket.socket() as s:
                return s.connect_ex(("127.0.0.1", self.port)) == 0

        wait_for(answers, timeout=10, message="nginx")

    def stop(self) -> None:
        self.proc.terminate()
        self.proc.wait(timeout=10)
