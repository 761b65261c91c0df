#!/usr/bin/env python3
"""Seeds for fp-fuzz-dialect: every `// -----` snippet of the lit tests and
the examples, without RUN/CHECK/expected-* lines (comments only cost the
fuzzer time). Snippets that mention emitc are skipped (the target skips
them too). Usage: fuzz/tools/make_dialect_seeds.py [out-dir]"""
import hashlib
import pathlib
import re
import sys

root = pathlib.Path(__file__).resolve().parents[2]
out = pathlib.Path(sys.argv[1]) if len(sys.argv) > 1 else root / "fuzz/corpus/dialect"
out.mkdir(parents=True, exist_ok=True)
sources = sorted(root.glob("lit_tests/**/*.mlir")) + sorted(root.glob("examples/*.mlir"))
count = 0
for path in sources:
    for i, snippet in enumerate(re.split(r"^// -----\s*$", path.read_text(), flags=re.M)):
        lines = [l for l in snippet.splitlines() if not l.lstrip().startswith("//")]
        text = "\n".join(lines).strip() + "\n"
        if len(text) < 10 or "emitc" in text:
            continue
        digest = hashlib.sha1(text.encode()).hexdigest()[:8]
        name = f"{path.parent.name}-{path.stem}-{i}-{digest}.mlir"
        (out / name).write_text(text)
        count += 1
print(f"{count} seeds in {out}")
