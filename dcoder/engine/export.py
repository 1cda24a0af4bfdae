"""Export a checkpoint to a self-contained ONNX model folder (``dcoder export``), and unpack an
fp32/fp16 folder back to the checkpoint it came from.

The weights are streamed into one file (``weights_file.py``) and the graphs built from the
checkpoint's config (``onnx_graph.py``); the folder is written beside ``out`` and renamed into
place when complete, so it appears whole or not at all.
"""

from __future__ import annotations

import json
import shutil
import tempfile
from pathlib import Path

import numpy as np

from dcoder import __version__
from dcoder.config import EXPORT_DTYPES
from dcoder.engine.checkpoint import Checkpoint, open_checkpoint
from dcoder.engine.families import family_of, parameter_count
from dcoder.engine.manifest import FORMAT, GRAPHS, MANIFEST_NAME, WEIGHTS_NAME, load_manifest, sha256_file
from dcoder.engine.model_config import ModelConfig
from dcoder.engine.onnx_graph import OPSET, Shapes, build_graph
from dcoder.engine.weights_file import WeightSource, WeightsWriter, checkpoint_shards, write_weights
from dcoder.errors import DcoderError

DTYPES = EXPORT_DTYPES


def _import_onnx():
    try:
        import onnx
    except ImportError:
        raise DcoderError("exporting needs the onnx package: pip install 'dcoder-diffusion[export]'") from None
    return onnx


def _fresh(out: str | Path) -> Path:
    out = Path(out)
    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        raise DcoderError(f"output folder {out} exists and is not empty")
    out.parent.mkdir(parents=True, exist_ok=True)
    return out


def _new_folder(out: str | Path) -> tuple[Path, Path]:
    """``out`` (absent or empty) and a temporary folder beside it, renamed to ``out`` when complete."""
    out = _fresh(out)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.", dir=out.parent))
    tmp.chmod(0o755)
    return out, tmp


def _finish(tmp: Path, out: Path) -> Path:
    if out.exists():
        out.rmdir()
    tmp.rename(out)
    return out


def export(checkpoint: str | Path, out: str | Path, dtype: str = "fp32", progress=None,
           source: dict | None = None) -> Path:
    """Write the model folder; it appears complete under ``out`` or not at all.

    ``checkpoint`` may also be an fp32/fp16 model folder: its checkpoint is unpacked beside
    ``out`` and exported again (another dtype, or this dcoder's graphs), keeping its source record.
    ``source`` records where a checkpoint came from (a hub commit) instead of hashing its files.
    """
    if dtype not in DTYPES:
        raise DcoderError(f"unknown --dtype {dtype!r} (choose from {', '.join(DTYPES)})")
    say = progress or (lambda msg: None)
    source_path = Path(checkpoint)
    if (source_path / MANIFEST_NAME).is_file():
        with tempfile.TemporaryDirectory(prefix=".unpacked.", dir=_fresh(out).parent) as work:
            say(f"unpacking {source_path}")
            unpacked = unpack(source_path, Path(work) / "checkpoint")
            return _export(unpacked, out, dtype, say, load_manifest(source_path, any_version=True).source)
    return _export(source_path, out, dtype, say, source)


def _export(checkpoint: Path, out: str | Path, dtype: str, say, source: dict | None) -> Path:
    onnx = _import_onnx()
    ckpt = open_checkpoint(checkpoint)
    out, tmp = _new_folder(out)
    try:
        if source is None:
            say(f"hashing {ckpt.path}")
            source = {"path": str(ckpt.path.resolve()), "sha256": ckpt.content_hash()}
        say("streaming weights")
        writer = WeightsWriter(tmp / WEIGHTS_NAME)
        try:
            write_weights(ckpt.config, WeightSource(ckpt), writer, dtype)
        finally:
            writer.close()
        shapes = Shapes(ckpt.config, dtype)
        graphs = {}
        for kind in ("full", "encode", "step"):
            say(f"writing {kind}.onnx")
            model, described = build_graph(kind, shapes, writer)
            path = tmp / f"{kind}.onnx"
            onnx.save_model(model, str(path))
            onnx.checker.check_model(str(path))
            graphs[kind] = {"file": path.name, "sha256": sha256_file(path), **described}
        shutil.copyfile(ckpt.tokenizer_path, tmp / "tokenizer.json")
        manifest = _manifest(ckpt, dtype, graphs, writer, source)
        (tmp / MANIFEST_NAME).write_text(json.dumps(manifest, indent=2) + "\n", encoding="utf-8")
        return _finish(tmp, out)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


def _manifest(ckpt: Checkpoint, dtype: str, graphs: dict, weights: WeightsWriter, source: dict) -> dict:
    cfg, tokens = ckpt.config, ckpt.tokens
    return {
        "format": FORMAT,
        "dcoder_version": __version__,
        "dtype": dtype,
        "opset": OPSET,
        "graphs": graphs,
        "external_data": [{"file": WEIGHTS_NAME, "bytes": weights.path.stat().st_size,
                           "sha256": weights.hash.hexdigest()}],
        "tokenizer": "tokenizer.json",
        "special_tokens": {"mask": tokens.mask, "span_pad": tokens.span_pad, "eos": tokens.eos, "bos": tokens.bos,
                           "expand": tokens.expand, "delete": tokens.delete},
        "shift_logits": cfg.shift_logits,
        "max_context": cfg.max_position_embeddings,
        "model": {"model_type": cfg.model_type, "vocab_size": cfg.vocab_size, "hidden_size": cfg.hidden_size,
                  "num_hidden_layers": cfg.num_hidden_layers, "num_attention_heads": cfg.num_attention_heads,
                  "num_key_value_heads": cfg.num_key_value_heads, "head_dim": cfg.head_dim,
                  "parameters": parameter_count(cfg)},
        "source": source,
        # the checkpoint's own config.json, so that ``unpack`` can give the checkpoint back (with
        # the head as read: a config may call it tied and ship it, see open_checkpoint)
        "config": {**ckpt.raw_config, ckpt.family.config_key("tie_word_embeddings"): cfg.tie_word_embeddings},
        **_training_record(ckpt.path),
    }


