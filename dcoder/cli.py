"""The ``dcoder`` command line. Every failure the user can cause is one line on stderr and exit 2."""

from __future__ import annotations

import argparse
import difflib
import json
import math
import sys
import time
from pathlib import Path

from dcoder import __version__
from dcoder.config import (
    ALGS,
    EXPORT_DTYPES,
    LENGTH_MODES,
    POLICIES,
    InfillOptions,
    LengthConfig,
    SamplerConfig,
    bounds,
)
from dcoder.engine.engine import BUILTIN_MODEL
from dcoder.engine.runtime import PROVIDERS, RuntimeOptions
from dcoder.errors import DcoderError
from dcoder.files import check_writable, read_source, write_back
from dcoder.positions import line_starts, offset_of, parse_range, position_of

EXIT_USAGE = 2


# ---- model and options ---------------------------------------------------------------------

def resolve_model(arg: str | None, provider: str = "auto", cache_refresh: int = 0):
    from dcoder.engine.load import load_engine

    if arg is None:
        if not (BUILTIN_MODEL / "manifest.json").exists():
            raise DcoderError("no --model given and no built-in model is installed; pass --model DIR")
        arg = str(BUILTIN_MODEL)
    return load_engine(arg, provider, cache_refresh=cache_refresh)


def add_runtime_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--provider", choices=PROVIDERS, default=RuntimeOptions.provider,
                   help="onnxruntime provider for exported models (default auto: CUDA when usable, else CPU)")
    p.add_argument("--cache-refresh", type=int, default=RuntimeOptions.cache_refresh, metavar="K",
                   help="exported models: re-encode the context every K passes (default 0: once per run)")


# Defaults come from the option's declaration in dcoder.config (argparse's own is only for the
# options the engine does not have); help texts quote them from there.

def add_length_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--length", choices=LENGTH_MODES, default=LengthConfig.mode,
                   help="how spans get their length: pad (a budget of masks, ended early with padding), expand "
                        "(masks may split in two or vanish as they are revealed: the model needs <|expand|> and "
                        "<|delete|>) or auto (expand when it has them; the default)")
    p.add_argument("--max-span", type=int, default=LengthConfig.max_span, metavar="N",
                   help=f"with --length expand: most tokens a span may grow to (default {LengthConfig.max_span})")


def add_deadline_arg(p: argparse.ArgumentParser) -> None:
    low, high = bounds(InfillOptions, "deadline")
    p.add_argument("--deadline", type=float, default=InfillOptions.deadline, metavar="S",
                   help=f"seconds a fill may take; then the best one found so far is used "
                        f"(default {InfillOptions.deadline:g}, from {low:g} to {high:g})")


def add_sampler_args(p: argparse.ArgumentParser, seed_help: str | None = None) -> None:
    d = SamplerConfig
    p.add_argument("--steps", type=int, default=d.steps, help=f"denoising steps (default {d.steps})")
    p.add_argument("--threshold", type=float, metavar="X",
                   help="reveal every token whose confidence passes X at each step (instead of --steps)")
    p.add_argument("--alg", choices=ALGS, default=d.alg, help=f"confidence used to order unmasking (default {d.alg})")
    p.add_argument("--alg-temp", type=float, default=d.alg_temp,
                   help=f"randomness in the unmasking order (default {d.alg_temp:g})")
    p.add_argument("--temperature", type=float, default=d.temperature,
                   help=f"sampling temperature (default {d.temperature:g}: greedy)")
    p.add_argument("--top-k", type=int, metavar="K")
    p.add_argument("--top-p", type=float, metavar="P")
    p.add_argument("--seed", type=int, default=d.seed, help=seed_help)


def add_scope_bias_arg(p: argparse.ArgumentParser) -> None:
    low, high = bounds(InfillOptions, "scope_bias")
    p.add_argument("--scope-bias", type=float, default=InfillOptions.scope_bias, metavar="X",
                   help=f"log-probability added to tokens that spell a name in scope where an identifier begins or "
                        f"goes on (default {InfillOptions.scope_bias:g}, from {low:g} to {high:g}; 0: off)")


def add_context_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--context-from", metavar="DIR",
                   help="put the code of DIR (a workspace) most like the code around the hole ahead of the file "
                        "in the model's context (.gitignore is respected; FILE itself is left out)")
    p.add_argument("--context-exclude", action="append", default=[], metavar="PATTERN",
                   help="with --context-from: leave out this folder or file name pattern (repeatable)")


def workspace_index(folder: str, exclude: list[str]):
    from dcoder.retrieval import WorkspaceIndex

    if not Path(folder).is_dir():
        raise DcoderError(f"--context-from {folder}: not a folder")
    index = WorkspaceIndex(folder, tuple(exclude))
    index.build()
    return index


def with_context(args, options, text: str, ranges: list[tuple[int, int]]):
    """``options`` with the workspace's code most like the code around the first range."""
    from dataclasses import replace

    if not args.context_from:
        return options
    index = workspace_index(args.context_from, args.context_exclude)
    start, end = ranges[0]
    return replace(options, snippets=tuple(index.search(text, start, end, skip=args.file)))


