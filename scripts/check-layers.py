#!/usr/bin/env python3
"""Checks the daemon's dependency rule: each folder of daemon/ includes only
the folders below it (README.md, "Layout").

Usage: scripts/check-layers.py [SOURCE_DIR]
Prints every include that breaks the rule as `file:line: message` and exits
1, or prints a one-line summary and exits 0. Exit 2 when the tree holds a
folder the rule does not name (a new folder must be given its place here).

The rule, bottom to top:
  core/        the operation types, replies, access, event bus, state store,
               clock, descriptor type, trusted directories
  os/          launcher, pidfd watch, exit status, kill, /proc, cgroups, run-as
  logs/        log files, tails, line splitting, readiness patterns
  families     runs/ jobs/ crashes/ reports/ pauses/ processes/ history/,
               each allowed only the families named in FAMILIES below, so
               the families form no cycle
  transport/   listener, sessions, descriptor passing, dispatcher
  http/        the HTTP and WebSocket front door
  host/        install paths, logging, locks, readiness, systemd, lpd stop
  daemon/*     main.cpp, the composition root (daemon.*), the operation
               table, the daemon-level operations: may include anything
  monitor/     lpd-monitor, its own small program: core/ and os/ only

A family's ops file (NAME_ops.h / NAME_ops.cpp) decodes calls for the
transport, so it alone may also include transport/ and host/. No file below
the top includes the composition root (daemon/daemon.h, daemon/config.h).
"""
import os
import re
import sys

LOWER = {
    "core": set(),
    "os": {"core"},
    "logs": {"core", "os"},
}
BASE = {"core", "os", "logs"}
# Which other families each family may include (an acyclic graph).
FAMILIES = {
    "runs": set(),
    "crashes": set(),
    "reports": {"crashes"},
    "pauses": {"runs"},
    "history": {"runs"},
    "processes": set(),
    "jobs": {"runs", "crashes", "reports"},
}
UPPER = {
    "transport": BASE | set(FAMILIES),
    "http": BASE | set(FAMILIES) | {"transport"},
    "host": BASE,
    "monitor": {"core", "os"},
}
TOP = "."  # files directly in daemon/
OPS_EXTRA = {"transport", "host"}
INCLUDE = re.compile(r'^\s*#\s*include\s*["<]([^">]+)[">]')


def daemon_target(include, including_dir, source_dir, daemon_dir):
    """The path inside daemon/ an include names, or None when it names no
    file of daemon/. Quoted includes are looked up beside the including file
    first (as the compiler does), so `"../transport/session.h"` counts;
    `<daemon/...>` counts as much as `"daemon/..."`; `a/../b` is folded."""
    candidates = [os.path.join(including_dir, include), os.path.join(source_dir, include)]
    for candidate in candidates:
        if os.path.exists(candidate):
            rel = os.path.relpath(os.path.realpath(candidate), os.path.realpath(daemon_dir))
            return None if rel.startswith("..") else rel
    if include.startswith("daemon/"):  # a file not (yet) there: judge it by its name
        return os.path.normpath(include)[len("daemon/"):]
    return None


def allowed(folder, is_ops):
    """The folders a file in `folder` may include besides its own."""
    if folder in LOWER:
        return LOWER[folder]
    if folder in FAMILIES:
        extra = OPS_EXTRA if is_ops else set()
        return BASE | FAMILIES[folder] | extra
    return UPPER[folder]


def folder_of(path_in_daemon):
    """`jobs` for jobs/job.h, `.` for daemon.h; the http/dashboard page is http/."""
    head, sep, _ = path_in_daemon.partition("/")
    return head if sep else TOP


def check_tree(source_dir):
    """Returns (problems, unknown_folders, files_checked) for source_dir/daemon."""
    daemon_dir = os.path.join(source_dir, "daemon")
    problems, unknown, checked = [], set(), 0
    known = set(LOWER) | set(FAMILIES) | set(UPPER)
    for dirpath, _, names in os.walk(daemon_dir):
        for name in sorted(names):
            if not name.endswith((".h", ".cpp")):
                continue
            path = os.path.join(dirpath, name)
            rel = os.path.relpath(path, daemon_dir)
            folder = folder_of(rel)
            if folder == TOP:
                checked += 1
                continue
            if folder not in known:
                unknown.add(folder)
                continue
            checked += 1
            stem = os.path.splitext(name)[0]
            is_ops = stem.endswith("_ops")
            may = allowed(folder, is_ops)
            with open(path, encoding="utf-8") as f:
                for number, line in enumerate(f, 1):
                    m = INCLUDE.match(line)
                    if not m:
                        continue
                    target = daemon_target(m.group(1), dirpath, source_dir, daemon_dir)
                    if target is None:
                        continue
                    target_folder = folder_of(target)
                    where = f"daemon/{rel}:{number}"
                    if target_folder == TOP:
                        problems.append(f"{where}: includes daemon/{target}, the composition root; "
                                        f"only main.cpp, daemon.*, operation_table.* and daemon_ops.* may")
                    elif target_folder != folder and target_folder not in may:
                        rule = ", ".join(sorted(f + "/" for f in may)) or "nothing of lpd"
                        hint = ""
                        if folder in FAMILIES and target_folder in OPS_EXTRA and not is_ops:
                            hint = " (only a family's *_ops file may include transport/ or host/)"
                        problems.append(f"{where}: {folder}/ includes daemon/{target}; "
                                        f"{folder}/ may include {rule}{hint}")
    return problems, unknown, checked


def main(argv):
    source_dir = argv[1] if len(argv) > 1 else os.path.join(os.path.dirname(os.path.abspath(__file__)), "..")
    problems, unknown, checked = check_tree(source_dir)
    for p in problems:
        print(p)
    if unknown:
        print("check-layers: daemon/ has folders the rule does not name: " + ", ".join(sorted(unknown)) +
              " (give each its place in scripts/check-layers.py and the README's Layout)")
        return 2
    if problems:
        print(f"check-layers: {len(problems)} include(s) break the layer rule (README.md, Layout)")
        return 1
    print(f"check-layers: {checked} files of daemon/ follow the layer rule")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
