#!/usr/bin/env python3
"""Helpers for bench/backup.sh (data set selection, 1% change, tree stats, report).

Subcommands:
  select TARGET_BYTES OUT_LIST          list of paths (relative to /usr, NUL-separated)
                                        for a deterministic ~TARGET_BYTES copy of
                                        /usr/lib and /usr/share
  change TREE SEED                      apply the deterministic "1% change" to TREE
                                        (a `cp -al` copy: every modified file is
                                        written to a new inode, never in place)
  treestat TREE                         print "files bytes" for TREE (regular files)
  snapid                                read `snapshots --json` on stdin, print the id
                                        of the newest snapshot (best effort)
  report RESULTS_JSONL TOOLS            print the result tables (median over runs)
"""
import json
import os
import random
import stat
import statistics
import sys

ROOTS = ("lib", "share")  # under /usr


def _walk_sorted(top):
    """Yield (path, lstat) below top in deterministic sorted pre-order: a
    directory is yielded when the walk enters it, right before its contents, so
    stopping the walk early never leaves empty directories that were not reached."""
    stack = [(top, None)]
    while stack:
        d, dst = stack.pop()
        if dst is not None:
            yield d, dst
        try:
            names = sorted(os.listdir(d))
        except OSError:
            continue
        subdirs = []
        for n in names:
            p = os.path.join(d, n)
            try:
                st = os.lstat(p)
            except OSError:
                continue
            if stat.S_ISDIR(st.st_mode):
                subdirs.append((p, st))
            else:
                yield p, st
        stack.extend(reversed(subdirs))


