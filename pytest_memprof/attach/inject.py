"""Running our bootstrap inside another Python process, and talking to it.

The target executes ``bootstrap.py`` at its next eval breaker, in its main thread with the GIL
held: ``sys.remote_exec`` (PEP 768, CPython 3.14+) arranges exactly that, and before 3.14 gdb
does the same by adding a pending call (``Py_AddPendingCall(PyRun_SimpleString, code)``) while
the process is stopped. Nothing runs inside an arbitrary interrupted instruction: gdb only calls
``mmap`` (a system call, no lock) for a page to hold the code and ``Py_AddPendingCall`` (made to be
called from any thread). The bootstrap then connects to a unix socket in a private folder of ours;
its replies carry a random token, so nothing else that connects can answer in its name.
"""

from __future__ import annotations

import importlib.util
import json
import os
import secrets
import shutil
import socket
import subprocess
import sys
import sysconfig
import tempfile
import time
from pathlib import Path
from typing import Any

from ..errors import MemprofError

PACKAGE_DIR = Path(__file__).resolve().parent.parent
BOOTSTRAP_SOURCE = Path(__file__).with_name("bootstrap.py")
PTRACE_SCOPE = Path("/proc/sys/kernel/yama/ptrace_scope")
CAP_SYS_PTRACE = 19
GDB_TIMEOUT_S = 60.0
REPLY_TIMEOUT_S = 60.0  # once the bootstrap connected: importing us and starting a tracker
# What an unusable gdb says when it cannot call a function in the inferior (Debian's gdb 13 on a
# CPU with AMX registers): another gdb is tried.
GDB_CALL_BROKEN = ("Couldn't write extended state", "Couldn't get extended state", "internal-error")

METHODS = ("auto", "remote_exec", "gdb")


class AttachError(MemprofError):
    """The process could not be reached, or refused what was asked."""


def remote_exec_available() -> bool:
    """Whether this Python has ``sys.remote_exec`` (CPython 3.14+)."""
    return hasattr(sys, "remote_exec")


def choose_method(method: str) -> str:
    """The injection method to use for ``--method METHOD``; raises AttachError if it cannot be had."""
    if method == "auto":
        return "remote_exec" if remote_exec_available() else "gdb"
    if method == "remote_exec" and not remote_exec_available():
        raise AttachError(
            f"--method remote_exec needs Python 3.14 or later (this memprof runs on "
            f"{sys.version_info[0]}.{sys.version_info[1]}); use --method gdb"
        )
    return method


# ---- can the process be traced? ---------------------------------------------------------------


def _has_cap_sys_ptrace() -> bool:
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("CapEff:"):
                return bool(int(line.split()[1], 16) >> CAP_SYS_PTRACE & 1)
    except (OSError, ValueError, IndexError):
        pass
    return os.geteuid() == 0


def ptrace_scope() -> int | None:
    """Yama's ptrace_scope (0 to 3), or None where Yama is not there."""
    try:
        return int(PTRACE_SCOPE.read_text().strip())
    except (OSError, ValueError):
        return None


def check_target(pid: int) -> None:
    """Refuse, with the reason, a pid that is not there, is ours, or that ptrace rules forbid."""
    if pid <= 0:
        raise AttachError(f"{pid} is not a process id")
    if pid == os.getpid():
        raise AttachError("memprof cannot attach to itself")
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        raise AttachError(f"no process with pid {pid}") from None
    except PermissionError:
        raise AttachError(f"pid {pid} belongs to another user: attach as that user or as root") from None
    scope = ptrace_scope()
    if scope == 3:
        raise AttachError(
            f"ptrace is disabled on this machine ({PTRACE_SCOPE} is 3: no process may trace "
            "another until reboot), so memprof cannot attach"
        )
    if scope == 2 and not _has_cap_sys_ptrace():
        raise AttachError(
            f"only a process with CAP_SYS_PTRACE may trace here ({PTRACE_SCOPE} is 2): run memprof attach as root"
        )


