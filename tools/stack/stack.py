#!/usr/bin/env python3
"""Local stack for callstream: Kafka, PostgreSQL and Redis on loopback, without Docker.

Usage (from anywhere; paths are resolved from this file):

    python3 tools/stack/stack.py up [--timeout S]    start what is not running, wait until all answer
    python3 tools/stack/stack.py down                stop exactly the processes this script started
    python3 tools/stack/stack.py status              one line per service; exit 0 if all up, else 3
    python3 tools/stack/stack.py start kafka [...]   start one or more services (kafka|postgres|redis)
    python3 tools/stack/stack.py stop kafka [...]    stop one or more services
    python3 tools/stack/stack.py env                 shell exports: eval "$(python3 tools/stack/stack.py env)"
    python3 tools/stack/stack.py kafka-class MAIN [ARGS...]
                                                     run a Java main class on the Kafka classpath,
                                                     e.g. kafka.tools.ConsoleProducer

Services (127.0.0.1 only):
    kafka     19092 (KRaft controller listener 19093), Apache Kafka 3.9.2, one combined node
    postgres  15432, PostgreSQL 15 from Debian, database/role/password "callstream"
    redis     16379, Redis 7 from Debian, no persistence

State lives in <repo>/.stack/ (data, logs, pid records) and <repo>/.cache/ (Kafka jars), both
git-ignored. PostgreSQL's data goes to /var/tmp/callstream-<hash>/pg instead when the `postgres` OS
user cannot reach <repo>/.stack (see Postgres.base_dir).

Only the standard library is used, so this runs with the system python3 before any venv exists.
Missing system packages (postgresql, redis-server, maven, a JRE) are installed with apt-get when
running as root; otherwise the script names them and stops. `up` also installs what the test suite needs
from the system (chromium, for the wallboard's browser test) as root; without root it only says so, since
the stack runs without it and that test skips outside CI.

Processes are stopped only by the pid recorded when this script started them, and only after checking
that the pid still is that process (same start time in /proc/<pid>/stat and the expected command line),
so a recycled pid is never signalled. Nothing is ever killed by name.
"""

from __future__ import annotations

import argparse
import contextlib
import fcntl
import hashlib
import json
import os
import pwd
import re
import shlex
import shutil
import signal
import socket
import struct
import subprocess
import sys
import time
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator, Sequence

ROOT = Path(__file__).resolve().parents[2]
STACK = ROOT / ".stack"
CACHE = ROOT / ".cache"
RUN_DIR = STACK / "run"  # our pid records, one JSON file per service
HOST = "127.0.0.1"

KAFKA_VERSION = "3.9.2"
KAFKA_POM = Path(__file__).resolve().parent / "kafka" / "pom.xml"

PG_PREFERRED_MAJOR = "15"
PG_ROLE = PG_DB = PG_PASSWORD = "callstream"

ENV_EXPORTS = {
    "CALLSTREAM_KAFKA_BOOTSTRAP": f"{HOST}:19092",
    "CALLSTREAM_PG_DSN": f"postgresql://{PG_ROLE}:{PG_PASSWORD}@{HOST}:15432/{PG_DB}",
    "CALLSTREAM_REDIS_URL": f"redis://{HOST}:16379/0",
}

LOG_TAIL_LINES = 25


class StackError(Exception):
    """A failure with a message meant for the user; main() prints it and exits 1."""


# --------------------------------------------------------------------------------------------------
# Small helpers: output, files, processes
# --------------------------------------------------------------------------------------------------


def say(msg: str) -> None:
    print(msg, flush=True)


def rel(path: Path) -> str:
    """Paths inside the repo are shown relative to it, to keep progress lines short."""
    try:
        return str(path.relative_to(ROOT))
    except ValueError:
        return str(path)


def log_tail(path: Path, lines: int = LOG_TAIL_LINES) -> str:
    """The last lines of a log file, indented, for error messages."""
    try:
        with open(path, "rb") as f:
            f.seek(0, os.SEEK_END)
            size = f.tell()
            f.seek(max(0, size - 64 * 1024))
            text = f.read().decode("utf-8", "replace")
    except OSError as exc:
        return f"    (cannot read {path}: {exc.strerror})"
    tail = text.splitlines()[-lines:]
    if not tail:
        return f"    ({path} is empty)"
    return "\n".join("    " + line for line in tail)


def write_if_changed(path: Path, content: str) -> None:
    if not path.exists() or path.read_text() != content:
        path.write_text(content)


def proc_start_ticks(pid: int) -> int | None:
    """Start time of a live process (clock ticks since boot), or None if it is gone or a zombie.

    The start time together with the pid identifies a process for good: a recycled pid gets a new
    start time.
    """
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    # The command name (field 2) is in parentheses and may contain spaces: parse after the last ')'.
    fields = stat[stat.rfind(")") + 2 :].split()
    if not fields or fields[0] in ("Z", "X"):
        return None
    return int(fields[19])  # field 22 of proc(5), counted from field 3


def proc_cmdline(pid: int) -> str:
    try:
        raw = Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return ""
    return raw.replace(b"\0", b" ").decode("utf-8", "replace").strip()


def describe_pid(pid: int) -> str:
    cmd = proc_cmdline(pid) or "?"
    if len(cmd) > 140:
        cmd = cmd[:137] + "..."
    return f"pid {pid} ({cmd})"


def port_answers(port: int, timeout: float = 0.5) -> bool:
    """True if something accepts TCP connections on HOST:port."""
    try:
        with socket.create_connection((HOST, port), timeout=timeout):
            return True
    except OSError:
        return False


def who_listens(port: int) -> int | None:
    """The pid listening on TCP `port` (any address), found through /proc; None if unknown.

    Only used to make "port already in use" messages useful; as a non-root user other users'
    processes are invisible and the answer is None.
    """
    inodes: set[str] = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            rows = Path(table).read_text().splitlines()[1:]
        except OSError:
            continue
        for row in rows:
            cols = row.split()
            local, state, inode = cols[1], cols[3], cols[9]
            if state == "0A" and int(local.rsplit(":", 1)[1], 16) == port:  # 0A = LISTEN
                inodes.add(f"socket:[{inode}]")
    if not inodes:
        return None
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            for fd in (proc / "fd").iterdir():
                with contextlib.suppress(OSError):
                    if os.readlink(fd) in inodes:
                        return int(proc.name)
        except OSError:
            continue
    return None


