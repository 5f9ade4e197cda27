#!/usr/bin/env python3
"""check-cycles.py - fails when src/ has a module cycle: a module is a .c
file with its .h, and A depends on B when A's .c or .h includes B's .h.
DESIGN.md asks for none; the one allowed pair below is explained where it
lives (src/core/groups.h).  Usage: check-cycles.py [SRC_DIR]"""
import collections
import os
import re
import sys

ALLOWED = {frozenset({"core/comm", "core/groups"})}


def graph(src):
    edges = collections.defaultdict(set)
    for d, _, names in os.walk(src):
        for name in names:
            if not name.endswith((".c", ".h")):
                continue
            path = os.path.join(d, name)
            here = os.path.relpath(os.path.splitext(path)[0], src)
            with open(path, encoding="utf-8") as f:
                for line in f:
                    m = re.match(r'\s*#\s*include\s+"([^"]+)"', line)
                    if not m:
                        continue
                    target = os.path.normpath(os.path.join(d, m.group(1)))
                    if os.path.exists(target) and target.startswith(os.path.normpath(src)):
                        there = os.path.relpath(os.path.splitext(target)[0], src)
                        if there != here:
                            edges[here].add(there)
    return edges


def cycles(edges):
    """Strongly connected components of more than one module (Tarjan)."""
    index, low, stack, on, out, counter = {}, {}, [], set(), [], [0]

    def visit(v):
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on.add(v)
        for w in sorted(edges.get(v, ())):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                out.append(sorted(comp))

    sys.setrecursionlimit(10000)
    for v in sorted(edges):
        if v not in index:
            visit(v)
    return out


def main():
    src = sys.argv[1] if len(sys.argv) > 1 else "src"
    edges = graph(src)
    bad = [c for c in cycles(edges) if frozenset(c) not in ALLOWED]
    for comp in bad:
        print("check-cycles: module cycle: " + " <-> ".join(comp))
        for a in comp:
            print("  %s includes %s" % (a, ", ".join(b for b in sorted(edges[a]) if b in comp)))
    if bad:
        return 1
    print("check-cycles: %d modules, no cycle beyond the documented comm <-> groups"
          % len(set(edges) | {b for v in edges.values() for b in v}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
