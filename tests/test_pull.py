"""`dcoder pull` against a hub served on 127.0.0.1 by the test (tests/hub_server.py), then the
pulled model by its hub name in the CLI and the language server. No network."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys

import numpy as np
import pytest

pytest.importorskip("huggingface_hub")

from hub_server import Hub, serve  # noqa: E402

from dcoder.errors import DcoderError  # noqa: E402

OPEN_DCODER = "fredzzp/open-dcoder-0.5B"
SHARD = "model-00001-of-00002.safetensors"


@pytest.fixture()
def hub():
    h = Hub()
    server = serve(h)
    yield h
    server.shutdown()
    server.server_close()


@pytest.fixture()
def env(tmp_path, hub):
    e = {k: v for k, v in os.environ.items() if not k.startswith(("HF_", "HUGGINGFACE_"))}
    e |= {"HF_HOME": str(tmp_path / "hf"), "XDG_CACHE_HOME": str(tmp_path / "cache"), "HF_ENDPOINT": hub.url,
          "NO_PROXY": "127.0.0.1,localhost", "no_proxy": "127.0.0.1,localhost", "HF_HUB_DISABLE_TELEMETRY": "1"}
    return e


def models(env):
    return os.path.join(env["XDG_CACHE_HOME"], "dcoder", "models")


def dcoder(env, *args, patch: str = ""):
    """The real command in a fresh process (huggingface_hub reads its variables at import);
    ``patch`` runs first, to shrink this machine's disk or memory."""
    code = f"import sys, dcoder.engine.hub as hub\n{patch}\nfrom dcoder.cli import main\nsys.exit(main(sys.argv[1:]))"
    return subprocess.run([sys.executable, "-c", code, *map(str, args)], capture_output=True, text=True,
                          env=env, timeout=300)


def one_line_error(r, needle):
    assert r.returncode == 2, r.stderr
    lines = [line for line in r.stderr.strip().splitlines() if line.startswith("dcoder: error:")]
    assert len(lines) == 1 and needle in lines[0], r.stderr
    assert "Traceback" not in r.stderr


def leftovers(env):
    """What a failed pull left in dcoder's models folder (an empty staging folder is fine)."""
    root = models(env)
    if not os.path.isdir(root):
        return []
    return [os.path.join(d, n) for d, dirs, files in os.walk(root) for n in dirs + files
            if not (n == ".staging" and d == root)]


def test_pull_exports_and_the_name_works_everywhere(hub, env, family_ckpt, sample_file, tmp_path, monkeypatch):
    folder = family_ckpt("open-dcoder")
    commit = hub.add(OPEN_DCODER, folder, files={"pytorch_model.bin": b"pickle", "README.md": b"# card"})
    r = dcoder(env, "pull", OPEN_DCODER, "--dtype", "fp32")
    assert r.returncode == 0, r.stderr
    out = os.path.join(models(env), "fredzzp--open-dcoder-0.5B--main")
    assert r.stdout.strip() == out
    manifest = json.loads(open(os.path.join(out, "manifest.json")).read())
    assert manifest["source"] == {"hub": OPEN_DCODER, "revision": "main", "commit": commit}
    assert manifest["dtype"] == "fp32" and manifest["shift_logits"] is True
    fetched = {p.rsplit("/", 1)[1] for m, p, _ in hub.log if m == "GET" and "/resolve/" in p}
    assert fetched == {"config.json", "tokenizer.json", "tokenizer_config.json", "special_tokens_map.json",
                       "added_tokens.json", "model.safetensors.index.json", SHARD, "model-00002-of-00002.safetensors"}
    assert "%" in r.stderr  # huggingface_hub's progress bar
    assert leftovers(env) and not [p for p in leftovers(env) if "/.staging/" in p]

    # the hub name stands for the folder in the CLI ...
    r = dcoder(env, "infill", sample_file, "--at", "3:12", "--model", OPEN_DCODER, "--steps", "2",
               "--max-tokens", "2", "--json", "--repair", "0", "--search-tokens", "0")
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout)["model"].startswith("fredzzp--open-dcoder-0.5B--main")
    # ... and in the language server
    monkeypatch.setenv("XDG_CACHE_HOME", env["XDG_CACHE_HOME"])
    from dcoder_lsp.loader import Loader

    engine = Loader(lambda level, msg: None).engine(OPEN_DCODER, "cpu")
    assert engine.shift and engine.tokens.mask == manifest["special_tokens"]["mask"]

    # pulling again finds it there and downloads nothing
    before = len(hub.downloads(SHARD))
    r = dcoder(env, "pull", OPEN_DCODER)
    assert r.returncode == 0 and "already pulled" in r.stderr and r.stdout.strip() == out
    assert len(hub.downloads(SHARD)) == before


