"""A real single-node OpenSearch without Docker: Maven resolves the jars and plugin zips that
opensearch/node/pom.xml pins (cached in the user's Maven repository, offline once resolved) and
a JVM runs the pom's launcher, which loads every module and plugin from one classpath.

For a laptop with a JDK and for the tests: it binds 127.0.0.1 only and runs without the
security plugin (plain HTTP, no users). Production is docker-compose's cluster.
"""

from __future__ import annotations

import ctypes
import fcntl
import json
import logging
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType

from engines.base import EngineError
from shoprank.errors import UserInputError

log = logging.getLogger(__name__)

LAUNCHER_CLASS = "shoprank.opensearch.SingleNode"
# The shoprank plugin unpacked, as opensearch/plugin's assembly leaves it in target/.
PLUGIN_FOLDER = "shoprank-opensearch-plugin"
HEAP_PATTERN = re.compile(r"[1-9][0-9]*[kmgKMG]?")
DEFAULT_HEAP = "1g"
JAVA_MIN_VERSION = 17
# Lines of the node's log shown when it fails to start.
LOG_TAIL_LINES = 40
# The distribution's jvm.options that matter off the distribution's scripts.
JVM_OPTIONS = (
    "-XX:+UseG1GC",
    "-XX:+ExitOnOutOfMemoryError",
    "-Dfile.encoding=UTF-8",
    "-Djava.awt.headless=true",
    "-Djava.locale.providers=SPI,COMPAT",
    "-Dlog4j2.formatMsgNoLookups=true",
    "-Dlog4j2.disable.jmx=true",
    "-Dio.netty.noUnsafe=true",
    "-Dio.netty.noKeySetOptimization=true",
    "-Dio.netty.recycler.maxCapacityPerThread=0",
)


class NodeUnavailableError(EngineError):
    """No JDK or Maven here, or the pinned artifacts could not be resolved."""


def missing_tools() -> str | None:
    """Why a node cannot run here (no java 17+ or no mvn on PATH), or None when it can."""
    java, mvn = shutil.which("java"), shutil.which("mvn")
    if java is None or mvn is None:
        absent = " and ".join(name for name, path in (("java", java), ("mvn", mvn)) if path is None)
        return f"{absent} not on PATH: a local OpenSearch node needs a JDK {JAVA_MIN_VERSION}+ and Maven"
    version = java_major_version(java)
    if version is not None and version < JAVA_MIN_VERSION:
        return f"java on PATH is {version}; a local OpenSearch node needs a JDK {JAVA_MIN_VERSION}+"
    return None


def java_major_version(java: str) -> int | None:
    """The major version `java -version` reports (None when unreadable)."""
    try:
        out = subprocess.run([java, "-version"], capture_output=True, text=True, timeout=30, check=False).stderr
    except (OSError, subprocess.TimeoutExpired):
        return None
    match = re.search(r'version "(\d+)(?:\.(\d+))?', out)
    if match is None:
        return None
    major = int(match.group(1))
    return int(match.group(2) or 0) if major == 1 else major


@dataclass(frozen=True)
class NodeBuild:
    """What `mvn compile` of the node pom leaves in its target/, and the unpacked plugin folders
    built beside it (the shoprank plugin), loaded from the classpath like the zip plugins."""

    target: Path
    extra_plugins: tuple[Path, ...] = ()

    @property
    def classpath_file(self) -> Path:
        """The core jars, as Maven resolved them."""
        return self.target / "classpath.txt"

    @property
    def plugins_dir(self) -> Path:
        """One unpacked folder per plugin zip."""
        return self.target / "plugins"

    @property
    def classes_dir(self) -> Path:
        """The compiled launcher."""
        return self.target / "classes"

    def is_complete(self) -> bool:
        """True when every output is there and every jar it names still exists."""
        if not (self.classes_dir / (LAUNCHER_CLASS.replace(".", "/") + ".class")).is_file():
            return False
        if not self.classpath_file.is_file() or not self.plugins_dir.is_dir():
            return False
        return all(Path(jar).is_file() for jar in self.core_jars())

    def core_jars(self) -> list[Path]:
        """The jars in classpath.txt."""
        text = self.classpath_file.read_text().strip()
        return [Path(entry) for entry in text.split(os.pathsep) if entry]

    def classpath(self) -> list[Path]:
        """Launcher, core jars, then every plugin's jars; one jar per artifact (the first wins)."""
        jars = [*self.core_jars(), *sorted(self.plugins_dir.glob("*/*.jar"))]
        for plugin in self.extra_plugins:
            jars += sorted(plugin.glob("*.jar"))
        return [self.classes_dir, *dedupe_jars(jars)]

    def plugin_roots(self) -> list[Path]:
        """The folders whose subfolders the launcher loads as plugins (one --plugins each)."""
        return [self.plugins_dir, *(plugin.parent for plugin in self.extra_plugins)]