@dataclass
class ProcRecord:
    """What we remember about a process we started, to recognise it (and only it) later."""

    pid: int
    start_ticks: int
    markers: list[str]  # substrings that must all appear in /proc/<pid>/cmdline

    def is_alive_and_ours(self) -> bool:
        if proc_start_ticks(self.pid) != self.start_ticks:
            return False
        cmdline = proc_cmdline(self.pid)
        return all(m in cmdline for m in self.markers)

    @classmethod
    def capture(cls, pid: int, markers: list[str]) -> ProcRecord:
        ticks = proc_start_ticks(pid)
        if ticks is None:
            raise StackError(f"process {pid} exited right after it started")
        return cls(pid=pid, start_ticks=ticks, markers=markers)


def run_quiet(cmd: Sequence[str], *, timeout: float = 120, cwd: Path | None = None,
              env: dict[str, str] | None = None, input_text: str | None = None,
              ) -> subprocess.CompletedProcess[str]:
    """Run a short-lived command, capturing its output (never for daemons: they would keep the pipe)."""
    return subprocess.run(list(cmd), cwd=cwd, env=env, input=input_text, text=True,
                          stdin=None if input_text is not None else subprocess.DEVNULL,
                          stdout=subprocess.PIPE, stderr=subprocess.STDOUT, timeout=timeout,
                          check=False)


@contextlib.contextmanager
def stack_lock() -> Iterator[None]:
    """Serialise up/down/start/stop, so two callers (say make -j and a test) don't race."""
    STACK.mkdir(parents=True, exist_ok=True)
    with open(STACK / "stack.lock", "w") as lock:
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            say("waiting for another stack.py run to finish ...")
            fcntl.flock(lock, fcntl.LOCK_EX)
        yield


# --------------------------------------------------------------------------------------------------
# System packages
# --------------------------------------------------------------------------------------------------

_apt_updated = False


def ensure_packages(missing: dict[str, str]) -> None:
    """Install Debian packages {package: why} in one apt-get call (root only)."""
    global _apt_updated
    if not missing:
        return
    names = sorted(missing)
    reasons = "; ".join(f"{pkg} ({why})" for pkg, why in sorted(missing.items()))
    if os.geteuid() != 0:
        raise StackError(f"missing system packages: {reasons}.\n"
                         f"  install them, e.g.: sudo apt-get install -y {' '.join(names)}")
    if not shutil.which("apt-get"):
        raise StackError(f"missing system packages and no apt-get to install them: {reasons}")
    apt_log = STACK / "apt.log"
    STACK.mkdir(parents=True, exist_ok=True)
    env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
    say(f"apt: installing {' '.join(names)} (log {rel(apt_log)}) ...")
    with open(apt_log, "a") as log:
        steps: list[list[str]] = []
        if not _apt_updated:  # once per run: it is the slow part
            steps.append(["apt-get", "update"])
        steps.append(["apt-get", "install", "-y", "--no-install-recommends", *names])
        for cmd in steps:
            log.write(f"\n$ {' '.join(cmd)}\n")
            log.flush()
            rc = subprocess.run(cmd, env=env, stdin=subprocess.DEVNULL, stdout=log,
                                stderr=subprocess.STDOUT, check=False).returncode
            if rc != 0:
                raise StackError(f"apt: `{' '.join(cmd)}` failed (exit {rc}); last lines of "
                                 f"{apt_log}:\n{log_tail(apt_log)}")
            if cmd[1] == "update":
                _apt_updated = True


# Not part of the stack, but what the test suite needs from the system: package -> (file it provides, why).
TEST_PACKAGES = {
    "chromium": ("/usr/bin/chromium", "headless browser for the wallboard page test, tests/stats"),
}


def missing_test_packages() -> dict[str, str]:
    """The test packages to install with the stack's own ones; without root (or apt) only a note: the stack
    does not need them, and the tests that do skip outside CI (and fail in CI, where we run as root)."""
    missing = {pkg: why for pkg, (path, why) in TEST_PACKAGES.items() if not Path(path).exists()}
    if missing and (os.geteuid() != 0 or not shutil.which("apt-get")):
        say(f"note: {', '.join(f'{pkg} ({why})' for pkg, why in sorted(missing.items()))} is not installed; "
            f"as root `up` installs it (apt-get install -y {' '.join(sorted(missing))})")
        return {}
    return missing


def find_java() -> str | None:
    java_home = os.environ.get("JAVA_HOME")
    if java_home and (Path(java_home) / "bin" / "java").exists():
        return str(Path(java_home) / "bin" / "java")
    return shutil.which("java")


# --------------------------------------------------------------------------------------------------
# Kafka wire protocol: just enough to ask a broker for API versions and metadata
# --------------------------------------------------------------------------------------------------


class _Reader:
    def __init__(self, data: bytes) -> None:
        self.data, self.pos = data, 0

    def _take(self, fmt: str) -> int:
        (value,) = struct.unpack_from(fmt, self.data, self.pos)
        self.pos += struct.calcsize(fmt)
        return int(value)

    def i8(self) -> int:
        return self._take(">b")

    def i16(self) -> int:
        return self._take(">h")

    def i32(self) -> int:
        return self._take(">i")

    def string(self) -> str | None:
        n = self.i16()
        if n < 0:
            return None
        value = self.data[self.pos : self.pos + n].decode("utf-8", "replace")
        self.pos += n
        return value


@dataclass
class KafkaMetadata:
    brokers: list[tuple[int, str, int]]
    controller_id: int
    topics: list[str]


def _recv_exact(sock: socket.socket, n: int) -> bytes:
    buf = bytearray()
    while len(buf) < n:
        chunk = sock.recv(n - len(buf))
        if not chunk:
            raise ConnectionError("connection closed by the broker")
        buf += chunk
    return bytes(buf)


def _kafka_call(sock: socket.socket, api_key: int, version: int, corr: int, body: bytes) -> _Reader:
    client = b"callstream-stack"
    msg = struct.pack(">hhih", api_key, version, corr, len(client)) + client + body
    sock.sendall(struct.pack(">i", len(msg)) + msg)
    (size,) = struct.unpack(">i", _recv_exact(sock, 4))
    reader = _Reader(_recv_exact(sock, size))
    if reader.i32() != corr:
        raise ConnectionError("unexpected correlation id in the broker's answer")
    return reader


