"""Training pipeline: corpus, tokenizer, objective, and real optimizer steps on a tiny corpus."""

from __future__ import annotations

import io
import json
import shutil
from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from safetensors.torch import load_file  # noqa: E402

from dcoder import cli  # noqa: E402
from dcoder.config import LengthConfig, SamplerConfig, SpecialTokens  # noqa: E402
from dcoder.engine.checkpoint import open_checkpoint  # noqa: E402
from dcoder.engine.load import load_engine  # noqa: E402
from dcoder.engine.model import DiffusionLM  # noqa: E402
from dcoder.engine.spans import Span, build_layout  # noqa: E402
from dcoder.engine.tokenizer import Tokenizer  # noqa: E402
from dcoder.errors import DcoderError  # noqa: E402
from dcoder.infill import InfillOptions, infill  # noqa: E402
from dcoder.training.corpus import collect, stdlib_root  # noqa: E402
from dcoder.training.objective import ObjectiveConfig, SampleSource, diffusion_sample, infill_sample, loss_terms  # noqa: E402
from dcoder.training.train import (  # noqa: E402
    TrainConfig,
    init_weights,
    make_optimizer,
    model_config,
    read_train_config,
    special_tokens,
    token_stream,
    train,
)
from dcoder.training.vocab import train_bpe  # noqa: E402

# keyword.py and sched.py fall in the validation split at val_fraction 0.25.
MODULES = ("textwrap", "shlex", "fnmatch", "glob", "heapq", "bisect", "colorsys", "keyword", "copy", "abc",
           "string", "numbers", "reprlib", "sched")
TEXT = "import os\n\n\ndef area(w, h):\n    \"\"\"Rectangle area.\"\"\"\n    return w * h\n\n\nprint(area(2, 3))\n"


@pytest.fixture(scope="module")
def corpus_dir(tmp_path_factory) -> Path:
    d = tmp_path_factory.mktemp("corpus")
    for name in MODULES:
        shutil.copyfile(stdlib_root() / f"{name}.py", d / f"{name}.py")
    return d


@pytest.fixture(scope="module")
def tok(corpus_dir, tmp_path_factory) -> Tokenizer:
    texts = [p.read_text(encoding="utf-8") for p in sorted(corpus_dir.glob("*.py"))]
    return Tokenizer(train_bpe(texts, 600, tmp_path_factory.mktemp("tok") / "tokenizer.json"))


def tiny(corpus_dir: Path, **over) -> TrainConfig:
    base = dict(corpus=str(corpus_dir), val_fraction=0.25, vocab_size=400, seq_len=128, hidden_size=32,
                num_layers=2, num_heads=4, num_kv_heads=2, intermediate_size=64, batch_size=4, max_steps=4,
                checkpoint_every=2, eval_every=2, eval_batches=1, log_every=1, warmup_steps=1, lr=3e-3,
                threads=1, objective=ObjectiveConfig(max_span_tokens=48))
    base.update(over)
    return TrainConfig(**base)


# ---- corpus and tokenizer ------------------------------------------------------------------

