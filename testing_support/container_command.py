"""Run the Docker image's command without Docker.

No container engine runs on the development machines or in CI, so the image is
proven the next best way: read the Dockerfile, lay out the files its COPY
lines put in the image (minus what .dockerignore keeps out), set the
environment its ENV lines set, and run its CMD there, with the venv's
gunicorn standing in for the one the image installs from the same
requirements file (the one its `pip install -r` names: requirements-serve.txt).
The venv also holds TensorFlow and the development tools (pytest, matplotlib,
Jupyter...), which the image does not: a guard on the server's imports hides
every package that file does not bring in, so the app finds exactly the
packages it would find in the image. (tests/test_serving_without_tensorflow.py
goes further: a real venv holding only those packages.) What differs
from the image is the interpreter build, the user, and one thing on purpose: `--bind
:$PORT` (all interfaces, as Cloud Run needs) becomes `--bind 127.0.0.1:$PORT`
so a test never opens a port to the network.

Used by tests/test_container_command.py and the benchmarks.
"""
from __future__ import annotations

import contextlib
import http.client
import json
import os
import re
import shlex
import shutil
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent
DOCKERFILE = REPO_ROOT / "Dockerfile"
DOCKERIGNORE = REPO_ROOT / ".dockerignore"
CLOUD_RUN_BIND = "--bind :$PORT"
LOOPBACK_BIND = "--bind 127.0.0.1:$PORT"


@dataclass
class DockerfileSpec:
    env: dict[str, str] = field(default_factory=dict)
    workdir: str = "/"
    copies: list[tuple[list[str], str]] = field(default_factory=list)  # (sources, destination)
    user: str | None = None
    cmd: str | None = None  # shell form, as /bin/sh -c runs it
    instructions: list[tuple[str, str]] = field(default_factory=list)  # (KEYWORD, arguments)


def _logical_lines(text: str):
    """Dockerfile lines with comments dropped and backslash continuations joined."""
    pending = ""
    for raw in text.splitlines():
        stripped = raw.strip()
        if not pending and (not stripped or stripped.startswith("#")):
            continue
        if pending and stripped.startswith("#"):
            continue  # a comment inside a continued instruction
        if stripped.endswith("\\"):
            pending += stripped[:-1] + " "
            continue
        yield (pending + stripped).strip()
        pending = ""
    if pending.strip():
        yield pending.strip()


def parse_dockerfile(path: str | Path = DOCKERFILE) -> DockerfileSpec:
    """The parts of a single-stage Dockerfile that decide how the service runs."""
    spec = DockerfileSpec()
    for line in _logical_lines(Path(path).read_text(encoding="utf-8")):
        keyword, _, arguments = line.partition(" ")
        keyword, arguments = keyword.upper(), arguments.strip()
        spec.instructions.append((keyword, arguments))
        if keyword == "ENV":
            for pair in shlex.split(arguments):
                name, equals, value = pair.partition("=")
                if not equals:
                    raise ValueError(f"ENV {arguments!r}: use the NAME=value form")
                spec.env[name] = value
        elif keyword == "WORKDIR":
            spec.workdir = arguments
        elif keyword == "COPY":
            words = [w for w in shlex.split(arguments) if not w.startswith("--")]
            spec.copies.append((words[:-1], words[-1]))
        elif keyword == "USER":
            spec.user = arguments
        elif keyword == "CMD":
            if arguments.startswith("["):
                raise ValueError("CMD must be in shell form, so that $PORT expands: " + arguments)
            spec.cmd = arguments
    return spec


def _ignore_regex(pattern: str) -> re.Pattern:
    """A .dockerignore pattern (Go filepath.Match plus `**`) as a regex on a relative path."""
    pattern = pattern.strip().lstrip("/").rstrip("/")
    out, i = "", 0
    while i < len(pattern):
        if pattern.startswith("**/", i):
            out, i = out + "(?:.*/)?", i + 3
        elif pattern.startswith("**", i):
            out, i = out + ".*", i + 2
        elif pattern[i] == "*":
            out, i = out + "[^/]*", i + 1
        elif pattern[i] == "?":
            out, i = out + "[^/]", i + 1
        else:
            out, i = out + re.escape(pattern[i]), i + 1
    return re.compile(out + "$")


