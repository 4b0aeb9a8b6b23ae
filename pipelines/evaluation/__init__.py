"""The evaluate and gate stages: every check (``checks/``), the baselines and metrics they use, and the
pure gate decision. dvc.yaml's ``evaluate`` stage depends on this folder, ``gate`` on ``gate.py``."""
