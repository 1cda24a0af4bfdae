"""The server's settings: a frozen dataclass, updated from initializationOptions and
workspace/didChangeConfiguration (both take the same camelCase keys, at the top level or under
a ``dcoder`` section).

A setting the engine has takes its default and bounds from dcoder.config's declaration; only
the server's own settings (and ``candidates``' lower editor limit) are declared here."""

from __future__ import annotations

from dataclasses import dataclass, fields, replace
from pathlib import Path
from typing import Any

from dcoder.config import LENGTH_MODES, POLICIES, InfillOptions, LearnedPolicy, LengthConfig, SamplerConfig, bounds
from dcoder.errors import DcoderError

PROVIDERS = ("auto", "cuda", "cpu")
MAX_CANDIDATES = 8  # fewer than the engine allows: an editor waits for them


@dataclass(frozen=True)
class Settings:
    model: str | None = None  # checkpoint or exported model folder, or pulled hub ORG/NAME; None: built-in
    provider: str = "auto"
    steps: int = SamplerConfig.steps
    inline_steps: int = 8  # ghost text must come fast: several tokens are revealed per step
    threshold: float | None = SamplerConfig.threshold
    temperature: float = SamplerConfig.temperature
    max_tokens: int | None = InfillOptions.max_tokens  # mask tokens per span; None: chosen from the context
    candidates: int = InfillOptions.candidates
    search_tokens: int = InfillOptions.search_tokens  # constrained search for a refine/fill that breaks the parse
    preview: bool = True  # dcoder/preview for refine and fill
    inline_preview: bool = False  # dcoder/preview for inline completion
    min_confidence: float = 0.5  # "keep confident code": tokens above this probability stay
    length: str = LengthConfig.mode  # pad, expand or auto (see dcoder.config.LengthConfig)
    max_span: int = LengthConfig.max_span  # with expand: most tokens a span may grow to
    deadline: float = InfillOptions.deadline  # seconds a request may take before the best fill so far is used
    scope_bias: float = InfillOptions.scope_bias  # lean towards the names in scope (dcoder.engine.names); 0: off
    workspace_context: bool = True  # similar code from the workspace's other files ahead of the file
    workspace_exclude: tuple[str, ...] | None = None  # folders or file name patterns left out of that index
    server: str | None = None  # a dcoder server's URL (dcoder serve): it runs the model instead, nothing is loaded here
    server_token: str | None = None  # its bearer token; None: $DCODER_TOKEN
    policy: str = SamplerConfig.policy  # which tokens a step reveals (see dcoder.config.POLICIES)
    policy_file: str | None = None  # policy learned: a file dcoder train-policy wrote for the model (a server uses its own)

    def learned(self) -> LearnedPolicy | None:
        """The learned policy these settings name, read and checked against the model's folder."""
        if self.policy != "learned" or self.server is not None:
            return None
        if self.policy_file is None:
            raise DcoderError("setting policy \"learned\" needs the setting policyFile (dcoder train-policy writes one)")
        from dcoder.engine.policy import load_policy
        from dcoder_lsp.loader import Loader

        return load_policy(self.policy_file, Path(Loader.folder(self.model)))

    def options(self, language: str | None, inline: bool = False) -> InfillOptions:
        """Engine options for a document in ``language`` (a grammar name: fills are checked to parse).

        ``inline`` (ghost text) takes ``inline_steps`` and no repair rounds or constrained search:
        a fill that breaks the parse is not reworked, since ghost text is cut to a line or block
        afterwards anyway, and must come fast.
        """
        steps = self.inline_steps if inline else self.steps
        # through a server the learned policy is its own (its --policy-file): only the name goes there
        sampler = SamplerConfig(steps=steps, threshold=self.threshold, temperature=self.temperature,
                                policy=self.policy, learned=self.learned())
        rounds = {"repair_rounds": 0, "search_tokens": 0} if inline else {"search_tokens": self.search_tokens}
        return InfillOptions(sampler=sampler, max_tokens=self.max_tokens, candidates=self.candidates,
                             language=language, lengths=LengthConfig(self.length, self.max_span),
                             deadline=self.deadline, scope_bias=self.scope_bias, **rounds)

    def updated(self, raw: Any) -> tuple["Settings", list[str]]:
        """These settings with the values in ``raw`` applied; invalid values are skipped and
        described in the returned problems."""
        if isinstance(raw, dict) and isinstance(raw.get("dcoder"), dict):
            raw = raw["dcoder"]
        if raw is None:
            return self, []
        if not isinstance(raw, dict):
            return self, [f"settings must be an object, got {type(raw).__name__}"]
        by_key = {_camel(f.name): f.name for f in fields(self)}
        values, problems = {}, []
        for key, value in raw.items():
            name = by_key.get(key)
            if name is None:
                problems.append(f"unknown setting {key!r}")
                continue
            try:
                values[name] = _check(name, value)
            except DcoderError as exc:
                problems.append(str(exc))
        new = replace(self, **values)
        if new.policy != self.policy or new.policy_file != self.policy_file or new.model != self.model:
            try:  # a policy that cannot be used leaves every setting as it was
                new.learned()
            except DcoderError as exc:
                return self, problems + [f"{exc}; settings unchanged"]
        return new, problems


