# syntax=docker/dockerfile:1
# One image for every Agentbot process: `serve` (default), `socket`, `worker`, `cron`,
# `migrate`. Build:   docker build -t agentbot .
# Without the Claude Code CLI (scripted or Codex agents only, ~380 MB smaller):
#                     docker build --build-arg WITH_CLAUDE_CODE=false -t agentbot .

ARG PYTHON_VERSION=3.11
ARG UV_VERSION=0.13.10
ARG CLAUDE_CODE_VERSION=2.1.330
ARG WITH_CLAUDE_CODE=true

# -- Claude Code CLI: npm ships it as a self-contained native executable -------------------
FROM node:22-bookworm-slim AS claude
ARG CLAUDE_CODE_VERSION
ARG WITH_CLAUDE_CODE
# --include=optional: the executable comes in a per-platform optional dependency.
RUN mkdir -p /opt/claude/bin \
    && if [ "$WITH_CLAUDE_CODE" = "true" ]; then \
        npm install --prefix /tmp/claude --no-audit --no-fund --include=optional \
            "@anthropic-ai/claude-code@${CLAUDE_CODE_VERSION}" \
        && cp /tmp/claude/node_modules/@anthropic-ai/claude-code/bin/claude.exe /opt/claude/bin/claude \
        && HOME=/tmp /opt/claude/bin/claude --version \
        && rm -rf /tmp/claude /root/.npm; \
    fi

# -- Python environment, built with the locked versions ---------------------------------
FROM python:${PYTHON_VERSION}-slim-bookworm AS build
ARG UV_VERSION
RUN pip install --no-cache-dir "uv==${UV_VERSION}"
ENV UV_COMPILE_BYTECODE=1 \
    UV_LINK_MODE=copy \
    UV_PYTHON_DOWNLOADS=never \
    UV_PROJECT_ENVIRONMENT=/opt/venv
WORKDIR /src
# Dependencies first: this layer is reused until the lock file changes.
COPY pyproject.toml uv.lock README.md ./
RUN uv sync --frozen --no-dev --no-install-project
COPY bot ./bot
COPY jobs ./jobs
COPY agents ./agents
RUN uv sync --frozen --no-dev --no-editable

# -- Runtime -----------------------------------------------------------------------------
FROM python:${PYTHON_VERSION}-slim-bookworm AS runtime
# git: task worktrees and pushes; tini: reaps the agent's and tests' children, forwards
# signals so a stopping worker can kill its job's process groups; bubblewrap and socat:
# the sandbox every agent and test run starts in, and the way its proxy reaches it.
RUN apt-get update \
    && apt-get install -y --no-install-recommends git ca-certificates openssh-client tini \
        bubblewrap socat \
    && rm -rf /var/lib/apt/lists/* \
    && groupadd --system --gid 10001 agentbot \
    && useradd --system --uid 10001 --gid agentbot --home-dir /home/agentbot --create-home \
        --shell /usr/sbin/nologin agentbot \
    && mkdir -p /var/lib/agentbot \
    && chown agentbot:agentbot /var/lib/agentbot
COPY --from=build /opt/venv /opt/venv
COPY --from=claude /opt/claude/bin/ /usr/local/bin/
ENV PATH=/opt/venv/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    PORT=3000
USER 10001:10001
# Relative paths in the configuration (the default `.agentbot/workspaces`) land here;
# mount a volume on it to keep the git mirrors across restarts.
WORKDIR /var/lib/agentbot
# The only places written at run time, so the root filesystem can be read-only. Declared
# as volumes because ECS Fargate gives a bind mount the image's ownership only for
# VOLUME paths; otherwise they would be root's and not writable by this user.
VOLUME ["/var/lib/agentbot", "/home/agentbot", "/tmp"]
EXPOSE 3000
# For `serve`; compose and the orchestrators give `worker` and `cron` their own check.
HEALTHCHECK --interval=30s --timeout=5s --start-period=20s --retries=3 \
    CMD ["python", "-c", "import os, urllib.request; urllib.request.urlopen('http://127.0.0.1:%s/healthz' % os.environ.get('PORT', '3000'), timeout=4)"]
ENTRYPOINT ["tini", "--", "agentbot"]
CMD ["serve"]
