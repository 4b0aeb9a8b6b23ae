"""Options shared by every command, set once by the top-level callback."""

from __future__ import annotations

from dataclasses import dataclass

from pipelines.config import Settings, load_settings


@dataclass
class CliState:
    debug: bool = False
    _settings: Settings | None = None

    def begin(self, debug: bool) -> None:
        """A new command: settings are read again (a process that runs several sees each one's environment)."""
        self.debug, self._settings = debug, None

    def settings(self) -> Settings:
        """Loaded on first use so that `--help` and usage errors never read config or touch the store."""
        if self._settings is None:
            self._settings = load_settings()
        return self._settings


state = CliState()
