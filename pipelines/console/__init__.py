"""`tailor console`: the web pages approvers and reviewers use (evidence, approvals queue, audit log, actions)."""
