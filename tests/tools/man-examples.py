#!/usr/bin/env python3
"""man-examples.py [--update] [BUILD] - the example outputs in the man pages
come from the build, so they cannot drift from the code.  Two forms:

    .\\" example-output: COMMAND        the next .EX ... .EE block is
    .EX                                COMMAND's standard output
    ...
    .EE

    .\\" example-output                 the block's first line is "$ COMMAND"
    .EX                                and the rest its standard output
    $ COMMAND
    ...
    .EE

COMMAND runs under sh in the source root with BUILD/bin first on the PATH;
only deterministic commands belong here (--what-if: no MPI, no machine).
Output lines are compared roff-escaped (backslash as \\e, '-' as \\-, a
leading '.' or "'" behind \\&).  Without --update a difference fails the
run and is shown; with it the blocks are rewritten."""
import difflib
import os
import subprocess
import sys

MARK = '.\\" example-output'


def roff(line):
    line = line.replace("\\", "\\e").replace("-", "\\-")
    return "\\&" + line if line[:1] in (".", "'") else line


def unroff_command(line):
    return line.replace("\\-", "-").replace("\\e", "\\")


def run(command, root, build):
    env = dict(os.environ, PATH=os.path.join(build, "bin") + os.pathsep + os.environ["PATH"])
    for name in [n for n in env if n.startswith("TALLY_")]:
        del env[name]  # the defaults, as on any machine
    r = subprocess.run(command, shell=True, cwd=root, env=env, stdout=subprocess.PIPE,
                       stderr=subprocess.PIPE, text=True, timeout=120)
    if r.returncode != 0:
        sys.exit("man-examples: %r failed (%d): %s" % (command, r.returncode, r.stderr[-500:]))
    return [roff(l) for l in r.stdout.rstrip("\n").split("\n")]


def main():
    args = [a for a in sys.argv[1:] if a != "--update"]
    update = "--update" in sys.argv[1:]
    root = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
    build = os.path.abspath(args[0] if args else os.path.join(root, "build"))
    mandir = os.path.join(root, "man")
    checked = stale = 0
    for name in sorted(os.listdir(mandir)):
        path = os.path.join(mandir, name)
        with open(path) as f:
            lines = f.read().split("\n")
        out, i, changed = [], 0, False
        while i < len(lines):
            line = lines[i]
            out.append(line)
            i += 1
            if not line.startswith(MARK):
                continue
            command = line[len(MARK):].lstrip(":").strip() or None
            while i < len(lines) and lines[i] != ".EX":
                out.append(lines[i])
                i += 1
            end = lines.index(".EE", i)
            block = lines[i + 1:end]
            head = []
            if command is None:  # "$ COMMAND" heads the block
                head, block = block[:1], block[1:]
                command = unroff_command(head[0][2:])
            want = run(command, root, build)
            checked += 1
            if want != block:
                stale += 1
                changed = True
                if not update:
                    sys.stdout.writelines(d + "\n" for d in difflib.unified_diff(
                        block, want, "%s (%s)" % (name, command), "the build's output",
                        lineterm=""))
            out += [".EX"] + head + (want if update else block) + [".EE"]
            i = end + 1
        if update and changed:
            with open(path, "w") as f:
                f.write("\n".join(out))
    if stale and not update:
        sys.exit("man-examples: %d of %d examples differ from the build's output "
                 "(tests/tools/man-examples.py --update rewrites them)" % (stale, checked))
    print("man-examples: %d examples %s" % (checked, "rewritten" if update and stale
                                             else "match the build's output"))


if __name__ == "__main__":
    main()
