"""Git credentials that reach git, and only git, and only for the right host.

The token travels in one environment variable of the git process itself (never a
file, never the agent's environment). Git's own configuration, passed through
`GIT_CONFIG_COUNT`/`GIT_CONFIG_KEY_n`/`GIT_CONFIG_VALUE_n`, installs a credential
helper scoped to each allowed `https://host`, so git never offers the token to any
other host. Because command-line configuration is read last, the same entries first
empty the helper list: a helper an agent might have written into the repository's
own configuration is never asked for, or told, the token. Hooks are switched off for
the same reason.

`agents.workspace` hands this environment only to commands that talk to an HTTPS
remote, run from a scratch repository whose configuration no agent could have
written; ssh and local remotes never see the token.
"""

from __future__ import annotations

from collections.abc import Iterable
from urllib.parse import urlsplit

TOKEN_VARIABLE = "AGENTBOT_GIT_TOKEN"
USERNAME = "x-access-token"
# A shell function git runs for `credential fill`; it answers only `get` and reads the
# token from git's own environment, so the secret is in no argv and no file.
_HELPER = (
    '!f() { test "$1" = get || exit 0; '
    f'echo username={USERNAME}; echo "password=${{{TOKEN_VARIABLE}}}"; }}; f'
)


def github_hosts(api_url: str) -> tuple[str, ...]:
    """Hosts that may receive the GitHub token: github.com, or an Enterprise server."""
    host = urlsplit(api_url).hostname or ""
    if host in ("", "api.github.com"):
        return ("github.com",)
    return (host,)


def credential_env(token: str, hosts: Iterable[str]) -> dict[str, str]:
    """Environment for git commands that talk to the remote (clone, fetch, push).

    Args:
        token: The token git sends as the password.
        hosts: Hosts (no scheme) whose HTTPS remotes may receive it.

    Returns:
        Variables to add to git's environment; empty when there is no token.
    """
    if not token:
        return {}
    entries: list[tuple[str, str]] = [
        ("credential.helper", ""),
        ("core.hooksPath", "/dev/null"),
    ]
    for host in hosts:
        scope = f"credential.https://{host}"
        entries += [
            (f"{scope}.helper", ""),
            (f"{scope}.helper", _HELPER),
            (f"{scope}.username", USERNAME),
        ]
    env = {"GIT_CONFIG_COUNT": str(len(entries)), TOKEN_VARIABLE: token}
    for index, (key, value) in enumerate(entries):
        env[f"GIT_CONFIG_KEY_{index}"] = key
        env[f"GIT_CONFIG_VALUE_{index}"] = value
    return env