def kafka_metadata(port: int, timeout: float = 2.0, wanted: tuple[int, ...] = (1, 4)
                   ) -> KafkaMetadata:
    """ApiVersions v0, then a Metadata request for all topics (v1 or v4, whichever is offered).

    v1 keeps this short; v4 is the fallback for brokers that dropped the oldest versions (4.x).

    Raises OSError/ConnectionError/struct.error when the broker does not (yet) answer properly.
    """
    with socket.create_connection((HOST, port), timeout=timeout) as sock:
        sock.settimeout(timeout)
        r = _kafka_call(sock, 18, 0, 1, b"")  # ApiVersions v0: every broker version speaks it
        if (err := r.i16()) != 0:
            raise ConnectionError(f"ApiVersions error code {err}")
        versions = {}
        for _ in range(r.i32()):
            key, lo, hi = r.i16(), r.i16(), r.i16()
            versions[key] = (lo, hi)
        lo, hi = versions.get(3, (0, -1))
        usable = [v for v in wanted if lo <= v <= hi]
        if not usable:
            raise ConnectionError(f"broker offers Metadata v{lo}..v{hi} only")
        version = usable[0]
        body = struct.pack(">i", -1)  # -1 = null topic array = all topics
        if version >= 4:
            body += struct.pack(">b", 0)  # allow_auto_topic_creation = false
        r = _kafka_call(sock, 3, version, 2, body)
        if version >= 3:
            r.i32()  # throttle_time_ms
        brokers = []
        for _ in range(r.i32()):
            node, host, bport = r.i32(), r.string() or "", r.i32()
            r.string()  # rack
            brokers.append((node, host, bport))
        if version >= 2:
            r.string()  # cluster_id
        controller = r.i32()
        topics = []
        for _ in range(r.i32()):
            r.i16()  # error code
            name = r.string() or ""
            r.i8()  # is_internal
            for _ in range(r.i32()):
                r.i16(), r.i32(), r.i32()  # error, partition, leader
                for _ in range(r.i32()):  # replicas
                    r.i32()
                for _ in range(r.i32()):  # isr
                    r.i32()
            topics.append(name)
        return KafkaMetadata(brokers=brokers, controller_id=controller, topics=topics)


# --------------------------------------------------------------------------------------------------
# Services
# --------------------------------------------------------------------------------------------------


@dataclass
class Launched:
    """A process we just started; `proc` is set when it is our direct child (so we can reap it)."""

    pid: int
    proc: subprocess.Popen[bytes] | None = None

    def exited(self) -> str | None:
        """Why the process is gone, or None while it runs."""
        if self.proc is not None:
            rc = self.proc.poll()
            return None if rc is None else f"exited with code {rc}"
        return None if proc_start_ticks(self.pid) is not None else "exited"


@dataclass
class Service:
    """What every service shares: a port, a pid record, a log, and how to stop it."""

    name: str
    port: int
    ready_timeout: float
    # Signals to send in turn, each followed by how long to wait for the process to exit.
    stop_plan: tuple[tuple[signal.Signals, float], ...] = ((signal.SIGTERM, 30.0),
                                                           (signal.SIGKILL, 5.0))

    # -- to be provided by each service ---------------------------------------------------------
    @property
    def log_path(self) -> Path:
        raise NotImplementedError

    def probe(self) -> str | None:
        """None when the service answers, else a short reason why not."""
        raise NotImplementedError

    @property
    def pid_path(self) -> Path:
        """The pid file the service (or this script) writes; its first line is the pid."""
        raise NotImplementedError

    def markers(self) -> list[str]:
        """Substrings of the command line that make a process recognisably ours."""
        raise NotImplementedError

    def missing_packages(self) -> dict[str, str]:
        return {}

    def prepare(self) -> None:
        """One-time and per-start set-up before launching (configs, init of data dirs)."""

    def launch(self) -> Launched:
        raise NotImplementedError

    def after_ready(self) -> None:
        """Work that needs the running service (e.g. creating the database)."""

    def details(self) -> str:
        """Extra words for `status` when the service is up."""
        return ""

    # -- shared behaviour ------------------------------------------------------------------------
    @property
    def address(self) -> str:
        return f"{HOST}:{self.port}"

    @property
    def record_path(self) -> Path:
        return RUN_DIR / f"{self.name}.json"

    def load_record(self) -> ProcRecord | None:
        try:
            return ProcRecord(**json.loads(self.record_path.read_text()))
        except (OSError, ValueError, TypeError):
            return None

    def save_record(self, record: ProcRecord) -> None:
        RUN_DIR.mkdir(parents=True, exist_ok=True)
        tmp = self.record_path.with_suffix(".tmp")
        tmp.write_text(json.dumps(record.__dict__) + "\n")
        tmp.replace(self.record_path)

    def forget(self) -> None:
        self.record_path.unlink(missing_ok=True)

    def running_record(self) -> ProcRecord | None:
        """Our record if its process still runs; a stale record (pid gone or reused) is dropped."""
        record = self.load_record()
        if record is not None:
            if record.is_alive_and_ours():
                return record
            self.forget()
        return self._adopt()

    def pid_from_file(self) -> int | None:
        try:
            return int(self.pid_path.read_text().splitlines()[0])
        except (OSError, IndexError, ValueError):
            return None

    def _adopt(self) -> ProcRecord | None:
        """Without a (valid) record, a process named by our pid file whose command line carries our
        own paths/ports is ours all the same (say .stack/run was deleted while it ran): take it
        back, so that status and down see it instead of calling it a stranger."""
        pid = self.pid_from_file()
        if pid is None or proc_start_ticks(pid) is None:
            return None
        if not all(m in proc_cmdline(pid) for m in self.markers()):
            return None
        record = ProcRecord.capture(pid, self.markers())
        self.save_record(record)
        return record

    def ports(self) -> list[int]:
        return [self.port]

    def foreign_holder(self) -> str | None:
        """If one of our ports is taken by something we did not start, say what it is."""
        for port in self.ports():
            pid = who_listens(port)
            if pid is None and not port_answers(port):
                continue
            holder = describe_pid(pid) if pid else "another process"
            return (f"{self.name}: port {HOST}:{port} is already in use by {holder}, which this "
                    f"script did not start; stop it or free the port, then run again")
        return None

    def wait_ready(self, launched: Launched | None, started: float, timeout: float) -> None:
        deadline = started + timeout
        while True:
            reason = self.probe() or ""
            if not reason:
                return
            if launched is not None and (gone := launched.exited()):
                raise StackError(f"{self.name}: the process (pid {launched.pid}) {gone} before "
                                 f"answering on {self.address}; last lines of "
                                 f"{self.log_path}:\n{log_tail(self.log_path)}")
            if time.monotonic() >= deadline:
                state = ""
                if launched is not None:
                    state = f"; pid {launched.pid} is still running"
                raise StackError(f"{self.name}: no answer on {self.address} after {timeout:g} s "
                                 f"(last probe: {reason}){state}; last lines of "
                                 f"{self.log_path}:\n{log_tail(self.log_path)}")
            time.sleep(0.25)

    def stop(self) -> bool:
        """Stop our process by its recorded pid. False when nothing of ours was running."""
        record = self.running_record()
        if record is None:
            return False
        started = time.monotonic()
        for sig, wait in self.stop_plan:
            # Re-check before every signal: the pid must still be the process we started.
            if not record.is_alive_and_ours():
                break
            with contextlib.suppress(ProcessLookupError):
                os.kill(record.pid, sig)
            deadline = time.monotonic() + wait
            while time.monotonic() < deadline and record.is_alive_and_ours():
                time.sleep(0.1)
            if not record.is_alive_and_ours():
                break
            say(f"{self.name}: pid {record.pid} still running {wait:.0f} s after {sig.name}")
        if record.is_alive_and_ours():
            raise StackError(f"{self.name}: pid {record.pid} survived {self.stop_plan[-1][0].name}")
        self.forget()
        say(f"{self.name}: stopped (pid {record.pid}, {time.monotonic() - started:.1f} s)")
        return True