def test_corpus_filters_deduplicates_and_splits_by_file(tmp_path):
    good = {f"m{i}.py": f"def f{i}(x):\n    return x + {i}\n" for i in range(12)}
    for name, text in good.items():
        (tmp_path / name).write_text(text)
    (tmp_path / "pkg").mkdir()
    (tmp_path / "pkg" / "copy_of_m0.py").write_text(good["m0.py"])
    (tmp_path / "site-packages").mkdir()
    (tmp_path / "site-packages" / "third_party.py").write_text("x = 1\n")
    (tmp_path / "tests" / "data").mkdir(parents=True)
    (tmp_path / "tests" / "data" / "py2.py").write_text("y = 2\n")
    (tmp_path / "broken.py").write_text("def f(:\n")
    (tmp_path / "latin1.py").write_bytes("s = 'caf\xe9'\n".encode("latin-1"))
    (tmp_path / "cp000.py").write_text('"""Codec generated from X with gencodec.py."""\nt = ()\n')
    (tmp_path / "special.py").write_text("s = '<|mask|>'\n")
    (tmp_path / "notes.txt").write_text("not python")

    corpus = collect(str(tmp_path), val_fraction=0.3)
    paths = sorted(f.path for f in corpus.train + corpus.val)
    assert paths == sorted(good)
    assert {f.path for f in corpus.train}.isdisjoint(f.path for f in corpus.val)
    assert corpus.val and corpus.train
    assert corpus.skipped == {"duplicate": 1, "does not parse": 1, "not utf-8": 1, "generated": 1, "special tokens": 1}
    summary = corpus.summary()
    assert summary["train"]["files"] + summary["val"]["files"] == 12
    assert summary == collect(str(tmp_path), val_fraction=0.3).summary()
    (tmp_path / "m5.py").write_text("def f5(x):\n    return x - 5\n")
    assert collect(str(tmp_path), val_fraction=0.3).summary()["sha256"] != summary["sha256"]
    with pytest.raises(DcoderError):
        collect(str(tmp_path / "missing"))


def test_tokenizer_round_trips_and_keeps_layout_cheap(tok):
    names = ("<|endoftext|>", "<|mask|>", "<|dlm_pad|>", "<|expand|>", "<|delete|>")
    assert [tok.token_id(t) for t in names] == [0, 1, 2, 3, 4]
    assert special_tokens(tok) == SpecialTokens(mask=1, span_pad=2, eos=0, expand=3, delete=4)
    tricky = "def f(a,\tb):\r\n    s = 'caf\u00e9 \u2603 \U0001f600'  # x\n\n        return  a\n"
    assert tok.decode(tok.encode(tricky)) == tricky
    assert len(tok.encode("\n        ")) == 1
    assert len(tok.encode("):")) == 1
    assert tok.encode("x = <|mask|>")[-1] == 1


# ---- objective -----------------------------------------------------------------------------

def test_infill_sample_is_the_engine_layout_with_true_span_and_padding(tok):
    tokens = special_tokens(tok)
    start = TEXT.index("    return")
    end = TEXT.index("\n\n\nprint") + 1
    middle = tok.encode(TEXT[start:end])
    rng = np.random.default_rng(0)
    exact = infill_sample(TEXT, [(start, end)], tok, tokens, 128, ObjectiveConfig(exact_budget=1.0, expand_delete=0.0), rng)
    layout = build_layout(TEXT, [Span(start, end, len(middle))], tok, tokens, 128, lead=None)
    a, b = layout.slots[0]
    assert exact.targets[a:b].tolist() == middle
    assert np.array_equal(np.delete(exact.targets, np.s_[a:b]), np.delete(layout.ids, np.s_[a:b]))

    scored = 0
    for seed in range(8):
        s = infill_sample(TEXT, [(start, end)], tok, tokens, 128,
                          ObjectiveConfig(exact_budget=0.0, weighting="elbo", expand_delete=0.0), np.random.default_rng(seed))
        slot = np.flatnonzero(s.targets == tokens.span_pad)
        assert len(slot) > 0 and s.targets[slot[0] - len(middle):slot[0]].tolist() == middle
        hidden = s.weights > 0
        assert np.all(s.ids[hidden] == tokens.mask) and np.array_equal(s.ids[~hidden], s.targets[~hidden])
        assert hidden[:slot[0] - len(middle)].sum() == 0  # context before the slot is never hidden
        if hidden.any():
            scored += 1
            region = len(middle) + len(slot)  # the slot: the span's tokens then its padding
            p = 1 / (s.weights[hidden][0] * region)
            assert np.allclose(s.weights[hidden], 1 / (p * region)) and 1e-3 <= p <= 1
    assert scored >= 4