def dockerignore_rules(path: str | Path = DOCKERIGNORE) -> list[tuple[bool, re.Pattern]]:
    """(is_exception, regex) per line, in order; the last rule that matches wins."""
    rules = []
    if Path(path).exists():
        for line in Path(path).read_text(encoding="utf-8").splitlines():
            line = line.strip()
            if line and not line.startswith("#"):
                negate = line.startswith("!")
                rules.append((negate, _ignore_regex(line[1:] if negate else line)))
    return rules


def is_ignored(relative_path: str, rules) -> bool:
    """Whether Docker leaves `relative_path` (posix, from the context root) out.

    A pattern that matches a folder leaves out everything under it.
    """
    parts = relative_path.strip("/").split("/")
    ignored = False
    for negate, regex in rules:
        if any(regex.match("/".join(parts[:n])) for n in range(1, len(parts) + 1)):
            ignored = not negate
    return ignored


def stage_image_files(destination: Path, spec: DockerfileSpec | None = None,
                      context: Path = REPO_ROOT) -> Path:
    """Copy what the Dockerfile's COPY lines put under WORKDIR into `destination`.

    Returns the folder that stands for WORKDIR. Only relative destinations
    (under WORKDIR) are staged; the image's requirements file is installed by
    pip there and is the venv here.
    """
    spec = spec or parse_dockerfile()
    rules = dockerignore_rules(context / ".dockerignore")
    destination.mkdir(parents=True, exist_ok=True)
    for sources, target in spec.copies:
        if target.startswith("/"):
            continue
        into_folder = target.endswith("/") or target in (".", "./") or len(sources) > 1
        for source in sources:
            for match in sorted(context.glob(source.rstrip("/"))):
                if is_ignored(match.relative_to(context).as_posix(), rules):
                    continue
                if match.is_dir():  # Docker copies a folder's contents, not the folder
                    for file in sorted(match.rglob("*")):
                        if file.is_file() and not is_ignored(file.relative_to(context).as_posix(), rules):
                            _copy_file(file, destination / target / file.relative_to(match))
                else:
                    _copy_file(match, destination / target / match.name if into_folder
                               else destination / target)
    return destination


# In python:3.11-slim beside what the requirements file installs.
BASE_IMAGE_DISTRIBUTIONS = frozenset({"pip", "setuptools", "wheel"})


def canonical_name(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def image_requirements_file(spec: DockerfileSpec | None = None, context: Path = REPO_ROOT) -> Path:
    """The requirements file the Dockerfile's `pip install -r FILE` installs."""
    spec = spec or parse_dockerfile()
    for keyword, arguments in spec.instructions:
        found = re.search(r"pip install .*-r\s+(\S+)", arguments) if keyword == "RUN" else None
        if found:
            return context / found.group(1)
    raise ValueError("the Dockerfile has no `RUN pip install ... -r FILE`")


def requirement_names(requirements_file: str | Path) -> list[str]:
    """The distributions a requirements file names, following its `-r` includes."""
    from packaging.requirements import Requirement

    names = []
    for line in Path(requirements_file).read_text(encoding="utf-8").splitlines():
        line = line.split("#", 1)[0].strip()
        if line.startswith("-r "):
            names += requirement_names(Path(requirements_file).parent / line[3:].strip())
        elif line and not line.startswith("-"):
            names.append(Requirement(line).name)
    return names


def requirements_closure(requirements_file: str | Path | None = None) -> set[str]:
    """The distributions `pip install -r requirements_file` (default: the image's)
    brings in (canonical names), following the dependencies of what is installed here."""
    from importlib.metadata import PackageNotFoundError, distribution
    from packaging.requirements import Requirement

    pending = requirement_names(requirements_file or image_requirements_file())
    closure: set[str] = set()
    while pending:
        name = canonical_name(pending.pop())
        if name in closure:
            continue
        closure.add(name)
        try:
            requires = distribution(name).requires or []
        except PackageNotFoundError:
            continue
        for requirement in map(Requirement, requires):
            if requirement.marker is None or requirement.marker.evaluate({"extra": ""}):
                pending.append(requirement.name)
    return closure


_IMPORT_GUARD = '''"""Written by testing_support/container_command.py: hide the packages the image lacks."""
import sys

NOT_IN_IMAGE = frozenset({blocked!r})  # not in {requirements}


class NotInImage:
    @classmethod
    def find_spec(cls, name, path=None, target=None):
        if name.partition(".")[0] in NOT_IN_IMAGE:
            raise ModuleNotFoundError(
                f"No module named {{name!r}} (not installed in the image: not in {requirements})",
                name=name)
        return None


sys.meta_path.insert(0, NotInImage)
'''


def write_import_guard(directory: Path, requirements_file: str | Path | None = None) -> Path:
    """A sitecustomize.py in `directory` (put it on PYTHONPATH) that makes every
    module of an installed distribution outside `requirements_file` (default:
    the image's) unimportable."""
    from importlib.metadata import packages_distributions

    requirements_file = Path(requirements_file or image_requirements_file())
    allowed = requirements_closure(requirements_file) | BASE_IMAGE_DISTRIBUTIONS
    blocked = sorted(module for module, dists in packages_distributions().items()
                     if not {canonical_name(d) for d in dists} & allowed)
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "sitecustomize.py").write_text(
        _IMPORT_GUARD.format(blocked=blocked, requirements=requirements_file.name), encoding="utf-8")
    return directory


