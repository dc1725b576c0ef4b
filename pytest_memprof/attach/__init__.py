"""``memprof attach`` and ``memprof detach``: start and stop a Tracker inside a running Python process.

Three parts, two processes. ``inject.py`` runs in memprof: it checks that the process can be
traced, then has the target run ``bootstrap.py``'s source at its next eval breaker (through
``sys.remote_exec`` on 3.14+, else by gdb adding a pending call), and talks to it over a unix
socket. ``bootstrap.py`` (in the target) connects back, imports this pytest_memprof and hands the
socket to ``agent.py`` (in the target), which keeps the attached Tracker and answers the request.
"""
