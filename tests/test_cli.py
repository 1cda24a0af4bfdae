"""`dcoder infill` / `dcoder refine` end to end through the real command with a tiny checkpoint."""

import json
import os
import shutil
import subprocess
import sys

import pytest
from conftest import SAMPLE


def dcoder(*args, cwd=None):
    return subprocess.run([sys.executable, "-m", "dcoder", *map(str, args)], capture_output=True,
                          text=True, cwd=cwd, timeout=300)


def test_infill_at_cursor_prints_the_whole_file(dream_ckpt, sample_file):
    r = dcoder("infill", sample_file, "--at", "3:12", "--model", dream_ckpt, "--steps", "4")
    assert r.returncode == 0, r.stderr
    head, tail = SAMPLE[:SAMPLE.index("a + b\n")], SAMPLE[SAMPLE.index("a + b\n"):]
    assert r.stdout.startswith(head) and r.stdout.endswith(tail) and len(r.stdout) > len(SAMPLE)
    assert sample_file.read_text() == SAMPLE


def test_infill_range_json_reports_edit(dream_ckpt, sample_file):
    r = dcoder("infill", sample_file, "--range", "3:12-3:17", "--model", dream_ckpt, "--json",
               "--max-tokens", "6", "--steps", "3", "--repair", "0", "--search-tokens", "0")
    assert r.returncode == 0, r.stderr
    out = json.loads(r.stdout)
    (edit,) = out["edits"]
    assert edit["start"] == {"line": 3, "column": 12} and edit["end"] == {"line": 3, "column": 17}
    assert SAMPLE[edit["start_offset"]:edit["end_offset"]] == "a + b"
    assert out["forward_passes"] == 3 and out["generated_tokens"] == 6
    assert out["model"].endswith("torch/cpu)")


def test_holes_are_filled_in_one_run_in_place(dream_ckpt, tmp_path):
    f = tmp_path / "holes.py"
    f.write_text("x = <|mask|>\ny = [<|mask|>]\n")
    os.chmod(f, 0o640)
    r = dcoder("infill", f, "--model", dream_ckpt, "--in-place", "--max-tokens", "4", "--steps", "2",
               "--repair", "0", "--allow-broken")
    assert r.returncode == 0, r.stderr
    new = f.read_text()
    assert "<|mask|>" not in new and new.startswith("x = ") and "\ny = [" in new and new.endswith("]\n")
    assert oct(f.stat().st_mode & 0o777) == oct(0o640)
    assert [p.name for p in tmp_path.iterdir()] == ["holes.py"]  # no temp file left behind


def test_refine_diff_and_show_steps(dream_ckpt, sample_file):
    r = dcoder("refine", sample_file, "--range", "11:9-12:26", "--model", dream_ckpt, "--diff", "--show-steps",
               "--steps", "4", "--max-tokens", "8", "--repair", "0")
    assert r.returncode == 0, r.stderr
    assert r.stdout.startswith("--- a/") and "-        self.value += by" in r.stdout
    assert r.stderr.count("step ") == 4


def test_refine_min_confidence_runs(dream_ckpt, sample_file):
    r = dcoder("refine", sample_file, "--range", "3:12-3:17", "--model", dream_ckpt, "--json", "--min-confidence", "0.9")
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout)["forward_passes"] >= 1


def test_seeded_sampling_is_reproducible(dream_ckpt, sample_file):
    args = ("infill", sample_file, "--at", "3:12", "--model", dream_ckpt, "--temperature", "1", "--seed", "5", "--steps", "2")
    assert dcoder(*args).stdout == dcoder(*args).stdout


def one_line_error(r, needle):
    assert r.returncode == 2
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("dcoder: error:") and needle in lines[0], r.stderr
    assert "Traceback" not in r.stderr


def test_bad_inputs_give_one_line_and_leave_file_untouched(dream_ckpt, sample_file, tmp_path):
    before = sample_file.read_bytes()
    one_line_error(dcoder("infill", sample_file, "--at", "40:1", "--model", dream_ckpt, "--in-place"), "outside the file")
    one_line_error(dcoder("infill", sample_file, "--at", "3:80", "--model", dream_ckpt, "--in-place"), "outside the file")
    one_line_error(dcoder("infill", sample_file, "--range", "3:9-2:1", "--model", dream_ckpt), "ends before")
    one_line_error(dcoder("infill", sample_file, "--at", "x", "--model", dream_ckpt), "LINE:COLUMN")
    one_line_error(dcoder("infill", sample_file, "--at", "1:1", "--model", tmp_path / "nope"), "not found")
    one_line_error(dcoder("infill", sample_file, "--model", dream_ckpt), "no <|mask|> hole")
    one_line_error(dcoder("infill", sample_file, "--at", "1:1", "--model", dream_ckpt, "--alg", "entropy", "--steps", "0"), "steps")
    assert sample_file.read_bytes() == before

    binary = tmp_path / "bin.py"
    binary.write_bytes(b"x = '\xff\xfe'\n")
    one_line_error(dcoder("infill", binary, "--at", "1:1", "--model", dream_ckpt, "--in-place"), "not UTF-8")
    assert binary.read_bytes() == b"x = '\xff\xfe'\n"
    one_line_error(dcoder("infill", tmp_path / "missing.py", "--at", "1:1", "--model", dream_ckpt), "file not found")


