"""Train the built-in model: corpus -> tokenizer -> masked-diffusion training -> HF checkpoints.

An output folder holds everything a run needs to continue where it stopped::

    train_config.json           the run's configuration
    data/                       corpus.json (files, sizes, hashes), tokenizer.json, token streams
    checkpoints/step-NNNNNNN/   config.json, tokenizer.json, model.safetensors, training.json
                                (a Hugging Face folder dcoder can load), plus trainer/ with the
                                optimizer moments (safetensors) and the sampler's RNG state (JSON)
    log.jsonl                   one line per logged step and per evaluation

Running again with the same folder resumes from the newest checkpoint; the result is the same as
an uninterrupted run. Nothing is pickled.
"""

from __future__ import annotations

import json
import math
import os
import shutil
import sys
import time
import tomllib
from contextlib import nullcontext
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path

import numpy as np

from dcoder.config import SpecialTokens
from dcoder.engine.model_config import ModelConfig
from dcoder.engine.tokenizer import Tokenizer
from dcoder.errors import DcoderError
from dcoder.training.corpus import Corpus, collect
from dcoder.training.objective import Batch, ObjectiveConfig, SampleSource, loss_terms, row_loss, scored_rows
from dcoder.training.vocab import DELETE, EOS, EXPAND, MASK, SPAN_PAD, train_bpe

# Options that may change when a run is resumed; any other difference means a different run.
RUN_FIELDS = {"max_steps", "checkpoint_every", "keep_checkpoints", "eval_every", "eval_batches",
              "log_every", "device", "dtype", "threads", "compile", "bench", "bench_every", "bench_kinds",
              "bench_limit", "decay_steps"}
SCHEDULES = ("cosine", "wsd")
DTYPES = ("auto", "fp32", "bf16")


@dataclass(frozen=True)
class TrainConfig:
    seed: int = 0
    # data
    corpus: str = "stdlib"  # "stdlib" (the running interpreter's) or a folder of .py files
    val_fraction: float = 0.02
    vocab_size: int = 8192
    seq_len: int = 512
    # model (Qwen2 architecture, bidirectional)
    hidden_size: int = 256
    num_layers: int = 6
    num_heads: int = 4
    num_kv_heads: int = 2
    intermediate_size: int = 704
    rope_theta: float = 10000.0
    tie_embeddings: bool = True
    # recipe: shifted logits (position i predicts token i+1) allow autoregressive pretraining
    shift_logits: bool = False
    ar_steps: int = 0  # the first ar_steps steps train next-token prediction with causal attention
    ar_mix: float = 0.0  # after them, this share of each batch stays autoregressive (joint training)
    # optimization
    batch_size: int = 16
    grad_accum: int = 1
    max_steps: int = 20000
    lr: float = 1e-3
    min_lr: float = 1e-4
    warmup_steps: int = 500
    # cosine: decay to min_lr over the whole run; wsd: constant after warm-up, linear decay over the
    # last decay_steps (an open-ended run extends max_steps while it improves, then decays)
    schedule: str = "cosine"
    decay_steps: int = 0
    weight_decay: float = 0.1
    beta1: float = 0.9
    beta2: float = 0.95
    grad_clip: float = 1.0
    # bookkeeping
    checkpoint_every: int = 500
    keep_checkpoints: int = 3
    eval_every: int = 500
    eval_batches: int = 8
    log_every: int = 10
    device: str = "auto"  # auto: CUDA when available
    dtype: str = "auto"  # auto: bf16 autocast on CUDA, fp32 on CPU
    threads: int = 0  # CPU threads for torch; 0: torch's default
    compile: bool = False
    # learning curve: every bench_every steps, infill bench_limit tasks of each of bench_kinds
    # from the bench file (e.g. realcode-dev) as `dcoder eval` would, and log the exact match
    bench: str = ""
    bench_every: int = 0
    bench_kinds: str = "single-line,node"
    bench_limit: int = 50
    objective: ObjectiveConfig = field(default_factory=ObjectiveConfig)

    def __post_init__(self) -> None:
        positive = ("vocab_size", "hidden_size", "num_layers", "num_heads", "num_kv_heads", "intermediate_size",
                    "batch_size", "grad_accum", "checkpoint_every", "keep_checkpoints", "eval_every", "log_every")
        for name in positive:
            if getattr(self, name) < 1:
                raise DcoderError(f"training option {name} must be at least 1")
        if self.seq_len < 64:
            raise DcoderError("training option seq_len must be at least 64")
        if self.max_steps < 0 or self.warmup_steps < 0 or self.eval_batches < 0 or self.threads < 0:
            raise DcoderError("max_steps, warmup_steps, eval_batches and threads must be >= 0")
        if not 0 < self.min_lr <= self.lr:
            raise DcoderError("training options need 0 < min_lr <= lr")
        if self.vocab_size < 300:
            raise DcoderError("training option vocab_size must be at least 300 (256 bytes + merges + specials)")
        if self.dtype not in DTYPES:
            raise DcoderError(f"training option dtype must be one of {', '.join(DTYPES)}")
        if self.schedule not in SCHEDULES or self.decay_steps < 0:
            raise DcoderError(f"training option schedule must be one of {', '.join(SCHEDULES)}, decay_steps >= 0")
        if self.bench_every < 0 or self.bench_limit < 1:
            raise DcoderError("training options need bench_every >= 0 and bench_limit >= 1")
        if self.ar_steps < 0 or not 0 <= self.ar_mix < 1:
            raise DcoderError("training options need ar_steps >= 0 and 0 <= ar_mix < 1")
        if (self.ar_steps or self.ar_mix) and not self.shift_logits:
            raise DcoderError("autoregressive training (ar_steps, ar_mix) needs shift_logits=true")
        if self.device not in ("auto", "cpu") and not self.device.startswith("cuda"):
            raise DcoderError("training option device must be auto, cpu or cuda[:N]")

    def to_dict(self) -> dict:
        return asdict(self)