# ----------------------------------------------------------------------------------------- Kafka


@dataclass
class Kafka(Service):
    name: str = "kafka"
    port: int = 19092
    ready_timeout: float = 120.0
    controller_port: int = 19093
    # A clean KRaft shutdown flushes logs and the metadata snapshot; give it time before SIGKILL.
    stop_plan: tuple[tuple[signal.Signals, float], ...] = ((signal.SIGTERM, 40.0),
                                                           (signal.SIGKILL, 10.0))
    heap: tuple[str, ...] = ("-Xms256m", "-Xmx1g")

    @property
    def home(self) -> Path:
        return STACK / "kafka"

    @property
    def log_path(self) -> Path:
        return self.home / "server.log"

    @property
    def props_path(self) -> Path:
        return self.home / "server.properties"

    @property
    def data_dir(self) -> Path:
        return self.home / "data"

    @property
    def pid_path(self) -> Path:
        return self.home / "kafka.pid"

    @property
    def libs_dir(self) -> Path:
        return CACHE / "kafka" / KAFKA_VERSION / "libs"

    @property
    def libs_marker(self) -> Path:
        return CACHE / "kafka" / KAFKA_VERSION / "resolved.json"

    def ports(self) -> list[int]:
        return [self.port, self.controller_port]

    def markers(self) -> list[str]:
        return ["kafka.Kafka", str(self.props_path)]

    def missing_packages(self) -> dict[str, str]:
        missing = {}
        if not find_java():
            missing["default-jre-headless"] = "java runs the broker"
        if not self.libs_ready() and not shutil.which("mvn"):
            missing["maven"] = "mvn resolves the Kafka jars from Maven Central"
        return missing

    # -- classpath ---------------------------------------------------------------------------------
    def _pom_digest(self) -> str:
        return hashlib.sha256(KAFKA_POM.read_bytes()).hexdigest()

    def libs_ready(self) -> bool:
        """The jars were copied completely, from the pom as it is now."""
        try:
            marker = json.loads(self.libs_marker.read_text())
        except (OSError, ValueError):
            return False
        return marker.get("pom_sha256") == self._pom_digest() and self.libs_dir.is_dir()

    def ensure_classpath(self) -> None:
        """Copy the broker's runtime classpath from Maven into .cache once (re-done if the pom changes)."""
        if self.libs_ready():
            return
        mvn = shutil.which("mvn")
        if not mvn:
            raise StackError("kafka: `mvn` is needed once to fetch the Kafka jars (apt-get install maven)")
        # Copy into a scratch folder and rename it at the end, so a failed or interrupted copy never
        # leaves a half-filled libs/ that looks usable.
        staging = self.libs_dir.with_name("libs.partial")
        shutil.rmtree(staging, ignore_errors=True)
        staging.parent.mkdir(parents=True, exist_ok=True)
        cmd = [mvn, "-q", "-B", "-f", str(KAFKA_POM), "dependency:copy-dependencies",
               "-DincludeScope=runtime", f"-DoutputDirectory={staging}"]
        say(f"kafka: fetching Kafka {KAFKA_VERSION} jars with Maven into {rel(self.libs_dir)} "
            "(first run only) ...")
        started = time.monotonic()
        result = run_quiet(cmd, timeout=1800)
        if result.returncode != 0:
            plain = re.sub(r"\x1b\[[0-9;]*m", "", result.stdout)  # Maven colours even with -B
            out = "\n".join("    " + line for line in plain.splitlines()[-30:])
            raise StackError(f"kafka: copying the Kafka classpath with Maven failed "
                             f"(exit {result.returncode}).\n  command: {shlex.join(cmd)}\n{out}")
        self._check_jars(staging)
        shutil.rmtree(self.libs_dir, ignore_errors=True)
        staging.rename(self.libs_dir)
        self.libs_marker.write_text(json.dumps({
            "pom_sha256": self._pom_digest(),
            "jars": sorted(p.name for p in self.libs_dir.glob("*.jar")),
        }, indent=1) + "\n")
        say(f"kafka: {len(list(self.libs_dir.glob('*.jar')))} jars ready "
            f"({time.monotonic() - started:.0f} s)")

    @staticmethod
    def _check_jars(libs: Path) -> None:
        """Fail early, with a clear message, if the classpath lacks what the stack and tests use."""
        names = {p.name for p in libs.glob("*.jar")}
        for name in (f"kafka_2.13-{KAFKA_VERSION}.jar", f"kafka-clients-{KAFKA_VERSION}.jar",
                     "slf4j-reload4j-1.7.36.jar", "reload4j-1.2.25.jar"):
            if name not in names:
                raise StackError(f"kafka: {name} is missing from the copied classpath ({libs})")
        wanted = {"kafka/Kafka.class", "kafka/tools/StorageTool.class",
                  "kafka/tools/ConsoleProducer.class"}
        for jar in sorted(libs.glob("kafka*.jar")):
            with zipfile.ZipFile(jar) as zf:
                wanted -= set(zf.namelist())
        if wanted:
            raise StackError(f"kafka: classes {sorted(wanted)} are not in the copied classpath")

    def java_command(self, main_class: str, jvm_opts: Sequence[str] = ()) -> list[str]:
        java = find_java()
        if not java:
            raise StackError("kafka: no `java` found (apt-get install default-jre-headless)")
        # The classpath wildcard makes the JVM take every jar in the folder.
        return [java, *jvm_opts, "-cp", str(self.libs_dir / "*"), main_class]

    # -- configuration -----------------------------------------------------------------------------
    def write_config(self) -> None:
        self.home.mkdir(parents=True, exist_ok=True)
        props = {
            "process.roles": "broker,controller",
            "node.id": "1",
            "controller.quorum.voters": f"1@{HOST}:{self.controller_port}",
            "listeners": f"PLAINTEXT://{HOST}:{self.port},CONTROLLER://{HOST}:{self.controller_port}",
            "advertised.listeners": f"PLAINTEXT://{HOST}:{self.port}",
            "inter.broker.listener.name": "PLAINTEXT",
            "controller.listener.names": "CONTROLLER",
            "listener.security.protocol.map": "CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT",
            "log.dirs": str(self.data_dir),
            # One node: every internal topic must live with a single replica.
            "offsets.topic.replication.factor": "1",
            "transaction.state.log.replication.factor": "1",
            "transaction.state.log.min.isr": "1",
            "min.insync.replicas": "1",
            # Consumer groups (faust workers, tests) should not wait 3 s for more members.
            "group.initial.rebalance.delay.ms": "0",
            "num.partitions": "1",
            # Topics come from the catalogue (and faust's own admin calls), never from a typo'd
            # producer or consumer: the admin API still creates topics with this off.
            "auto.create.topics.enable": "false",
            # Two of each, not Kafka's 3 network and 8 I/O threads: this stack shares two cores with every
            # service; fewer runnable broker threads, fewer context switches. bench-routing, session 4: the
            # machine 75% -> 64-67% busy under the load, offer p99 ~80-145 -> 44-77 ms (docs/acd.md).
            "num.network.threads": "2",
            "num.io.threads": "2",
        }
        text = "# Generated by tools/stack/stack.py on every start; edit the script, not this file.\n"
        text += "".join(f"{k}={v}\n" for k, v in props.items())
        write_if_changed(self.props_path, text)
        write_if_changed(self.home / "log4j.properties", _LOG4J_SERVER.format(log=self.log_path))
        write_if_changed(self.home / "tools-log4j.properties", _LOG4J_TOOLS)

    def cluster_id(self) -> str:
        """Stable cluster id: from .stack/kafka/cluster-id, else an already formatted log dir, else new."""
        id_file = self.home / "cluster-id"
        if id_file.exists() and (cid := id_file.read_text().strip()):
            return cid
        meta = self.data_dir / "meta.properties"
        cid = ""
        if meta.exists():
            for line in meta.read_text().splitlines():
                if line.startswith("cluster.id="):
                    cid = line.split("=", 1)[1].strip()
        if not cid:
            result = run_quiet(self.java_command("kafka.tools.StorageTool", self._tool_jvm_opts())
                               + ["random-uuid"])
            cid = result.stdout.strip().splitlines()[-1] if result.stdout.strip() else ""
            if result.returncode != 0 or not cid:
                raise StackError(f"kafka: StorageTool random-uuid failed:\n{result.stdout}")
        id_file.write_text(cid + "\n")
        return cid

    def format_storage(self) -> None:
        cid = self.cluster_id()
        if (self.data_dir / "meta.properties").exists():
            return  # formatted before; skipping saves a JVM start (--ignore-formatted would too)
        cmd = self.java_command("kafka.tools.StorageTool", self._tool_jvm_opts()) + [
            "format", "-t", cid, "-c", str(self.props_path), "--ignore-formatted"]
        result = run_quiet(cmd)
        if result.returncode != 0:
            raise StackError(f"kafka: formatting {self.data_dir} failed:\n{result.stdout}")
        say(f"kafka: formatted {rel(self.data_dir)} (cluster id {cid})")

    def _tool_jvm_opts(self) -> list[str]:
        log4j = (self.home / "tools-log4j.properties").as_uri()
        return ["-Xmx512m", f"-Dlog4j.configuration={log4j}", "-Djava.awt.headless=true"]

    # -- lifecycle ---------------------------------------------------------------------------------
    def prepare(self) -> None:
        self.ensure_classpath()
        self.write_config()
        self.format_storage()

    def launch(self) -> Launched:
        jvm_opts = [
            *self.heap,
            # The distribution's own defaults (kafka-run-class.sh).
            "-XX:+UseG1GC", "-XX:MaxGCPauseMillis=20", "-XX:InitiatingHeapOccupancyPercent=35",
            "-XX:+ExplicitGCInvokesConcurrent", "-Djava.awt.headless=true",
            f"-Dlog4j.configuration={(self.home / 'log4j.properties').as_uri()}",
        ]
        cmd = self.java_command("kafka.Kafka", jvm_opts) + [str(self.props_path)]
        with open(self.log_path, "ab") as log:
            log.write(f"\n=== {time.strftime('%Y-%m-%d %H:%M:%S')} started by stack.py ===\n".encode())
            log.flush()
            # A session of its own: Ctrl-C in the terminal that ran `up` must not reach the broker.
            proc = subprocess.Popen(cmd, cwd=self.home, stdin=subprocess.DEVNULL, stdout=log,
                                    stderr=subprocess.STDOUT, start_new_session=True)
        self.save_record(ProcRecord.capture(proc.pid, self.markers()))
        self.pid_path.write_text(f"{proc.pid}\n")
        return Launched(proc.pid, proc)

    def stop(self) -> bool:
        stopped = super().stop()
        if stopped:
            self.pid_path.unlink(missing_ok=True)
        return stopped

    def probe(self) -> str | None:
        try:
            meta = kafka_metadata(self.port, timeout=2.0)
        except (OSError, ConnectionError, struct.error) as exc:
            return str(exc) or type(exc).__name__
        if not meta.brokers or meta.controller_id < 0:
            return "broker not registered yet"
        return None

    def details(self) -> str:
        try:
            meta = kafka_metadata(self.port)
        except (OSError, ConnectionError, struct.error):
            return ""
        return f"{len(meta.topics)} topics"

    def run_class(self, main_class: str, args: Sequence[str]) -> None:
        """exec a Java main class on the broker's classpath (replaces this process)."""
        with stack_lock():
            ensure_packages(self.missing_packages())
            self.ensure_classpath()
            self.home.mkdir(parents=True, exist_ok=True)
            write_if_changed(self.home / "tools-log4j.properties", _LOG4J_TOOLS)
        extra = shlex.split(os.environ.get("KAFKA_OPTS", ""))
        cmd = self.java_command(main_class, [*self._tool_jvm_opts(), *extra]) + list(args)
        sys.stdout.flush()
        os.execv(cmd[0], cmd)