def add_policy_args(p: argparse.ArgumentParser) -> None:
    # a string, not choices=: an unknown name gets SamplerConfig's one line and exit 2 like every other value
    p.add_argument("--policy", default=SamplerConfig.policy, metavar="NAME",
                   help=f"which tokens a step reveals: {', '.join(POLICIES)} (default {SamplerConfig.policy}: "
                        "by --threshold or the --steps schedule; learned: by --policy-file's classifier; verify: "
                        "the one-token-per-step greedy output, checked several tokens per pass)")
    p.add_argument("--policy-file", metavar="FILE", help="with --policy learned: a policy dcoder train-policy "
                   "wrote for this model")


def add_generation_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--model", metavar="DIR", help="checkpoint or exported model folder, or a pulled hub model "
                   "ORG/NAME (default: built-in model)")
    p.add_argument("--max-tokens", type=int, metavar="N", help="mask tokens reserved per span (default: from context)")
    p.add_argument("--exact-length", type=int, metavar="N", help="generate exactly N tokens per span")
    add_length_args(p)
    add_sampler_args(p)
    add_policy_args(p)
    p.add_argument("--max-context", type=int, metavar="N", help="tokens of the file the model sees (default: model limit)")
    add_scope_bias_arg(p)
    add_context_args(p)
    add_deadline_arg(p)
    add_runtime_args(p)
    out = p.add_mutually_exclusive_group()
    out.add_argument("--diff", action="store_true", help="print a unified diff instead of the file")
    out.add_argument("--json", action="store_true", help="print the edits as JSON")
    out.add_argument("--in-place", action="store_true", help="rewrite FILE (only after the run succeeds)")
    p.add_argument("--show-steps", action="store_true", help="draw the denoising progression on stderr")


def infill_options(args):
    """The options the flags give; a learned policy's weights come once the model is loaded (``with_policy``)."""

    if args.policy_file is not None and args.policy != "learned" and not getattr(args, "sweep", None):
        raise DcoderError("--policy-file goes with --policy learned")
    if args.policy == "learned" and args.policy_file is None:
        raise DcoderError("--policy learned needs --policy-file FILE (dcoder train-policy writes one)")
    sampler = SamplerConfig(
        steps=args.steps, threshold=args.threshold, alg=args.alg, alg_temp=args.alg_temp,
        temperature=args.temperature, top_k=args.top_k, top_p=args.top_p, seed=args.seed, policy=args.policy,
    )
    return InfillOptions(sampler=sampler, max_tokens=args.max_tokens, exact_length=args.exact_length,
                         max_context=args.max_context, lengths=LengthConfig(args.length, args.max_span),
                         deadline=args.deadline, scope_bias=args.scope_bias)


def with_policy(options, args, engine):
    """``options`` with the weights of --policy-file, read for (and refused unless made for) ``engine``'s model."""
    from dataclasses import replace

    from dcoder.engine.policy import load_policy

    if args.policy_file is None:
        return options
    return replace(options, sampler=replace(options.sampler, learned=load_policy(args.policy_file, engine.folder)))


# ---- syntax: language, regions, fills that break the parse -----------------------------------

def add_syntax_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--language", metavar="LANG",
                   help="language of FILE, a grammar name or LSP language id (default: from the file extension)")
    d = InfillOptions
    p.add_argument("--candidates", type=int, default=d.candidates, metavar="N",
                   help=f"fills denoised in one batch; the best-scoring one that parses wins (default {d.candidates})")
    p.add_argument("--repair", type=int, default=d.repair_rounds, metavar="N",
                   help=f"rounds of re-masking the broken part of a fill that does not parse (default {d.repair_rounds})")
    p.add_argument("--search-tokens", type=int, default=d.search_tokens, metavar="N",
                   help="then search fills of up to N tokens for one that parses, among the model's "
                        f"likeliest tokens (default {d.search_tokens}; 0: off)")
    p.add_argument("--allow-broken", action="store_true",
                   help="with --in-place, write FILE even when the fill breaks its syntax")


def file_language(args) -> str | None:
    """FILE's grammar name (--language, else the extension); a one-line note when it has no parser."""
    from dcoder import syntax

    language = syntax.language_of(args.file, args.language)
    if syntax.grammar(language) is None:
        sys.stderr.write(f"dcoder: note: {args.file}: {syntax.note(language)}\n")
    return language


def syntax_options(args, language: str | None):
    from dataclasses import replace

    return replace(infill_options(args), language=language, candidates=args.candidates,
                   repair_rounds=args.repair, search_tokens=args.search_tokens)


def no_regions_reason(path: str, language: str | None) -> str | None:
    from dcoder import syntax

    if language is None:
        return f"cannot tell the language of {path} from its extension; pass --language"
    if syntax.grammar(language) is None:
        return f"no tree-sitter parser for {language} (pip install 'dcoder-diffusion[languages]')"
    if not syntax.region_names(language):
        return f"{language} has no syntax regions (no grammars/{language}/regions.scm)"
    return None


def region_range(args, text: str, language: str | None) -> tuple[int, int]:
    """The range of the innermost region named ``args.region`` around ``args.at``."""
    from dcoder import syntax

    pos = offset_of(text, line_starts(text), args.at)
    reason = no_regions_reason(args.file, language)
    if reason:
        raise DcoderError(f"--region {args.region}: {reason}")
    names = syntax.region_names(language)
    if args.region not in names:
        raise DcoderError(f"unknown region {args.region!r} for {language}; regions: {', '.join(names)}")
    doc = syntax.parse(text, language)
    found = doc.region(pos, args.region)
    if found is None:
        here = ", ".join(dict.fromkeys(r.name for r in doc.regions_at(pos))) or "none"
        raise DcoderError(f"no {args.region} region at {args.at} (regions there: {here})")
    return found.start, found.end