def ptrace_refused(pid: int, detail: str) -> AttachError:
    """The error for a ptrace the kernel refused (EPERM), saying the likely rule."""
    scope = ptrace_scope()
    if scope == 1 and not _has_cap_sys_ptrace():
        return AttachError(
            f"ptrace of pid {pid} was refused: {PTRACE_SCOPE} is 1, so only a parent may trace "
            "its own children; run memprof attach as root, or set it to 0"
        )
    return AttachError(
        f"ptrace of pid {pid} was refused ({detail}): the process may have made itself non-dumpable, or memprof "
        "runs without CAP_SYS_PTRACE where it needs it (another user, a container or user namespace)"
    )


# ---- finding a gdb that works -----------------------------------------------------------------

_gdb_checked: dict[str, str | None] = {}


def gdb_candidates() -> list[str]:
    """Where a gdb may be: $MEMPROF_GDB, the gdb-for-pwndbg wheel's beside this Python, PATH's."""
    found: list[str] = []
    if os.environ.get("MEMPROF_GDB"):
        found.append(os.environ["MEMPROF_GDB"])
    if importlib.util.find_spec("gdb_for_pwndbg") is not None:
        wheel = Path(sysconfig.get_path("scripts")) / "gdb"
        if wheel.exists():
            found.append(str(wheel))
    on_path = shutil.which("gdb")
    if on_path:
        found.append(on_path)
    return list(dict.fromkeys(found))


def _gdb_batch(gdb: str) -> list[str]:
    # No user init files, auto-loaded scripts or debuginfod downloads: the same gdb whoever runs it.
    return [gdb, "-nx", "-batch", "-iex", "set debuginfod enabled off", "-iex", "set auto-load off"]


def gdb_problem(gdb: str) -> str | None:
    """Why ``gdb`` cannot inject (it does not run, has no Python, cannot call functions), or None."""
    if gdb in _gdb_checked:
        return _gdb_checked[gdb]
    # A real function call in a process gdb starts itself (allowed under every ptrace_scope but 3):
    # some gdbs run and print their version, then fail at the first call on this CPU.
    stop_self = "import os, signal; os.kill(os.getpid(), signal.SIGSTOP)"
    command = [
        *_gdb_batch(gdb),
        "-ex",
        "run",
        "-ex",
        "python print('memprof-gdb-call', int(gdb.parse_and_eval('(int)getpid()')))",
        "-ex",
        "kill",
        "--args",
        sys.executable,
        "-S",
        "-c",
        stop_self,
    ]
    try:
        result = subprocess.run(
            command, capture_output=True, text=True, timeout=GDB_TIMEOUT_S, stdin=subprocess.DEVNULL
        )
    except (OSError, subprocess.TimeoutExpired) as error:
        problem: str | None = f"{gdb} does not run ({error})"
    else:
        output = result.stdout + result.stderr
        if any(line.startswith("memprof-gdb-call ") for line in result.stdout.splitlines()):
            problem = None
        else:
            lines = [line.strip() for line in output.splitlines() if line.strip()]
            telling = [line for line in lines if any(mark in line for mark in GDB_CALL_BROKEN)]
            problem = f"{gdb} cannot call a function in a process: {(telling or lines or ['no output'])[-1]}"
    _gdb_checked[gdb] = problem
    return problem


def find_gdb() -> str:
    """The first gdb that can call functions in a process; raises AttachError saying why none can."""
    candidates = gdb_candidates()
    if not candidates:
        raise AttachError(
            "attaching before Python 3.14 needs gdb, and none is installed: apt-get install gdb, "
            "or pip install gdb-for-pwndbg, or set MEMPROF_GDB"
        )
    problems = []
    for gdb in candidates:
        problem = gdb_problem(gdb)
        if problem is None:
            return gdb
        problems.append(problem)
    raise AttachError("no usable gdb: " + "; ".join(problems) + " (pip install gdb-for-pwndbg, or set MEMPROF_GDB)")


# ---- the channel and the injection -------------------------------------------------------------


def search_paths() -> list[str]:
    """Where the target imports our pytest_memprof and its dependencies from: this installation's."""
    paths = [str(PACKAGE_DIR.parent), sysconfig.get_path("purelib"), sysconfig.get_path("platlib")]
    return list(dict.fromkeys(paths))