_LOG4J_SERVER = """\
# Generated by tools/stack/stack.py.
log4j.rootLogger=INFO, file
log4j.appender.file=org.apache.log4j.FileAppender
log4j.appender.file.File={log}
log4j.appender.file.Append=true
log4j.appender.file.layout=org.apache.log4j.PatternLayout
log4j.appender.file.layout.ConversionPattern=[%d] %p %m (%c)%n
# Per-request and state-change chatter is noise for a dev stack.
log4j.logger.kafka.request.logger=WARN
log4j.logger.kafka.network.RequestChannel$=WARN
log4j.logger.state.change.logger=WARN
log4j.logger.org.apache.kafka.controller=INFO
"""

_LOG4J_TOOLS = """\
# Generated by tools/stack/stack.py: command-line tools log warnings to stderr only.
log4j.rootLogger=WARN, stderr
log4j.appender.stderr=org.apache.log4j.ConsoleAppender
log4j.appender.stderr.Target=System.err
log4j.appender.stderr.layout=org.apache.log4j.PatternLayout
log4j.appender.stderr.layout.ConversionPattern=[%d] %p %m (%c)%n
"""


# -------------------------------------------------------------------------------------- PostgreSQL


def pg_bin_dir() -> Path | None:
    """Debian's PostgreSQL binaries: 15 (Debian 12) if present, else the newest installed major."""
    preferred = Path(f"/usr/lib/postgresql/{PG_PREFERRED_MAJOR}/bin")
    if (preferred / "pg_ctl").exists():
        return preferred
    found = sorted(Path("/usr/lib/postgresql").glob("*/bin/pg_ctl"),
                   key=lambda p: int(p.parent.parent.name) if p.parent.parent.name.isdigit() else 0)
    return found[-1].parent if found else None