@pytest.mark.parametrize("shift", [False, True])
def test_expand_delete_samples_are_the_layout_the_sampler_decodes(tok, shift):
    tokens = special_tokens(tok)
    start, end = TEXT.index("    return"), TEXT.index("\n\n\nprint") + 1
    middle = tok.encode(TEXT[start:end])
    shorter = longer = 0
    for seed in range(40):
        config = ObjectiveConfig(exact_budget=float(seed % 2), expand_delete=1.0)  # surplus slots or none
        s = infill_sample(TEXT, [(start, end)], tok, tokens, 128, config, np.random.default_rng(seed), shift)
        # the engine's layout with as many masks as the slot has: the sampler's first input
        lead = tokens.eos if shift else None
        n = len(s.ids) - (len(build_layout(TEXT, [Span(start, end, 1)], tok, tokens, 128, lead).ids) - 1)
        layout = build_layout(TEXT, [Span(start, end, n)], tok, tokens, 128, lead)
        a, b = layout.slots[0]
        assert np.array_equal(np.delete(s.ids, np.s_[a:b]), np.delete(layout.ids, np.s_[a:b]))
        assert np.array_equal(np.delete(s.targets, np.s_[a:b]), np.delete(layout.ids, np.s_[a:b]))
        slot, hidden = s.targets[a:b], s.weights[a:b] > 0
        assert (s.weights[:a] == 0).all() and (s.weights[b:] == 0).all()
        assert np.array_equal(s.ids[a:b][hidden], np.full(hidden.sum(), tokens.mask))
        assert np.array_equal(s.ids[a:b][~hidden], slot[~hidden])
        # no padding: surplus slots come last and target delete; a merged run targets expand;
        # expand and delete are always hidden, as at inference, where they never stay in view
        deletes = int((slot == tokens.delete).sum())
        assert tokens.span_pad not in slot and (slot[len(slot) - deletes:] == tokens.delete).all()
        assert hidden[np.isin(slot, [tokens.expand, tokens.delete])].all()
        plain = slot[~np.isin(slot, [tokens.expand, tokens.delete])].tolist()
        expands = int((slot == tokens.expand).sum())
        assert len(plain) + 2 * expands <= len(middle)
        it = iter(middle)
        assert all(t in it for t in plain)  # the visible and token targets keep the span's order
        shorter += len(slot) < len(middle)
        longer += len(slot) > len(middle)
    assert shorter >= 5 and longer >= 5


def test_expand_delete_needs_the_tokens(tok, corpus_dir):
    texts = [p.read_text(encoding="utf-8") for p in sorted(corpus_dir.glob("*.py"))]
    old = SpecialTokens(mask=1, span_pad=2, eos=0)
    with pytest.raises(DcoderError, match="expand_delete"):
        SampleSource(texts, token_stream(tok, texts, 0), tok, old, 128, ObjectiveConfig())
    SampleSource(texts, token_stream(tok, texts, 0), tok, old, 128, ObjectiveConfig(expand_delete=0.0))
    with pytest.raises(DcoderError, match="expand_delete"):
        ObjectiveConfig(expand_delete=1.5)


def test_shifted_loss_scores_expand_and_delete_targets(tok, corpus_dir):
    texts = [p.read_text(encoding="utf-8") for p in sorted(corpus_dir.glob("*.py"))]
    tokens = special_tokens(tok)
    source = SampleSource(texts, token_stream(tok, texts, tokens.eos), tok, tokens, 128,
                          ObjectiveConfig(diffusion=0.0, expand_delete=1.0, max_span_tokens=48), shift=True)
    batch = source.batch(8, np.random.default_rng(3))
    assert (batch.ids[:, 0] == tokens.eos).all()  # the lead token a shifted model reads first
    targets = torch.from_numpy(batch.targets)
    weights = torch.from_numpy(batch.weights)
    logits = torch.zeros(8, 128, tok.vocab_size)
    logits[..., tokens.delete] = 5.0
    loss, _ = loss_terms(logits, targets, weights, shift=True)
    # position i scores the target at i + 1: put the answers one place early, and the loss falls
    logits.zero_()
    logits[:, :-1].scatter_(-1, targets[:, 1:, None], 20.0)
    exact, _ = loss_terms(logits, targets, weights, shift=True)
    assert exact < 1e-3 < loss