def check_parse(args, result, language: str | None) -> None:
    """Warn about a fill that breaks the file's syntax; --in-place refuses to write it unless --allow-broken.
    Say so when the deadline cut the search for a better fill short."""
    if result.timed_out:
        sys.stderr.write(f"dcoder: warning: stopped at the deadline ({args.deadline:g} s, --deadline): "
                         "the fill is the best one found by then\n")
    if result.parses is not False:
        return
    what = (f"the fill does not parse as {language} (best of {args.candidates} candidate(s), "
            f"{result.repairs} repair round(s){', constrained search' if result.searched else ''})")
    if args.in_place and not args.allow_broken:
        raise DcoderError(f"{what}; {args.file} left unchanged (--allow-broken writes it anyway)")
    sys.stderr.write(f"dcoder: warning: {what}\n")


def step_printer(enabled: bool):
    if not enabled:
        return None
    tty = sys.stderr.isatty()

    def show(progress) -> None:
        if tty:
            sys.stderr.write("\x1b[2J\x1b[H")
            sys.stderr.write(f"step {progress.step}  ({progress.masked_left} masked)\n")
            for text in progress.previews:
                sys.stderr.write(text + "\n" + "-" * 40 + "\n")
        else:
            shown = " | ".join(json.dumps(t, ensure_ascii=False) for t in progress.previews)
            sys.stderr.write(f"step {progress.step:3d} masked {progress.masked_left:4d}: {shown}\n")
        sys.stderr.flush()

    return show


def emit(args, text: str, result, model: str) -> None:
    if args.in_place:
        write_back(args.file, text, result.text)
        sys.stderr.write(f"dcoder: wrote {args.file} ({len(result.edits)} edit(s), {result.forward_passes} forward passes)\n")
    elif args.diff:
        diff = difflib.unified_diff(text.splitlines(keepends=True), result.text.splitlines(keepends=True),
                                    fromfile=f"a/{args.file}", tofile=f"b/{args.file}")
        sys.stdout.write("".join(diff))
    elif args.json:
        starts = line_starts(text)
        edits = [{
            "start": position_of(starts, e.start), "end": position_of(starts, e.end),
            "start_offset": e.start, "end_offset": e.end, "text": e.text,
        } for e in result.edits]
        json.dump({"file": args.file, "model": model, "edits": edits, "forward_passes": result.forward_passes,
                   "steps": result.steps, "generated_tokens": result.generated_tokens,
                   "score": result.score, "parses": result.parses, "repairs": result.repairs,
                   "searched": result.searched},
                  sys.stdout, ensure_ascii=False, indent=2)
        sys.stdout.write("\n")
    else:
        sys.stdout.flush()
        sys.stdout.buffer.write(result.text.encode("utf-8"))
        sys.stdout.buffer.flush()


# ---- commands ------------------------------------------------------------------------------

def cmd_infill(args) -> int:
    from dcoder.engine.spans import find_holes
    from dcoder.infill import infill

    text = read_source(args.file)
    if args.in_place:
        check_writable(args.file)  # refuse before the run, not after it
    language = file_language(args)
    options = syntax_options(args, language)
    if args.region is not None:  # an empty value is an unknown region, not "no region"
        if args.at is None:
            raise DcoderError("--region needs --at L:C, a position inside the region")
        ranges = [region_range(args, text, language)]
    elif args.range is not None:
        ranges = [parse_range(text, args.range)]
    elif args.at is not None:
        pos = offset_of(text, line_starts(text), args.at)
        ranges = [(pos, pos)]
    else:
        ranges = find_holes(text)
        if not ranges:
            raise DcoderError(f"{args.file} has no <|mask|> hole; give --at L:C or --range L:C-L:C")
    options = with_context(args, options, text, ranges)
    engine = resolve_model(args.model, args.provider, args.cache_refresh)
    options = with_policy(options, args, engine)
    result = infill(engine, text, ranges, options, step_printer(args.show_steps))
    check_parse(args, result, language)
    emit(args, text, result, engine.description)
    return 0


def cmd_refine(args) -> int:
    from dcoder.infill import refine

    text = read_source(args.file)
    if args.in_place:
        check_writable(args.file)
    language = file_language(args)
    options = syntax_options(args, language)
    span = parse_range(text, args.range)
    if not text[span[0]:span[1]].strip():
        raise DcoderError(f"--range {args.range} selects no code; refine rewrites a selection")
    options = with_context(args, options, text, [span])
    engine = resolve_model(args.model, args.provider, args.cache_refresh)
    options = with_policy(options, args, engine)
    result = refine(engine, text, span, options, args.min_confidence, step_printer(args.show_steps))
    check_parse(args, result, language)
    emit(args, text, result, engine.description)
    return 0