def artifact_name(jar: Path) -> str:
    """A jar's artifact name without its version: `guava-32.1.3-jre.jar` -> `guava`."""
    stem = jar.name.removesuffix(".jar")
    match = re.match(r"(.+?)-\d[^-]*(?:-.*)?$", stem)
    return match.group(1) if match else stem


def dedupe_jars(jars: Sequence[Path]) -> list[Path]:
    """Keep the first jar of each artifact: a plugin zip's copy of a library core already has
    would put two versions of the same classes on one classpath."""
    seen: dict[str, Path] = {}
    kept: list[Path] = []
    for jar in jars:
        name = artifact_name(jar)
        if name in seen:
            if seen[name].name != jar.name:
                log.info("classpath: %s already has %s; leaving out %s", name, seen[name].name, jar)
            continue
        seen[name] = jar
        kept.append(jar)
    return kept


def resolve(node_dir: Path) -> NodeBuild:
    """Resolve and compile the node pom (offline first, then from the registry), and build the
    shoprank plugin beside it (`../plugin`) when it is missing or older than its sources; idempotent.

    A lock file keeps two processes (test workers, a second `opensearch run`) from building at once.
    """
    build = _resolve_node(node_dir)
    plugin_dir = node_dir.parent / "plugin"
    if not (plugin_dir / "pom.xml").is_file():
        return build
    return NodeBuild(build.target, extra_plugins=(resolve_plugin(plugin_dir),))


def _maven(base: list[str], what: str) -> None:
    """Run a Maven command offline, then online when the local repository lacks something."""
    offline = subprocess.run([*base, "-o"], capture_output=True, text=True, check=False)
    if offline.returncode != 0:
        log.info("resolving %s with Maven (first run downloads into ~/.m2)", what)
        online = subprocess.run(base, capture_output=True, text=True, check=False)
        if online.returncode != 0:
            tail = "\n".join((online.stdout + online.stderr).strip().splitlines()[-20:])
            raise NodeUnavailableError(f"`{' '.join(base)}` failed:\n{tail}")


def resolve_plugin(plugin_dir: Path) -> Path:
    """Package the shoprank plugin (`mvn package`, tests left to `mvn verify`) unless its unpacked
    folder is newer than every source; the folder (plugin-descriptor.properties and jars)."""
    target = plugin_dir / "target"
    unpacked = target / PLUGIN_FOLDER
    descriptor = unpacked / "plugin-descriptor.properties"
    target.mkdir(exist_ok=True)
    with open(target / ".resolve.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        sources = [
            plugin_dir / "pom.xml",
            plugin_dir.parent / "pom.xml",
            *(plugin_dir / "src").rglob("*"),
            *(plugin_dir.parent.parent / "proto").rglob("*.proto"),
        ]
        built = descriptor.stat().st_mtime if descriptor.is_file() else None
        if built is None or any(s.is_file() and s.stat().st_mtime > built for s in sources):
            _maven(
                ["mvn", "-q", "-B", "-f", str(plugin_dir / "pom.xml"), "package", "-DskipTests"], "the shoprank plugin"
            )
            descriptor.touch()
    if not descriptor.is_file():
        raise NodeUnavailableError(f"`mvn package` of {plugin_dir / 'pom.xml'} left no {descriptor}")
    return unpacked


