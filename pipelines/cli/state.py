"""Options shared by every command, set once by the top-level callback, and the command's Context."""

from __future__ import annotations

from dataclasses import dataclass

from pipelines.context import Context
from pipelines.settings import Settings


@dataclass
class CliState:
    debug: bool = False
    _context: Context | None = None

    def begin(self, debug: bool) -> None:
        """A new command: settings are read again (a process that runs several sees each one's environment)."""
        self.debug, self._context = debug, None

    def context(self) -> Context:
        """Built on first use so that `--help` and usage errors never read config or touch the store."""
        if self._context is None:
            self._context = Context.load()
        return self._context

    def settings(self) -> Settings:
        return self.context().settings


state = CliState()