# ---- configuration files -------------------------------------------------------------------

def _build(cls, raw: dict, where: str):
    if not isinstance(raw, dict):
        raise DcoderError(f"training option {where.rstrip('.') or 'file'} must be a table of options")
    defaults = cls()
    known = {f.name for f in fields(cls)}
    values = {}
    for key, value in raw.items():
        if key not in known:
            raise DcoderError(f"unknown training option {where}{key}")
        default = getattr(defaults, key)
        if hasattr(default, "__dataclass_fields__"):
            values[key] = _build(type(default), value, f"{where}{key}.")
            continue
        if isinstance(default, float) and isinstance(value, int) and not isinstance(value, bool):
            value = float(value)
        if type(value) is not type(default):
            raise DcoderError(f"training option {where}{key} must be {type(default).__name__}, got {value!r}")
        values[key] = value
    return cls(**values)


def read_train_config(path: str | Path | None, overrides: list[str] = ()) -> TrainConfig:
    """A TrainConfig from a .json or .toml file (or the defaults), then ``key=value`` overrides.

    Override values are read as JSON when they parse (numbers, true/false), else as strings;
    ``objective.lines=0.5`` sets a nested option.
    """
    raw: dict = {}
    if path is not None:
        p = Path(path)
        try:
            text = p.read_text(encoding="utf-8")
        except FileNotFoundError:
            raise DcoderError(f"training config not found: {p}") from None
        except (OSError, UnicodeDecodeError) as exc:
            raise DcoderError(f"cannot read training config {p}: {exc.__class__.__name__}") from None
        try:
            raw = tomllib.loads(text) if p.suffix == ".toml" else json.loads(text)
        except (tomllib.TOMLDecodeError, json.JSONDecodeError) as exc:
            raise DcoderError(f"training config {p} is not valid {'TOML' if p.suffix == '.toml' else 'JSON'}: {exc}") from None
    for item in overrides:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise DcoderError(f"bad --set {item!r}: expected KEY=VALUE")
        try:
            parsed = json.loads(value)
        except json.JSONDecodeError:
            parsed = value
        table = raw
        *parents, leaf = key.split(".")
        for name in parents:
            table = table.setdefault(name, {})
            if not isinstance(table, dict):
                raise DcoderError(f"bad --set {item!r}: {name} is not a table")
        table[leaf] = parsed
    return _build(TrainConfig, raw, "")


def _with_defaults(saved: dict, defaults: dict) -> dict:
    out = {**defaults, **saved}
    for key, value in defaults.items():
        if isinstance(value, dict) and isinstance(saved.get(key), dict):
            out[key] = _with_defaults(saved[key], value)
    return out


def check_run_config(out: Path, config: TrainConfig) -> None:
    """Refuse to continue a run in ``out`` with options that would make it a different run."""
    saved_path = out / "train_config.json"
    if saved_path.exists():
        saved = json.loads(saved_path.read_text(encoding="utf-8"))
        current = config.to_dict()
        saved = _with_defaults(saved, TrainConfig().to_dict())  # options added since the run started had their default
        for key in sorted(set(saved) | set(current)):
            if key not in RUN_FIELDS and saved.get(key) != current.get(key):
                raise DcoderError(
                    f"{out} holds a run with {key}={json.dumps(saved.get(key))}, not {json.dumps(current.get(key))}; "
                    "use another --out folder or the same options"
                )
    write_json(saved_path, config.to_dict())