def test_a_name_not_pulled_says_which_command_pulls_it(env, sample_file, monkeypatch):
    r = dcoder(env, "infill", sample_file, "--at", "3:12", "--model", "org/never-pulled@v2")
    one_line_error(r, "run `dcoder pull org/never-pulled@v2`")
    monkeypatch.setenv("XDG_CACHE_HOME", env["XDG_CACHE_HOME"])
    from dcoder_lsp.loader import Loader, ModelUnavailable

    with pytest.raises(ModelUnavailable, match="dcoder pull org/never-pulled"):
        Loader(lambda level, msg: None).engine("org/never-pulled", "cpu")


@pytest.mark.parametrize("family,repo", [("llada", "GSAI-ML/LLaDA-8B-Base"), ("coda", "Salesforce/CoDA-v0-Instruct"),
                                         ("dreamon", "Dream-org/DreamOn-v0-7B")])
def test_every_family_pulls_at_a_revision(family, repo, hub, env, family_ckpt):
    hub.add(repo, family_ckpt(family), tags=("v1.0",))
    r = dcoder(env, "pull", f"{repo}@v1.0", "--dtype", "int8")
    assert r.returncode == 0, r.stderr
    out = r.stdout.strip()
    assert out.endswith(repo.replace("/", "--") + "--v1.0")
    manifest = json.loads(open(os.path.join(out, "manifest.json")).read())
    assert manifest["dtype"] == "int8" and manifest["model"]["model_type"] == json.loads(
        (family_ckpt(family) / "config.json").read_text())["model_type"]


def test_auto_dtype_is_int8_on_the_cpu_and_fp16_on_a_gpu(hub, env, family_ckpt):
    hub.add(OPEN_DCODER, family_ckpt("open-dcoder"))
    r = dcoder(env, "pull", OPEN_DCODER, patch="hub.gpu_usable = lambda: False")
    assert r.returncode == 0, r.stderr
    assert json.loads(open(os.path.join(r.stdout.strip(), "manifest.json")).read())["dtype"] == "int8"
    r = dcoder(env, "pull", OPEN_DCODER, patch="hub.gpu_usable = lambda: True")
    assert r.returncode == 0, r.stderr
    assert "already pulled" in r.stderr  # auto takes what is there
    r = dcoder(env, "pull", OPEN_DCODER, "--dtype", "fp16")
    assert r.returncode == 0, r.stderr  # another format asked for replaces the folder
    assert json.loads(open(os.path.join(r.stdout.strip(), "manifest.json")).read())["dtype"] == "fp16"


def test_a_private_model_needs_hf_token(hub, env, family_ckpt):
    hub.add("corp/private-coder", family_ckpt("coda"), token="hf_secret")
    one_line_error(dcoder(env, "pull", "corp/private-coder"), "HF_TOKEN")
    assert leftovers(env) == []
    r = dcoder(env | {"HF_TOKEN": "hf_secret"}, "pull", "corp/private-coder")
    assert r.returncode == 0, r.stderr


def _drop_mask(folder):
    for name in ("tokenizer_config.json", "special_tokens_map.json", "added_tokens.json"):
        (folder / name).unlink()
    tok = json.loads((folder / "tokenizer.json").read_text())
    tok["added_tokens"] = [t for t in tok["added_tokens"] if t["content"] != "<M>"]
    (folder / "tokenizer.json").write_text(json.dumps(tok))


def _config(**change):
    def edit(folder):
        config = json.loads((folder / "config.json").read_text()) | change
        (folder / "config.json").write_text(json.dumps(config))
    return edit


def _swap_weights(folder):
    for p in folder.glob("*.safetensors*"):
        p.unlink()
    (folder / "pytorch_model.bin").write_bytes(b"\x80\x04pickle")


# case -> (name pulled, how the served checkpoint (open-dcoder's) is spoilt or None for no repo, error)
BAD = {
    "no such revision": ("org/m@nope", _config(), "org/m has no revision 'nope' on the hub"),
    "no such model": ("org/absent", None, "org/absent was not found on the hub"),
    "bad name": ("not-a-name", None, "bad model name 'not-a-name'"),
    "pickle only": ("org/m", _swap_weights, "has only pickle weights"),
    "no tokenizer.json": ("org/m", lambda f: (f / "tokenizer.json").unlink(), "has no tokenizer.json"),
    "unknown family": ("org/m", _config(model_type="mistral"), "unsupported model_type 'mistral'"),
    "shape mismatch": ("org/m", _config(intermediate_size=80), "config.json implies (80, 64)"),
    "no mask token": ("org/m", _drop_mask, "declares no mask"),
}


@pytest.mark.parametrize("case", BAD)
def test_bad_input_is_one_line_and_leaves_nothing(case, hub, env, family_ckpt, tmp_path):
    spec, edit, needle = BAD[case]
    if edit is not None:
        folder = tmp_path / "repo"
        shutil.copytree(family_ckpt("open-dcoder"), folder)
        edit(folder)
        hub.add("org/m", folder)
    one_line_error(dcoder(env, "pull", spec), needle)
    assert leftovers(env) == []
    if case in ("unknown family", "pickle only"):  # refused before any weights came down
        assert not [p for m, p, _ in hub.log if m == "GET" and p.endswith((".safetensors", ".bin"))]