@dataclass
class Postgres(Service):
    name: str = "postgres"
    port: int = 15432
    ready_timeout: float = 60.0
    # SIGINT is PostgreSQL's "fast" shutdown (pg_ctl stop -m fast): SIGTERM ("smart") would wait
    # for every client to disconnect, forever if a test left a pool open. SIGQUIT is "immediate".
    stop_plan: tuple[tuple[signal.Signals, float], ...] = ((signal.SIGINT, 30.0),
                                                           (signal.SIGQUIT, 5.0),
                                                           (signal.SIGKILL, 5.0))
    os_user: str = "postgres"

    # -- where the cluster lives -------------------------------------------------------------------
    @property
    def location_file(self) -> Path:
        return STACK / "pg-location"

    def base_dir(self) -> Path:
        """The folder holding data/, run/ (socket) and postgres.log; decided once, then recorded.

        The server runs as the `postgres` OS user (initdb refuses root), which must be able to reach
        its data dir. <repo>/.stack/pg is used when it can; a repo under a private home dir (mode 700)
        is not traversable for it, so the cluster then lives in /var/tmp instead.
        """
        if self.location_file.exists():
            base = Path(self.location_file.read_text().strip())
            # Re-create a recorded folder that was cleaned away (say /var/tmp after a wipe).
            if not base.exists() and not self._usable_base(base):
                raise StackError(f"postgres: the `{self.os_user}` user cannot reach {base}")
            return base
        base = STACK / "pg"
        if not self._usable_base(base):
            digest = hashlib.sha256(str(ROOT).encode()).hexdigest()[:10]
            outer = Path(f"/var/tmp/callstream-{digest}")
            outer.mkdir(mode=0o755, exist_ok=True)
            st = os.lstat(outer)
            if not os.path.isdir(outer) or os.path.islink(outer) or st.st_uid != os.geteuid():
                raise StackError(f"postgres: {outer} exists but is not a folder owned by us")
            base = outer / "pg"
            if not self._usable_base(base):
                raise StackError(f"postgres: the `{self.os_user}` user can reach neither "
                                 f"{STACK / 'pg'} nor {base}")
            say(f"postgres: `{self.os_user}` cannot reach {STACK}; the cluster lives in {base}")
        STACK.mkdir(parents=True, exist_ok=True)
        self.location_file.write_text(f"{base}\n")
        return base

    def _usable_base(self, base: Path) -> bool:
        # The server creates a socket file <base>/run/.s.PGSQL.<port>; the kernel caps such paths
        # at 107 bytes, so a deep repo path needs the short /var/tmp location too.
        if len(str(base / "run" / f".s.PGSQL.{self.port}")) > 100:
            return False
        base.mkdir(parents=True, exist_ok=True)
        if os.geteuid() == 0:
            pw = pwd.getpwnam(self.os_user)
            os.chown(base, pw.pw_uid, pw.pw_gid)
        os.chmod(base, 0o700)
        result = run_quiet(self._as_owner(["test", "-w", str(base), "-a", "-x", str(base)]))
        return result.returncode == 0

    def _as_owner(self, cmd: list[str]) -> list[str]:
        """Run as the `postgres` OS user when we are root; as ourselves otherwise."""
        if os.geteuid() == 0:
            return ["runuser", "-u", self.os_user, "--", *cmd]
        return cmd

    @property
    def _base(self) -> Path:
        if self.location_file.exists():
            return Path(self.location_file.read_text().strip())
        return STACK / "pg"

    @property
    def data_dir(self) -> Path:
        return self._base / "data"

    @property
    def socket_dir(self) -> Path:
        return self._base / "run"

    @property
    def log_path(self) -> Path:
        return self._base / "postgres.log"

    @property
    def pid_path(self) -> Path:
        return self.data_dir / "postmaster.pid"  # written by the server as soon as it starts

    def markers(self) -> list[str]:
        return [str(self.data_dir)]

    def _bin(self, tool: str) -> str:
        bin_dir = pg_bin_dir()
        if bin_dir is None:
            raise StackError("postgres: PostgreSQL is not installed (apt-get install postgresql)")
        return str(bin_dir / tool)

    def missing_packages(self) -> dict[str, str]:
        return {} if pg_bin_dir() else {"postgresql": "PostgreSQL server"}

    # -- lifecycle ---------------------------------------------------------------------------------
    def prepare(self) -> None:
        base = self.base_dir()
        if (self.data_dir / "PG_VERSION").exists():
            have = (self.data_dir / "PG_VERSION").read_text().strip()
            bin_major = Path(self._bin("pg_ctl")).parent.parent.name
            if have != bin_major:
                raise StackError(f"postgres: {self.data_dir} was made by PostgreSQL {have}, but the "
                                 f"installed server is {bin_major}; remove {base} to start afresh")
            return
        say(f"postgres: initdb {self.data_dir}")
        # Trust on loopback: this is a throwaway dev/test cluster bound to 127.0.0.1 only, so any
        # local user may connect as any role. The role still gets a password, so DSNs carry one.
        cmd = self._as_owner([self._bin("initdb"), "-D", str(self.data_dir), "-U", "postgres",
                              "--auth=trust", "-E", "UTF8", "--no-locale", "--no-instructions"])
        result = run_quiet(cmd, cwd=base)
        if result.returncode != 0:
            raise StackError(f"postgres: initdb failed:\n{result.stdout}")

    def launch(self) -> Launched:
        base = self._base
        run_dir = self.socket_dir
        if not run_dir.exists():
            run_dir.mkdir()
            if os.geteuid() == 0:
                pw = pwd.getpwnam(self.os_user)
                os.chown(run_dir, pw.pw_uid, pw.pw_gid)
        options = f"-c listen_addresses={HOST} -p {self.port} -k {shlex.quote(str(run_dir))}"
        cmd = self._as_owner([self._bin("pg_ctl"), "start", "-W", "-D", str(self.data_dir),
                              "-l", str(self.log_path), "-o", options])
        # pg_ctl hands the server /dev/null and the log file; its own words go to a file too, so no
        # daemon can ever hold a pipe of ours (a caller reading our output would hang on it).
        ctl_log = STACK / "pg_ctl.log"
        with open(ctl_log, "w") as out:
            rc = subprocess.run(cmd, cwd=base, stdin=subprocess.DEVNULL, stdout=out,
                                stderr=subprocess.STDOUT, start_new_session=True, timeout=60,
                                check=False).returncode
        if rc != 0:
            raise StackError(f"postgres: pg_ctl start failed (exit {rc}):\n{log_tail(ctl_log)}\n"
                             f"  last lines of {self.log_path}:\n{log_tail(self.log_path)}")
        pid = self._wait_postmaster_pid(time.monotonic() + 15)
        self.save_record(ProcRecord.capture(pid, self.markers()))
        return Launched(pid)

    def _wait_postmaster_pid(self, deadline: float) -> int:
        while time.monotonic() < deadline:
            pid = self.pid_from_file()
            if pid and proc_start_ticks(pid) is not None:
                return pid
            time.sleep(0.1)
        raise StackError(f"postgres: the server did not start; last lines of {self.log_path}:\n"
                         f"{log_tail(self.log_path)}")

    def probe(self) -> str | None:
        try:
            result = run_quiet([self._bin("pg_isready"), "-q", "-h", HOST, "-p", str(self.port),
                                "-U", "postgres", "-d", "postgres", "-t", "2"], timeout=10)
        except StackError as exc:
            return str(exc)
        return None if result.returncode == 0 else f"pg_isready exit {result.returncode}"

    def after_ready(self) -> None:
        """Role and database `callstream`, created once and left alone after (data persists).

        The role may signal other backends (pg_signal_backend): tests and benchmarks drop their databases with
        `DROP DATABASE ... WITH (FORCE)`, which must end an autovacuum worker busy in the database, and a role
        that is not a member of the worker's role (autovacuum has none) was refused ("must be a member of the
        role whose process is being terminated"), now and then, at a test's teardown."""
        sql = (
            f"SELECT 'CREATE ROLE {PG_ROLE}' WHERE NOT EXISTS "
            f"(SELECT 1 FROM pg_roles WHERE rolname = '{PG_ROLE}')\\gexec\n"
            f"ALTER ROLE {PG_ROLE} WITH LOGIN CREATEDB PASSWORD '{PG_PASSWORD}';\n"
            f"GRANT pg_signal_backend TO {PG_ROLE};\n"
            f"SELECT 'CREATE DATABASE {PG_DB} OWNER {PG_ROLE}' WHERE NOT EXISTS "
            f"(SELECT 1 FROM pg_database WHERE datname = '{PG_DB}')\\gexec\n"
        )
        # Our connection flags only; PG* variables from the caller's shell must not redirect it.
        env = {k: v for k, v in os.environ.items() if not k.startswith("PG")}
        result = run_quiet([self._bin("psql"), "-X", "-q", "-v", "ON_ERROR_STOP=1", "-h", HOST,
                            "-p", str(self.port), "-U", "postgres", "-d", "postgres"],
                           env=env, input_text=sql, timeout=60)
        if result.returncode != 0:
            raise StackError(f"postgres: creating role/database {PG_DB} failed:\n{result.stdout}")

    def details(self) -> str:
        return f"data {rel(self.data_dir)}"