# Never raises (see bootstrap.py); a bootstrap file that is gone means the attaching memprof gave up.
STUB = """\
import sys
tracker = sys.modules.get("pytest_memprof._tracker")
guard = getattr(tracker, "guard_this_thread", None)
try:
    if guard:
        guard(True)
    try:
        with open({path!r}, "rb") as file:
            source = file.read()
    except OSError:
        source = None
    try:
        # Read: a bootstrap that comes after memprof gave up leaves nothing behind it.
        import os
        os.remove({path!r})
        os.rmdir(os.path.dirname({path!r}))
    except OSError:
        pass
    if source is not None:
        exec(compile(source, "<memprof attach>", "exec"), {{"__name__": "__memprof_attach__"}})
except BaseException:
    pass
finally:
    if guard:
        guard(False)
"""


class Channel:
    """A private folder with the unix socket the bootstrap connects to."""

    def __init__(self) -> None:
        self.folder = Path(tempfile.mkdtemp(prefix="memprof-attach-"))
        # The target may run as another user (root attaching to a service): it must reach the
        # socket and the bootstrap, but not list the folder (the bootstrap's name is random), and
        # only the token makes a connection count.
        os.chmod(self.folder, 0o711)
        self.token = secrets.token_hex(16)
        self.socket_path = str(self.folder / "s")
        self._listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self._listener.bind(self.socket_path)
        os.chmod(self.socket_path, 0o666)
        self._listener.listen(4)
        self.for_target: list[Path] = []  # files the target reads, perhaps after we gave up
        self.sent = False  # the target was given the code: it may read them
        self.done = False  # the bootstrap connected: they were read

    def code(self) -> str:
        """The Python source the target runs first: a stub that reads and runs the bootstrap file."""
        path = self.folder / f"bootstrap-{secrets.token_hex(8)}.py"
        call = (
            f"bootstrap({self.socket_path!r}, {self.token!r}, {search_paths()!r}, {str(PACKAGE_DIR)!r}, "
            f"{tuple(sys.version_info[:2])!r})"
        )
        path.write_text(BOOTSTRAP_SOURCE.read_text() + "\n" + call + "\n")
        os.chmod(path, 0o644)
        self.for_target.append(path)
        # One expression statement, so it binds no name where it runs (__main__ for
        # PyRun_SimpleString), and a short one: the interpreter compiles it while a tracker of ours
        # may be recording, and the stub stops this thread's recording before the bootstrap is read
        # and compiled, so that a detach's own work never makes the capture's peak.
        return f"exec({STUB.format(path=str(path))!r}, {{'__name__': '__memprof_attach__'}})\n"

    def exchange(self, request: dict[str, Any], timeout: float, pid: int) -> tuple[dict[str, Any], socket.socket]:
        """Wait for the bootstrap, send ``request``, return its reply and the connection."""
        deadline = time.monotonic() + timeout
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                raise AttachError(
                    f"pid {pid} did not run memprof's code within {timeout:g} s: its main thread runs no Python "
                    "code now (blocked in a call?); try again, or with a longer --timeout"
                )
            self._listener.settimeout(left)
            try:
                connection, _ = self._listener.accept()
            except socket.timeout:
                continue
            connection.settimeout(REPLY_TIMEOUT_S)
            try:
                connection.sendall(json.dumps(request).encode() + b"\n")
                reply = _read_line(connection)
            except (OSError, ValueError):
                connection.close()
                continue
            if reply.get("token") == self.token:
                self.done = True
                return reply, connection
            connection.close()  # not the bootstrap we started

    def close(self) -> None:
        """Stop listening and remove the folder; a bootstrap not run yet is kept (it then finds no socket)."""
        self._listener.close()
        kept = self.for_target if self.sent and not self.done else []
        for entry in self.folder.iterdir():
            if entry not in kept:
                entry.unlink(missing_ok=True)
        if not kept:
            self.folder.rmdir()


def _read_line(connection: socket.socket) -> dict[str, Any]:
    data = b""
    while not data.endswith(b"\n"):
        chunk = connection.recv(65536)
        if not chunk:
            break
        data += chunk
    return json.loads(data.decode())


