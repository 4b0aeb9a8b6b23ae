"""The default promotion policy, training parameters and expectation suite, shipped inside the package.

Each file here is a symbolic link to the repository's editable file (``policy.yaml``, ``params.yaml``,
``data/expectations/batch.yaml``, the ones dvc.yaml tracks), so there is one copy: from a checkout the
paths below resolve to the repository's files, and a built wheel carries their contents (setuptools
copies what a link points at), so an installed Tailor runs without a checkout.
"""

from pathlib import Path

_HERE = Path(__file__).parent

POLICY = (_HERE / "policy.yaml").resolve()
PARAMS = (_HERE / "params.yaml").resolve()
SUITE = (_HERE / "expectations.yaml").resolve()