def test_diffusion_sample_hides_at_rate_t_with_inverse_weight():
    stream = np.arange(3, 5003, dtype=np.uint16)
    rates = []
    for seed in range(20):
        s = diffusion_sample(stream, 256, 1, 1e-3, np.random.default_rng(seed), weighting="elbo")
        hidden = s.weights > 0
        assert np.all(s.ids[hidden] == 1) and np.array_equal(s.ids[~hidden], s.targets[~hidden])
        if hidden.any():
            p = 1 / (s.weights[hidden][0] * 256)
            rates.append((hidden.mean(), p))
    observed, expected = np.array(rates).T
    assert np.corrcoef(observed, expected)[0, 1] > 0.95


def test_mean_weighting_counts_each_sample_once():
    stream = np.arange(3, 5003, dtype=np.uint16)
    for seed in range(20):
        s = diffusion_sample(stream, 256, 1, 1e-3, np.random.default_rng(seed))
        hidden = s.weights > 0
        assert np.all(s.ids[hidden] == 1)
        if hidden.any():
            assert np.allclose(s.weights[hidden], 1 / hidden.sum()) and np.isclose(s.weights.sum(), 1)
    with pytest.raises(DcoderError, match="weighting"):
        ObjectiveConfig(weighting="uniform")


def test_batches_mix_kinds_and_pad_without_scoring(tok, corpus_dir):
    texts = [p.read_text(encoding="utf-8") for p in sorted(corpus_dir.glob("*.py"))]
    tokens = special_tokens(tok)
    source = SampleSource(texts, token_stream(tok, texts, tokens.eos), tok, tokens, 128,
                          ObjectiveConfig(diffusion=0.25, chars=0.25, lines=0.25, syntax=0.25, multi_span=0.3,
                                          max_span_tokens=48))
    batch = source.batch(24, np.random.default_rng(0))
    assert batch.ids.shape == batch.targets.shape == batch.weights.shape == (24, 128)
    hidden = batch.weights > 0
    assert np.all(batch.ids[hidden] == tokens.mask)
    assert np.all(batch.weights[batch.ids != tokens.mask] == 0)
    # infilling rows end their spans: with padding, or (half of them) with delete targets
    assert (batch.targets == tokens.span_pad).any(axis=1).sum() >= 3
    assert (batch.targets == tokens.delete).any(axis=1).sum() >= 3
    assert source.span_fns["syntax"].cache  # syntax regions were drawn


def test_loss_decreases_on_a_repeated_batch(tok, corpus_dir):
    texts = [p.read_text(encoding="utf-8") for p in sorted(corpus_dir.glob("*.py"))]
    tokens = special_tokens(tok)
    source = SampleSource(texts, token_stream(tok, texts, tokens.eos), tok, tokens, 128, ObjectiveConfig(max_span_tokens=48))
    batch = source.batch(4, np.random.default_rng(1))
    ids, targets, weights = (torch.from_numpy(x) for x in (batch.ids, batch.targets, batch.weights))
    config = tiny(corpus_dir)
    torch.set_num_threads(config.threads)
    torch.manual_seed(0)
    model = DiffusionLM(model_config(config, tok.vocab_size))
    init_weights(model, config.num_layers)
    opt = make_optimizer(model, config)
    losses = []
    for _ in range(40):
        loss, _ = loss_terms(model(ids), targets, weights)
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    assert losses[-1] < 0.5 * losses[0]


# ---- the training run ----------------------------------------------------------------------

