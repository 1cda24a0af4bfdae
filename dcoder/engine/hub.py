"""Hub models: ``dcoder pull ORG/NAME[@REVISION]`` and the folders hub names resolve to.

``pull`` downloads only what dcoder reads (config, tokenizer files, safetensors: never pickle
weights) into Hugging Face's own cache with ``huggingface_hub``, which shows a progress bar,
honours ``HF_TOKEN``, ``HF_ENDPOINT`` and ``HF_HUB_OFFLINE``, and keeps every completed file so
that a pull that stopped goes on where it left. It then exports the checkpoint for the runtime to
``$XDG_CACHE_HOME/dcoder/models/ORG--NAME--REVISION``, which appears complete or not at all.
Before downloading, the free disk and memory are checked against the sizes the hub reports and
the parameter count the config implies.

``huggingface_hub`` is an optional dependency (``pip install 'dcoder-diffusion[pull]'``),
imported only here and only by ``pull``; resolving a hub name to its folder needs no network.
"""

from __future__ import annotations

import fnmatch
import json
import os
import re
import shutil
from dataclasses import dataclass
from pathlib import Path

from dcoder.errors import DcoderError

# What a pull downloads: everything dcoder reads, nothing it does not (no .bin, .pt, README, ...).
WANTED = ("config.json", "generation_config.json", "tokenizer.json", "tokenizer_config.json",
          "special_tokens_map.json", "added_tokens.json", "model.safetensors.index.json", "*.safetensors")
PICKLE = ("*.bin", "*.pt", "*.pth", "*.ckpt", "*.pkl")
_NAME = re.compile(r"(?P<repo>[A-Za-z0-9][\w.-]*/[A-Za-z0-9][\w.-]*)(?:@(?P<revision>[\w.][\w./-]*))?")
GB = 1e9


@dataclass(frozen=True)
class HubName:
    repo: str
    revision: str  # as asked: a branch, tag or commit ("main" when not given)

    @property
    def folder_name(self) -> str:
        return f"{self.repo.replace('/', '--')}--{self.revision.replace('/', '_')}"

    def __str__(self) -> str:
        return self.repo if self.revision == "main" else f"{self.repo}@{self.revision}"


def parse_name(text: str) -> HubName | None:
    m = _NAME.fullmatch(text)
    return HubName(m["repo"], m["revision"] or "main") if m else None


def models_dir() -> Path:
    cache = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(cache) / "dcoder" / "models"


def resolve(model: str) -> Path:
    """The folder ``model`` names: a path as given when it exists, else the pulled folder of the
    hub name ``ORG/NAME[@REVISION]``."""
    path = Path(model).expanduser()
    name = parse_name(model)
    if path.exists() or name is None:
        return path
    folder = models_dir() / name.folder_name
    if (folder / "manifest.json").is_file():
        return folder
    raise DcoderError(f"{model} is not a model folder, and the hub model {name} is not pulled: "
                      f"run `dcoder pull {name}`")


# ---- sizes and resources ------------------------------------------------------------------------

def export_bytes(params: int, vocab_x_hidden: int, dtype: str) -> int:
    """Size of the exported weights: int8 keeps the embedding in float32 beside its int8 head."""
    if dtype == "int8":
        return params + 3 * vocab_x_hidden
    return params * (2 if dtype == "fp16" else 4)


def memory_needed(params: int, vocab_x_hidden: int, dtype: str) -> int:
    """Running needs the weights in memory plus room for activations; exporting needs two copies
    of the largest tensor (the embedding) in float32."""
    return max(int(export_bytes(params, vocab_x_hidden, dtype) * 1.2), 8 * vocab_x_hidden) + int(0.5 * GB)


def available_memory() -> int:
    try:
        with open("/proc/meminfo", encoding="ascii") as fh:
            for line in fh:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_AVPHYS_PAGES")


def free_disk(folder: Path) -> tuple[int, Path]:
    """Free bytes where ``folder`` is (or would be created) and the existing folder measured."""
    for p in (folder, *folder.parents):
        if p.exists():
            return shutil.disk_usage(p).free, p
    raise DcoderError(f"no existing folder above {folder}")


def gpu_usable() -> bool:
    from dcoder.engine.runtime import import_ort, resolve_provider

    try:
        return resolve_provider(import_ort(), "auto") == "cuda"
    except DcoderError:
        return False


def choose_dtype(asked: str) -> str:
    """fp16 on a usable GPU, else int8: on this CPU (AVX2) a random Open-dCoder-0.5B ran its full
    pass in 5.7 s as int8 against 14.4 s as fp32 (docs/models.md); fp32 only ties with int8 for
    models as small as the built-in one."""
    if asked != "auto":
        return asked
    return "fp16" if gpu_usable() else "int8"


