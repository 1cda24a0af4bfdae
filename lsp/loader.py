"""The model: loaded on first use, shared by every request, reloaded only when its folder or
provider setting changes. Runs on the inference thread.

Loaders share what they load (TCP sessions each have a Loader): a model is read once while any
session uses it. They all run on the one inference thread, which keeps a model's runs apart."""

from __future__ import annotations

import weakref
from dataclasses import dataclass
from typing import Callable

from dcoder.engine.engine import BUILTIN_MODEL, Engine
from dcoder.engine.load import load_engine
from dcoder.errors import DcoderError


class ModelUnavailable(Exception):
    """No model can be loaded with the current settings; the user has been told why, once."""


@dataclass(frozen=True)
class Loaded:
    engine: Engine
    provider: str
    warning: str | None  # set when the asked-for provider failed and the CPU took over


def _load(folder: str, provider: str) -> Loaded:
    """Load on ``provider``; when a GPU provider fails to start, load on the CPU and say so."""
    try:
        engine = load_engine(folder, device=provider)
        return Loaded(engine, engine.backend.device, None)
    except Exception as exc:
        if provider == "cpu":
            raise DcoderError(_why(folder, exc)) from None
        first = _first_line(exc)
    try:
        engine = load_engine(folder, device="cpu")
    except Exception as again:
        raise DcoderError(_why(folder, again)) from None
    return Loaded(engine, "cpu", f"provider {provider} failed to start ({first}); running on the CPU")


def _first_line(exc: Exception) -> str:
    text = str(exc) if isinstance(exc, DcoderError) else f"{exc.__class__.__name__}: {exc}"
    return (text.splitlines() or [exc.__class__.__name__])[0]


def _why(folder: str, exc: Exception) -> str:
    return _first_line(exc) if isinstance(exc, DcoderError) else f"cannot load the model in {folder}: {_first_line(exc)}"


_SHARED: "weakref.WeakValueDictionary[tuple[str, str], Loaded]" = weakref.WeakValueDictionary()


class Loader:
    def __init__(self, report: Callable[[str, str], None]) -> None:
        self._report = report  # (level "loading" | "info" | "warning" | "error", message), once per event
        self._key: tuple[str | None, str] | None = None
        self._loaded: Loaded | None = None
        self._failure: str | None = None

    @property
    def loaded(self) -> Loaded | None:
        return self._loaded

    @property
    def failure(self) -> str | None:
        return self._failure

    def engine(self, model: str | None, provider: str) -> Engine:
        key = (model, provider)
        if key != self._key:
            self._key, self._loaded, self._failure = key, None, None
        if self._loaded is not None:
            return self._loaded.engine
        if self._failure is not None:
            raise ModelUnavailable(self._failure)
        try:
            folder = self.folder(model)
            self._loaded = _SHARED.get((folder, provider))
            if self._loaded is None:
                self._report("loading", f"loading model {folder} (provider {provider})")
                self._loaded = _SHARED[folder, provider] = _load(folder, provider)
        except Exception as exc:
            self._failure = str(exc) if isinstance(exc, DcoderError) else f"cannot load the model: {exc}"
            self._report("error", self._failure)
            raise ModelUnavailable(self._failure) from None
        if self._loaded.warning:
            self._report("warning", self._loaded.warning)
        self._report("info", f"model ready: {self._loaded.engine.description}")
        return self._loaded.engine

    @staticmethod
    def folder(model: str | None) -> str:
        if model is not None:
            from dcoder.engine.hub import resolve

            folder = resolve(model)  # a folder, or a pulled hub model's ORG/NAME
            if not folder.is_dir():
                raise DcoderError(f"model folder {folder} does not exist")
            return str(folder)
        if (BUILTIN_MODEL / "manifest.json").exists():
            return str(BUILTIN_MODEL)
        raise DcoderError("no model configured and no built-in model is installed: "
                          "set the dcoder setting \"model\" to a checkpoint or exported model folder, "
                          "or to a hub model pulled with `dcoder pull ORG/NAME`")
