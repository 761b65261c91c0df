#!/usr/bin/env python3
"""The repository documents itself: no file may cite the design document that
lives outside it, every "docs/semantics.md section N" names a section that
exists there, and the relative links of the README and docs/ resolve.

Usage: check_doc_citations.py SOURCE_ROOT. Exit 1 with one line per problem.
"""
import os
import re
import sys

# Spelled in two parts so this file does not cite it itself.
OUTSIDE_DESIGN_DOC = "DESIGN" + ".md"
SKIPPED_DIRS = {".git", "__pycache__", "node_modules"}
TEXT_SUFFIXES = {".c", ".cc", ".cpp", ".h", ".hpp", ".cu", ".cuh", ".py",
                 ".td", ".txt", ".cmake", ".md", ".mlir", ".sh", ".in",
                 ".json", ".toml", ".cfg", ".map"}
# "semantics.md section 2", also wrapped over a comment line break, and
# "semantics.md) sections 2 and 3".
CITATION = re.compile(
    r"semantics\.md\S*(?:\s|//+|/?\*+|#+)*sections?\s+(\d+)"
    r"(?:\s*(?:-|and|,)\s*(\d+))?")
LINK = re.compile(r"\]\(([^)\s]+)\)")


def source_files(root):
    for directory, subdirs, files in os.walk(root):
        subdirs[:] = [d for d in subdirs
                      if d not in SKIPPED_DIRS and not d.startswith("build")
                      and not d.startswith(".")]
        for name in files:
            if (os.path.splitext(name)[1] in TEXT_SUFFIXES
                    or name in ("CMakeLists.txt", "run")):
                yield os.path.join(directory, name)


def semantics_sections(path):
    with open(path, encoding="utf-8") as f:
        return {int(m.group(1))
                for m in re.finditer(r"^## (\d+)\.", f.read(), re.M)}


def main(root):
    problems = []
    semantics = os.path.join(root, "docs", "semantics.md")
    if not os.path.isfile(semantics):
        return ["docs/semantics.md: missing (the normative semantics)"]
    sections = semantics_sections(semantics)
    if not {1, 2, 3} <= sections:
        problems.append("docs/semantics.md: expected sections 1, 2 and 3, "
                        "found %s" % sorted(sections))
    for path in source_files(root):
        rel = os.path.relpath(path, root)
        try:
            with open(path, encoding="utf-8") as f:
                text = f.read()
        except UnicodeDecodeError:
            continue
        for number, line in enumerate(text.splitlines(), 1):
            if OUTSIDE_DESIGN_DOC in line:
                problems.append("%s:%d: cites %s, which is not in the "
                                "repository; cite docs/semantics.md or "
                                "another repository doc" %
                                (rel, number, OUTSIDE_DESIGN_DOC))
        for m in CITATION.finditer(text):
            for cited in filter(None, m.groups()):
                if int(cited) not in sections:
                    line = text.count("\n", 0, m.start()) + 1
                    problems.append("%s:%d: cites docs/semantics.md section "
                                    "%s, which does not exist (sections: %s)"
                                    % (rel, line, cited, sorted(sections)))
        if rel == "README.md" or (rel.startswith("docs" + os.sep)
                                  and rel.endswith(".md")):
            for m in LINK.finditer(text):
                target = m.group(1).split("#")[0]
                if not target or re.match(r"[a-z]+:", target):
                    continue
                resolved = os.path.normpath(
                    os.path.join(os.path.dirname(path), target))
                if not os.path.exists(resolved):
                    line = text.count("\n", 0, m.start()) + 1
                    problems.append("%s:%d: link target %s does not exist"
                                    % (rel, line, m.group(1)))
    return problems


if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit("usage: check_doc_citations.py SOURCE_ROOT")
    found = main(sys.argv[1])
    for problem in found:
        print(problem)
    if found:
        sys.exit(1)
    print("doc citations: ok")