def check_resources(name: HubName, download: int, params: int, vocab_x_hidden: int, dtype: str,
                    hub_cache: Path, out: Path) -> None:
    """Refuse, with the figures, what does not fit in free disk or memory."""
    exported = export_bytes(params, vocab_x_hidden, dtype)
    hub_free, hub_at = free_disk(hub_cache)
    out_free, out_at = free_disk(out)
    if os.stat(hub_at).st_dev == os.stat(out_at).st_dev:
        needs = [(download + exported, hub_free, hub_at)]
    else:
        needs = [(download, hub_free, hub_at), (exported, out_free, out_at)]
    for need, free, where in needs:
        if need > free:
            raise DcoderError(f"{name} needs {need / GB:.1f} GB of disk ({download / GB:.1f} GB to download, "
                              f"{exported / GB:.1f} GB exported as {dtype}) and {where} has {free / GB:.1f} GB free")
    memory, have = memory_needed(params, vocab_x_hidden, dtype), available_memory()
    if memory > have:
        smaller = "" if dtype == "int8" else \
            f": --dtype int8 needs {memory_needed(params, vocab_x_hidden, 'int8') / GB:.1f} GB"
        raise DcoderError(f"{name} ({params / 1e9:.2f}B parameters) needs about {memory / GB:.1f} GB of memory "
                          f"as {dtype} and {have / GB:.1f} GB is available{smaller}")


# ---- the pull -----------------------------------------------------------------------------------

def _import_hub():
    try:
        import huggingface_hub
        import huggingface_hub.constants  # noqa: F401 (a submodule the package does not load itself)
    except ImportError:
        raise DcoderError("dcoder pull needs huggingface_hub: pip install 'dcoder-diffusion[pull]'") from None
    return huggingface_hub


def _hub_error(exc: Exception, name: HubName) -> DcoderError:
    """One line for what the hub said."""
    from huggingface_hub import errors

    if isinstance(exc, errors.RevisionNotFoundError):
        return DcoderError(f"{name.repo} has no revision {name.revision!r} on the hub")
    if isinstance(exc, errors.RepositoryNotFoundError):
        return DcoderError(f"{name.repo} was not found on the hub (a private or gated model needs HF_TOKEN "
                           "set to a token that may read it)")
    return DcoderError(f"the hub did not answer for {name} ({_reason(exc)}); "
                       "with HF_HUB_OFFLINE=1 a model already downloaded is used from the cache")


def _reason(exc: Exception) -> str:
    return f"{exc.__class__.__name__}: {(str(exc).strip().splitlines() or [''])[0][:160]}"


def _wanted(files: list[str]) -> list[str]:
    return [f for f in files if "/" not in f and any(fnmatch.fnmatch(f, p) for p in WANTED)]


def _check_files(name: HubName, files: list[str]) -> None:
    top = [f for f in files if "/" not in f]
    if "config.json" not in top:
        raise DcoderError(f"{name} has no config.json: not a model checkpoint dcoder can read")
    if not any(fnmatch.fnmatch(f, "*.safetensors") for f in top):
        if any(fnmatch.fnmatch(f, p) for f in top for p in PICKLE):
            raise DcoderError(f"{name} has only pickle weights (.bin/.pt), which can run code when loaded; "
                              "dcoder loads safetensors only")
        raise DcoderError(f"{name} has no safetensors weights")
    if "tokenizer.json" not in top:
        raise DcoderError(f"{name} has no tokenizer.json (dcoder reads tokenizers in that format)")


def _remote(hf, name: HubName) -> tuple[str, dict[str, int]]:
    """(commit, file -> size) of the revision, from the hub's file metadata."""
    try:
        info = hf.HfApi().model_info(name.repo, revision=name.revision, files_metadata=True)
    except (OSError, ValueError) as exc:  # the hub's HTTP errors are OSErrors; bad ids ValueErrors
        raise _hub_error(exc, name) from None
    return info.sha, {s.rfilename: s.size or 0 for s in info.siblings or []}


def _cached(hf, name: HubName) -> tuple[str, Path]:
    """(commit, snapshot folder) of the revision in the hub cache, for HF_HUB_OFFLINE."""
    try:
        folder = Path(hf.snapshot_download(name.repo, revision=name.revision, allow_patterns=list(WANTED),
                                           local_files_only=True))
    except (OSError, ValueError):
        raise DcoderError(f"HF_HUB_OFFLINE is set and {name} is not in the hub cache "
                          f"({hf.constants.HF_HUB_CACHE}): pull it once with the network") from None
    return folder.name, folder