def cmd_select(target, out):
    """Pick files from /usr/share then /usr/lib, half the budget each (the
    remainder of a root that is too small goes to the other), walking each root
    in sorted order and stopping as soon as the budget is reached: whole
    top-level subdirectories are taken in sorted order, the last one partially."""
    target = int(target)
    base = "/usr"
    chosen = []
    used_total = 0
    budgets = {"share": target // 2}
    order = ["share", "lib"]
    seen_inodes = set()
    for root in order:
        budget = budgets.get(root, target - used_total)
        used = 0
        top = os.path.join(base, root)
        chosen.append(root)
        for p, st in _walk_sorted(top):
            if used >= budget:
                break
            rel = os.path.relpath(p, base)
            m = st.st_mode
            if stat.S_ISDIR(m):
                if not os.access(p, os.R_OK | os.X_OK):
                    continue
                chosen.append(rel)
            elif stat.S_ISLNK(m):
                chosen.append(rel)
            elif stat.S_ISREG(m):
                if not os.access(p, os.R_OK):
                    continue
                chosen.append(rel)
                key = (st.st_dev, st.st_ino)
                if key not in seen_inodes:
                    seen_inodes.add(key)
                    used += st.st_size
            # sockets, fifos, devices: skipped
        used_total += used
    # parent directories are listed before children because of pre-order; tar
    # is run with --no-recursion so the list is exactly what gets copied.
    with open(out, "wb") as f:
        for rel in chosen:
            f.write(rel.encode("utf-8", "surrogateescape") + b"\0")
    print(used_total)


def _regular_files(tree):
    out = []
    for dirpath, dirnames, filenames in os.walk(tree):
        dirnames.sort()
        for n in sorted(filenames):
            p = os.path.join(dirpath, n)
            st = os.lstat(p)
            if stat.S_ISREG(st.st_mode):
                out.append((p, st.st_size))
    return out


def cmd_treestat(tree):
    files = _regular_files(tree)
    print(len(files), sum(s for _, s in files))


def _write_new_inode(path, data_fn):
    """Write a new version of path into a new inode (never touch the old one,
    which is hard-linked into the unchanged tree)."""
    st = os.lstat(path)
    tmp = path + ".bench-tmp"
    with open(path, "rb") as src, open(tmp, "wb") as dst:
        dst.write(data_fn(src.read()))
    os.chmod(tmp, stat.S_IMODE(st.st_mode))
    try:
        os.chown(tmp, st.st_uid, st.st_gid)
    except PermissionError:
        pass
    os.replace(tmp, path)


def cmd_change(tree, seed):
    rng = random.Random(int(seed))
    files = _regular_files(tree)
    total = sum(s for _, s in files)
    target_changed = total // 100          # ~1% of the bytes are new content
    new_budget = total // 1000             # 0.1% of it as new files
    mod_budget = target_changed - new_budget
    order = list(range(len(files)))
    rng.shuffle(order)
    changed = 0
    n_over = n_app = 0
    touched = set()
    k = 0
    while changed < mod_budget and k < len(order):
        i = order[k]
        k += 1
        path, size = files[i]
        if size == 0:
            continue
        length = min(mod_budget - changed, 256 * 1024, max(4096, size // 4))
        blob = rng.randbytes(length)
        if rng.random() < 2 / 3:
            length = min(length, size)
            blob = blob[:length]
            off = rng.randrange(0, size - length + 1)
            _write_new_inode(path, lambda d, o=off, b=blob: d[:o] + b + d[o + len(b):])
            n_over += 1
        else:
            _write_new_inode(path, lambda d, b=blob: d + b)
            n_app += 1
        changed += length
        touched.add(i)
    # delete 10 files that were not modified
    n_del = 0
    del_bytes = 0
    while n_del < 10 and k < len(order):
        i = order[k]
        k += 1
        if i in touched:
            continue
        os.unlink(files[i][0])
        del_bytes += files[i][1]
        n_del += 1
    # 10 new files of incompressible data in a new directory + 2 next to existing ones
    newdir = os.path.join(tree, "bench-new-files")
    os.makedirs(newdir, exist_ok=True)
    n_new = 12
    per = max(1, new_budget // n_new)
    for j in range(n_new):
        if j < 10:
            p = os.path.join(newdir, "new-%02d.bin" % j)
        else:
            p = os.path.join(os.path.dirname(files[order[j]][0]), "bench-new-%02d.bin" % j)
        with open(p, "wb") as f:
            f.write(rng.randbytes(per))
    summary = {
        "dataset_bytes": total, "modified_files": n_over + n_app, "overwritten": n_over,
        "appended": n_app, "modified_bytes": changed, "new_files": n_new,
        "new_bytes": per * n_new, "deleted_files": n_del, "deleted_bytes": del_bytes,
    }
    print(json.dumps(summary))


def cmd_snapid():
    try:
        data = json.load(sys.stdin)
    except Exception:
        return
    if isinstance(data, dict):
        for key in ("snapshots", "items", "data"):
            if isinstance(data.get(key), list):
                data = data[key]
                break
    if not isinstance(data, list) or not data:
        return
    def t(s):
        return str(s.get("time") or s.get("timestamp") or s.get("created") or "")
    snaps = [s for s in data if isinstance(s, dict)]
    if not snaps:
        return
    snaps.sort(key=t)
    s = snaps[-1]
    for key in ("id", "snapshot_id", "short_id", "name"):
        if s.get(key):
            print(s[key])
            return


STEPS = [
    ("backup1", "first backup"),
    ("backup2", "re-backup, no change"),
    ("backup3", "backup after 1% change"),
    ("restore", "full restore (latest)"),
    ("check", "check, read all data"),
]


def _fmt(x, spec):
    return "-" if x is None else format(x, spec)


def cmd_report(path, tools):
    tools = tools.split()
    rows = [json.loads(l) for l in open(path) if l.strip()]
    meta = next((r for r in rows if r.get("type") == "meta"), {})
    steps = [r for r in rows if r.get("type") == "step"]
    sizes = [r for r in rows if r.get("type") == "reposize"]
    runs = sorted({r["run"] for r in steps}) or [0]

    def med(tool, step, field):
        vals = [r[field] for r in steps
                if r["tool"] == tool and r["step"] == step and r.get("ok") and r.get(field) is not None]
        return statistics.median(vals) if vals else None

    def medsize(tool, when):
        vals = [r["bytes"] for r in sizes if r["tool"] == tool and r["when"] == when]
        return statistics.median(vals) if vals else None

    def failed(tool, step):
        return any(r["tool"] == tool and r["step"] == step and not r.get("ok") for r in steps)

    others = [t for t in tools if t != "bulwark"]
    has_bw = "bulwark" in tools
    out = []
    w = out.append
    w("Data set: %.1f MB (%s files), changed variant: %.1f MB; runs: %d (median per step)"
      % (meta.get("dataset_bytes", 0) / 1e6, meta.get("dataset_files", "?"),
         meta.get("changed_bytes", 0) / 1e6, len(runs)))
    w("")
    # --- time table
    hdr = ["step".ljust(24)]
    for t in tools:
        hdr += [("%s s" % t).rjust(11), ("%s MB/s" % t).rjust(13)]
    if has_bw:
        for o in others:
            hdr.append(("%s/bulwark" % o).rjust(15))
    w(" | ".join(hdr))
    w("-" * len(" | ".join(hdr)))
    for step, label in STEPS:
        size = meta.get("changed_bytes" if step in ("backup3", "restore", "check") else "dataset_bytes", 0)
        line = [label.ljust(24)]
        for t in tools:
            s = med(t, step, "seconds")
            if s is None:
                line += [("FAILED" if failed(t, step) else "-").rjust(11), "-".rjust(13)]
            else:
                mbs = (size / 1e6) / s if s > 0 else None
                line += [_fmt(s, ".2f").rjust(11), _fmt(mbs, ".1f").rjust(13)]
        if has_bw:
            b = med("bulwark", step, "seconds")
            for o in others:
                s = med(o, step, "seconds")
                r = (s / b) if (s is not None and b) else None
                line.append((_fmt(r, ".2f") + "x" if r is not None else "-").rjust(15))
        w(" | ".join(line))
    w("")
    w("MB/s = data set size / wall seconds (check: repository read, expressed against the data set size).")
    if has_bw:
        w("X/bulwark = speedup of bulwark over X = X seconds / bulwark seconds (>1: bulwark faster).")
    w("")
    # --- RSS table
    hdr = ["peak RSS (MB)".ljust(24)] + [t.rjust(11) for t in tools]
    if has_bw:
        hdr += [("%s/bulwark" % o).rjust(15) for o in others]
    w(" | ".join(hdr))
    w("-" * len(" | ".join(hdr)))
    for step, label in STEPS:
        line = [label.ljust(24)]
        for t in tools:
            k = med(t, step, "maxrss_kib")
            line.append(_fmt(k / 1024 if k is not None else None, ".1f").rjust(11))
        if has_bw:
            b = med("bulwark", step, "maxrss_kib")
            for o in others:
                k = med(o, step, "maxrss_kib")
                line.append((_fmt(k / b, ".2f") + "x" if (k is not None and b) else "-").rjust(15))
        w(" | ".join(line))
    w("")
    # --- repo size table
    hdr = ["repository size (MB)".ljust(24)] + [t.rjust(11) for t in tools]
    if has_bw:
        hdr += [("%s/bulwark" % o).rjust(15) for o in others]
    w(" | ".join(hdr))
    w("-" * len(" | ".join(hdr)))
    for when, label in (("backup1", "after first backup"), ("backup2", "after no-change backup"),
                        ("backup3", "after 1% change backup")):
        line = [label.ljust(24)]
        for t in tools:
            v = medsize(t, when)
            line.append(_fmt(v / 1e6 if v is not None else None, ".1f").rjust(11))
        if has_bw:
            b = medsize("bulwark", when)
            for o in others:
                v = medsize(o, when)
                line.append((_fmt(v / b, ".3f") + "x" if (v is not None and b) else "-").rjust(15))
        w(" | ".join(line))
    line = ["growth by 1% change".ljust(24)]
    for t in tools:
        a, b = medsize(t, "backup2"), medsize(t, "backup3")
        line.append(_fmt((b - a) / 1e6 if (a is not None and b is not None) else None, ".1f").rjust(11))
    w(" | ".join(line))
    w("")
    w("repository size = du -sb of the repository directory (client caches not included).")
    if has_bw:
        w("X/bulwark = X size / bulwark size (>1: bulwark repository smaller).")
    print("\n".join(out))


def main():
    cmd, args = sys.argv[1], sys.argv[2:]
    if cmd == "select":
        cmd_select(*args)
    elif cmd == "change":
        cmd_change(*args)
    elif cmd == "treestat":
        cmd_treestat(*args)
    elif cmd == "snapid":
        cmd_snapid()
    elif cmd == "report":
        cmd_report(*args)
    else:
        sys.exit("unknown subcommand: %s" % cmd)


if __name__ == "__main__":
    main()
