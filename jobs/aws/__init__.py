"""The AWS wing of the job layer: the status scan, its snapshots, cost, savings and actions.

Each capability is a module named for it; the AWS work itself (sessions, collectors,
Cost Explorer, the savings rules) is in `agents.aws`.
"""