def _copy_file(source: Path, target: Path) -> None:
    target.parent.mkdir(parents=True, exist_ok=True)
    shutil.copy2(source, target)


def loopback_command(cmd: str, workers: int | None = None, threads: int | None = None,
                     worker_class: str | None = None) -> str:
    """The CMD with its bind on loopback, and optionally other worker/thread
    counts or another worker class (on the command line, which overrides the
    config file's)."""
    if CLOUD_RUN_BIND not in cmd:
        raise ValueError(f"the CMD must bind all interfaces on $PORT ({CLOUD_RUN_BIND!r}): {cmd}")
    cmd = cmd.replace(CLOUD_RUN_BIND, LOOPBACK_BIND)
    if workers is not None:
        cmd, count = re.subn(r"--workers \d+", f"--workers {workers}", cmd)
        assert count == 1, "the CMD names --workers once"
    if threads is not None:
        cmd, count = re.subn(r"--threads \d+", f"--threads {threads}", cmd)
        assert count == 1, "the CMD names --threads once"
    if worker_class is not None:
        cmd, count = re.subn(r"--config (\S+)", rf"--config \1 --worker-class {worker_class}", cmd)
        assert count == 1, "the CMD names --config once"
    return cmd


def container_environment(spec: DockerfileSpec, port: int, import_guard: Path | None = None,
                          venv: Path | None = None, **overrides: str) -> dict[str, str]:
    """The image's ENV, PORT as Cloud Run sets it, and the venv's bin first on PATH.

    Starts from a near-empty environment, as a container does, so settings in
    the developer's shell (MODEL_PATH, LABELS_DIR, ...) do not leak in.
    `import_guard`: a folder from write_import_guard(), put on PYTHONPATH.
    `venv`: another virtual environment's gunicorn and Python (default: this one's).
    """
    env = {name: os.environ[name] for name in ("HOME", "LANG", "TMPDIR") if name in os.environ}
    bin_dir = Path(venv) / "bin" if venv is not None else Path(sys.executable).parent
    env["PATH"] = f"{bin_dir}{os.pathsep}/usr/local/bin:/usr/bin:/bin"
    if import_guard is not None:
        env["PYTHONPATH"] = str(import_guard)
    env.update(spec.env)
    env["PORT"] = str(port)
    env.update({k: str(v) for k, v in overrides.items()})
    return env


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _non_blank_lines(path: Path) -> list[str]:
    return [line for line in path.read_text(encoding="utf-8", errors="replace").splitlines() if line.strip()]