def cmd_regions(args) -> int:
    from dcoder import syntax

    text = read_source(args.file)
    starts = line_starts(text)
    pos = offset_of(text, starts, args.at)
    language = syntax.language_of(args.file, args.language)
    reason = no_regions_reason(args.file, language)
    if reason:
        sys.stderr.write(f"dcoder: note: {reason}\n")
    doc = syntax.parse(text, language) if reason is None else None
    found = doc.regions_at(pos) if doc is not None else []
    if args.json:
        regions = [{"name": r.name, "node_type": r.node_type,
                    "start": position_of(starts, r.start), "end": position_of(starts, r.end),
                    "start_offset": r.start, "end_offset": r.end} for r in found]
        json.dump({"file": args.file, "language": language, "position": position_of(starts, pos),
                   "regions": regions}, sys.stdout, ensure_ascii=False, indent=2)
        sys.stdout.write("\n")
        return 0
    for r in found:
        a, b = position_of(starts, r.start), position_of(starts, r.end)
        print(f"{r.name:<16} {a['line']}:{a['column']}-{b['line']}:{b['column']}  {r.node_type}")
    return 0


def add_regions_parser(sub) -> None:
    p = sub.add_parser("regions", help="list the syntax regions around a position, innermost first")
    p.add_argument("file", metavar="FILE")
    p.add_argument("--at", metavar="L:C", required=True, help="the position (1-based)")
    p.add_argument("--language", metavar="LANG",
                   help="language of FILE, a grammar name or LSP language id (default: from the file extension)")
    p.add_argument("--json", action="store_true", help="print the regions as JSON")
    p.set_defaults(func=cmd_regions)


def cmd_eval(args) -> int:
    from dataclasses import asdict

    from dcoder.evaluation.evaluate import BASELINES, ModelFiller, canonical_filler, check_samples, load_tasks, run
    from dcoder.evaluation.execution import Limits, Sandbox, isolation
    from dcoder.infill import length_mode

    check_samples(args.samples, args.temperature)
    if args.limit is not None and args.limit < 1:
        raise DcoderError("--limit must be at least 1")
    if not 0 < args.timeout < math.inf:
        raise DcoderError("--timeout must be a positive number of seconds")
    if args.jobs is not None and args.jobs < 1:
        raise DcoderError("--jobs must be at least 1")
    for path in (args.json, args.png):
        if path and not Path(path).resolve().parent.is_dir():
            raise DcoderError(f"cannot write {path}: its folder does not exist")
    if args.png and not args.sweep:
        raise DcoderError("--png draws a --sweep")
    points = None
    if args.sweep:
        from dcoder.evaluation.sweep import parse_grid

        if args.canonical or args.baseline or args.samples != 1:
            raise DcoderError("--sweep runs a model, one sample per task (no --canonical, --baseline or --samples)")
        points = parse_grid(args.sweep)
    kinds = {k.strip() for k in args.kinds.split(",") if k.strip()} if args.kinds else None
    files = {name: load_tasks(name, kinds, args.limit, args.language) for name in args.files}
    options = infill_options(args)
    settings = {"samples": args.samples, "canonical": args.canonical, "baseline": args.baseline,
                "oracle_length": args.oracle_length,
                "limit": args.limit, "kinds": sorted(kinds) if kinds else None, "language": args.language,
                "timeout_s": args.timeout}
    if args.canonical:
        fill, model = canonical_filler, "canonical"
    elif args.baseline:
        fill, model = BASELINES[args.baseline], f"baseline:{args.baseline}"
    else:
        engine = resolve_model(args.model, args.provider, args.cache_refresh)
        options = with_policy(options, args, engine)
        workspace = workspace_index(args.workspace, []) if args.workspace else None
        fill, model = ModelFiller(engine, options, args.oracle_length, workspace), engine.description
        # the mode auto chose is recorded, so runs of one checkpoint in each mode can be told apart
        settings.update(max_tokens=options.max_tokens, max_context=options.max_context,
                        length=length_mode(engine, options), max_span=options.lengths.max_span,
                        sampler={k: v for k, v in asdict(options.sampler).items() if k != "learned"},
                        policy_file=args.policy_file, deadline_s=options.deadline, scope_bias=options.scope_bias,
                        workspace=args.workspace, workspace_files=workspace.files if workspace else None)
    if any(task.test is not None for tasks in files.values() for task in tasks):
        layers = isolation()
        settings["sandbox"] = list(layers)
        sys.stderr.write(f"dcoder: tests run in a sandbox with {', '.join(layers) or 'no kernel isolation'}"
                         " (see docs/reliability.md)\n")
    with Sandbox(Limits(timeout=args.timeout), args.jobs) as sandbox:
        settings["jobs"] = sandbox.jobs
        header = {"model": model, "options": settings}
        if points is not None:
            from dcoder.evaluation.sweep import sweep

            header["files"] = list(files)
            tasks = [t for ts in files.values() for t in ts]
            return sweep(tasks, fill, points, sandbox, header, args.json, args.png)
        return run(files, fill, args.samples, sandbox, header, args.json)


