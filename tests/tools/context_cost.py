"""What project context costs an inline completion, in process: the names in scope, the trie of
their tokenizations, the workspace search, and a whole 8-step infill with the scope bias off and on.

    python tests/tools/context_cost.py --workspace DIR [--source FILE] [--runs 15]

The cursor goes to a random place in a random line of the first 3,000 lines of ``--source``
(default: the standard library's inspect.py), the rest of the line deleted, as lsp_bench does.
Figures are median milliseconds, printed as JSON.
"""

from __future__ import annotations

import argparse
import inspect as stdlib_inspect
import json
import random
import statistics
import time

from dcoder import syntax
from dcoder.config import InfillOptions, SamplerConfig
from dcoder.engine.engine import BUILTIN_MODEL
from dcoder.engine.load import load_engine
from dcoder.engine.names import NameBias
from dcoder.infill import infill
from dcoder.retrieval import WorkspaceIndex
from dcoder.syntax.scope import names_at


def cases(lines: list[str], runs: int, rng: random.Random) -> list[tuple[str, int]]:
    out = []
    while len(out) < runs:
        n = rng.randrange(len(lines))
        if len(lines[n].strip()) < 12:
            continue
        col = rng.randint(len(lines[n]) - len(lines[n].lstrip()) + 1, len(lines[n]))
        out.append(("\n".join(lines[:n] + [lines[n][:col]] + lines[n + 1:]), sum(len(x) + 1 for x in lines[:n]) + col))
    return out


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--workspace", required=True, metavar="DIR")
    p.add_argument("--source", default=stdlib_inspect.getsourcefile(stdlib_inspect))
    p.add_argument("--runs", type=int, default=15)
    args = p.parse_args()
    engine = load_engine(str(BUILTIN_MODEL))
    lines = open(args.source, encoding="utf-8").read().split("\n")[:3000]
    index = WorkspaceIndex(args.workspace)
    index.build()
    ms: dict[str, list[float]] = {k: [] for k in ("names", "trie", "search", "infill_bias_0", "infill_bias_1")}
    for text, at in cases(lines, args.runs, random.Random(0)):
        doc = syntax.parse(text, "python")
        start = time.perf_counter()
        names = names_at(doc, at)
        ms["names"].append(time.perf_counter() - start)
        start = time.perf_counter()
        NameBias(engine.tokenizer, names, 1.0, engine.tokens.mask)
        ms["trie"].append(time.perf_counter() - start)
        start = time.perf_counter()
        index.search(text, at)
        ms["search"].append(time.perf_counter() - start)
        for bias in (0.0, 1.0):
            options = InfillOptions(sampler=SamplerConfig(steps=8), language="python", scope_bias=bias,
                                    repair_rounds=0, search_tokens=0)
            fresh = syntax.parse(text, "python")  # a new snapshot, as after a keystroke
            start = time.perf_counter()
            infill(engine, text, [(at, at)], options, doc=fresh)
            ms[f"infill_bias_{bias:g}"].append(time.perf_counter() - start)
    print(json.dumps({k: round(1000 * statistics.median(v), 1) for k, v in ms.items()}, indent=2))


if __name__ == "__main__":
    main()