# ------------------------------------------------------------------------------------------- Redis


@dataclass
class Redis(Service):
    name: str = "redis"
    port: int = 16379
    ready_timeout: float = 30.0
    stop_plan: tuple[tuple[signal.Signals, float], ...] = ((signal.SIGTERM, 15.0),
                                                           (signal.SIGKILL, 5.0))

    @property
    def home(self) -> Path:
        return STACK / "redis"

    @property
    def log_path(self) -> Path:
        return self.home / "redis.log"

    @property
    def pid_path(self) -> Path:
        return self.home / "redis.pid"

    def markers(self) -> list[str]:
        # Redis retitles itself "redis-server 127.0.0.1:16379"; that is all its cmdline shows.
        return ["redis", self.address]

    def missing_packages(self) -> dict[str, str]:
        return {} if shutil.which("redis-server") else {"redis-server": "Redis server"}

    def launch(self) -> Launched:
        self.home.mkdir(parents=True, exist_ok=True)
        self.pid_path.unlink(missing_ok=True)
        cmd = ["redis-server", "--port", str(self.port), "--bind", HOST, "--daemonize", "yes",
               "--save", "", "--appendonly", "no", "--dir", str(self.home),
               "--pidfile", str(self.pid_path), "--logfile", str(self.log_path)]
        with open(self.log_path, "ab") as log:
            rc = subprocess.run(cmd, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
                                start_new_session=True, timeout=30, check=False).returncode
        if rc != 0:
            raise StackError(f"redis: redis-server exited with {rc}; last lines of "
                             f"{self.log_path}:\n{log_tail(self.log_path)}")
        # The daemon writes its pid file right after it forks.
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            with contextlib.suppress(OSError, ValueError):
                pid = int(self.pid_path.read_text().strip())
                if proc_start_ticks(pid) is not None:
                    self.save_record(ProcRecord.capture(pid, self.markers()))
                    return Launched(pid)
            time.sleep(0.1)
        raise StackError(f"redis: no pid file {self.pid_path} after start; last lines of "
                         f"{self.log_path}:\n{log_tail(self.log_path)}")

    def probe(self) -> str | None:
        try:
            with socket.create_connection((HOST, self.port), timeout=2) as sock:
                sock.settimeout(2)
                sock.sendall(b"PING\r\n")
                reply = sock.recv(64)
        except OSError as exc:
            return str(exc) or type(exc).__name__
        return None if reply.startswith(b"+PONG") else f"PING answered {reply!r}"