def write_json(path: Path, data) -> None:
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(data, indent=2) + "\n", encoding="utf-8")
    os.replace(tmp, path)


# ---- data ----------------------------------------------------------------------------------

@dataclass
class Data:
    corpus: Corpus
    tokenizer_path: Path
    train_stream: np.ndarray
    val_stream: np.ndarray


def token_stream(tokenizer: Tokenizer, texts: list[str], eos: int) -> np.ndarray:
    """All files' tokens, each followed by end-of-text."""
    dtype = np.uint16 if tokenizer.vocab_size <= np.iinfo(np.uint16).max else np.int32
    parts = [np.array(ids + [eos], dtype=dtype) for ids in tokenizer.encode_batch(texts)]
    return np.concatenate(parts) if parts else np.zeros(0, dtype=dtype)


def prepare_data(config: TrainConfig, out: Path, say) -> Data:
    """Collect the corpus; train the tokenizer and tokenize once per run folder, then reuse."""
    corpus = collect(config.corpus, config.val_fraction)
    summary = corpus.summary()
    folder = out / "data"
    record = folder / "corpus.json"
    tok_path = folder / "tokenizer.json"
    if record.exists():
        saved = json.loads(record.read_text(encoding="utf-8"))["summary"]
        if saved["sha256"] != summary["sha256"]:
            raise DcoderError(f"the corpus changed since {out} was started (hash {saved['sha256'][:12]}, "
                              f"now {summary['sha256'][:12]}); use another --out folder")
        return Data(corpus, tok_path, np.load(folder / "train.npy"), np.load(folder / "val.npy"))
    folder.mkdir(parents=True, exist_ok=True)
    say(f"corpus: {summary['train']['files']} train / {summary['val']['files']} val files, "
        f"{summary['train']['bytes'] / 1e6:.1f} MB train text ({corpus.root})")
    if not tok_path.exists():  # a run seeded from a carried state keeps its tokenizer
        train_bpe((f.text for f in corpus.train), config.vocab_size, tok_path)
    tokenizer = Tokenizer(tok_path)
    eos = tokenizer.token_id(EOS)
    train_stream = token_stream(tokenizer, [f.text for f in corpus.train], eos)
    val_stream = token_stream(tokenizer, [f.text for f in corpus.val], eos)
    np.save(folder / "train.npy", train_stream)
    np.save(folder / "val.npy", val_stream)
    say(f"tokenizer: {tokenizer.vocab_size} tokens; {len(train_stream)} train tokens "
        f"({summary['train']['bytes'] / max(1, len(train_stream)):.2f} bytes/token)")
    files = {name: [[f.path, f.sha256] for f in split] for name, split in (("train", corpus.train), ("val", corpus.val))}
    write_json(record, {"summary": summary, "files": files})  # written last: marks the data complete
    return Data(corpus, tok_path, train_stream, val_stream)


def special_tokens(tokenizer: Tokenizer) -> SpecialTokens:
    """The built-in tokenizer's special ids (a run started before expand and delete existed has neither)."""
    return SpecialTokens(mask=tokenizer.token_id(MASK), span_pad=tokenizer.token_id(SPAN_PAD), eos=tokenizer.token_id(EOS),
                         expand=tokenizer.token_id(EXPAND), delete=tokenizer.token_id(DELETE))


# ---- model ---------------------------------------------------------------------------------

def model_config(config: TrainConfig, vocab_size: int) -> ModelConfig:
    mc = ModelConfig(
        vocab_size=vocab_size,
        hidden_size=config.hidden_size,
        intermediate_size=config.intermediate_size,
        num_hidden_layers=config.num_layers,
        num_attention_heads=config.num_heads,
        num_key_value_heads=config.num_kv_heads,
        max_position_embeddings=config.seq_len,
        rope_theta=config.rope_theta,
        tie_word_embeddings=config.tie_embeddings,
        model_type="dcoder",
        shift_logits=config.shift_logits,
    )
    mc.validate()
    return mc


