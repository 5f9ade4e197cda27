#!/usr/bin/env python3
"""check-trace.py - checks the files TALLY_TRACE=PREFIX left behind.

    check-trace.py --ranks N --calls K [--algo NAME] [--min-phases M] PREFIX

For every rank R < N, PREFIX.R.json must parse as JSON (json.load) and hold:
  - only complete ("X") and metadata ("M") events; X events with numeric
    ts >= 0 and dur >= 0, pid = R and tid = 0;
  - K call spans of the communicator of all ranks (comm not "group of ..."),
    with args bytes, count, dtype, op, comm, seq and status TALLY_SUCCESS,
    seq 0..K-1 in time order, one after the other (no overlap), each named
    NAME when --algo is given;
  - every phase span (cat "phase") inside a call span of the same rank with
    the same seq (t0 >= call t0 and t1 <= call t1), and every call span of
    a group across nodes inside one of the K calls;
  - with --min-phases M, at least M phase spans inside each of the K calls.
Then tally-trace-merge (--merge TOOL) must merge them into one file with a
"rank R" process_name per rank and every X event of every file.
Prints one line per rank; exits 1 on the first failure.  Times compare
with 0.002 us of slack: the files print microseconds to 3 decimals.
"""
import argparse
import json
import os
import subprocess
import sys

EPS = 0.002


def fail(msg):
    print("check-trace: FAIL: " + msg)
    sys.exit(1)


def check_rank(path, rank, calls, algo, min_phases):
    try:
        with open(path, encoding="utf-8") as f:
            events = json.load(f)
    except (OSError, ValueError) as e:
        fail("%s: %s" % (path, e))
    if isinstance(events, dict):
        events = events.get("traceEvents")
    if not isinstance(events, list):
        fail("%s: neither an array nor traceEvents" % path)
    spans = []
    for e in events:
        ph = e.get("ph")
        if ph == "M":
            continue
        if ph != "X":
            fail("%s: event of phase %r: %s" % (path, ph, e))
        ts, dur = e.get("ts"), e.get("dur")
        if not isinstance(ts, (int, float)) or not isinstance(dur, (int, float)) or ts < 0 or dur < 0:
            fail("%s: bad ts/dur: %s" % (path, e))
        if e.get("pid") != rank or e.get("tid") != 0:
            fail("%s: pid %r tid %r, expected %d and 0: %s" % (path, e.get("pid"), e.get("tid"), rank, e))
        if e.get("cat") not in ("call", "phase"):
            fail("%s: unknown cat: %s" % (path, e))
        if not e.get("name"):
            fail("%s: span without a name: %s" % (path, e))
        spans.append(e)
    names = [e for e in events if e.get("ph") == "M" and e.get("name") == "process_name"]
    if len(names) != 1 or names[0]["args"].get("name") != "rank %d" % rank:
        fail("%s: process_name metadata is not one \"rank %d\": %s" % (path, rank, names))

    call_spans = [e for e in spans if e["cat"] == "call"]
    for c in call_spans:
        a = c.get("args", {})
        for key in ("bytes", "count", "dtype", "op", "comm", "seq", "status"):
            if key not in a:
                fail("%s: call span without args.%s: %s" % (path, key, c))
        if a["status"] != "TALLY_SUCCESS":
            fail("%s: a call failed: %s" % (path, c))
    top = sorted((c for c in call_spans if not c["args"]["comm"].startswith("group of")),
                 key=lambda c: c["ts"])
    if len(top) != calls:
        fail("%s: %d call spans of the communicator, expected %d" % (path, len(top), calls))
    seqs = [c["args"]["seq"] for c in top]
    if seqs != list(range(calls)):
        fail("%s: seqs in time order are %s, expected 0..%d" % (path, seqs, calls - 1))
    for prev, nxt in zip(top, top[1:]):
        if prev["ts"] + prev["dur"] > nxt["ts"] + EPS:
            fail("%s: call %d ends after call %d starts" % (path, prev["args"]["seq"], nxt["args"]["seq"]))
    if algo:
        wrong = [c for c in top if c["name"] != algo]
        if wrong:
            fail("%s: %d calls ran %s, not %s" % (path, len(wrong), wrong[0]["name"], algo))

    def inside(inner, outer):
        return (inner["ts"] >= outer["ts"] - EPS and
                inner["ts"] + inner["dur"] <= outer["ts"] + outer["dur"] + EPS)

    for g in call_spans:
        if g["args"]["comm"].startswith("group of") and not any(inside(g, c) for c in top):
            fail("%s: group call %r (seq %r) is inside no call of the communicator"
                 % (path, g["name"], g["args"]["seq"]))
    phases = [e for e in spans if e["cat"] == "phase"]
    for p in phases:
        seq = p.get("args", {}).get("seq")
        if not any(c["args"]["seq"] == seq and inside(p, c) for c in call_spans):
            fail("%s: phase %r (seq %r, ts %.3f, dur %.3f) is inside no call span of seq %r"
                 % (path, p["name"], seq, p["ts"], p["dur"], seq))
    per_call = [sum(1 for p in phases if inside(p, c)) for c in top]
    if min_phases and min(per_call) < min_phases:
        fail("%s: phase spans per call %s, expected at least %d each" % (path, per_call, min_phases))
    groups = len(call_spans) - len(top)
    print("check-trace: rank %d: %d calls (seq 0..%d, %s), %d group calls, %d phases, "
          "nested and in order" % (rank, len(top), calls - 1,
                                   ",".join(sorted({c["name"] for c in top})), groups, len(phases)))
    return len(spans)


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--ranks", type=int, required=True)
    p.add_argument("--calls", type=int, required=True)
    p.add_argument("--algo")
    p.add_argument("--min-phases", type=int, default=0)
    p.add_argument("--merge", help="tally-trace-merge to check as well")
    p.add_argument("prefix")
    a = p.parse_args()
    total = 0
    for r in range(a.ranks):
        path = "%s.%d.json" % (a.prefix, r)
        if not os.path.isfile(path):
            fail("%s is missing" % path)
        total += check_rank(path, r, a.calls, a.algo, a.min_phases)
    extra = "%s.%d.json" % (a.prefix, a.ranks)
    if os.path.exists(extra):
        fail("%s exists: more files than ranks" % extra)
    if a.merge:
        out = a.prefix + ".merged.json"
        res = subprocess.run([a.merge, "-o", out, a.prefix], capture_output=True, text=True)
        if res.returncode != 0:
            fail("tally-trace-merge failed: %s%s" % (res.stdout, res.stderr))
        with open(out, encoding="utf-8") as f:
            merged = json.load(f)
        events = merged["traceEvents"]
        names = {e["pid"]: e["args"]["name"] for e in events
                 if e.get("ph") == "M" and e.get("name") == "process_name"}
        if names != {r: "rank %d" % r for r in range(a.ranks)}:
            fail("merged process names: %s" % names)
        spans = [e for e in events if e.get("ph") == "X"]
        if len(spans) != total or {e["pid"] for e in spans} != set(range(a.ranks)):
            fail("merged file holds %d spans of ranks %s, expected %d of 0..%d"
                 % (len(spans), sorted({e["pid"] for e in spans}), total, a.ranks - 1))
        if min(e["ts"] for e in spans) != 0:
            fail("merged times do not start at 0")
        print("check-trace: merged: %d ranks, %d spans, one row per rank" % (a.ranks, total))
    print("check-trace: ok")


if __name__ == "__main__":
    main()
