"""Agent configuration: environment variables, or a YAML config file.

Precedence: an explicit `--config` file, then the environment variables `DEPLITE_URL`,
`DEPLITE_AGENT_ID`, `DEPLITE_AGENT_SECRET`, `DEPLITE_AGENT_DIR`. Values missing from a file fall back to
the environment. The secret is kept out of `repr()` so it cannot leak through a log.

Inside a workflow step there is no agent secret: the step has `DEPLITE_JOB_TOKEN`, a credential for that
job's input files only, valid while the job runs, which `deplite-agent files download` uses.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

import yaml

ENV_URL = "DEPLITE_URL"
ENV_AGENT_ID = "DEPLITE_AGENT_ID"
ENV_SECRET = "DEPLITE_AGENT_SECRET"  # noqa: S105 - the variable's name, not a secret
ENV_DIR = "DEPLITE_AGENT_DIR"
# Read by older agents; now refused, see load_config.
REMOVED_ENV_CONFIG = "DEPLITE_AGENT_CONFIG"
# The job's own credential, set by the agent in every step's environment (DESIGN §6).
ENV_JOB_TOKEN = "DEPLITE_JOB_TOKEN"  # noqa: S105 - the variable's name, not a secret
# The job a step belongs to (`files upload` names it in its calls; the token must be that job's).
ENV_JOB_ID = "DEPLITE_JOB_ID"

FILE_KEYS = {"url": ENV_URL, "agentId": ENV_AGENT_ID, "secret": ENV_SECRET, "dir": ENV_DIR}


class ConfigError(Exception):
    pass


@dataclass(frozen=True)
class AgentConfig:
    url: str = ""
    agent_id: str = ""
    secret: str = field(default="", repr=False)
    dir: Path = Path(".")
    # Inside a step: the job token (`files download` authenticates with it instead of a secret).
    job_token: str = field(default="", repr=False)

    @property
    def workflows_dir(self) -> Path:
        return self.dir / "workflows"

    @property
    def logs_dir(self) -> Path:
        return self.dir / "logs"

    @property
    def has_server(self) -> bool:
        return bool(self.url and self.agent_id and self.secret)

    def require_server(self) -> None:
        missing = [
            name
            for name, value in ((ENV_URL, self.url), (ENV_AGENT_ID, self.agent_id), (ENV_SECRET, self.secret))
            if not value
        ]
        if missing:
            raise ConfigError(f"the agent is not configured: set {', '.join(missing)} (or use a config file)")


def load_config(config_path: str | None = None, environ: Mapping[str, str] | None = None) -> AgentConfig:
    env = dict(os.environ if environ is None else environ)
    path = config_path or None
    if env.get(REMOVED_ENV_CONFIG) and not path:
        raise ConfigError(
            f"{REMOVED_ENV_CONFIG} is no longer read (steps inherited it and could read the secret from the file "
            "it names): pass the file with --config, or set the environment variables"
        )
    values = {key: env.get(var, "") for key, var in FILE_KEYS.items()}
    config_file = None
    dir_from_file = False
    if path:
        config_file = Path(path).expanduser().resolve()
        try:
            data = yaml.safe_load(config_file.read_text(encoding="utf-8")) or {}
        except OSError as exc:
            raise ConfigError(f"cannot read config file {config_file}: {exc.strerror}")
        except yaml.YAMLError as exc:
            raise ConfigError(f"config file {config_file} is not valid YAML: {exc}")
        if not isinstance(data, dict):
            raise ConfigError(f"config file {config_file} must be a mapping of {', '.join(FILE_KEYS)}")
        unknown = set(data) - set(FILE_KEYS)
        if unknown:
            raise ConfigError(f"config file {config_file} has unknown keys: {', '.join(sorted(map(str, unknown)))}")
        for key, value in data.items():
            if value is not None:
                values[key] = str(value)
        dir_from_file = data.get("dir") is not None
    directory = Path(values["dir"] or ".").expanduser()
    if dir_from_file and config_file is not None and not directory.is_absolute():
        # A relative dir in a file is relative to the file, not to wherever the agent was started.
        directory = config_file.parent / directory
    return AgentConfig(
        url=values["url"].rstrip("/"),
        agent_id=values["agentId"],
        secret=values["secret"],
        dir=directory.resolve(),
        job_token=env.get(ENV_JOB_TOKEN, ""),
    )