@pytest.fixture(scope="module")
def straight_run(corpus_dir, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("straight")
    train(tiny(corpus_dir), out, io.StringIO())
    return out


def test_checkpoint_loads_and_infills(straight_run):
    last = straight_run / "checkpoints" / "step-0000004"
    ckpt = open_checkpoint(last)
    assert ckpt.tokens == SpecialTokens(mask=1, span_pad=2, eos=0, expand=3, delete=4)
    assert ckpt.config.model_type == "dcoder" and not ckpt.config.shift_logits
    assert ckpt.config.max_position_embeddings == 128
    training = json.loads((last / "training.json").read_text())
    assert training["step"] == 4 and training["corpus"]["train"]["files"] == len(MODULES) - 2
    assert len(training["corpus"]["sha256"]) == 64

    engine = load_engine(last)
    start = TEXT.index("return w * h")
    for mode in ("pad", "expand"):  # it has expand and delete: both ways of ending a span work
        result = infill(engine, TEXT, [(start, start + len("return w * h"))],
                        InfillOptions(sampler=SamplerConfig(steps=4), max_tokens=8, lengths=LengthConfig(mode)))
        assert result.text.startswith(TEXT[:start]) and result.text.endswith(TEXT[start + len("return w * h"):])
        # a delete ends a span with the masks after it: expand runs may take fewer passes
        assert result.forward_passes == 4 if mode == "pad" else 1 <= result.forward_passes

    log = [json.loads(line) for line in (straight_run / "log.jsonl").read_text().splitlines()]
    steps = [e for e in log if "loss" in e]
    assert [e["step"] for e in steps] == [1, 2, 3, 4] and all(e["tok_s"] > 0 for e in steps)
    assert [e["step"] for e in log if "val_loss" in e] == [2, 4]


def test_trained_checkpoint_exports_with_its_corpus_record(straight_run, tmp_path):
    """The shipping pipeline: checkpoint -> int8 ONNX folder that records the corpus -> runtime infill."""
    from dcoder.engine.export import export
    from dcoder.engine.runtime import load_exported

    last = straight_run / "checkpoints" / "step-0000004"
    out = export(last, tmp_path / "model", "int8")
    manifest = json.loads((out / "manifest.json").read_text())
    training = json.loads((last / "training.json").read_text())
    assert manifest["training"]["corpus"] == training["corpus"] and manifest["training"]["step"] == 4
    engine = load_exported(out)
    start = TEXT.index("return w * h")
    assert engine.tokens.can_grow  # the manifest keeps expand and delete
    result = infill(engine, TEXT, [(start, start)],
                    InfillOptions(sampler=SamplerConfig(steps=4), max_tokens=8, lengths=LengthConfig("pad")))
    assert result.forward_passes == 4 and result.text.endswith(TEXT[start:])


def test_resume_continues_with_identical_state(straight_run, corpus_dir, tmp_path):
    first = io.StringIO()
    train(tiny(corpus_dir, max_steps=2), tmp_path, first)
    assert "resumed" not in first.getvalue()
    second = io.StringIO()
    last = train(tiny(corpus_dir), tmp_path, second)
    assert "(step 2)" in second.getvalue()
    assert last.name == "step-0000004"
    reference = straight_run / "checkpoints" / "step-0000004"
    for name in ("model.safetensors", "trainer/optimizer.safetensors"):
        a, b = load_file(str(reference / name)), load_file(str(last / name))
        assert a.keys() == b.keys()
        assert all(torch.equal(a[k], b[k]) for k in a), name
    state = json.loads((last / "trainer" / "state.json").read_text())
    assert state == json.loads((reference / "trainer" / "state.json").read_text())
    assert train(tiny(corpus_dir), tmp_path, io.StringIO()) == last  # nothing left to do


def test_config_files_and_cli(corpus_dir, tmp_path, capsys):
    toml = tmp_path / "run.toml"
    toml.write_text(f'corpus = "{corpus_dir}"\nseq_len = 128\nlr = 1\n[objective]\nlines = 0.5\n')
    config = read_train_config(toml, ["max_steps=7", "objective.chars=0"])
    assert (config.seq_len, config.lr, config.max_steps) == (128, 1.0, 7)
    assert (config.objective.lines, config.objective.chars) == (0.5, 0.0)
    js = tmp_path / "run.json"
    js.write_text(json.dumps(config.to_dict()))
    assert read_train_config(js) == config
    for bad in (["nope=1"], ["seq_len=1.5"], ["objective=3"], ["seq_len"]):
        with pytest.raises(DcoderError):
            read_train_config(toml, bad)

    conf = tmp_path / "tiny.json"
    conf.write_text(json.dumps(tiny(corpus_dir, max_steps=2, eval_batches=0).to_dict()))
    out = tmp_path / "run"
    assert cli.main(["train", "--config", str(conf), "--out", str(out), "--max-steps", "1"]) == 0
    assert capsys.readouterr().out.strip() == str(out / "checkpoints" / "step-0000001")
    assert cli.main(["train", "--config", str(conf), "--out", str(out), "--set", "seq_len=256"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("dcoder: error: ") and "seq_len" in err and err.count("\n") == 1


# ---- recipes: autoregressive pretraining, joint training, learning-curve benchmark -----------

def test_shifted_loss_scores_each_token_from_the_position_before():
    logits = torch.full((1, 3, 4), -30.0)
    logits[0, 0, 2] = logits[0, 1, 3] = 30.0  # position 0 predicts token 2, position 1 predicts 3
    targets = torch.tensor([[1, 2, 3]])
    weights = torch.tensor([[0.0, 0.5, 0.5]])
    assert loss_terms(logits, targets, weights, shift=True)[0].item() < 1e-6
    assert loss_terms(logits, targets, weights)[0].item() > 10


def test_ar_batches_are_clean_windows_scored_after_the_first_token(tok, corpus_dir):
    texts = [p.read_text(encoding="utf-8") for p in sorted(corpus_dir.glob("*.py"))]
    tokens = special_tokens(tok)
    stream = token_stream(tok, texts, tokens.eos)
    source = SampleSource(texts, stream, tok, tokens, 64, ObjectiveConfig(max_span_tokens=24), shift=True)
    batch = source.ar_batch(3, np.random.default_rng(0))
    assert batch.ids.shape == (3, 64) and np.array_equal(batch.ids, batch.targets)
    assert not (batch.ids == tokens.mask).any()
    assert np.all(batch.weights[:, 0] == 0) and np.allclose(batch.weights[:, 1:].sum(axis=1), 1)
    first = int(np.flatnonzero((stream[:-63] == batch.ids[0, 0]))[0])  # a window of the stream
    assert any(np.array_equal(stream[i:i + 64], batch.ids[0]) for i in range(first, len(stream) - 63))
    # shifted infilling layouts start with the lead token, as the engine lays them out
    start = TEXT.index("return w * h")
    sample = infill_sample(TEXT, [(start, start + 12)], tok, tokens, 64, ObjectiveConfig(), np.random.default_rng(0), True)
    assert sample.ids[0] == tokens.eos and sample.targets[0] == tokens.eos


def test_causal_attention_hides_later_tokens(corpus_dir, tok):
    torch.manual_seed(0)
    model = DiffusionLM(model_config(tiny(corpus_dir), tok.vocab_size)).eval()
    ids = torch.randint(3, tok.vocab_size, (1, 10))
    other = ids.clone()
    other[0, 6:] = 5
    with torch.no_grad():
        a, b = model(ids, causal=True), model(other, causal=True)
        assert torch.allclose(a[:, :6], b[:, :6], atol=1e-6)
        assert not torch.allclose(model(ids)[:, :6], model(other)[:, :6], atol=1e-3)


@pytest.mark.parametrize("recipe", [{"ar_steps": 2}, {"ar_mix": 0.5}])
def test_autoregressive_recipes_train_a_shifted_model(corpus_dir, tmp_path, recipe):
    config = tiny(corpus_dir, shift_logits=True, **recipe)
    last = train(config, tmp_path, io.StringIO())
    ckpt = open_checkpoint(last)
    assert ckpt.config.shift_logits
    log = [json.loads(line) for line in (tmp_path / "log.jsonl").read_text().splitlines()]
    assert all("val_ar_ce" in e and e["tokens_seen"] > 0 for e in log if "val_loss" in e)
    start = TEXT.index("return w * h")
    result = infill(load_engine(last), TEXT, [(start, start)], InfillOptions(sampler=SamplerConfig(steps=4), max_tokens=8))
    assert result.forward_passes == 4 and result.text.endswith(TEXT[start:])


def test_autoregressive_recipes_need_shifted_logits(corpus_dir):
    for bad in ({"ar_steps": 5}, {"ar_mix": 0.3}, {"shift_logits": True, "ar_mix": 1.0}):
        with pytest.raises(DcoderError):
            tiny(corpus_dir, **bad)


def test_learning_curve_benchmark_is_logged(corpus_dir, tmp_path):
    tasks = tmp_path / "tasks.jsonl"
    start = TEXT.index("return w * h")
    rows = [{"task_id": f"t{i}", "prompt": TEXT[:start], "suffix": TEXT[start + 12:], "canonical_solution": "return w * h",
             "kind": kind} for i, kind in enumerate(("single-line", "node", "node", "multi-line"))]
    tasks.write_text("".join(json.dumps(r) + "\n" for r in rows))
    config = tiny(corpus_dir, bench=str(tasks), bench_every=2, bench_limit=1)
    train(config, tmp_path / "run", io.StringIO())
    log = [json.loads(line) for line in (tmp_path / "run" / "log.jsonl").read_text().splitlines()]
    benches = [e for e in log if "bench_exact" in e]
    assert [e["step"] for e in benches] == [2, 4]
    assert set(benches[0]["bench_exact"]) == {"single-line", "node"}  # bench_limit 1 of each kind
    assert all(0 <= v <= 1 for e in benches for v in e["bench_parse"].values())
    # next-token steps teach no denoising: the benchmark waits for the diffusion phase
    config = tiny(corpus_dir, bench=str(tasks), bench_every=2, bench_limit=1, shift_logits=True, ar_steps=2)
    train(config, tmp_path / "ar", io.StringIO())
    log = [json.loads(line) for line in (tmp_path / "ar" / "log.jsonl").read_text().splitlines()]
    assert [e["step"] for e in log if "bench_exact" in e] == [4]


def test_curve_table_and_plot_from_run_logs(straight_run, tmp_path, capsys):
    from dcoder.training.curve import summary

    rows = summary([str(straight_run)])
    assert rows[0]["steps"] == 4 and rows[0]["tokens_seen"] == 4 * 4 * 128 and rows[0]["val_ce"] > 0
    png = tmp_path / "curve.png"
    pytest.importorskip("matplotlib")
    assert cli.main(["curve", str(straight_run), "--png", str(png)]) == 0
    out = capsys.readouterr().out
    assert out.startswith("| run | steps | tokens_seen | val_ce |") and png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert cli.main(["curve", str(tmp_path / "nothing")]) == 2
    assert capsys.readouterr().err.count("\n") == 1


@pytest.mark.parametrize("shift", [False, True])
def test_logits_of_scored_rows_only_give_the_same_loss(tok, corpus_dir, shift):
    from dcoder.training.objective import row_loss, scored_rows

    texts = [p.read_text(encoding="utf-8") for p in sorted(corpus_dir.glob("*.py"))]
    tokens = special_tokens(tok)
    source = SampleSource(texts, token_stream(tok, texts, tokens.eos), tok, tokens, 128,
                          ObjectiveConfig(max_span_tokens=48), shift)
    ids, targets, weights = (torch.from_numpy(x) for x in (lambda b: (b.ids, b.targets, b.weights))(
        source.batch(4, np.random.default_rng(3))))
    torch.manual_seed(0)
    model = DiffusionLM(model_config(tiny(corpus_dir), tok.vocab_size)).eval()
    with torch.no_grad():
        full = loss_terms(model(ids), targets, weights, shift)
        rows = row_loss(model(ids, rows=scored_rows(weights, shift)), targets, weights, shift)
    assert torch.allclose(full[0], rows[0], atol=1e-5) and torch.allclose(full[1], rows[1], atol=1e-5)


def test_wsd_schedule_holds_then_decays_and_rewarms_after_a_carried_resume(corpus_dir):
    from dcoder.training.train import learning_rate

    config = tiny(corpus_dir, schedule="wsd", max_steps=100, warmup_steps=10, decay_steps=20, lr=1e-3, min_lr=1e-4)
    assert learning_rate(4, config) == pytest.approx(5e-4)
    assert learning_rate(50, config) == learning_rate(80, config) == 1e-3
    assert learning_rate(90, config) == pytest.approx(1e-4 + 9e-4 * 10 / 20)
    assert learning_rate(100, config) == pytest.approx(1e-4)
    assert learning_rate(50, config, rewarm_from=48) == pytest.approx(3e-4)
    assert learning_rate(60, config, rewarm_from=48) == 1e-3


def test_carried_state_resumes_the_run_and_bad_states_fail_in_one_line(straight_run, corpus_dir, tmp_path, capsys):
    carry = tmp_path / "carry"
    assert cli.main(["train", "--out", str(straight_run), "--carry-to", str(carry)]) == 0
    weights = load_file(str(carry / "checkpoint" / "model.safetensors"))
    assert all(v.dtype == torch.bfloat16 for v in weights.values())
    assert not (carry / "checkpoint" / "trainer" / "optimizer.safetensors").exists()

    out = tmp_path / "run"
    stream = io.StringIO()
    last = train(tiny(corpus_dir, max_steps=6), out, stream, resume_from=carry)
    assert "seeded from the carried state" in stream.getvalue() and "(step 4)" in stream.getvalue()
    assert last.name == "step-0000006"
    state = json.loads((last / "trainer" / "state.json").read_text())
    assert state["rewarm_from"] == 4 and state["tokens_seen"] == 6 * 4 * 128
    log = [json.loads(line) for line in (out / "log.jsonl").read_text().splitlines()]
    assert [e["step"] for e in log if "loss" in e] == [1, 2, 3, 4, 5, 6]  # the carried history goes on

    conf = tmp_path / "other.json"
    conf.write_text(json.dumps(tiny(corpus_dir, lr=5e-3).to_dict()))
    assert cli.main(["train", "--config", str(conf), "--out", str(tmp_path / "r2"), "--resume-from", str(carry)]) == 2
    assert "lr" in capsys.readouterr().err
    broken = tmp_path / "broken"
    shutil.copytree(carry, broken)
    (broken / "checkpoint" / "model.safetensors").write_bytes(b"\0" * 64)
    conf.write_text(json.dumps(tiny(corpus_dir).to_dict()))
    assert cli.main(["train", "--config", str(conf), "--out", str(tmp_path / "r3"), "--resume-from", str(broken)]) == 2
    err = capsys.readouterr().err
    assert "corrupt" in err and err.count("\n") == 1
    assert cli.main(["train", "--config", str(conf), "--out", str(tmp_path / "r4"), "--resume-from", str(tmp_path)]) == 2
    assert "not a carried training state" in capsys.readouterr().err


def test_a_run_started_before_an_option_existed_resumes_with_its_default(corpus_dir, tmp_path):
    from dcoder.training.train import check_run_config, write_json

    config = tiny(corpus_dir)
    old = config.to_dict()
    del old["schedule"], old["objective"]["expand_delete"]
    write_json(tmp_path / "train_config.json", old)
    check_run_config(tmp_path, config)  # accepted: the missing options had these defaults
    old["objective"]["lines"] = 0.9
    write_json(tmp_path / "train_config.json", old)
    with pytest.raises(DcoderError, match="objective"):
        check_run_config(tmp_path, config)
