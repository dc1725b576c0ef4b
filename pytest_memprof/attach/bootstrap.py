"""The first code memprof runs inside the target: connect back, import our pytest_memprof, hand over.

This file's source is what ``inject.py`` has the target execute, in a namespace of its own, followed
by a call of ``bootstrap(...)``: it defines nothing else and imports nothing from the package (it
runs before the package is importable there). It never raises: under gdb it runs as a pending
call, whose failure would surface as an error in whatever code the target was running.
"""


def bootstrap(socket_path, token, search_paths, package_dir, ours_version):
    """Connect to the attaching memprof, load pytest_memprof from ``search_paths``, run the agent."""
    import json
    import os
    import socket
    import sys

    try:
        connection = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        connection.settimeout(30)
        connection.connect(socket_path)
    except OSError:
        return  # the attaching memprof gave up waiting: nothing is asked of us any more

    def refuse(message):
        try:
            connection.sendall(json.dumps({"token": token, "ok": False, "message": message}).encode() + b"\n")
        except OSError:
            pass
        connection.close()

    def other_copy(loaded):
        # A pytest_memprof the program imported itself, from elsewhere: two copies of the native
        # hooks must never run at once, and its tracker is not ours to start or stop.
        where = os.path.dirname(os.path.realpath(getattr(loaded, "__file__", None) or "?"))
        if where == os.path.realpath(package_dir):
            return None
        try:
            tracking = bool(loaded.Tracker.is_active())
        except Exception:
            tracking = False
        if tracking:
            return (
                "already tracked by memprof: by a Tracker the program started itself (memprof run, "
                "pytest --memprof or the Tracker API); stop it there"
            )
        return f"the process imported another pytest_memprof ({where}): attach with the memprof installed there"

    try:
        if tuple(sys.version_info[:2]) != tuple(ours_version):
            theirs = "{}.{}".format(*sys.version_info[:2])
            mine = "{}.{}".format(*ours_version)
            refuse(
                f"the process runs Python {theirs} and this memprof is installed for Python {mine}: attach "
                "with the memprof of that Python"
            )
            return
        loaded = sys.modules.get("pytest_memprof")
        problem = other_copy(loaded) if loaded is not None else None
        if problem:
            refuse(problem)
            return
        added = [path for path in search_paths if path not in sys.path]
        sys.path[0:0] = added
        try:
            from pytest_memprof.attach import agent
        finally:
            # Later imports of the package's modules go through its own __path__: the target's
            # sys.path is left as it was.
            for path in added:
                if path in sys.path:
                    sys.path.remove(path)
        agent.serve(connection, token)  # the agent owns the connection from here on
    except BaseException as error:  # nothing may escape into the target's own code
        refuse(f"memprof could not start in the process: {type(error).__name__}: {error}")
