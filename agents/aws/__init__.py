"""AWS inventory and health: configuration, sessions, collectors, scan and report."""