def _pulled(folder: Path) -> tuple[str | None, str | None]:
    """(commit, dtype) of an earlier pull into ``folder``."""
    try:
        manifest = json.loads((folder / "manifest.json").read_text(encoding="utf-8"))
        return manifest["source"]["commit"], manifest["dtype"]
    except (OSError, ValueError, KeyError, TypeError):
        return None, None


def pull(spec: str, dtype: str = "auto", say=None) -> Path:
    """Download ``ORG/NAME[@REVISION]`` and export it to the models folder; returns that folder."""
    from dcoder.config import read_json
    from dcoder.engine.checkpoint import open_checkpoint
    from dcoder.engine.export import DTYPES
    from dcoder.engine.families import parameter_count
    from dcoder.engine.model_config import ModelConfig

    say = say or (lambda msg: None)
    name = parse_name(spec)
    if name is None:
        raise DcoderError(f"bad model name {spec!r}: expected ORG/NAME or ORG/NAME@REVISION")
    if dtype != "auto" and dtype not in DTYPES:
        raise DcoderError(f"unknown --dtype {dtype!r} (choose from auto, {', '.join(DTYPES)})")
    hf = _import_hub()
    out = models_dir() / name.folder_name
    offline = hf.constants.HF_HUB_OFFLINE
    if offline:
        commit, snapshot = _cached(hf, name)
        sizes = {f.name: f.stat().st_size for f in snapshot.iterdir() if f.is_file()}
    else:
        commit, sizes = _remote(hf, name)
    pulled_commit, pulled_dtype = _pulled(out)
    if pulled_commit == commit and dtype in ("auto", pulled_dtype):
        say(f"{name} is already pulled (commit {commit[:12]}, {pulled_dtype})")
        return out
    _check_files(name, list(sizes))
    wanted = _wanted(list(sizes))
    try:
        # the config first (a few KB): an unsupported family is refused before any weights come
        config_path = Path(hf.hf_hub_download(name.repo, "config.json", revision=commit))
    except (OSError, ValueError) as exc:
        raise _hub_error(exc, name) from None
    cfg = ModelConfig.from_hf_dict(read_json(config_path, f"{name} config.json"))
    weight_bytes = sum(sizes[f] for f in wanted if f.endswith(".safetensors"))
    # a config may call the head tied and still ship it (CoDA): the shards' size tells
    params = max(parameter_count(cfg), weight_bytes // 4)
    vxh = cfg.vocab_size * cfg.hidden_size
    dtype = choose_dtype(dtype)
    missing = 0 if offline else sum(sizes[f] for f in wanted
                                    if not isinstance(hf.try_to_load_from_cache(name.repo, f, revision=commit), str))
    check_resources(name, missing, params, vxh, dtype, Path(hf.constants.HF_HUB_CACHE), out)
    if offline:
        folder = snapshot
    else:
        say(f"downloading {name} (commit {commit[:12]}, {len(wanted)} files, {missing / GB:.2f} GB to fetch)")
        try:
            # by the revision's name, so that the hub cache records it for HF_HUB_OFFLINE
            folder = Path(hf.snapshot_download(name.repo, revision=name.revision, allow_patterns=wanted))
        except (OSError, ValueError) as exc:
            raise DcoderError(f"the download of {name} stopped ({_reason(exc)}): `dcoder pull {name}` "
                              "again keeps the files already complete") from None
    ckpt = open_checkpoint(folder)
    # the snapshot folder is named by its commit (the revision may have moved since it was resolved)
    return _install(ckpt.path, out, dtype, {"hub": name.repo, "revision": name.revision, "commit": folder.name}, say)


def _install(checkpoint: Path, out: Path, dtype: str, source: dict, say) -> Path:
    """Export into a staging folder beside ``out``, then put it in place of any older pull.
    A staging folder left by an export that was killed is removed first."""
    from dcoder.engine.export import export

    staging = out.parent / ".staging"
    staging.mkdir(parents=True, exist_ok=True)
    for stale in (*staging.glob(f"{out.name}"), *staging.glob(f".{out.name}.*")):
        shutil.rmtree(stale, ignore_errors=True)
    say(f"exporting to {out} as {dtype}")
    fresh = export(checkpoint, staging / out.name, dtype, say, source=source)
    if out.exists():
        old = staging / f".{out.name}.old"
        out.rename(old)
        fresh.rename(out)
        shutil.rmtree(old, ignore_errors=True)
    else:
        fresh.rename(out)
    return out