@dataclass
class RunningContainer:
    process: subprocess.Popen
    port: int
    log_path: Path
    stderr_path: Path

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def log_lines(self) -> list[str]:
        """What the server wrote to stdout: the app's and gunicorn's JSON log."""
        return _non_blank_lines(self.log_path)

    def stderr_lines(self) -> list[str]:
        """What the process wrote to stderr: native libraries' start-up lines
        (TensorFlow's C++ logging writes there before Python runs any code)."""
        return _non_blank_lines(self.stderr_path)

    def worker_pids(self) -> list[int]:
        return child_pids(self.process.pid)

    def stop(self, timeout: float = 30.0) -> int:
        """SIGTERM, as Cloud Run sends it; the exit status."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
        try:
            return self.process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
            raise


@contextlib.contextmanager
def run_container_command(workdir: Path, log_path: Path, *, spec: DockerfileSpec | None = None,
                          workers: int | None = None, threads: int | None = None,
                          worker_class: str | None = None, requirements_file: str | Path | None = None,
                          venv: Path | None = None, **env_overrides: str):
    """Start the Dockerfile's CMD with /bin/sh from `workdir`, only the image's
    packages importable; stop it with SIGTERM on exit.

    `workers`, `threads`, `worker_class`: instead of the CMD's (loopback_command).
    `requirements_file`: make importable what that file installs instead of
    what the image installs (requirements.txt: the Keras-served baseline).
    `venv`: run another virtual environment's gunicorn, as it is (no guard).
    Its stdout goes to `log_path` and its stderr to `<log_path>.stderr`, kept
    apart as a container runtime keeps them (Cloud Run records each line of
    either stream as one log entry). Files, not pipes nobody drains: a full pipe
    would block the server on its next log line.
    """
    spec = spec or parse_dockerfile()
    port = free_port()
    command = loopback_command(spec.cmd, workers, threads, worker_class)
    log_path = Path(log_path)
    stderr_path = log_path.with_name(log_path.name + ".stderr")
    guard = None if venv is not None else write_import_guard(log_path.parent / "import-guard", requirements_file)
    with open(log_path, "wb") as log, open(stderr_path, "wb") as stderr:
        process = subprocess.Popen(["/bin/sh", "-c", command], cwd=workdir,
                                   env=container_environment(spec, port, guard, venv, **env_overrides),
                                   stdout=log, stderr=stderr)
    running = RunningContainer(process, port, log_path, stderr_path)
    try:
        yield running
    finally:
        if process.poll() is None:
            running.stop()


def kill_process_group(process: subprocess.Popen) -> None:
    """SIGKILL a server started with start_new_session=True, workers and all at once
    (as an OOM kill or a power cut would)."""
    os.killpg(process.pid, signal.SIGKILL)
    process.wait(timeout=30)


def stop_process_group(process: subprocess.Popen | None, timeout: float = 30.0) -> None:
    """SIGTERM a server started with start_new_session=True and its workers; SIGKILL if it lingers."""
    if process is None or process.poll() is not None:
        return
    os.killpg(process.pid, signal.SIGTERM)
    try:
        process.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        kill_process_group(process)


def child_pids(pid: int) -> list[int]:
    children = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text()
            except OSError:
                continue
            # Field 4 (after the parenthesised command name) is the parent pid.
            if int(stat.rsplit(")", 1)[1].split()[1]) == pid:
                children.append(int(entry.name))
    return sorted(children)


def memory_kib(pid: int) -> dict[str, int]:
    """A process's memory in KiB: VmRSS (resident now), VmHWM (peak resident),
    RssAnon (its own heap: what each extra worker costs), RssFile (mapped files,
    mostly TensorFlow's shared libraries, whose pages all workers share) and Pss
    (resident with shared pages divided among the processes sharing them)."""
    values = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        name, _, rest = line.partition(":")
        if name in ("VmRSS", "VmHWM", "RssAnon", "RssFile"):
            values[name] = int(rest.split()[0])
    for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines():
        name, _, rest = line.partition(":")
        if name == "Pss":
            values["Pss"] = int(rest.split()[0])
    return values


def cpu_seconds(pid: int) -> float:
    """User + system CPU time a process has used so far (Linux /proc)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def http_request(port: int, method: str, path: str, body: bytes | None = None,
                 timeout: float = 60.0) -> tuple[int, bytes]:
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        headers = {"Content-Type": "application/json"} if body is not None else {}
        connection.request(method, path, body=body, headers=headers)
        response = connection.getresponse()
        return response.status, response.read()
    finally:
        connection.close()


def wait_for_status(port: int, path: str, process: subprocess.Popen, *, method: str = "GET",
                    body: bytes | None = None, timeout: float = 120.0, interval: float = 0.02) -> float:
    """Retry until `path` answers 200; the seconds waited. Fails fast if the process dies."""
    started = time.perf_counter()
    while time.perf_counter() - started < timeout:
        if process.poll() is not None:
            raise RuntimeError(f"the server exited with status {process.returncode} before {path} answered")
        try:
            status, _ = http_request(port, method, path, body, timeout=max(1.0, timeout))
            if status == 200:
                return time.perf_counter() - started
        except OSError:
            pass  # not listening yet
        time.sleep(interval)
    raise TimeoutError(f"{path} did not answer 200 within {timeout} s")


def pen_drawing_pngs(pen_digits_path: str, per_label: int = 1, writer_group: str | None = None):
    """[(label, PNG)]: pen-set digits drawn as the page exports them (white ink on
    a transparent 280 px canvas, stroke 6.5% of its width), `per_label` per digit."""
    from digit_recognition.datasets import load_pen_digits
    from digit_recognition.strokes import CanvasParams, render_strokes, to_png_bytes

    params = CanvasParams(280, 0.7, 0.0, 0.0, 0.065, "white_on_transparent")
    chosen: dict[int, list] = {label: [] for label in range(10)}
    for digit in load_pen_digits(pen_digits_path):
        if writer_group is not None and digit.writer_group != writer_group:
            continue
        if len(chosen[digit.label]) < per_label:
            chosen[digit.label].append(digit)
        if all(len(v) == per_label for v in chosen.values()):
            break
    return [(label, to_png_bytes(render_strokes(d.strokes, params)))
            for label in range(10) for d in chosen[label]]


def predict_body(png: bytes) -> bytes:
    import base64

    return json.dumps({"image": "data:image/png;base64," + base64.b64encode(png).decode("ascii")}).encode()



def build_venv(folder: Path, requirements_file: str | Path) -> Path:
    """A fresh virtual environment at `folder` with only `requirements_file`
    installed, as the image's `pip install -r` does; reused when a previous
    call completed it. Raises RuntimeError with pip's output if pip fails."""
    folder = Path(folder)
    done = folder / ".complete"
    if done.exists():
        return folder
    shutil.rmtree(folder, ignore_errors=True)
    subprocess.run([sys.executable, "-m", "venv", str(folder)], check=True, timeout=300)
    result = subprocess.run([str(folder / "bin" / "python"), "-m", "pip", "install", "--quiet",
                             "--disable-pip-version-check", "-r", str(requirements_file)],
                            capture_output=True, text=True, timeout=1800)
    if result.returncode != 0:
        raise RuntimeError(f"pip install -r {requirements_file} failed:\n"
                           + result.stdout[-2000:] + result.stderr[-3000:])
    done.touch()
    return folder


def site_packages_bytes(venv: Path) -> int:
    """Bytes of everything installed in a venv's site-packages (what the image's layer holds)."""
    return sum(f.stat().st_size for f in Path(venv).glob("lib/python*/site-packages/**/*")
               if f.is_file() and not f.is_symlink())


def installed_bytes(distributions: set[str]) -> int:
    """Bytes of the files these distributions installed in this interpreter's environment."""
    from importlib.metadata import PackageNotFoundError, distribution

    total = 0
    for name in distributions:
        try:
            files = distribution(name).files or []
        except PackageNotFoundError:
            continue
        for file in files:
            path = Path(file.locate())
            if path.is_file() and not path.is_symlink():
                total += path.stat().st_size
    return total