def hf_config(mc: ModelConfig, tokens: SpecialTokens) -> dict:
    """config.json: the model's shape plus the special ids the engine reads."""
    out = mc.to_hf_dict()
    out.update(mask_token_id=tokens.mask, span_pad_token_id=tokens.span_pad, eos_token_id=tokens.eos,
               pad_token_id=tokens.span_pad, torch_dtype="float32")
    if tokens.can_grow:
        out.update(expand_token_id=tokens.expand, delete_token_id=tokens.delete)
    return out


def init_weights(model, num_layers: int) -> None:
    """GPT-2 style: N(0, 0.02), residual output projections scaled down by depth."""
    import torch

    std = 0.02
    with torch.no_grad():
        for name, p in model.named_parameters():
            if name.endswith("norm.weight"):
                p.fill_(1.0)
            elif name.endswith(".bias"):
                p.zero_()
            elif name.endswith(("o_proj.weight", "down_proj.weight")):
                p.normal_(0.0, std / math.sqrt(2 * num_layers))
            else:
                p.normal_(0.0, std)


def make_optimizer(model, config: TrainConfig):
    import torch

    params = list(model.named_parameters())
    decay = [p for _, p in params if p.dim() >= 2]
    no_decay = [p for _, p in params if p.dim() < 2]
    return torch.optim.AdamW(
        [{"params": decay, "weight_decay": config.weight_decay}, {"params": no_decay, "weight_decay": 0.0}],
        lr=config.lr, betas=(config.beta1, config.beta2),
    )


def learning_rate(step: int, config: TrainConfig, rewarm_from: int | None = None) -> float:
    """Linear warm-up, then cosine decay to ``min_lr`` at ``max_steps`` (or, for ``wsd``, constant
    until the last ``decay_steps``, then linear). A run resumed without its optimizer moments
    (``rewarm_from``) warms up again over ``warmup_steps``."""
    if step < config.warmup_steps:
        return config.lr * (step + 1) / config.warmup_steps
    if config.schedule == "wsd":
        left = config.max_steps - step
        lr = config.lr if left >= config.decay_steps else config.min_lr + (config.lr - config.min_lr) * left / config.decay_steps
    else:
        span = max(1, config.max_steps - config.warmup_steps)
        progress = min(1.0, (step - config.warmup_steps) / span)
        lr = config.min_lr + 0.5 * (config.lr - config.min_lr) * (1 + math.cos(math.pi * progress))
    if rewarm_from is not None and config.warmup_steps:
        lr *= min(1.0, (step - rewarm_from + 1) / config.warmup_steps)
    return lr


# ---- checkpoints ---------------------------------------------------------------------------

def checkpoint_dirs(out: Path) -> list[Path]:
    """Complete checkpoints, oldest first (a folder appears only once fully written)."""
    root = out / "checkpoints"
    if not root.is_dir():
        return []
    found = [p for p in root.glob("step-*") if p.is_dir() and not p.name.endswith(".tmp")
             and (p / "trainer" / "state.json").exists()]
    return sorted(found, key=lambda p: int(p.name.split("-")[1]))


@dataclass
class RunState:
    step: int = 0
    tokens_seen: int = 0
    rewarm_from: int | None = None  # step a resume without optimizer moments started at


