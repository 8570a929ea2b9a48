import os
import signal
import socket
import subprocess
import sys
import time

from django.conf import settings
from django.core.management.base import BaseCommand

from newsletter.admin_login import find_admin_login


def banner(*, addr: str, port: int) -> str:
    """Return what runall prints once the web server answers."""
    # ensure_admin printed the login before the workers' logs scrolled it away,
    # so it is repeated here, next to the address.
    login = find_admin_login()
    return (
        f"\nQuire is running at http://{addr}:{port}/  "
        f"(admin: http://{addr}:{port}/admin/, "
        f"outbox: {settings.EMAIL_OUTBOX_DIR})\n"
        + (f"{login}\n" if login is not None else "")
        + "Press Ctrl-C to stop the web server, worker and beat.\n"
    )


class Command(BaseCommand):
    help = (
        "Run the web server, a Celery worker and Celery beat together in the "
        "foreground; Ctrl-C stops all three."
    )

    def add_arguments(self, parser):
        parser.add_argument("--addr", default=os.environ.get("QUIRE_ADDR", "127.0.0.1"))
        parser.add_argument(
            "--port", type=int, default=int(os.environ.get("QUIRE_PORT", "8000"))
        )
        parser.add_argument("--concurrency", type=int, default=2)

    def handle(self, *args, addr: str, port: int, concurrency: int, **options):
        python = sys.executable
        settings.VAR_DIR.mkdir(parents=True, exist_ok=True)
        commands = {
            "web": [python, "manage.py", "runserver", f"{addr}:{port}", "--noreload"],
            "worker": [
                python, "-m", "celery", "-A", "newsletter", "worker",
                "--loglevel=INFO", f"--concurrency={concurrency}",
                "--hostname=worker@%h",
            ],
            "beat": [
                python, "-m", "celery", "-A", "newsletter", "beat", "--loglevel=INFO",
                f"--schedule={settings.CELERY_BEAT_SCHEDULE_FILENAME}",
            ],
        }  # fmt: skip
        # The worker and beat write links into emails: they read the address the
        # web server binds from the same variables, so SITE_URL (when unset) agrees
        # in all three processes even when --addr/--port were given on the command
        # line.
        env = {**os.environ, "QUIRE_ADDR": addr, "QUIRE_PORT": str(port)}
        procs = {
            name: subprocess.Popen(cmd, cwd=settings.BASE_DIR, env=env)
            for name, cmd in commands.items()
        }
        stopping = False

        def stop(*_):
            nonlocal stopping
            stopping = True

        signal.signal(signal.SIGINT, stop)
        signal.signal(signal.SIGTERM, stop)
        announced = False
        try:
            while not stopping:
                for name, proc in procs.items():
                    if proc.poll() is not None:
                        self.stderr.write(f"{name} exited with {proc.returncode}")
                        stopping = True
                if not announced and _listening(addr, port):
                    announced = True
                    self.stdout.write(self.style.SUCCESS(banner(addr=addr, port=port)))
                time.sleep(0.3)
        finally:
            for proc in procs.values():
                if proc.poll() is None:
                    proc.send_signal(signal.SIGTERM)
            deadline = time.monotonic() + 10
            for proc in procs.values():
                try:
                    proc.wait(max(0.1, deadline - time.monotonic()))
                except subprocess.TimeoutExpired:
                    proc.kill()


def _listening(addr: str, port: int) -> bool:
    try:
        with socket.create_connection((addr, port), timeout=0.2):
            return True
    except OSError:
        return False
