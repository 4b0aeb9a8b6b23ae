"""The systemd template runs one predictor per instance, each on the port its own environment file names."""

import re

from tests.conftest import REPO

UNIT = REPO / "infra" / "tailor-serve@.service"


def _service() -> dict[str, list[str]]:
    section, found = None, {}
    for line in UNIT.read_text(encoding="utf-8").splitlines():
        if line.startswith("["):
            section = line.strip("[]")
        elif section == "Service" and "=" in line and not line.startswith("#"):
            key, _, value = line.partition("=")
            found.setdefault(key, []).append(value)
    return found


def test_each_instance_listens_on_the_port_its_own_environment_file_names():
    service = _service()
    assert "/etc/tailor/serve-%i.env" in service["EnvironmentFile"]  # required: no port, no start
    exec_start = service["ExecStart"][0]
    assert re.search(r"--port \$\{TAILOR_SERVE_PORT\}", exec_start) and "--name %i" in exec_start
    assert not re.search(r"--port \d", exec_start)  # a fixed port would let only one instance start
    assert "TimeoutStartSec" not in service  # Type=simple never waits for start-up