def inject_remote_exec(pid: int, channel: Channel) -> None:
    """Have the target run the bootstrap with ``sys.remote_exec``."""
    script = channel.folder / f"remote-exec-{secrets.token_hex(8)}.py"
    script.write_text(channel.code())
    os.chmod(script, 0o644)
    channel.for_target.append(script)
    try:
        sys.remote_exec(pid, str(script))  # type: ignore[attr-defined]
    except PermissionError as error:
        raise ptrace_refused(pid, error.strerror or str(error)) from None
    except ProcessLookupError:
        raise AttachError(f"no process with pid {pid}") from None
    except (OSError, RuntimeError, ValueError) as error:
        message = str(error).rstrip(".")
        if "PyRuntime" in message or "debug offsets" in message:
            message = f"pid {pid} does not look like a CPython 3.14+ process ({message})"
        raise AttachError(f"cannot run code in pid {pid} with sys.remote_exec: {message}") from None


GDB_SCRIPT = """\
import gdb

def memprof_inject(path):
    code = open(path, "rb").read() + b"\\0"
    size = (len(code) + 4095) // 4096 * 4096
    try:
        gdb.parse_and_eval("PyRun_SimpleString")
        gdb.parse_and_eval("Py_AddPendingCall")
    except gdb.error:
        print("memprof-gdb-error not-python")
        return
    try:
        # PROT_READ|PROT_WRITE, MAP_PRIVATE|MAP_ANONYMOUS: a page of the process's own to hold the code.
        page = int(gdb.parse_and_eval("(unsigned long)mmap(0, %d, 3, 0x22, -1, 0)" % size))
        if page in (0, 2**64 - 1):
            print("memprof-gdb-error mmap failed in the process")
            return
        gdb.selected_inferior().write_memory(page, code)
        added = int(gdb.parse_and_eval("(int)Py_AddPendingCall((void*)PyRun_SimpleString, (void*)%d)" % page))
    except gdb.error as error:
        print("memprof-gdb-error " + str(error).replace("\\n", " "))
        return
    print("memprof-gdb-ok" if added == 0 else "memprof-gdb-error the pending call queue is full")

memprof_inject(CODE_PATH)
"""


def inject_gdb(pid: int, channel: Channel, gdb: str) -> None:
    """Have the target run the bootstrap as a pending call added by gdb."""
    code_path = channel.folder / "code.py"
    code_path.write_text(channel.code())
    script = channel.folder / "inject-gdb.py"
    script.write_text(f"CODE_PATH = {str(code_path)!r}\n" + GDB_SCRIPT)
    command = [
        *_gdb_batch(gdb),
        "-p",
        str(pid),
        "-x",
        str(script),
    ]
    try:
        result = subprocess.run(
            command, capture_output=True, text=True, timeout=GDB_TIMEOUT_S, stdin=subprocess.DEVNULL
        )
    except subprocess.TimeoutExpired:
        raise AttachError(f"gdb did not finish with pid {pid} within {GDB_TIMEOUT_S:g} s") from None
    except OSError as error:
        raise AttachError(f"cannot run {gdb}: {error.strerror or error}") from None
    output = result.stdout + result.stderr
    if "memprof-gdb-ok" in result.stdout:
        return
    if "ptrace: Operation not permitted" in output:
        raise ptrace_refused(pid, "Operation not permitted")
    if "ptrace: No such process" in output:
        raise AttachError(f"no process with pid {pid}")
    for line in result.stdout.splitlines():
        if line.startswith("memprof-gdb-error "):
            reason = line[len("memprof-gdb-error ") :]
            if reason == "not-python":
                raise AttachError(f"pid {pid} is not a Python process (gdb finds no Py_AddPendingCall in it)")
            raise AttachError(f"gdb could not add memprof's code to pid {pid}: {reason}")
    last = [line.strip() for line in output.splitlines() if line.strip()]
    raise AttachError(f"gdb failed on pid {pid}: {last[-1] if last else f'exit code {result.returncode}'}")


def run_in_process(
    pid: int, request: dict[str, Any], *, method: str = "auto", timeout: float = 10.0
) -> tuple[dict[str, Any], socket.socket]:
    """Send ``request`` to the agent inside ``pid``; return its reply and the open connection."""
    method = choose_method(method)
    check_target(pid)
    gdb = find_gdb() if method == "gdb" else None
    channel = Channel()
    try:
        if gdb is not None:
            inject_gdb(pid, channel, gdb)
        else:
            inject_remote_exec(pid, channel)
        channel.sent = True
        reply, connection = channel.exchange(request, timeout, pid)
    finally:
        channel.close()
    return reply, connection