def add_eval_parser(sub) -> None:
    p = sub.add_parser("eval", help="infill benchmark tasks (HumanEval-Infilling JSONL) and score them")
    p.add_argument("files", nargs="+", metavar="FILE", help="tasks as JSONL or JSONL.gz")
    p.add_argument("--model", metavar="DIR", help="checkpoint or exported model folder, or a pulled hub model "
                   "ORG/NAME (default: built-in model)")
    which = p.add_mutually_exclusive_group()
    which.add_argument("--canonical", action="store_true", help="feed the reference middles back (checks the harness)")
    which.add_argument("--baseline", choices=("previous-line",),
                       help="score a trivial baseline instead of a model (previous-line: repeat the line above)")
    p.add_argument("--limit", type=int, metavar="N", help="first N tasks of each file")
    p.add_argument("--kinds", metavar="K,K", help="only tasks of these kinds (comma-separated)")
    p.add_argument("--samples", type=int, default=1, metavar="K", help="fills per task, for pass@k (needs --temperature)")
    p.add_argument("--oracle-length", action="store_true", help="generate exactly the reference middle's token count")
    p.add_argument("--language", default="python", help="language of tasks without a 'language' field (default python)")
    p.add_argument("--json", metavar="OUT", help="write the figures to OUT as JSON")
    p.add_argument("--timeout", type=float, default=3.0, metavar="S", help="seconds per test run (default 3)")
    p.add_argument("--jobs", type=int, metavar="N", help="test runs at a time (default: up to 2 cores)")
    p.add_argument("--max-tokens", type=int, metavar="N", help="mask tokens per span (default: as for an editor request)")
    add_length_args(p)
    p.add_argument("--max-context", type=int, metavar="N", help="tokens of the file the model sees")
    add_sampler_args(p, seed_help="seed of the first sample; sample i uses seed + i")
    add_policy_args(p)
    p.add_argument("--sweep", action="append", metavar="GRID",
                   help="run the tasks once per decoding setting of GRID: KEY=V1,V2 words (steps, threshold, "
                        "alg, policy; every combination), e.g. --sweep 'steps=8,16,32' --sweep "
                        "'policy=verify' (repeatable: the groups run in turn)")
    p.add_argument("--png", metavar="OUT", help="with --sweep: plot quality against positions per forward pass")
    add_scope_bias_arg(p)
    p.add_argument("--workspace", metavar="DIR",
                   help="the tasks' workspace: its code most like the code around each hole goes ahead of the file "
                        "in the model's context; a task's own file (its task_id up to the kind, e.g. "
                        "click/core.py) is left out (see docs/project-context.md)")
    add_deadline_arg(p)
    add_runtime_args(p)
    p.set_defaults(func=cmd_eval, exact_length=None)


def cmd_train(args) -> int:
    from dataclasses import asdict

    from dcoder.training.train import read_train_config, train

    overrides = list(args.set or [])
    if args.max_steps is not None:
        overrides.append(f"max_steps={args.max_steps}")
    if args.device is not None:
        overrides.append(f"device={json.dumps(args.device)}")
    config = read_train_config(args.config, overrides)
    if args.print_config:
        json.dump(asdict(config), sys.stdout, indent=2)
        sys.stdout.write("\n")
        return 0
    if args.out is None:
        raise DcoderError("dcoder train needs --out DIR (where checkpoints go)")
    if args.carry_to:
        from dcoder.training.train import write_carry

        print(write_carry(args.out, args.carry_to))
        return 0
    print(train(config, args.out, resume_from=args.resume_from))
    return 0


def add_train_parser(sub) -> None:
    p = sub.add_parser("train", help="train a masked-diffusion model on Python source (default: the standard library)")
    p.add_argument("--config", metavar="FILE", help="training options as .json or .toml (default: see --print-config)")
    p.add_argument("--out", metavar="DIR", help="run folder: data, checkpoints, log; an existing run resumes")
    p.add_argument("--set", action="append", metavar="KEY=VALUE",
                   help="override one option, e.g. --set lr=5e-4 --set objective.lines=0.5 (repeatable)")
    p.add_argument("--max-steps", type=int, metavar="N", help="train until step N (same as --set max_steps=N)")
    p.add_argument("--device", metavar="D", help="cpu, cuda, cuda:N or auto (default auto)")
    p.add_argument("--print-config", action="store_true", help="print the options as JSON and exit")
    p.add_argument("--resume-from", metavar="DIR",
                   help="a carried state (--carry-to) to start from when --out has no checkpoint yet")
    p.add_argument("--carry-to", metavar="DIR",
                   help="write --out's newest checkpoint to DIR as a compact resume state to commit "
                        "(bf16 weights, no optimizer moments) and exit")
    p.set_defaults(func=cmd_train)


def cmd_train_policy(args) -> int:
    from dcoder.engine.policy import model_identity, save_policy
    from dcoder.training.policy import train_policy

    if not Path(args.out).resolve().parent.is_dir():
        raise DcoderError(f"cannot write {args.out}: its folder does not exist")
    engine = resolve_model(args.model, args.provider)
    policy, figures = train_policy(engine, Path(args.corpus), args.holes, args.seed,
                                   lambda msg: sys.stderr.write(f"dcoder: {msg}\n"))
    save_policy(policy, args.out, {"model": engine.description, "identity": model_identity(engine.folder),
                                   "corpus": str(args.corpus), "seed": args.seed, **figures})
    print(json.dumps(figures, indent=2))
    sys.stderr.write(f"dcoder: wrote {args.out} (use --policy learned --policy-file {args.out})\n")
    return 0


def add_train_policy_parser(sub) -> None:
    p = sub.add_parser("train-policy", help="train a learned unmasking policy on a model's own denoising traces")
    p.add_argument("--model", metavar="DIR", help="the model the policy is for (default: built-in model)")
    p.add_argument("--corpus", required=True, metavar="DIR",
                   help="Python files to cut holes from (training data; the benchmark projects are skipped)")
    p.add_argument("--out", required=True, metavar="FILE", help="policy file to write (JSON)")
    p.add_argument("--holes", type=int, default=60, metavar="N", help="holes to trace (default 60)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--provider", choices=("auto", "cpu", "cuda", "tensorrt"), default="auto")
    p.set_defaults(func=cmd_train_policy)