# --------------------------------------------------------------------------------------------------
# Commands
# --------------------------------------------------------------------------------------------------

SERVICES: dict[str, Service] = {s.name: s for s in (Kafka(), Postgres(), Redis())}


def select(names: Sequence[str]) -> list[Service]:
    return [SERVICES[n] for n in names] if names else list(SERVICES.values())


def cmd_up(services: list[Service], timeout: float | None) -> int:
    with stack_lock():
        # 1. What runs already, and is any port taken by a stranger? Decide before touching anything.
        running = {s.name: s.running_record() for s in services}
        to_start = [s for s in services if running[s.name] is None]
        conflicts = [msg for s in to_start if (msg := s.foreign_holder())]
        if conflicts:
            raise StackError("\n".join(conflicts))

        # 2. System packages, in one apt call for all that are missing.
        missing: dict[str, str] = {}
        for s in to_start:
            missing.update(s.missing_packages())
        missing.update(missing_test_packages())
        ensure_packages(missing)

        # 3. Launch everything first and wait afterwards, so Kafka's JVM warms up meanwhile.
        launched: dict[str, tuple[Launched | None, float]] = {}
        for s in services:
            if s in to_start:
                s.prepare()
                say(f"{s.name}: starting (log {rel(s.log_path)})")
                launched[s.name] = (s.launch(), time.monotonic())
            else:
                launched[s.name] = (None, time.monotonic())

        # 4. Wait for each to answer; report every failure, not only the first.
        errors = []
        for s in services:
            launch, started = launched[s.name]
            try:
                s.wait_ready(launch, started, timeout or s.ready_timeout)
                s.after_ready()
            except StackError as exc:
                errors.append(str(exc))
                continue
            if launch:
                say(f"{s.name}: up on {s.address} (pid {launch.pid}, "
                    f"{time.monotonic() - started:.1f} s)")
            elif record := running[s.name]:
                say(f"{s.name}: already up on {s.address} (pid {record.pid})")
        if errors:
            raise StackError("\n".join(errors))
    return 0


def cmd_down(services: list[Service]) -> int:
    with stack_lock():
        stopped = 0
        for s in services:
            if s.stop():
                stopped += 1
            else:
                say(f"{s.name}: not running")
        if stopped == 0:
            say("nothing to stop")
    return 0


def cmd_status() -> int:
    all_up = True
    for s in SERVICES.values():
        record = s.running_record()
        reason = s.probe()
        pid = f"pid {record.pid}" if record else "-"
        if record and reason is None:
            state, extra = "up", s.details()
        elif record:
            state, extra = "starting/unhealthy", reason or ""
        else:
            state, extra = "down", ""
            holder = who_listens(s.port)
            if holder is not None or port_answers(s.port):
                who = describe_pid(holder) if holder else "another process"
                extra = f"port held by {who}, not started by this script"
        all_up &= state == "up"
        say(f"{s.name:<9} {s.address:<16} {pid:<11} {state}" + (f"  ({extra})" if extra else ""))
    return 0 if all_up else 3


def cmd_env() -> int:
    for key, value in ENV_EXPORTS.items():
        print(f"export {key}={shlex.quote(value)}")
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="stack.py", description="Local Kafka, PostgreSQL and Redis for callstream.",
        epilog="kafka-class MAIN [ARGS...]: run a Java main class on the Kafka classpath "
               "(extra JVM flags via KAFKA_OPTS).")
    sub = parser.add_subparsers(dest="command", required=True)
    up = sub.add_parser("up", help="start whatever is not running; wait until all answer")
    up.add_argument("--timeout", type=float, help="seconds to wait for each service")
    sub.add_parser("down", help="stop the processes this script started")
    sub.add_parser("status", help="one line per service (exit 3 if any is down)")
    sub.add_parser("env", help="print shell exports for the services' addresses")
    for name, text in (("start", "start these services"), ("stop", "stop these services")):
        p = sub.add_parser(name, help=text)
        p.add_argument("services", nargs="+", choices=sorted(SERVICES))
        if name == "start":
            p.add_argument("--timeout", type=float, help="seconds to wait for each service")
    sub.add_parser("kafka-class", help="run a Java main class on the Kafka classpath")
    return parser


def main(argv: Sequence[str]) -> int:
    # kafka-class passes everything after the class name through untouched (including --help),
    # which argparse would try to interpret.
    if argv and argv[0] == "kafka-class":
        if len(argv) < 2:
            print("usage: stack.py kafka-class MAIN_CLASS [ARGS...]", file=sys.stderr)
            return 2
        kafka = SERVICES["kafka"]
        assert isinstance(kafka, Kafka)
        kafka.run_class(argv[1], argv[2:])
        return 0  # not reached: run_class execs java
    args = build_parser().parse_args(argv)
    if args.command == "up":
        return cmd_up(select([]), args.timeout)
    if args.command == "start":
        return cmd_up(select(args.services), args.timeout)
    if args.command == "down":
        return cmd_down(select([]))
    if args.command == "stop":
        return cmd_down(select(args.services))
    if args.command == "status":
        return cmd_status()
    if args.command == "env":
        return cmd_env()
    raise AssertionError(args.command)


if __name__ == "__main__":
    try:
        sys.exit(main(sys.argv[1:]))
    except StackError as exc:
        print(f"error: {exc}", file=sys.stderr)
        sys.exit(1)
    except KeyboardInterrupt:
        print("\ninterrupted; whatever was started keeps running (stack.py down stops it)",
              file=sys.stderr)
        sys.exit(130)