def _camel(name: str) -> str:
    head, *rest = name.split("_")
    return head + "".join(part.title() for part in rest)


def _number(kind: type, low: float, high: float, optional: bool = False):
    def check(name: str, value: Any):
        if value is None and optional:
            return None
        ok = isinstance(value, (int, float)) and not isinstance(value, bool) and (kind is float or isinstance(value, int))
        if not ok or not low <= value <= high:
            raise DcoderError(f"setting {_camel(name)} must be a {kind.__name__} in [{low}, {high}], got {value!r}")
        return kind(value)

    return check


def _choice(options: tuple[str, ...]):
    def check(name: str, value: Any):
        if value not in options:
            raise DcoderError(f"setting {_camel(name)} must be one of {', '.join(options)}, got {value!r}")
        return value

    return check


def _flag(name: str, value: Any) -> bool:
    if not isinstance(value, bool):
        raise DcoderError(f"setting {_camel(name)} must be true or false, got {value!r}")
    return value


def _text(what: str, prefixes: tuple[str, ...] = ("",)):
    """An optional string (empty means none) starting with one of ``prefixes``."""
    def check(name: str, value: Any):
        if value is not None and not (isinstance(value, str) and value.startswith(prefixes)):
            raise DcoderError(f"setting {_camel(name)} must be {what}, got {value!r}")
        return value or None

    return check


def _patterns(name: str, value: Any):
    """A list of folder or file name patterns (empty or null: none)."""
    if value is None:
        return None
    if not isinstance(value, list) or not all(isinstance(v, str) and v.strip("/") for v in value):
        raise DcoderError(f"setting {_camel(name)} must be a list of folder or file name patterns, got {value!r}")
    return tuple(value) or None


# Each setting's check, with its bounds: the engine's declaration where it has the setting.
CHECKS = {
    "model": _text("a folder path or hub name ORG/NAME"),
    "provider": _choice(PROVIDERS),
    "steps": _number(int, *bounds(SamplerConfig, "steps")),
    "inline_steps": _number(int, *bounds(SamplerConfig, "steps")),
    "threshold": _number(float, *bounds(SamplerConfig, "threshold"), optional=True),
    "temperature": _number(float, *bounds(SamplerConfig, "temperature")),
    "max_tokens": _number(int, *bounds(InfillOptions, "max_tokens"), optional=True),
    "candidates": _number(int, bounds(InfillOptions, "candidates")[0], MAX_CANDIDATES),
    "search_tokens": _number(int, *bounds(InfillOptions, "search_tokens")),
    "preview": _flag,
    "inline_preview": _flag,
    "min_confidence": _number(float, 0.001, 1.0),
    "length": _choice(LENGTH_MODES),
    "max_span": _number(int, *bounds(LengthConfig, "max_span")),
    "deadline": _number(float, *bounds(InfillOptions, "deadline")),
    "scope_bias": _number(float, *bounds(InfillOptions, "scope_bias")),
    "workspace_context": _flag,
    "workspace_exclude": _patterns,
    "server": _text("an http:// or https:// URL", ("http://", "https://")),
    "server_token": _text("a string"),
    "policy": _choice(POLICIES),
    "policy_file": _text("a file path"),
}
assert set(CHECKS) == {f.name for f in fields(Settings)}, "every setting needs its check"


def _check(name: str, value: Any) -> Any:
    return CHECKS[name](name, value)