def cmd_curve(args) -> int:
    from dcoder.training.curve import plot, summary, table

    print(table(summary(args.runs)))
    if args.png:
        print(plot(args.runs, args.png))
    return 0


def add_curve_parser(sub) -> None:
    p = sub.add_parser("curve", help="learning curves of training runs: a table of their last figures and a PNG")
    p.add_argument("runs", nargs="+", metavar="RUN", help="run folders of dcoder train (their log.jsonl)")
    p.add_argument("--png", metavar="OUT", help="draw validation loss and benchmark exact match against tokens seen")
    p.set_defaults(func=cmd_curve)


def cmd_corpus(args) -> int:
    from dcoder.engine.runtime import default_threads
    from dcoder.training import corpus_build

    config = corpus_build.BuildConfig(
        Path(args.out), Path(args.packages) if args.packages else corpus_build.DEFAULT_PACKAGES,
        Path(args.benchmarks) if args.benchmarks else corpus_build.DEFAULT_BENCHMARKS,
        args.jobs if args.jobs is not None else default_threads())
    _, digest = corpus_build.build(config, lambda msg: sys.stderr.write(f"dcoder: {msg}\n"))
    print(digest)
    return 0


def add_corpus_parser(sub) -> None:
    p = sub.add_parser("corpus", help="build the training corpus (standard library + listed pure-Python packages); "
                                      "prints the manifest's SHA-256")
    p.add_argument("out", metavar="OUT", help="folder to build into: new, empty, or an earlier corpus (reuses its wheels)")
    p.add_argument("--packages", metavar="FILE", help="package list (default: dcoder/corpus_packages.toml)")
    p.add_argument("--benchmarks", metavar="DIR", help="evaluation tasks to keep out of the corpus "
                   "(default: ../shared/benchmarks beside the repository)")
    p.add_argument("--jobs", type=int, metavar="N", help="processes that examine files (default: all usable cores)")
    p.set_defaults(func=cmd_corpus)


def cmd_lsp(args) -> int:
    tcp = None
    if args.tcp is not None:
        host, _, port = args.tcp.rpartition(":")
        if not host or not port.isdigit() or not 0 < int(port) < 65536:
            raise DcoderError(f"bad --tcp {args.tcp!r}: expected HOST:PORT, e.g. 127.0.0.1:2087")
        tcp = (host, int(port))
    from dcoder_lsp.server import serve

    return serve(tcp)


def add_lsp_parser(sub) -> None:
    p = sub.add_parser("lsp", help="run the language server (stdio unless --tcp)")
    where = p.add_mutually_exclusive_group()
    where.add_argument("--stdio", action="store_true", help="talk LSP over stdin/stdout (the default)")
    where.add_argument("--tcp", metavar="HOST:PORT", help="listen on HOST:PORT; each connection is a session of its own")
    p.set_defaults(func=cmd_lsp)


# options of dcoder serve --ray named as dcoder.serving.ray_app.RayConfig's fields
RAY_SETTINGS = ("replicas", "min_replicas", "max_replicas", "target_requests", "gpus_per_replica", "cpus_per_replica")


def cmd_serve(args) -> int:
    from dcoder.serving.server import ServeConfig, read_token, serve

    given = {"host": args.host, "port": args.port, "max_body_bytes": args.max_body, "timeout_s": args.timeout,
             "max_document_chars": args.max_document, "queue_size": args.queue, "policy_file": args.policy_file,
             "batch": args.batch, "batch_wait_ms": args.batch_wait}
    config = ServeConfig(token=read_token(args.token_file), cors_origins=tuple(args.cors_origin),
                         **{k: v for k, v in given.items() if v is not None})
    name = args.name or (Path(args.model).name if args.model else "dcoder")
    if args.ray:
        return serve_on_ray(args, config, name)
    if (stray := next((o for o in (*RAY_SETTINGS, "ray_address", "ray_config") if getattr(args, o) is not None),
                      None)) is not None:
        raise DcoderError(f"--{stray.replace('_', '-')} goes with --ray")
    engine = resolve_model(args.model, args.provider, args.cache_refresh)
    sys.stderr.write(f"dcoder: serving {engine.description} as {name!r} on http://{config.host}:{config.port}\n")
    serve(engine, config, name)
    return 0


def serve_on_ray(args, config, name: str) -> int:
    from dcoder.serving.ray_app import RayConfig, read_ray_config, start

    settings = read_ray_config(args.ray_config) if args.ray_config else {}
    settings.update({k: v for k in RAY_SETTINGS if (v := getattr(args, k)) is not None})
    if args.ray_address is not None:
        settings["address"] = args.ray_address
    ray_config = RayConfig(**settings)
    if args.model is None:
        if not (BUILTIN_MODEL / "manifest.json").exists():
            raise DcoderError("no --model given and no built-in model is installed; pass --model DIR")
        model = str(BUILTIN_MODEL)
    else:  # replicas load it in processes of their own: a folder here goes by its full path
        model = str(Path(args.model).resolve()) if Path(args.model).exists() else args.model
    start(model, args.provider, args.cache_refresh, config, name, ray_config)
    scale = (f"{ray_config.min_replicas} to {ray_config.max_replicas}" if ray_config.min_replicas is not None
             else str(ray_config.replicas))
    sys.stderr.write(f"dcoder: serving {model} as {name!r} on Ray Serve, {scale} replicas "
                     f"({ray_config.gpus_per_replica:g} GPU each), at http://{config.host}:{config.port}\n")
    from ray import serve

    try:
        while True:
            time.sleep(3600)
    except KeyboardInterrupt:
        serve.shutdown()
    return 0


