"""tox's py314 and py315 environments: the suite inside the Debian sid root (scripts/sid).

tox takes an environment named py314 to mean "a Python 3.14 on this machine", and refuses any
other base_python for it. The machine has none: these Pythons are Debian packages in the sid root.
So those environments use this runner, which needs no interpreter here and installs nothing (in
the root, scripts/test makes the venv). Where the machine cannot run a sid root, the environment
is skipped with scripts/sid's reason when skip_missing_interpreters is on, and fails otherwise.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from tox.execute.local_sub_process import LocalSubProcessExecutor
from tox.plugin import impl
from tox.tox_env.errors import Fail, Skip
from tox.tox_env.installer import Installer
from tox.tox_env.runner import RunToxEnv

CANNOT = 77  # scripts/sid's status for "this machine cannot run a sid root"


class _InstallsNothing(Installer):
    def _register_config(self) -> None:
        pass

    def installed(self) -> list[str]:
        return []

    def install(self, arguments, section: str, of_type: str) -> None:
        if arguments:
            raise Fail(f"{section} {of_type}: tox installs nothing in the sid root (scripts/test does)")


class SidRoot(RunToxEnv):
    def __init__(self, create_args) -> None:
        self._executor: LocalSubProcessExecutor | None = None
        self._installer: _InstallsNothing | None = None
        super().__init__(create_args)

    @staticmethod
    def id() -> str:
        return "sid-root"

    @property
    def executor(self) -> LocalSubProcessExecutor:
        if self._executor is None:
            self._executor = LocalSubProcessExecutor(self.options.is_colored)
        return self._executor

    @property
    def installer(self) -> _InstallsNothing:
        if self._installer is None:
            self._installer = _InstallsNothing(self)
        return self._installer

    @property
    def runs_on_platform(self) -> str:
        return sys.platform

    @property
    def _external_pkg_tox_env_type(self) -> str:
        raise Fail(f"{self.name} runs in the sid root: set skip_install = true")

    @property
    def _package_tox_env_type(self) -> str:
        raise Fail(f"{self.name} runs in the sid root: set skip_install = true")

    def _build_packages(self) -> list:
        return []

    def _setup_env(self) -> None:
        super()._setup_env()
        script = Path(self.core["tox_root"]) / "scripts" / "sid"
        check = subprocess.run([str(script), "--check"], capture_output=True, text=True, check=False)
        if check.returncode == CANNOT:
            reason = check.stderr.strip()
            if self.core["skip_missing_interpreters"]:
                raise Skip(reason)
            raise Fail(reason)
        if check.returncode != 0:
            raise Fail(f"{script} --check exited {check.returncode}: {check.stderr.strip()}")


@impl
def tox_register_tox_env(register) -> None:
    register.add_run_env(SidRoot)