def _resolve_node(node_dir: Path) -> NodeBuild:
    reason = missing_tools()
    if reason:
        raise NodeUnavailableError(reason)
    pom = node_dir / "pom.xml"
    if not pom.is_file():
        raise NodeUnavailableError(f"{pom} not found (opensearch_dir points elsewhere?)")
    build = NodeBuild(node_dir / "target")
    build.target.mkdir(exist_ok=True)
    with open(build.target / ".resolve.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if build.is_complete() and _newer_than_sources(build, node_dir):
            return build
        _maven(["mvn", "-q", "-B", "-f", str(pom), "compile"], "the OpenSearch node artifacts (~80 MB)")
    if not build.is_complete():
        raise NodeUnavailableError(f"`mvn compile` of {pom} left no complete build in {build.target}")
    return build


def _newer_than_sources(build: NodeBuild, node_dir: Path) -> bool:
    built = build.classpath_file.stat().st_mtime
    sources = [node_dir / "pom.xml", node_dir.parent / "pom.xml", *(node_dir / "src").rglob("*.java")]
    return all(source.stat().st_mtime <= built for source in sources if source.is_file())


def free_port() -> int:
    """A TCP port on 127.0.0.1 nobody listens on now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def check_heap(heap: str) -> str:
    """A JVM heap size such as 512m or 1g; anything else is refused with what to pass."""
    if not HEAP_PATTERN.fullmatch(heap):
        raise UserInputError(f"heap {heap!r} is not a JVM size: pass e.g. 512m or 1g")
    return heap


def cluster_status(url: str, timeout_s: float = 5.0) -> str | None:
    """`_cluster/health` status at url (green/yellow/red), or None while it does not answer."""
    try:
        with urllib.request.urlopen(f"{url}/_cluster/health", timeout=timeout_s) as response:
            status = json.loads(response.read()).get("status")
            return str(status) if status else None
    except (urllib.error.URLError, OSError, ValueError):
        return None


_LIBC = ctypes.CDLL(None, use_errno=True) if sys.platform.startswith("linux") else None
PR_SET_PDEATHSIG = 1


def _die_with_parent() -> None:
    # Runs in the child before exec: on Linux the JVM gets SIGTERM when the process that
    # started it dies, so a killed test run or CLI does not leave a node behind.
    if _LIBC is not None:
        _LIBC.prctl(PR_SET_PDEATHSIG, signal.SIGTERM)


class LocalNode:
    """One JVM running the single-node launcher; a context manager that stops it."""

    def __init__(
        self,
        build: NodeBuild,
        home: Path,
        http_port: int = 9200,
        heap: str = DEFAULT_HEAP,
        settings: Mapping[str, str] | None = None,
    ) -> None:
        self.build = build
        self.home = home.resolve()
        self.http_port = http_port
        self.heap = check_heap(heap)
        self.settings = dict(settings or {})
        self.process: subprocess.Popen[bytes] | None = None
        self._log_start = 0

    @property
    def url(self) -> str:
        """Where the node's HTTP API listens."""
        return f"http://127.0.0.1:{self.http_port}"

    @property
    def log_path(self) -> Path:
        """The node's console output."""
        return self.home / "logs" / "node.log"

    def command(self) -> list[str]:
        """The java command line."""
        java = shutil.which("java") or "java"
        classpath = os.pathsep.join(str(path) for path in self.build.classpath())
        args = [
            java,
            f"-Xms{self.heap}",
            f"-Xmx{self.heap}",
            *JVM_OPTIONS,
            f"-Djava.io.tmpdir={self.home / 'tmp'}",
            "-cp",
            classpath,
            LAUNCHER_CLASS,
            "--home",
            str(self.home),
            "--http-port",
            str(self.http_port),
        ]
        for root in self.build.plugin_roots():
            args += ["--plugins", str(root)]
        for key, value in self.settings.items():
            args += ["-E", f"{key}={value}"]
        return args

    def start(self, timeout_s: float = 180.0) -> LocalNode:
        """Start the JVM and wait for `_cluster/health` green or yellow; raises with the log's tail."""
        if cluster_status(self.url, timeout_s=1.0) is not None:
            raise EngineError(f"something already answers at {self.url}: stop it or pass another --http-port")
        for sub in ("logs", "tmp"):
            (self.home / sub).mkdir(parents=True, exist_ok=True)
        with open(self.log_path, "ab") as out:
            self._log_start = out.tell()
            self.process = subprocess.Popen(
                self.command(), stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                preexec_fn=_die_with_parent,
            )  # fmt: skip
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                tail = self.log_tail()
                if "failed to obtain node locks" in tail:
                    raise EngineError(f"another OpenSearch node is using {self.home}: stop it or pass another --home")
                raise EngineError(f"the OpenSearch node exited with {self.process.returncode}:\n{tail}")
            if cluster_status(self.url) in ("green", "yellow"):
                return self
            time.sleep(0.5)
        self.stop()
        raise EngineError(f"the OpenSearch node was not healthy within {timeout_s:.0f}s:\n{self.log_tail()}")

    def log_tail(self, lines: int = LOG_TAIL_LINES) -> str:
        """The last lines this run wrote to the node's log."""
        try:
            with open(self.log_path, "rb") as log_file:
                log_file.seek(self._log_start)
                text = log_file.read().decode(errors="replace")
            return "\n".join(text.splitlines()[-lines:])
        except OSError:
            return f"(no log at {self.log_path})"

    def wait(self) -> int:
        """Block until the JVM exits; its exit code."""
        if self.process is None:
            return 0
        return self.process.wait()

    def stop(self, timeout_s: float = 60.0) -> None:
        """SIGTERM (the launcher closes the node), then SIGKILL if it does not exit in time."""
        process, self.process = self.process, None
        if process is None or process.poll() is not None:
            return
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=timeout_s)
        except subprocess.TimeoutExpired:
            log.warning("the OpenSearch node ignored SIGTERM for %.0fs; killing it", timeout_s)
            process.kill()
            process.wait()

    def __enter__(self) -> LocalNode:
        return self

    def __exit__(
        self, kind: type[BaseException] | None, value: BaseException | None, traceback: TracebackType | None
    ) -> None:
        self.stop()
