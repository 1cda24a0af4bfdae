"""The ``dcoder`` command line. Every failure the user can cause is one line on stderr and exit 2."""

from __future__ import annotations

import argparse
import difflib
import json
import os
import sys
import tempfile
from pathlib import Path

from dcoder import __version__
from dcoder.config import ALGS, SamplerConfig
from dcoder.errors import DcoderError

EXIT_USAGE = 2
BUILTIN_MODEL = Path(__file__).parent / "weights"


# ---- files and positions -------------------------------------------------------------------

def read_source(path: str) -> str:
    p = Path(path)
    try:
        data = p.read_bytes()
    except FileNotFoundError:
        raise DcoderError(f"file not found: {path}") from None
    except IsADirectoryError:
        raise DcoderError(f"{path} is a folder, not a file") from None
    except OSError as exc:
        raise DcoderError(f"cannot read {path}: {exc.strerror}") from None
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise DcoderError(f"{path} is not UTF-8 text (invalid byte at offset {exc.start})") from None


def write_atomically(path: str, text: str) -> None:
    """Replace the file in one rename, so it is never seen half-written; keeps its permissions."""
    target = Path(path)
    mode = target.stat().st_mode & 0o7777
    fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".dcoder", dir=target.parent)
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(text.encode("utf-8"))
            fh.flush()
            os.fsync(fh.fileno())
        os.chmod(tmp, mode)
        os.replace(tmp, target)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def line_starts(text: str) -> list[int]:
    starts = [0]
    starts.extend(i + 1 for i, ch in enumerate(text) if ch == "\n")
    return starts


def offset_of(text: str, starts: list[int], spec: str) -> int:
    """Character offset of a 1-based ``LINE:COLUMN`` (columns count characters)."""
    try:
        line_s, col_s = spec.split(":")
        line, col = int(line_s), int(col_s)
    except ValueError:
        raise DcoderError(f"bad position {spec!r}: expected LINE:COLUMN, e.g. 12:5") from None
    if not 1 <= line <= len(starts):
        raise DcoderError(f"position {spec} is outside the file: line {line} of {len(starts)}")
    begin = starts[line - 1]
    end = starts[line] - 1 if line < len(starts) else len(text)
    if end > begin and text[end - 1] == "\r":
        end -= 1
    if not 1 <= col <= end - begin + 1:
        raise DcoderError(f"position {spec} is outside the file: line {line} has {end - begin} characters")
    return begin + col - 1


def position_of(starts: list[int], offset: int) -> dict:
    import bisect

    line = bisect.bisect_right(starts, offset) - 1
    return {"line": line + 1, "column": offset - starts[line] + 1}


def parse_range(text: str, spec: str) -> tuple[int, int]:
    starts = line_starts(text)
    if "-" not in spec:
        raise DcoderError(f"bad range {spec!r}: expected L:C-L:C, e.g. 3:1-5:10")
    a, b = spec.split("-", 1)
    start, end = offset_of(text, starts, a), offset_of(text, starts, b)
    if end < start:
        raise DcoderError(f"bad range {spec}: it ends before it starts")
    return start, end


# ---- model and options ---------------------------------------------------------------------

def resolve_model(arg: str | None):
    from dcoder.engine import load_engine

    if arg is None:
        if not (BUILTIN_MODEL / "manifest.json").exists():
            raise DcoderError("no --model given and no built-in model is installed; pass --model DIR")
        arg = str(BUILTIN_MODEL)
    return load_engine(arg)