def test_disk_and_memory_are_checked_before_downloading(hub, env, family_ckpt):
    hub.add("org/m", family_ckpt("coda"))
    r = dcoder(env, "pull", "org/m", "--dtype", "fp32", patch="hub.available_memory = lambda: 10**8")
    one_line_error(r, "needs about 0.5 GB of memory as fp32 and 0.1 GB is available: --dtype int8 needs")
    r = dcoder(env, "pull", "org/m", patch="hub.free_disk = lambda folder: (10**5, hub.Path(folder.anchor))")
    one_line_error(r, "GB to download")
    assert not hub.downloads(SHARD) and leftovers(env) == []


def test_a_broken_transfer_resumes_and_a_failed_one_is_finished_by_the_next_pull(hub, env, family_ckpt, tmp_path):
    from safetensors.numpy import load_file, save_file

    # a shard past huggingface_hub's 10 MB read chunk, so that a cut falls after whole chunks
    folder = tmp_path / "big"
    shutil.copytree(family_ckpt("open-dcoder"), folder)
    tensors = load_file(str(folder / SHARD)) | {"extra.padding": np.zeros(6_000_000, np.float32)}
    save_file(tensors, str(folder / SHARD))
    hub.add(OPEN_DCODER, folder)
    hub.faults[SHARD] = ["cut"]  # the connection drops halfway: huggingface_hub asks for the rest
    r = dcoder(env, "pull", OPEN_DCODER)
    assert r.returncode == 0, r.stderr
    ranges = hub.downloads(SHARD)
    assert ranges[0] is None and ranges[1].startswith("bytes=") and int(ranges[1][6:].rstrip("-")) >= 10 << 20

    hub.add("org/flaky", family_ckpt("open-dcoder"))
    hub.faults[SHARD] = ["cut", "fail"]  # ... and the hub is gone when it does
    one_line_error(dcoder(env, "pull", "org/flaky"), "the download of org/flaky stopped")
    assert not os.path.exists(os.path.join(models(env), "org--flaky--main"))
    r = dcoder(env, "pull", "org/flaky")
    assert r.returncode == 0, r.stderr


def test_offline_pull_exports_from_the_hub_cache(hub, env, family_ckpt):
    hub.add(OPEN_DCODER, family_ckpt("open-dcoder"))
    assert dcoder(env, "pull", OPEN_DCODER).returncode == 0
    shutil.rmtree(models(env))
    offline = env | {"HF_HUB_OFFLINE": "1", "HF_ENDPOINT": "http://127.0.0.1:9"}
    r = dcoder(offline, "pull", OPEN_DCODER)
    assert r.returncode == 0, r.stderr
    assert os.path.isfile(os.path.join(r.stdout.strip(), "manifest.json"))
    one_line_error(dcoder(offline, "pull", "org/elsewhere"), "HF_HUB_OFFLINE is set and org/elsewhere is not in the hub cache")


def test_an_interrupted_export_leaves_nothing_and_the_next_pull_starts_clean(hub, env, family_ckpt):
    hub.add(OPEN_DCODER, family_ckpt("open-dcoder"))
    r = dcoder(env, "pull", OPEN_DCODER,
               patch="import dcoder.engine.export as e\ndef stop(*a, **k): raise KeyboardInterrupt\ne.build_graph = stop")
    assert r.returncode == 130 and "interrupted" in r.stderr
    assert leftovers(env) == []
    # an export killed outright leaves its staging folder: the next pull clears it
    stale = os.path.join(models(env), ".staging", ".fredzzp--open-dcoder-0.5B--main.x1y2")
    os.makedirs(stale)
    r = dcoder(env, "pull", OPEN_DCODER)
    assert r.returncode == 0, r.stderr
    assert not os.path.exists(stale) and os.listdir(os.path.join(models(env), ".staging")) == []


def test_resolve_keeps_paths_and_refuses_unpulled_names(tmp_path, monkeypatch):
    from dcoder.engine.hub import parse_name, resolve

    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    (tmp_path / "org" / "local").mkdir(parents=True)
    monkeypatch.chdir(tmp_path)
    assert resolve("org/local") == tmp_path / "org" / "local" or resolve("org/local").resolve() == tmp_path / "org" / "local"
    assert resolve("./no/such/dir/deeper").name == "deeper"  # not a hub name: the caller says not found
    with pytest.raises(DcoderError, match="dcoder pull org/other@refs/pr/1"):
        resolve("org/other@refs/pr/1")
    assert parse_name("org/other@refs/pr/1").folder_name == "org--other--refs_pr_1"