def broken_copy(src, tmp_path, name):
    dst = tmp_path / name
    shutil.copytree(src, dst)
    return dst


def test_bad_checkpoints_are_refused_clearly(dream_ckpt, sample_file, tmp_path):
    corrupt = broken_copy(dream_ckpt, tmp_path, "corrupt")
    data = (corrupt / "model.safetensors").read_bytes()
    (corrupt / "model.safetensors").write_bytes(data[: len(data) // 2])
    one_line_error(dcoder("infill", sample_file, "--at", "1:1", "--model", corrupt), "corrupt safetensors")

    garbage = broken_copy(dream_ckpt, tmp_path, "garbage")
    (garbage / "model.safetensors").write_bytes(b"\x00" * 64)
    one_line_error(dcoder("infill", sample_file, "--at", "1:1", "--model", garbage), "corrupt safetensors")

    llama = broken_copy(dream_ckpt, tmp_path, "llama")
    cfg = json.loads((llama / "config.json").read_text())
    cfg["model_type"] = "llama"
    (llama / "config.json").write_text(json.dumps(cfg))
    one_line_error(dcoder("infill", sample_file, "--at", "1:1", "--model", llama), "unsupported model_type 'llama'")

    pickled = broken_copy(dream_ckpt, tmp_path, "pickled")
    (pickled / "model.safetensors").rename(pickled / "pytorch_model.bin")
    one_line_error(dcoder("infill", sample_file, "--at", "1:1", "--model", pickled), "pickle")

    no_cfg = broken_copy(dream_ckpt, tmp_path, "nocfg")
    (no_cfg / "config.json").write_text("{not json")
    one_line_error(dcoder("infill", sample_file, "--at", "1:1", "--model", no_cfg), "config.json")

    no_tok = broken_copy(dream_ckpt, tmp_path, "notok")
    (no_tok / "tokenizer.json").unlink()
    one_line_error(dcoder("infill", sample_file, "--at", "1:1", "--model", no_tok), "tokenizer.json")


def test_crlf_file_keeps_its_line_endings(dream_ckpt, tmp_path):
    f = tmp_path / "crlf.py"
    f.write_bytes(b"a = 1\r\nb = <|mask|>\r\nc = 3\r\n")
    r = dcoder("infill", f, "--model", dream_ckpt, "--in-place", "--max-tokens", "3", "--steps", "1",
               "--repair", "0", "--allow-broken")
    assert r.returncode == 0, r.stderr
    data = f.read_bytes()
    assert data.startswith(b"a = 1\r\nb = ") and data.endswith(b"\r\nc = 3\r\n")


def test_llada_style_sharded_checkpoint(llada_ckpt, sample_file):
    r = dcoder("infill", sample_file, "--at", "3:12", "--model", llada_ckpt, "--steps", "2", "--json")
    assert r.returncode == 0, r.stderr


# ---- --in-place never loses data (in process, so the file can be changed "during the run") ----

def run_in_place(monkeypatch, capsys, model, path, meanwhile=None, *extra):
    """``dcoder infill PATH --in-place`` with a hole at 3:12; ``meanwhile()`` runs after the file
    was read, while the model loads. Returns (exit code, stderr)."""
    from dcoder import cli

    load = getattr(cli.resolve_model, "real", cli.resolve_model)  # not a wrapper from an earlier run

    def loading(*args):
        if meanwhile is not None:
            meanwhile()
        return load(*args)

    loading.real = load
    monkeypatch.setattr(cli, "resolve_model", loading)
    code = cli.main(["infill", str(path), "--at", "3:12", "--in-place", "--model", str(model), "--steps", "1",
                     "--max-tokens", "2", "--repair", "0", "--search-tokens", "0", "--allow-broken", *extra])
    return code, capsys.readouterr().err


def refused(code, err, needle):
    assert code == 2 and "Traceback" not in err
    lines = err.strip().splitlines()  # warnings about the fill may come first
    assert all(line.startswith("dcoder: ") for line in lines), err
    assert lines[-1].startswith("dcoder: error:") and needle in lines[-1], err


@pytest.fixture()
def onnx_model(exported):
    return exported("dream", "fp32")


def test_in_place_writes_nothing_when_the_file_changed_meanwhile(monkeypatch, capsys, onnx_model, sample_file):
    with_line = SAMPLE + "x = 1\n"
    code, err = run_in_place(monkeypatch, capsys, onnx_model, sample_file, lambda: sample_file.write_text(with_line))
    refused(code, err, "changed during the run")
    assert sample_file.read_text() == with_line


def test_in_place_edits_a_symlinks_target(monkeypatch, capsys, onnx_model, sample_file, tmp_path):
    link = tmp_path / "link.py"
    link.symlink_to(sample_file)
    code, err = run_in_place(monkeypatch, capsys, onnx_model, link)
    assert code == 0, err
    assert link.is_symlink() and os.readlink(link) == str(sample_file)
    assert sample_file.read_text() != SAMPLE and sample_file.read_text().startswith(SAMPLE[:40])
    assert sorted(p.name for p in tmp_path.iterdir()) == ["link.py", "sample.py"]


def test_in_place_keeps_hard_links_mode_and_owner(monkeypatch, capsys, onnx_model, sample_file, tmp_path):
    other = tmp_path / "other.py"
    os.link(sample_file, other)
    os.chmod(sample_file, 0o640)
    owner = (4321, 4321) if os.geteuid() == 0 else (os.geteuid(), os.getegid())
    os.chown(sample_file, *owner)
    inode = sample_file.stat().st_ino
    code, err = run_in_place(monkeypatch, capsys, onnx_model, sample_file)
    assert code == 0, err
    st = sample_file.stat()
    assert (st.st_ino, st.st_nlink, st.st_mode & 0o777, (st.st_uid, st.st_gid)) == (inode, 2, 0o640, owner)
    assert other.read_text() == sample_file.read_text() != SAMPLE
    assert sorted(p.name for p in tmp_path.iterdir()) == ["other.py", "sample.py"]  # no backup left behind

    os.unlink(other)  # one link again: a renamed copy, with the same mode and owner
    before = sample_file.read_text()
    code, err = run_in_place(monkeypatch, capsys, onnx_model, sample_file)
    assert code == 0, err
    st = sample_file.stat()
    assert (st.st_mode & 0o777, (st.st_uid, st.st_gid)) == (0o640, owner) and sample_file.read_text() != before


def test_in_place_refuses_read_only_files_and_folders(monkeypatch, capsys, onnx_model, sample_file, tmp_path):
    os.chmod(sample_file, 0o444)
    code, err = run_in_place(monkeypatch, capsys, onnx_model, sample_file, lambda: pytest.fail("the model loaded"))
    refused(code, err, "is read-only")
    os.chmod(sample_file, 0o644)

    code, err = run_in_place(monkeypatch, capsys, onnx_model, sample_file, lambda: os.chmod(tmp_path, 0o555))
    os.chmod(tmp_path, 0o755)
    refused(code, err, "its folder")
    assert sample_file.read_text() == SAMPLE and [p.name for p in tmp_path.iterdir()] == ["sample.py"]


def test_in_place_file_deleted_during_the_run(monkeypatch, capsys, onnx_model, sample_file, tmp_path):
    code, err = run_in_place(monkeypatch, capsys, onnx_model, sample_file, sample_file.unlink)
    refused(code, err, "was deleted during the run")
    assert list(tmp_path.iterdir()) == []


# ---- option bounds ----------------------------------------------------------------------

@pytest.mark.parametrize("args, needle", [
    (["--seed", "-1"], "--seed"),
    (["--temperature", "nan"], "temperatures must be finite"),
    (["--temperature", "inf"], "temperatures must be finite"),
    (["--alg-temp=-inf"], "temperatures must be finite"),
    (["--max-context", "0"], "--max-context"),
    (["--candidates", "10000000"], "--candidates must be from 1 to"),  # one batch: memory
    (["--repair", str(10**20)], "--repair must be from 0 to"),
    (["--search-tokens", "17"], "--search-tokens must be from 0 to"),
    (["--region", ""], "unknown region ''"),
    (["--range", ""], "bad range"),
])
def test_out_of_bounds_options_are_refused(capsys, onnx_model, sample_file, args, needle):
    from dcoder.cli import main

    where = [] if "--range" in args else ["--at", "3:12"]
    refused(main(["infill", str(sample_file), *where, "--model", str(onnx_model), *args]), capsys.readouterr().err, needle)


def test_refine_needs_a_selection(capsys, onnx_model, sample_file):
    from dcoder.cli import main

    for empty in ("1:1-1:1", "4:1-5:1"):  # nothing, and a blank line
        code = main(["refine", str(sample_file), "--range", empty, "--model", str(onnx_model), "--in-place"])
        refused(code, capsys.readouterr().err, "selects no code")
    assert sample_file.read_text() == SAMPLE


def test_deadline_is_checked_and_reported(dream_ckpt, sample_file):
    for bad in ("0", "nan", "1e9", "-3"):
        one_line_error(dcoder("infill", sample_file, "--at", "3:1", "--model", dream_ckpt, "--deadline", bad),
                       "--deadline must be from 0.1 to 3600")
    ok = dcoder("infill", sample_file, "--at", "3:1", "--model", dream_ckpt, "--deadline", "600", "--json")
    assert ok.returncode == 0 and json.loads(ok.stdout)["edits"]