def save_checkpoint(out: Path, model, optimizer, rng: np.random.Generator, state: RunState, config: TrainConfig,
                    data: Data, tokens: SpecialTokens, metrics: dict) -> Path:
    import torch
    from safetensors.torch import save_file

    final = out / "checkpoints" / f"step-{state.step:07d}"
    tmp = final.with_name(final.name + ".tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    (tmp / "trainer").mkdir(parents=True)
    weights = {k: v.detach().to("cpu", torch.float32).contiguous() for k, v in model.state_dict().items()}
    if model.config.tie_word_embeddings:
        weights.pop("lm_head.weight")
    save_file(weights, str(tmp / "model.safetensors"), metadata={"format": "pt"})
    write_json(tmp / "config.json", hf_config(model.config, tokens))
    shutil.copyfile(data.tokenizer_path, tmp / "tokenizer.json")
    write_json(tmp / "training.json", {
        "step": state.step, "tokens_seen": state.tokens_seen, "metrics": metrics,
        "corpus": data.corpus.summary(), "train_config": config.to_dict(),
    })
    moments = {}
    for name, p in model.named_parameters():
        for key, value in optimizer.state.get(p, {}).items():
            moments[f"{name}::{key}"] = value.detach().to("cpu").reshape(value.shape or (1,)).contiguous()
    save_file(moments, str(tmp / "trainer" / "optimizer.safetensors"))
    write_json(tmp / "trainer" / "state.json", {"step": state.step, "tokens_seen": state.tokens_seen,
                                                 "rewarm_from": state.rewarm_from, "rng": rng.bit_generator.state})
    shutil.rmtree(final, ignore_errors=True)
    os.replace(tmp, final)
    for old in checkpoint_dirs(out)[:-config.keep_checkpoints]:
        shutil.rmtree(old)
    return final


def restore_checkpoint(path: Path, model, optimizer, rng: np.random.Generator, device, tokenizer_path: Path) -> RunState:
    """Load a checkpoint into the model, optimizer and sampler RNG. Without optimizer moments
    (a carried state, see ``write_carry``) the moments start from zero and the learning rate
    warms up again."""
    from safetensors import SafetensorError
    from safetensors.torch import load_file

    if (path / "tokenizer.json").read_bytes() != tokenizer_path.read_bytes():
        raise DcoderError(f"resume checkpoint {path} was trained with another tokenizer than this run's")
    moments_path = path / "trainer" / "optimizer.safetensors"
    try:
        weights = {k: v.float() for k, v in load_file(str(path / "model.safetensors")).items()}
        moments = load_file(str(moments_path)) if moments_path.exists() else None
        saved = json.loads((path / "trainer" / "state.json").read_text(encoding="utf-8"))
        missing, unexpected = model.load_state_dict(weights, strict=False)
        rng.bit_generator.state = saved["rng"]
        state = RunState(int(saved["step"]), int(saved["tokens_seen"]), saved.get("rewarm_from"))
    except (OSError, ValueError, KeyError, TypeError, RuntimeError, SafetensorError) as exc:
        reason = str(exc).splitlines()[0] if str(exc) else exc.__class__.__name__
        raise DcoderError(f"resume checkpoint {path} is corrupt or does not fit this model ({reason[:160]})") from None
    missing = [k for k in missing if not (k == "lm_head.weight" and model.config.tie_word_embeddings)]
    if missing or unexpected:
        raise DcoderError(f"checkpoint {path} does not match the model ({(missing + unexpected)[0]})")
    if moments is None:
        return RunState(state.step, state.tokens_seen, state.step)
    for name, p in model.named_parameters():
        if f"{name}::step" not in moments:
            continue
        optimizer.state[p] = {
            "step": moments[f"{name}::step"].reshape(()),
            "exp_avg": moments[f"{name}::exp_avg"].to(device),
            "exp_avg_sq": moments[f"{name}::exp_avg_sq"].to(device),
        }
    return state


# ---- carried resume state ------------------------------------------------------------------
# A run's newest checkpoint in a compact form that can be committed: bf16 weights, no optimizer
# moments (they are two thirds of a checkpoint), the run's options and log. A run seeded from it
# continues from its step with the moments re-warmed; within one machine, full checkpoints resume
# exactly.

CARRIED = ("config.json", "tokenizer.json", "training.json")


def write_carry(out: str | Path, dest: str | Path) -> Path:
    """Write the newest checkpoint of run ``out`` to ``dest`` as a carried state (replaced atomically)."""
    import torch
    from safetensors.torch import load_file, save_file

    out, dest = Path(out), Path(dest)
    existing = checkpoint_dirs(out)
    if not existing:
        raise DcoderError(f"{out} has no checkpoint to carry")
    last = existing[-1]
    tmp = dest.with_name(dest.name + ".tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    (tmp / "checkpoint" / "trainer").mkdir(parents=True)
    weights = {k: v.to(torch.bfloat16) for k, v in load_file(str(last / "model.safetensors")).items()}
    save_file(weights, str(tmp / "checkpoint" / "model.safetensors"), metadata={"format": "pt"})
    for name in CARRIED:
        shutil.copyfile(last / name, tmp / "checkpoint" / name)
    shutil.copyfile(last / "trainer" / "state.json", tmp / "checkpoint" / "trainer" / "state.json")
    for name in ("train_config.json", "log.jsonl"):
        shutil.copyfile(out / name, tmp / name)
    shutil.rmtree(dest, ignore_errors=True)
    os.replace(tmp, dest)
    return dest


def seed_from_carry(src: str | Path, out: Path, config: TrainConfig) -> bool:
    """Start run ``out`` from the carried state ``src`` unless it already has checkpoints; the
    options must be those of the carried run (``RUN_FIELDS`` aside). True when seeded."""
    src = Path(src)
    if checkpoint_dirs(out):
        return False
    state_file = src / "checkpoint" / "trainer" / "state.json"
    if not state_file.is_file() or not (src / "train_config.json").is_file():
        raise DcoderError(f"{src} is not a carried training state (no checkpoint/trainer/state.json or train_config.json)")
    from safetensors import SafetensorError, safe_open

    try:
        step = int(json.loads(state_file.read_text(encoding="utf-8"))["step"])
        with safe_open(str(src / "checkpoint" / "model.safetensors"), "pt") as weights:
            weights.keys()
    except (OSError, ValueError, KeyError, TypeError, SafetensorError) as exc:
        raise DcoderError(f"carried state {src} is corrupt ({exc.__class__.__name__})") from None
    (out / "data").mkdir(parents=True, exist_ok=True)
    shutil.copyfile(src / "train_config.json", out / "train_config.json")
    check_run_config(out, config)
    shutil.copyfile(src / "log.jsonl", out / "log.jsonl")
    shutil.copyfile(src / "checkpoint" / "tokenizer.json", out / "data" / "tokenizer.json")
    final = out / "checkpoints" / f"step-{step:07d}"
    shutil.copytree(src / "checkpoint", final.with_name(final.name + ".tmp"), dirs_exist_ok=True)
    os.replace(final.with_name(final.name + ".tmp"), final)
    return True


# ---- progress ------------------------------------------------------------------------------

def format_duration(seconds: float) -> str:
    seconds = int(seconds)
    return f"{seconds // 3600}:{seconds // 60 % 60:02d}:{seconds % 60:02d}"


class ProgressLine:
    """One status line, redrawn in place on a terminal, printed line by line otherwise."""

    def __init__(self, stream, total: int):
        self.stream = stream
        self.total = total
        self.tty = stream.isatty()
        self.drawn = False

    def update(self, step: int, loss: float, ce: float, lr: float, tok_s: float, step_seconds: float) -> None:
        width = 20
        done = int(width * step / max(1, self.total))
        eta = (self.total - step) * step_seconds
        line = (f"step {step}/{self.total} [{'#' * done}{'.' * (width - done)}] loss {loss:.4f} ce {ce:.4f} "
                f"lr {lr:.2e} {tok_s:,.0f} tok/s eta {format_duration(eta)}")
        if self.tty:
            self.stream.write("\r\x1b[2K" + line)
            self.drawn = True
        else:
            self.stream.write(line + "\n")
        self.stream.flush()

    def note(self, text: str) -> None:
        if self.drawn:
            self.stream.write("\n")
            self.drawn = False
        self.stream.write(text + "\n")
        self.stream.flush()


# ---- training ------------------------------------------------------------------------------

def pick_device(name: str) -> str:
    import torch

    if name == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if name.startswith("cuda") and not torch.cuda.is_available():
        raise DcoderError("device cuda was asked for but PyTorch sees no CUDA device")
    return name


def to_tensors(batch: Batch, device: str):
    import torch

    return (torch.from_numpy(batch.ids).to(device, non_blocking=True),
            torch.from_numpy(batch.targets).to(device, non_blocking=True),
            torch.from_numpy(batch.weights).to(device, non_blocking=True))


def evaluate(model, batches: list[Batch], ar_batches: list[Batch], device: str, autocast, shift: bool) -> dict:
    """Weighted diffusion loss and mean cross-entropy on fixed held-out batches (and, for a
    shifted model, next-token cross-entropy with causal attention)."""
    import torch

    model.eval()
    loss_sum, ce_sum, hidden, ar_sum = 0.0, 0.0, 0, 0.0
    with torch.no_grad():
        for batch in batches:
            ids, targets, weights = to_tensors(batch, device)
            with autocast():
                logits = model(ids)
            loss, ce = loss_terms(logits, targets, weights, shift)
            loss_sum += loss.item()
            ce_sum += ce.item() * batch.masked
            hidden += batch.masked
        for batch in ar_batches:
            ids, targets, weights = to_tensors(batch, device)
            with autocast():
                logits = model(ids, causal=True)
            ar_sum += loss_terms(logits, targets, weights, True)[0].item()
    model.train()
    result = {"val_loss": loss_sum / max(1, len(batches)), "val_ce": ce_sum / max(1, hidden)}
    if ar_batches:
        result["val_ar_ce"] = ar_sum / len(ar_batches)
    return result


def bench_tasks(config: TrainConfig) -> list:
    """The first ``bench_limit`` tasks of each of ``bench_kinds`` (none when benchmarking is off)."""
    if not config.bench or not config.bench_every:
        return []
    from dcoder.evaluation.evaluate import load_tasks

    kinds = [k for k in config.bench_kinds.split(",") if k]
    return [t for k in kinds for t in load_tasks(config.bench, {k}, config.bench_limit)]


def bench(model, tokenizer: Tokenizer, tokens: SpecialTokens, config: TrainConfig, tasks: list, device: str) -> dict:
    """Exact match and parse rate per kind of the model being trained, with `dcoder eval`'s defaults."""
    from dcoder.engine.engine import Engine
    from dcoder.engine.torch_backend import TorchBackend
    from dcoder.evaluation.evaluate import ModelFiller, exact_match, parses
    from dcoder.infill import InfillOptions

    engine = Engine(tokenizer, tokens, TorchBackend(model, config.shift_logits, device), config.shift_logits,
                    config.seq_len, tokenizer.vocab_size, "training")
    from dcoder.config import bounds

    # the curve measures the model, not the machine's load: no editor deadline
    fill = ModelFiller(engine, InfillOptions(deadline=bounds(InfillOptions, "deadline")[1]))
    exact: dict[str, list[bool]] = {}
    parsed: dict[str, list[bool]] = {}
    model.eval()
    try:
        for task in tasks:
            text = fill(task, 0).text
            exact.setdefault(task.kind, []).append(exact_match(text, task.canonical))
            parsed.setdefault(task.kind, []).append(parses(task.prompt + text + task.suffix, task.language))
    finally:
        model.train()
    return {"bench_exact": {k: sum(v) / len(v) for k, v in exact.items()},
            "bench_parse": {k: sum(v) / len(v) for k, v in parsed.items()}}


def step_parts(source: SampleSource, step: int, config: TrainConfig, rng: np.random.Generator) -> list[tuple[Batch, bool]]:
    """One micro-batch's samples as (batch, causal) parts: all next-token while step < ar_steps,
    then diffusion with an ``ar_mix`` share of next-token samples."""
    if step < config.ar_steps:
        return [(source.ar_batch(config.batch_size, rng), True)]
    n_ar = round(config.batch_size * config.ar_mix)
    parts = [(source.ar_batch(n_ar, rng), True)] if n_ar else []
    if n_ar < config.batch_size:
        parts.append((source.batch(config.batch_size - n_ar, rng), False))
    return parts


def train(config: TrainConfig, out: str | Path, stream=None, resume_from: str | Path | None = None) -> Path:
    """Train (or resume) in ``out`` until ``config.max_steps``; returns the newest checkpoint folder.

    ``resume_from``: a carried state (``write_carry``) to start from when ``out`` has no checkpoint.
    """
    from dcoder.engine.torch_backend import require_torch

    torch = require_torch()
    from dcoder.engine.model import DiffusionLM

    stream = stream or sys.stderr
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    if config.threads:
        torch.set_num_threads(config.threads)
    device = pick_device(config.device)
    use_bf16 = config.dtype == "bf16" or (config.dtype == "auto" and device.startswith("cuda"))
    autocast = (lambda: torch.autocast(device.split(":")[0], dtype=torch.bfloat16)) if use_bf16 else nullcontext
    progress = ProgressLine(stream, config.max_steps)
    if resume_from is not None and seed_from_carry(resume_from, out, config):
        progress.note(f"seeded from the carried state {resume_from}")
    check_run_config(out, config)
    data = prepare_data(config, out, progress.note)
    tokenizer = Tokenizer(data.tokenizer_path)
    tokens = special_tokens(tokenizer)

    torch.manual_seed(config.seed)
    model = DiffusionLM(model_config(config, tokenizer.vocab_size))
    init_weights(model, config.num_layers)
    model.to(device).train()
    optimizer = make_optimizer(model, config)
    rng = np.random.default_rng(config.seed)
    state = RunState()
    existing = checkpoint_dirs(out)
    if existing:
        state = restore_checkpoint(existing[-1], model, optimizer, rng, device, data.tokenizer_path)
        progress.note(f"resumed from {existing[-1]} (step {state.step})")
    if state.step >= config.max_steps:
        if existing:
            return existing[-1]
        raise DcoderError("max_steps is 0: nothing to train")
    forward = torch.compile(model) if config.compile else model

    shift = config.shift_logits
    source = SampleSource([f.text for f in data.corpus.train], data.train_stream, tokenizer, tokens,
                          config.seq_len, config.objective, shift)
    val_batches: list[Batch] = []
    val_ar_batches: list[Batch] = []
    if data.corpus.val and config.eval_batches:
        val_source = SampleSource([f.text for f in data.corpus.val], data.val_stream, tokenizer, tokens,
                                  config.seq_len, config.objective, shift)
        val_rng = np.random.default_rng(config.seed + 1)
        val_batches = [val_source.batch(config.batch_size, val_rng) for _ in range(config.eval_batches)]
        if shift:
            val_ar_batches = [val_source.ar_batch(config.batch_size, val_rng) for _ in range(config.eval_batches)]
    tasks = bench_tasks(config)
    n_params = sum(p.numel() for p in model.parameters())
    embed = model.model.embed_tokens.weight.numel()
    progress.note(f"model: {n_params / 1e6:.2f}M parameters ({(n_params - embed) / 1e6:.2f}M without embeddings), "
                  f"vocab {tokenizer.vocab_size}, context {config.seq_len}; device {device}"
                  f"{' bf16' if use_bf16 else ''}, {torch.get_num_threads()} threads")

    log = (out / "log.jsonl").open("a", encoding="utf-8")
    window = {"loss": 0.0, "ce": 0.0, "steps": 0, "tokens": 0, "seconds": 0.0}
    metrics: dict = {}
    tokens_per_step = config.batch_size * config.seq_len * config.grad_accum
    last = existing[-1] if existing else None
    try:
        while state.step < config.max_steps:
            started = time.perf_counter()
            lr = learning_rate(state.step, config, state.rewarm_from)
            for group in optimizer.param_groups:
                group["lr"] = lr
            loss_acc = torch.zeros((), device=device)
            ce_acc = torch.zeros((), device=device)
            for _ in range(config.grad_accum):
                for batch, causal in step_parts(source, state.step, config, rng):
                    share = len(batch.ids) / config.batch_size / config.grad_accum
                    ids, targets, weights = to_tensors(batch, device)
                    with autocast():
                        logits = forward(ids, causal=causal, rows=scored_rows(weights, shift))
                    loss, ce = row_loss(logits, targets, weights, shift)
                    (loss * share).backward()
                    loss_acc += loss.detach() * share
                    ce_acc += ce.detach() * share
            torch.nn.utils.clip_grad_norm_(model.parameters(), config.grad_clip)
            optimizer.step()
            optimizer.zero_grad(set_to_none=True)
            state.step += 1
            state.tokens_seen += tokens_per_step
            window["loss"] += loss_acc.item()
            window["ce"] += ce_acc.item()
            window["steps"] += 1
            window["tokens"] += tokens_per_step
            window["seconds"] += time.perf_counter() - started

            if state.step % config.log_every == 0 or state.step == config.max_steps:
                n = window["steps"]
                metrics = {"step": state.step, "loss": window["loss"] / n, "ce": window["ce"] / n, "lr": lr,
                           "tokens_seen": state.tokens_seen, "tok_s": window["tokens"] / window["seconds"]}
                progress.update(state.step, metrics["loss"], metrics["ce"], lr, metrics["tok_s"], window["seconds"] / n)
                log.write(json.dumps(metrics) + "\n")
                log.flush()
                window = {"loss": 0.0, "ce": 0.0, "steps": 0, "tokens": 0, "seconds": 0.0}
            if val_batches and (state.step % config.eval_every == 0 or state.step == config.max_steps):
                result = evaluate(model, val_batches, val_ar_batches, device, autocast, shift)
                metrics = {**metrics, **result}
                progress.note(f"step {state.step}: val loss {result['val_loss']:.4f} val ce {result['val_ce']:.4f}")
                log.write(json.dumps({"step": state.step, "tokens_seen": state.tokens_seen, **result}) + "\n")
                log.flush()
            # next-token steps do not teach denoising yet: a fill benchmark then measures nothing
            denoising = state.step > config.ar_steps
            if tasks and denoising and (state.step % config.bench_every == 0 or state.step == config.max_steps):
                started = time.perf_counter()
                result = bench(model, tokenizer, tokens, config, tasks, device)
                metrics = {**metrics, **result}
                progress.note(f"step {state.step}: exact match " + ", ".join(
                    f"{k} {v:.3f}" for k, v in result["bench_exact"].items())
                    + f" ({time.perf_counter() - started:.0f} s)")
                log.write(json.dumps({"step": state.step, "tokens_seen": state.tokens_seen, **result}) + "\n")
                log.flush()
            if state.step % config.checkpoint_every == 0 or state.step == config.max_steps:
                last = save_checkpoint(out, model, optimizer, rng, state, config, data, tokens, metrics)
                progress.note(f"saved {last}")
    finally:
        log.close()
    return last