def add_serve_parser(sub) -> None:
    # defaults live in dcoder.serving.server.ServeConfig (not imported here: it needs the serve extra)
    p = sub.add_parser("serve", help="serve one model over HTTP (dcoder API and OpenAI-compatible completions)")
    p.add_argument("--model", metavar="DIR", help="exported model folder, checkpoint or pulled hub model "
                   "(default: built-in model); fixed for the server's life")
    p.add_argument("--name", help="the model's id in requests and /v1/models (default: the folder's name)")
    p.add_argument("--host", help="address to bind (default 127.0.0.1; any other needs a token)")
    p.add_argument("--port", type=int, help="port (default 8080)")
    p.add_argument("--token-file", metavar="FILE", help="bearer token clients must send (first line of FILE; "
                   "default: $DCODER_TOKEN, else none)")
    p.add_argument("--max-body", type=int, metavar="BYTES", help="largest request body (default 1 MiB)")
    p.add_argument("--max-document", type=int, metavar="CHARS", help="longest document (default 200000)")
    p.add_argument("--timeout", type=float, metavar="SECONDS", help="per-request time limit (default 60)")
    p.add_argument("--queue", type=int, metavar="N", help="requests that may wait for the model; more get 503 "
                   "(default 16)")
    p.add_argument("--batch", type=int, metavar="N", help="requests denoised together, their step passes merged "
                   "(default 8; 1: requests take turns)")
    p.add_argument("--batch-wait", type=float, metavar="MS", help="how long a merged pass waits for the other "
                   "running requests (default 2 ms)")
    p.add_argument("--cors-origin", action="append", default=[], metavar="ORIGIN",
                   help="allow browser requests from ORIGIN (repeatable; default: none)")
    p.add_argument("--policy-file", metavar="FILE", help="learned unmasking policy for requests with sampler.policy "
                   "\"learned\" (dcoder train-policy writes one for the model served)")
    ray = p.add_argument_group("Ray Serve (dcoder serve --ray; defaults in dcoder.serving.ray_app.RayConfig)")
    ray.add_argument("--ray", action="store_true", help="deploy on Ray Serve: replicas of the model behind Ray's proxy")
    ray.add_argument("--ray-config", metavar="FILE", help="TOML file with the settings below (replicas = 2, "
                     "gpus_per_replica = 1, ...); options given here win")
    ray.add_argument("--ray-address", metavar="ADDRESS", help="a running Ray cluster (auto, ray://head:10001); "
                     "default: start Ray on this machine")
    ray.add_argument("--replicas", type=int, metavar="N", help="model copies (default 1)")
    ray.add_argument("--min-replicas", type=int, metavar="N", help="with --max-replicas: autoscale between them")
    ray.add_argument("--max-replicas", type=int, metavar="N", help="autoscaling's upper bound")
    ray.add_argument("--target-requests", type=float, metavar="N",
                     help="autoscaling: ongoing requests per replica to aim for (default 2)")
    ray.add_argument("--gpus-per-replica", type=float, metavar="G", help="GPUs each replica takes (default 0: CPU; "
                     "0.5: two replicas per GPU)")
    ray.add_argument("--cpus-per-replica", type=float, metavar="C", help="CPUs each replica takes (default 1)")
    add_runtime_args(p)
    p.set_defaults(func=cmd_serve)


def cmd_export(args) -> int:
    from dcoder.engine.export import export

    out = export(args.checkpoint, args.out, args.dtype, lambda msg: sys.stderr.write(f"dcoder: {msg}\n"))
    sys.stderr.write(f"dcoder: wrote {out}\n")
    return 0


def add_export_parser(sub) -> None:
    p = sub.add_parser("export", help="export a checkpoint to an ONNX model folder for the runtime")
    p.add_argument("checkpoint", metavar="CHECKPOINT_DIR")
    p.add_argument("out", metavar="OUT_DIR", help="new (or empty) folder to write")
    p.add_argument("--dtype", choices=EXPORT_DTYPES, default=EXPORT_DTYPES[0],
                   help="fp32, fp16 (the GPU format) or int8 (the CPU format); default fp32")
    p.set_defaults(func=cmd_export)


def cmd_pull(args) -> int:
    from dcoder.engine.hub import pull

    out = pull(args.name, args.dtype, lambda msg: sys.stderr.write(f"dcoder: {msg}\n"))
    sys.stderr.write(f"dcoder: {args.name} is ready: use --model {args.name} (or the folder below)\n")
    print(out)
    return 0


def add_pull_parser(sub) -> None:
    p = sub.add_parser("pull", help="download a Hugging Face model and export it for the runtime")
    p.add_argument("name", metavar="ORG/NAME[@REVISION]", help="hub model, e.g. fredzzp/open-dcoder-0.5B")
    p.add_argument("--dtype", choices=("auto", *EXPORT_DTYPES), default="auto",
                   help="export format (default auto: fp16 with a usable GPU, else int8, the faster on a "
                        "CPU; a model already pulled is kept in its format)")
    p.set_defaults(func=cmd_pull)


