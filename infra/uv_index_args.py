"""Print, one per line, the uv options naming the package indexes pip is configured with (pip.conf, PIP_*).

infra/install.sh fills uv's cache through them, and tests/integration/project/test_extras.py installs offline through the
same ones: uv keys its cached index pages by index URL, so both must name the same indexes. Pip takes the best
version across all its indexes, hence unsafe-best-match (uv's default stops at the first index that has a name).
infra/lock.sh reads the same indexes through it."""

import subprocess
import sys

OPTIONS = {"index-url": "--index-url", "extra-index-url": "--extra-index-url", "find-links": "--find-links"}


def main() -> None:
    listed = subprocess.run(
        [sys.executable, "-m", "pip", "config", "list"], capture_output=True, text=True, check=True
    ).stdout
    values: dict[str, list[str]] = {}
    for line in listed.splitlines():
        key, _, value = line.partition("=")
        option = OPTIONS.get(key.rsplit(".", 1)[-1])
        if option is not None:
            values[option] = value.strip("'\"").split()  # a later scope (the environment) replaces an earlier one
    args = ["--index-strategy", "unsafe-best-match"]
    for option, urls in values.items():
        for url in urls:
            args += [option, url]
    print("\n".join(args))


if __name__ == "__main__":
    main()
