"""The validate stage: read a batch, judge it (suite, rules, tokenizer coverage, label-noise audit) and
file it (quarantine or DVC). dvc.yaml's ``validate`` stage depends on this folder."""