def cmd_bench(args) -> int:
    from dcoder.evaluation.bench import run

    if args.json and not Path(args.json).resolve().parent.is_dir():
        raise DcoderError(f"cannot write {args.json}: its folder does not exist")
    figures = run(args)
    text = json.dumps(figures, indent=2)
    print(text)
    if args.json:
        Path(args.json).write_text(text + "\n", encoding="utf-8")
    return 0


def add_bench_parser(sub) -> None:
    p = sub.add_parser("bench", help="measure an exported model's speed (prints JSON)")
    p.add_argument("--model", metavar="DIR", help="exported model folder or pulled hub model ORG/NAME "
                   "(default: built-in model)")
    p.add_argument("--json", metavar="OUT", help="also write the figures to OUT")
    p.add_argument("--checkpoint", metavar="DIR", help="source checkpoint for the PyTorch comparison "
                   "(default: the path recorded in the manifest)")
    p.add_argument("--provider", choices=PROVIDERS, default=RuntimeOptions.provider)
    p.add_argument("--threads", type=int, metavar="N", help="CPU threads (default: all usable cores)")
    p.add_argument("--cache-refresh", type=int, default=RuntimeOptions.cache_refresh, metavar="K",
                   help="re-encode the context every K forward passes (default 0: once per run)")
    p.add_argument("--threshold", type=float, default=0.9, metavar="X", help="infill decoding threshold (default 0.9)")
    p.add_argument("--steps", type=int, metavar="N", help="decode the infill in N steps (a fixed schedule) "
                   "instead of by threshold")
    p.add_argument("--context", type=int, default=2048, metavar="N", help="context tokens (default 2048)")
    p.add_argument("--span", type=int, default=32, metavar="N", help="span tokens (default 32)")
    p.add_argument("--repeats", type=int, default=5, metavar="N", help="timed runs per figure (default 5)")
    p.add_argument("--synthetic", metavar="SHAPE", help="bench a random checkpoint of this shape: "
                   "tiny, small, qwen2.5-1.5b, diffucoder-7b, open-dcoder-0.5b, coda-1.7b, llada-8b "
                   "(made and exported first)")
    p.add_argument("--dtype", choices=EXPORT_DTYPES, default=EXPORT_DTYPES[0], help="export format for --synthetic")
    p.add_argument("--workdir", metavar="DIR", help="where --synthetic writes its folders (default: a temporary folder, deleted afterwards)")
    p.add_argument("--serve", metavar="URL", help="instead: load a running dcoder server (dcoder serve) with "
                   "--requests completions of --span tokens from --clients concurrent clients; token from "
                   "$DCODER_TOKEN. 'local': start one server per --batches value here and compare them")
    p.add_argument("--clients", default="4", metavar="N[,N...]", help="with --serve: concurrent clients, "
                   "one figure per count (default 4)")
    p.add_argument("--batches", default="1,8", metavar="N[,N...]", help="with --serve local: the servers' --batch "
                   "values (default 1,8: requests taking turns, then denoised together)")
    p.add_argument("--requests", type=int, default=32, metavar="N", help="with --serve: requests in all (default 32)")
    p.add_argument("--export-memory", action="store_true",
                   help="with --synthetic: only export it, and report the export's peak memory")
    p.set_defaults(func=cmd_bench)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="dcoder", description="Masked-diffusion code infilling.")
    parser.add_argument("--version", action="version", version=f"dcoder {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    p = sub.add_parser("infill", help="fill a cursor position, a range, or every <|mask|> hole of a file")
    p.add_argument("file", metavar="FILE")
    where = p.add_mutually_exclusive_group()
    where.add_argument("--at", metavar="L:C", help="insert at this cursor position (1-based)")
    where.add_argument("--range", metavar="L:C-L:C", help="replace this range (end exclusive)")
    p.add_argument("--region", metavar="NAME",
                   help="with --at: replace the innermost syntax region NAME there, e.g. function.inner")
    add_generation_args(p)
    add_syntax_args(p)
    p.set_defaults(func=cmd_infill)

    p = sub.add_parser("refine", help="regenerate a selected range in place")
    p.add_argument("file", metavar="FILE")
    p.add_argument("--range", metavar="L:C-L:C", required=True, help="the selection to rewrite (end exclusive)")
    p.add_argument("--min-confidence", type=float, metavar="X",
                   help="re-mask only tokens whose probability is below X; keep the rest")
    add_generation_args(p)
    add_syntax_args(p)
    p.set_defaults(func=cmd_refine)

    add_regions_parser(sub)
    add_eval_parser(sub)
    add_curve_parser(sub)
    add_train_parser(sub)
    add_train_policy_parser(sub)
    add_corpus_parser(sub)
    add_lsp_parser(sub)
    add_serve_parser(sub)
    add_export_parser(sub)
    add_pull_parser(sub)
    add_bench_parser(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return args.func(args)
    except DcoderError as exc:
        sys.stderr.write(f"dcoder: error: {exc}\n")
        return EXIT_USAGE
    except KeyboardInterrupt:
        sys.stderr.write("dcoder: interrupted\n")
        return 130
    except BrokenPipeError:
        return 0
    except Exception as exc:  # a bug: still one line, never a traceback
        sys.stderr.write(f"dcoder: internal error: {exc.__class__.__name__}: {exc} (please report it)\n")
        return 1


if __name__ == "__main__":
    sys.exit(main())