def add_generation_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--model", metavar="DIR", help="checkpoint or exported model folder (default: built-in model)")
    p.add_argument("--max-tokens", type=int, metavar="N", help="mask tokens reserved per span (default: from context)")
    p.add_argument("--exact-length", type=int, metavar="N", help="generate exactly N tokens per span")
    p.add_argument("--steps", type=int, default=32, help="denoising steps (default 32)")
    p.add_argument("--threshold", type=float, metavar="X",
                   help="reveal every token whose confidence passes X at each step (instead of --steps)")
    p.add_argument("--alg", choices=ALGS, default="entropy", help="confidence used to order unmasking (default entropy)")
    p.add_argument("--alg-temp", type=float, default=0.0, help="randomness in the unmasking order (default 0)")
    p.add_argument("--temperature", type=float, default=0.0, help="sampling temperature (default 0: greedy)")
    p.add_argument("--top-k", type=int, metavar="K")
    p.add_argument("--top-p", type=float, metavar="P")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--max-context", type=int, metavar="N", help="tokens of the file the model sees (default: model limit)")
    out = p.add_mutually_exclusive_group()
    out.add_argument("--diff", action="store_true", help="print a unified diff instead of the file")
    out.add_argument("--json", action="store_true", help="print the edits as JSON")
    out.add_argument("--in-place", action="store_true", help="rewrite FILE (only after the run succeeds)")
    p.add_argument("--show-steps", action="store_true", help="draw the denoising progression on stderr")


def infill_options(args):
    from dcoder.infill import InfillOptions

    sampler = SamplerConfig(
        steps=args.steps, threshold=args.threshold, alg=args.alg, alg_temp=args.alg_temp,
        temperature=args.temperature, top_k=args.top_k, top_p=args.top_p, seed=args.seed,
    )
    return InfillOptions(sampler=sampler, max_tokens=args.max_tokens, exact_length=args.exact_length,
                         max_context=args.max_context)


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


def emit(args, text: str, result) -> None:
    if args.in_place:
        write_atomically(args.file, result.text)
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
        json.dump({"file": args.file, "edits": edits, "forward_passes": result.forward_passes,
                   "steps": result.steps, "generated_tokens": result.generated_tokens,
                   "score": result.score}, sys.stdout, ensure_ascii=False, indent=2)
        sys.stdout.write("\n")
    else:
        sys.stdout.flush()
        sys.stdout.buffer.write(result.text.encode("utf-8"))
        sys.stdout.buffer.flush()


# ---- commands ------------------------------------------------------------------------------

def cmd_infill(args) -> int:
    from dcoder.infill import infill
    from dcoder.spans import find_holes

    text = read_source(args.file)
    options = infill_options(args)
    if args.range:
        ranges = [parse_range(text, args.range)]
    elif args.at:
        pos = offset_of(text, line_starts(text), args.at)
        ranges = [(pos, pos)]
    else:
        ranges = find_holes(text)
        if not ranges:
            raise DcoderError(f"{args.file} has no <|mask|> hole; give --at L:C or --range L:C-L:C")
    engine = resolve_model(args.model)
    result = infill(engine, text, ranges, options, step_printer(args.show_steps))
    emit(args, text, result)
    return 0


def cmd_refine(args) -> int:
    from dcoder.infill import refine

    text = read_source(args.file)
    options = infill_options(args)
    span = parse_range(text, args.range)
    engine = resolve_model(args.model)
    result = refine(engine, text, span, options, args.min_confidence, step_printer(args.show_steps))
    emit(args, text, result)
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="dcoder", description="Masked-diffusion code infilling.")
    parser.add_argument("--version", action="version", version=f"dcoder {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    p = sub.add_parser("infill", help="fill a cursor position, a range, or every <|mask|> hole of a file")
    p.add_argument("file", metavar="FILE")
    where = p.add_mutually_exclusive_group()
    where.add_argument("--at", metavar="L:C", help="insert at this cursor position (1-based)")
    where.add_argument("--range", metavar="L:C-L:C", help="replace this range (end exclusive)")
    add_generation_args(p)
    p.set_defaults(func=cmd_infill)

    p = sub.add_parser("refine", help="regenerate a selected range in place")
    p.add_argument("file", metavar="FILE")
    p.add_argument("--range", metavar="L:C-L:C", required=True, help="the selection to rewrite (end exclusive)")
    p.add_argument("--min-confidence", type=float, metavar="X",
                   help="re-mask only tokens whose probability is below X; keep the rest")
    add_generation_args(p)
    p.set_defaults(func=cmd_refine)
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


if __name__ == "__main__":
    sys.exit(main())
