"""Workflow files: `./workflows/<name>.yaml|yml`, parsed with line numbers so errors can point at them.

Schema (DESIGN §6): `name`, `timeout-minutes` (default 60), `env`, `steps: [{name, run,
continue-on-error, timeout-minutes, env, working-directory}]`, `outputs: [{path, name, when, required}]`.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

import yaml
from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

DEFAULT_TIMEOUT_MINUTES = 60.0
# The server names the workflow; this keeps the name from walking out of ./workflows.
WORKFLOW_NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$")
ENV_NAME_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")

WORKFLOW_KEYS = {"name", "timeout-minutes", "env", "steps", "outputs"}
STEP_KEYS = {"name", "run", "continue-on-error", "timeout-minutes", "env", "working-directory"}
OUTPUT_KEYS = {"path", "name", "when", "required"}
OUTPUT_WHEN = ("success", "failure", "always")


class WorkflowError(Exception):
    """A workflow that cannot run; `str()` names the file (and the line when known)."""

    def __init__(self, message: str, *, file: Path | None = None, line: int | None = None):
        self.message = message
        self.file = file
        self.line = line
        super().__init__(self.__str__())

    def __str__(self) -> str:
        where = ""
        if self.file is not None:
            where = f"{self.file}:{self.line}: " if self.line else f"{self.file}: "
        return f"{where}{self.message}"


@dataclass(frozen=True)
class Step:
    name: str
    run: str
    continue_on_error: bool = False
    timeout_minutes: float | None = None
    env: dict[str, str] = field(default_factory=dict)
    working_directory: str | None = None


@dataclass(frozen=True)
class DeclaredOutput:
    """`outputs[]`: files uploaded after the steps, before the job finishes."""

    path: str  # a path or glob, relative to the job's directory
    name: str | None = None  # the name on the server (a single matching file only)
    when: str = "success"  # success | failure | always: after which outcome of the steps
    required: bool = False  # matching nothing fails the job (else a warning line)


@dataclass(frozen=True)
class Workflow:
    name: str
    path: Path
    steps: tuple[Step, ...]
    timeout_minutes: float = DEFAULT_TIMEOUT_MINUTES
    env: dict[str, str] = field(default_factory=dict)
    outputs: tuple[DeclaredOutput, ...] = ()


def list_workflow_files(workflows_dir: Path) -> list[Path]:
    if not workflows_dir.is_dir():
        return []
    return sorted(p for p in workflows_dir.iterdir() if p.suffix in (".yaml", ".yml") and p.is_file())


def workflow_names(workflows_dir: Path) -> list[str]:
    return sorted({p.stem for p in list_workflow_files(workflows_dir) if WORKFLOW_NAME_RE.match(p.stem)})


def find_workflow(workflows_dir: Path, name: str) -> Path:
    if not WORKFLOW_NAME_RE.match(name or ""):
        raise WorkflowError(f"invalid workflow name {name!r}")
    candidates = [workflows_dir / f"{name}.yaml", workflows_dir / f"{name}.yml"]
    found = [p for p in candidates if p.is_file()]
    if not found:
        raise WorkflowError(f"workflow {name!r} not found: no {candidates[0]} or {candidates[1].name}")
    if len(found) > 1:
        raise WorkflowError(f"workflow {name!r} is ambiguous: both {found[0]} and {found[1].name} exist")
    return found[0]


def load_workflow(workflows_dir: Path, name: str) -> Workflow:
    return parse_workflow_file(find_workflow(workflows_dir, name))


def parse_workflow_file(path: Path) -> Workflow:
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError:
        raise WorkflowError("is not UTF-8 text", file=path)
    except OSError as exc:
        raise WorkflowError(f"cannot be read: {exc.strerror}", file=path)
    return parse_workflow_text(text, path=path)


def _line(node: Node) -> int:
    return node.start_mark.line + 1


def parse_workflow_text(text: str, *, path: Path) -> Workflow:
    try:
        root = yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = mark.line + 1 if mark is not None else None
        raise WorkflowError(f"invalid YAML: {exc.problem or exc.context}", file=path, line=line)
    except yaml.YAMLError as exc:
        raise WorkflowError(f"invalid YAML: {exc}", file=path)
    v = _Validator(path)
    if root is None:
        raise WorkflowError("is empty", file=path)
    top = v.mapping(root, "the workflow", WORKFLOW_KEYS)
    if "steps" not in top:
        raise WorkflowError("has no `steps`", file=path, line=_line(root))
    name = v.string(top["name"], "`name`") if "name" in top else path.stem
    timeout = v.minutes(top["timeout-minutes"], "`timeout-minutes`") if "timeout-minutes" in top else None
    env = v.env(top["env"], "`env`") if "env" in top else {}
    steps_node = top["steps"]
    if not isinstance(steps_node, SequenceNode) or not steps_node.value:
        raise WorkflowError("`steps` must be a non-empty list", file=path, line=_line(steps_node))
    steps = []
    for index, node in enumerate(steps_node.value):
        what = f"step {index + 1}"
        s = v.mapping(node, what, STEP_KEYS)
        for required in ("name", "run"):
            if required not in s:
                raise WorkflowError(f"{what} has no `{required}`", file=path, line=_line(node))
        step_name = v.string(s["name"], f"{what} `name`")
        steps.append(
            Step(
                name=step_name,
                run=v.string(s["run"], f'step "{step_name}" `run`'),
                continue_on_error=v.boolean(s["continue-on-error"], f'step "{step_name}" `continue-on-error`')
                if "continue-on-error" in s
                else False,
                timeout_minutes=v.minutes(s["timeout-minutes"], f'step "{step_name}" `timeout-minutes`')
                if "timeout-minutes" in s
                else None,
                env=v.env(s["env"], f'step "{step_name}" `env`') if "env" in s else {},
                working_directory=v.string(s["working-directory"], f'step "{step_name}" `working-directory`')
                if "working-directory" in s
                else None,
            )
        )
    return Workflow(
        name=name,
        path=path,
        steps=tuple(steps),
        timeout_minutes=timeout if timeout is not None else DEFAULT_TIMEOUT_MINUTES,
        env=env,
        outputs=v.outputs(top["outputs"]) if "outputs" in top else (),
    )


class _Validator:
    def __init__(self, path: Path):
        self.path = path

    def fail(self, node: Node, message: str) -> WorkflowError:
        return WorkflowError(message, file=self.path, line=_line(node))

    def mapping(self, node: Node, what: str, allowed: set) -> dict[str, Node]:
        if not isinstance(node, MappingNode):
            raise self.fail(node, f"{what} must be a mapping")
        out: dict[str, Node] = {}
        for key_node, value_node in node.value:
            key = key_node.value if isinstance(key_node, ScalarNode) else None
            if key not in allowed:
                raise self.fail(key_node, f"{what} has unknown key {key!r} (allowed: {', '.join(sorted(allowed))})")
            if key in out:
                raise self.fail(key_node, f"{what} repeats key {key!r}")
            out[key] = value_node
        return out

    def _scalar(self, node: Node, what: str):
        if not isinstance(node, ScalarNode):
            raise self.fail(node, f"{what} must be a single value")
        return yaml.SafeLoader(  # resolve the tag the way safe_load would (int, bool, str, …)
            ""
        ).construct_object(node)

    def string(self, node: Node, what: str) -> str:
        value = self._scalar(node, what)
        if not isinstance(value, str) or not value.strip():
            raise self.fail(node, f"{what} must be non-empty text")
        return value

    def boolean(self, node: Node, what: str) -> bool:
        value = self._scalar(node, what)
        if not isinstance(value, bool):
            raise self.fail(node, f"{what} must be true or false")
        return value

    def minutes(self, node: Node, what: str) -> float:
        value = self._scalar(node, what)
        if isinstance(value, bool) or not isinstance(value, (int, float)) or value <= 0:
            raise self.fail(node, f"{what} must be a positive number of minutes")
        return float(value)

    def outputs(self, node: Node) -> tuple[DeclaredOutput, ...]:
        if not isinstance(node, SequenceNode):
            raise self.fail(node, "`outputs` must be a list")
        out = []
        for index, item in enumerate(node.value):
            what = f"output {index + 1}"
            o = self.mapping(item, what, OUTPUT_KEYS)
            if "path" not in o:
                raise self.fail(item, f"{what} has no `path`")
            path = self.string(o["path"], f"{what} `path`")
            if ".." in Path(path).parts:
                raise self.fail(o["path"], f"{what} `path` must stay inside the job's directory (no `..`)")
            name = self.string(o["name"], f"{what} `name`") if "name" in o else None
            if name is not None and ("/" in name or "\\" in name or name in (".", "..") or len(name) > 255):
                raise self.fail(o["name"], f"{what} `name` must be a file name, without a directory")
            when = self.string(o["when"], f"{what} `when`") if "when" in o else "success"
            if when not in OUTPUT_WHEN:
                raise self.fail(o["when"], f"{what} `when` must be one of {', '.join(OUTPUT_WHEN)}")
            required = self.boolean(o["required"], f"{what} `required`") if "required" in o else False
            out.append(DeclaredOutput(path=path, name=name, when=when, required=required))
        return tuple(out)

    def env(self, node: Node, what: str) -> dict[str, str]:
        if not isinstance(node, MappingNode):
            raise self.fail(node, f"{what} must be a mapping of variable names to values")
        out: dict[str, str] = {}
        for key_node, value_node in node.value:
            key = key_node.value if isinstance(key_node, ScalarNode) else ""
            if not ENV_NAME_RE.match(key):
                raise self.fail(key_node, f"{what} has an invalid variable name {key!r}")
            value = self._scalar(value_node, f"{what} {key}")
            if value is None:
                value = ""
            elif isinstance(value, bool):
                value = "true" if value else "false"
            out[key] = str(value)
        return out