def _training_record(folder: Path) -> dict:
    """What ``dcoder train`` recorded with the checkpoint (corpus size and hash, step, recipe)."""
    path = folder / "training.json"
    if not path.is_file():
        return {}
    try:
        record = json.loads(path.read_text(encoding="utf-8"))
        keys = ("step", "tokens_seen", "metrics", "corpus", "train_config")
        return {"training": {k: record[k] for k in keys if k in record}}
    except (OSError, ValueError, TypeError):
        raise DcoderError(f"{path} is not a readable training record") from None


# ---- back to a checkpoint -------------------------------------------------------------------

def unpack(folder: str | Path, out: str | Path) -> Path:
    """Write the checkpoint an fp32 or fp16 model folder was exported from: config.json,
    tokenizer.json, one safetensors shard per layer (and one for the rest) and, when the folder
    records it, training.json. Exact: exporting only transposes and concatenates the weights
    (int8 folders cannot be unpacked: quantizing lost them). It appears complete or not at all.
    """
    from safetensors.numpy import save_file

    onnx = _import_onnx()
    # loading verifies the weights' checksum: the checkpoint handed back is the one exported, to the bit
    manifest = load_manifest(folder, any_version=True)
    if manifest.dtype not in ("fp32", "fp16"):
        raise DcoderError(f"{manifest.folder} holds {manifest.dtype} weights: only fp32 and fp16 model folders unpack")
    raw = manifest.raw.get("config")
    if not isinstance(raw, dict):
        raise DcoderError(f"{manifest.folder} does not record its checkpoint's config: export it from the checkpoint")
    cfg = ModelConfig.from_hf_dict(raw)
    tensors = _exported_tensors(onnx, manifest)
    try:
        shards = checkpoint_shards(cfg, tensors)
    except KeyError as exc:
        raise DcoderError(f"{manifest.folder} lacks weight {exc.args[0]}: not a folder dcoder export wrote") from None
    out, tmp = _new_folder(out)
    try:
        weight_map = {}
        family = family_of(raw)
        for k, shard in enumerate(shards):
            name = f"model-{k + 1:05d}-of-{len(shards):05d}.safetensors"
            shard = {family.checkpoint_name(n): np.ascontiguousarray(t) for n, t in shard.items()}
            save_file(shard, str(tmp / name), metadata={"format": "pt"})
            weight_map.update(dict.fromkeys(shard, name))
        index = {"metadata": {}, "weight_map": weight_map}
        (tmp / "model.safetensors.index.json").write_text(json.dumps(index, indent=1) + "\n", encoding="utf-8")
        tokens = manifest.tokens
        config = {**raw, "mask_token_id": tokens.mask, "span_pad_token_id": tokens.span_pad, "eos_token_id": tokens.eos,
                  **{f"{k}_token_id": v for k, v in (("expand", tokens.expand), ("delete", tokens.delete)) if v is not None}}
        (tmp / "config.json").write_text(json.dumps(config, indent=2) + "\n", encoding="utf-8")
        shutil.copyfile(manifest.folder / manifest.raw["tokenizer"], tmp / "tokenizer.json")
        if isinstance(manifest.raw.get("training"), dict):
            (tmp / "training.json").write_text(json.dumps(manifest.raw["training"], indent=2) + "\n", encoding="utf-8")
        return _finish(tmp, out)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


def _exported_tensors(onnx, manifest) -> dict[str, np.ndarray]:
    """Every external-data initializer of the folder's graphs, memory-mapped (name -> array)."""
    from onnx import helper

    files = {d["file"]: np.memmap(manifest.folder / d["file"], mode="r") for d in manifest.raw["external_data"]}
    out = {}
    for kind in GRAPHS:
        graph = onnx.load(str(manifest.graph_path(kind)), load_external_data=False).graph
        for t in graph.initializer:
            if t.data_location != onnx.TensorProto.EXTERNAL:
                continue
            ext = {e.key: e.value for e in t.external_data}
            dtype = np.dtype(helper.tensor_dtype_to_np_dtype(t.data_type))
            count = int(np.prod(t.dims, dtype=np.int64))
            try:
                if int(ext.get("length", count * dtype.itemsize)) != count * dtype.itemsize:
                    raise ValueError
                data = files[ext["location"]]  # load_manifest checked every location is one of these
                out[t.name] = np.frombuffer(data, dtype, count, int(ext.get("offset", 0))).reshape(tuple(t.dims))
            except (KeyError, ValueError):
                raise DcoderError(f"weight {t.name} of {kind}.onnx does not lie within the weights file") from None
    return out
