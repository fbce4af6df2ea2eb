#!/usr/bin/env python3
"""Helpers and report for bench/guard.sh (the guard benchmark).

    guard_report.py attack --run N --scenario NAME --cls full|evasive --args "..."
                           --rc RC --log LOG --alerts ALERTS --tree DIR
                           --manifest FILE [--out FILE]
        One JSON line for one emulator run: detected, files damaged before
        the freeze, latency, unrecoverable files.
    guard_report.py state STATE_JSON
        "pid events allowed denied copies_made overflows" (zeros if unreadable)
    guard_report.py alerts ALERTS
        "ransomware killed coverage_gap queue_overflow" counts
    guard_report.py report RESULTS_JSONL
        the tables and the summary block

Python 3 standard library only.
"""

import argparse
import hashlib
import json
import os
import statistics
import sys

MARKER = ".bw-ransim-marker"
CANARY_PREFIX = "!bulwark-canary-"

# targets (issue #3)
T_FILES = 3
T_LATENCY_MS = 250.0
T_ALERT_RATE = 0.001
T_OVERHEAD = 1.03
T_REWRITE = 1.5
T_RSS_MB = 32.0


def read_alerts(path):
    out = []
    try:
        with open(path, encoding="utf-8", errors="replace") as f:
            for line in f:
                line = line.strip()
                if not line:
                    continue
                try:
                    out.append(json.loads(line))
                except ValueError:
                    out.append({"event": "unparsable", "raw": line[:300]})
    except OSError:
        pass
    return out


def unescape(p):
    out, i = [], 0
    while i < len(p):
        if p[i] == "\\" and i + 1 < len(p):
            out.append("\n" if p[i + 1] == "n" else p[i + 1])
            i += 2
        else:
            out.append(p[i])
            i += 1
    return "".join(out)


def read_log(path):
    start, files = None, []
    try:
        with open(path, encoding="utf-8", errors="surrogateescape") as f:
            for line in f:
                line = line.rstrip("\n")
                if line.startswith("start "):
                    start = int(line.split()[1])
                    continue
                parts = line.split(" ", 2)
                if len(parts) == 3 and parts[0].isdigit() and parts[1].isdigit():
                    files.append((int(parts[0]), int(parts[1]), unescape(parts[2])))
    except OSError:
        pass
    return start, files


def sha256(path):
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for b in iter(lambda: f.read(1 << 20), b""):
            h.update(b)
    return h.hexdigest()


def verify_tree(tree, manifest):
    """Files of the manifest missing or changed, and files that should not be there."""
    want = {}
    with open(manifest, encoding="utf-8", errors="surrogateescape") as f:
        for line in f:
            line = line.rstrip("\n")
            if len(line) > 66:
                rel = line[66:]
                if rel.startswith("./"):
                    rel = rel[2:]
                want[rel] = line[:64]
    bad = []
    for rel, digest in sorted(want.items()):
        p = os.path.join(tree, rel)
        try:
            if os.path.islink(p) or not os.path.isfile(p):
                bad.append(("missing", rel))
            elif sha256(p) != digest:
                bad.append(("changed", rel))
        except OSError:
            bad.append(("unreadable", rel))
    extra = []
    for root, dirs, files in os.walk(tree):
        for d in list(dirs):
            if os.path.islink(os.path.join(root, d)):
                files.append(d)
                dirs.remove(d)
        for name in files:
            rel = os.path.relpath(os.path.join(root, name), tree)
            if rel in want or rel == MARKER or name.startswith(CANARY_PREFIX):
                continue
            extra.append(("extra", rel))
    return bad + sorted(extra)


def cmd_attack(a):
    alerts = read_alerts(a.alerts)
    rw = [x for x in alerts if x.get("event") == "ransomware"]
    start, files = read_log(a.log)
    first = rw[0] if rw else None
    rec = {"type": "attack", "run": a.run, "scenario": a.scenario, "cls": a.cls,
           "args": a.args, "rc": a.rc, "detected": bool(first),
           "files_damaged": len(files), "alerts": len(rw),
           "other_alerts": sorted({x.get("event", "?") for x in alerts if x.get("event") != "ransomware"})}
    first_write = min((f[0] for f in files), default=None)
    if first:
        frozen = int(first.get("frozen_ns") or 0)
        rec["action"] = first.get("action")
        rec["score"] = first.get("score")
        rec["freeze_ms"] = first.get("freeze_ms")
        rec["rollback"] = first.get("rollback", {})
        rec["indicators"] = first.get("indicators", {})
        rec["files_before_freeze"] = sum(1 for f in files if f[0] < frozen)
        ref = first_write if first_write is not None else start
        rec["latency_from"] = "first_write" if first_write is not None else "start"
        rec["latency_ms"] = round((frozen - ref) / 1e6, 3) if ref and frozen else None
        rec["alert"] = {k: first.get(k) for k in ("action", "score", "sid", "indicators", "evidence",
                                                  "first_event_ns", "first_bad_ns", "frozen_ns",
                                                  "freeze_ms", "rollback")}
        if isinstance(rec["alert"].get("evidence"), list):
            rec["alert"]["evidence"] = rec["alert"]["evidence"][:6]
    else:
        rec["files_before_freeze"] = len(files)
        rec["latency_ms"] = None
    bad = verify_tree(a.tree, a.manifest)
    rec["unrecoverable"] = len(bad)
    rec["bad_files"] = ["%s %s" % b for b in bad[:20]]
    line = json.dumps(rec, ensure_ascii=False)
    if a.out:
        with open(a.out, "a", encoding="utf-8") as f:
            f.write(line + "\n")
    print("%-18s run %d: %s, rc %s, %d file(s) before the freeze, latency %s ms, %d unrecoverable" % (
        a.scenario, a.run, ("detected (%s)" % rec.get("action")) if first else "NOT DETECTED", a.rc,
        rec["files_before_freeze"], "-" if rec["latency_ms"] is None else "%.1f" % rec["latency_ms"],
        rec["unrecoverable"]), file=sys.stderr)


def cmd_state(a):
    try:
        with open(a.path) as f:
            s = json.load(f)
        c = s.get("counters", {})
        print(s.get("pid", 0), *(int(c.get(k, 0)) for k in ("events", "allowed", "denied", "copies_made", "overflows",
                                                     "opens", "reads", "writes", "closes")))
    except (OSError, ValueError):
        print("0 0 0 0 0 0 0 0 0 0")


def cmd_alerts(a):
    al = read_alerts(a.path)
    rw = [x for x in al if x.get("event") == "ransomware"]
    print(len(rw), sum(1 for x in rw if x.get("action") == "killed"),
          sum(1 for x in al if x.get("event") == "coverage_gap"),
          sum(1 for x in al if x.get("event") == "queue_overflow"))


# ---------------------------------------------------------------- report

def describe_alert(line):
    """One alert line in a few words: action, score, indicators, evidence, rollback."""
    try:
        a = json.loads(line)
    except ValueError:
        return line[:300]
    ind = ", ".join("%s %s" % (k, v) for k, v in (a.get("indicators") or {}).items() if v)
    ev = a.get("evidence") or []
    procs = "; ".join((p.get("cmdline") or p.get("exe") or str(p.get("pid")))[:80]
                      for p in (a.get("processes") or []) if p.get("cmdline") or p.get("exe"))
    return "%s, score %.1f: %s; evidence (%d): %s%s; processes: %s; rollback %s" % (
        a.get("action"), a.get("score") or 0, ind, len(ev), " | ".join(e[:140] for e in ev[:4]),
        " | ..." if len(ev) > 4 else "", procs, json.dumps(a.get("rollback")))


def med(xs):
    xs = [x for x in xs if x is not None]
    return statistics.median(xs) if xs else None


def fmt(x, f="%.1f"):
    return "-" if x is None else f % x


def table(headers, rows, align=None):
    w = [len(h) for h in headers]
    for r in rows:
        for i, c in enumerate(r):
            w[i] = max(w[i], len(str(c)))
    align = align or ["<"] + [">"] * (len(headers) - 1)
    line = lambda r: "  ".join(("%-*s" if align[i] == "<" else "%*s") % (w[i], c) for i, c in enumerate(r))
    out = [line(headers), "  ".join("-" * x for x in w)]
    out += [line(r) for r in rows]
    return "\n".join(out)


def sec_attacks(attacks, meta, out, summary):
    """Section 1: the emulator table and its totals; returns (avail, missed, unrec)."""
    order, by = [], {}
    for r in attacks:
        if r["scenario"] not in by:
            order.append(r["scenario"])
            by[r["scenario"]] = []
        by[r["scenario"]].append(r)
    rows = []
    for s in order:
        rs = by[s]
        det = [r for r in rs if r["detected"]]
        avail = [r for r in rs if r["rc"] != 77]
        rows.append([s, rs[0]["cls"], rs[0]["args"],
                     "n/a" if not avail else "%d/%d" % (len(det), len(avail)),
                     "%d" % sum(1 for r in det if r.get("action") == "killed"),
                     fmt(med([r["files_before_freeze"] for r in avail]), "%g"),
                     fmt(med([r.get("latency_ms") for r in det])),
                     fmt(max([r["latency_ms"] for r in det if r.get("latency_ms") is not None], default=None)),
                     fmt(med([r.get("freeze_ms") for r in det]), "%.2f"),
                     "%d" % sum(r["unrecoverable"] for r in avail)])
    out.append("1. Emulator (bw-ransim) against the guard: %s run(s) per scenario, fresh corpus each run" %
               meta.get("runs", "?"))
    out.append("   files = damaged files (log lines) whose first write came before frozen_ns (the canary counts);")
    out.append("   latency = frozen_ns - first damaging write; medians; undetected runs count all damaged files")
    out.append(table(["scenario", "class", "emulator options", "detected", "killed", "files(med)",
                      "lat ms(med)", "lat ms(max)", "freeze ms", "unrecov"], rows,
                     ["<", "<", "<", ">", ">", ">", ">", ">", ">", ">"]))
    avail = [r for r in attacks if r["rc"] != 77]
    missed = [r for r in avail if not r["detected"]]
    full = [r for r in avail if r["cls"] == "full"]
    full_det = [r for r in full if r["detected"]]
    pooled_files = med([r["files_before_freeze"] for r in full])
    pooled_lat = med([r.get("latency_ms") for r in full_det])
    over_files = [s for s in order if by[s][0]["cls"] == "full" and
                  (med([r["files_before_freeze"] for r in by[s] if r["rc"] != 77]) or 0) > T_FILES]
    over_lat = [s for s in order if by[s][0]["cls"] == "full" and
                (med([r.get("latency_ms") for r in by[s] if r["detected"]]) or 0) > T_LATENCY_MS]
    unrec = [r for r in avail if r["unrecoverable"]]
    na = sorted({r["scenario"] for r in attacks if r["rc"] == 77})
    out.append("")
    out.append("   counted as non-evasive (class full): %s" % " ".join(s for s in order if by[s][0]["cls"] == "full"))
    out.append("   evasive (not held to the files/latency targets): %s" %
               " ".join(s for s in order if by[s][0]["cls"] != "full"))
    if na:
        out.append("   not available here (exit 77): %s" % " ".join(na))
    out.append("   every scenario detected in every run: %s" %
               ("yes" if not missed else "NO, missed: " + ", ".join("%s(run %d)" % (r["scenario"], r["run"]) for r in missed)))
    out.append("   non-evasive median files before freeze: %s (target <= %d)%s" % (
        fmt(pooled_files, "%g"), T_FILES, "" if not over_files else "; over target: " + " ".join(over_files)))
    out.append("   non-evasive median latency: %s ms (target <= %.0f)%s" % (
        fmt(pooled_lat), T_LATENCY_MS, "" if not over_lat else "; over target: " + " ".join(over_lat)))
    out.append("   unrecoverable files: %d in %d of %d runs (target 0)" % (
        sum(r["unrecoverable"] for r in avail), len(unrec), len(avail)))
    summary += [
        ("emulator runs", "%d (%d scenarios x %s)" % (len(avail), len(order), meta.get("runs", "?"))),
        ("detected", "%d/%d%s" % (len(avail) - len(missed), len(avail), "" if not missed else "  FAIL")),
        ("non-evasive median files before freeze", "%s (target <= %d) %s" % (
            fmt(pooled_files, "%g"), T_FILES, "ok" if pooled_files is not None and pooled_files <= T_FILES and not over_files
            else "FAIL" + (" (scenarios over: %s)" % " ".join(over_files) if over_files else ""))),
        ("non-evasive median latency ms", "%s (target <= %.0f) %s" % (
            fmt(pooled_lat), T_LATENCY_MS, "ok" if pooled_lat is not None and pooled_lat <= T_LATENCY_MS and not over_lat
            else "FAIL" + (" (scenarios over: %s)" % " ".join(over_lat) if over_lat else ""))),
        ("unrecoverable files", "%d (target 0) %s" % (sum(r["unrecoverable"] for r in avail), "ok" if not unrec else "FAIL")),
    ]

    return avail, missed, unrec


def cmd_report(a):
    recs = []
    with open(a.path, encoding="utf-8") as f:
        for line in f:
            line = line.strip()
            if line:
                try:
                    recs.append(json.loads(line))
                except ValueError:
                    pass
    meta = next((r for r in recs if r.get("type") == "meta"), {})
    attacks = [r for r in recs if r.get("type") == "attack"]
    benign = [r for r in recs if r.get("type") == "benign"]
    micro = [r for r in recs if r.get("type") == "micro"]
    rss = [r for r in recs if r.get("type") == "rss"]
    problems = [r for r in recs if r.get("type") == "problem"]
    summary = []
    out = []

    # ---- 1. emulator
    avail, missed, unrec = sec_attacks(attacks, meta, out, summary) if attacks else ([], [], [])

    # ---- 2. benign
    if benign:
        jobs, bj = [], {}
        for r in benign:
            if r["job"] not in bj:
                jobs.append(r["job"])
                bj[r["job"]] = {"off": [], "on": []}
            bj[r["job"]][r["mode"]].append(r)
        rows = []
        s_off = s_on = 0.0
        tot = {"alerts": 0, "kills": 0, "denied": 0, "procs": 0, "failed": 0}
        for j in jobs:
            off, on = bj[j]["off"], bj[j]["on"]
            m_off = med([r["seconds"] for r in off])
            m_on = med([r["seconds"] for r in on])
            ok = all(r["rc"] == 0 for r in off + on)
            # a job that failed or was killed ran for a shorter time: not in the sums
            if ok and m_off is not None and m_on is not None:
                s_off += m_off
                s_on += m_on
            al = sum(r.get("alerts", 0) for r in on)
            k = sum(r.get("kills", 0) for r in on)
            d = sum(r.get("denied", 0) for r in on)
            p = sum(r.get("procs", 0) for r in on)
            tot["alerts"] += al
            tot["kills"] += k
            tot["denied"] += d
            tot["procs"] += p
            tot["failed"] += 0 if ok else 1
            rows.append([j, fmt(m_off, "%.2f"), fmt(m_on, "%.2f"),
                         fmt(m_on / m_off if m_off and m_on is not None else None, "%.2fx"),
                         "/".join(str(r["rc"]) for r in off) + " | " + "/".join(str(r["rc"]) for r in on),
                         str(al), str(k), str(d), str(p)])
        ratio = s_on / s_off if s_off else None
        rate = tot["alerts"] / tot["procs"] if tot["procs"] else None
        out.append("")
        out.append("2. Benign jobs in protected trees, guard off vs on (median of %s pair(s) per job; off first, then on)" %
                   meta.get("benign_runs", "?"))
        out.append(table(["job", "off s", "on s", "on/off", "exit off|on", "alerts", "kills", "denied", "procs"], rows))
        failed_jobs = [j for j in jobs if not all(r["rc"] == 0 for r in bj[j]["off"] + bj[j]["on"])]
        out.append("   total: off %.2f s, on %.2f s, overhead %s (target <= +%.0f%%)%s" % (
            s_off, s_on, fmt((ratio - 1) * 100 if ratio else None, "%+.1f%%"), (T_OVERHEAD - 1) * 100,
            "" if not failed_jobs else "; sums leave out the failed/killed job(s): " + " ".join(failed_jobs)))
        out.append("   kills %d, denied writes %d, alerts %d per %d processes started = %s (target <= %.1f%%)%s" % (
            tot["kills"], tot["denied"], tot["alerts"], tot["procs"],
            fmt(rate * 100 if rate is not None else None, "%.3f%%"), T_ALERT_RATE * 100,
            "" if not tot["failed"] else "; %d job(s) failed (see exit codes)" % tot["failed"]))
        summary += [
            ("benign kills", "%d %s" % (tot["kills"], "ok" if not tot["kills"] else "FAIL")),
            ("benign denied writes", "%d %s" % (tot["denied"], "ok" if not tot["denied"] else "FAIL")),
            ("benign alerts / processes", "%d / %d = %s (target <= %.1f%%) %s" % (
                tot["alerts"], tot["procs"], fmt(rate * 100 if rate is not None else None, "%.3f%%"),
                T_ALERT_RATE * 100, "ok" if rate is not None and rate <= T_ALERT_RATE else "FAIL")),
            ("benign wall-time overhead", "%s (on %.1f s / off %.1f s; target <= +%.0f%%) %s" % (
                fmt((ratio - 1) * 100 if ratio else None, "%+.1f%%"), s_on, s_off, (T_OVERHEAD - 1) * 100,
                "ok" if ratio is not None and ratio <= T_OVERHEAD else "FAIL")),
            ("benign jobs failed", "%d" % tot["failed"]),
        ]

    # ---- 3. micro
    if micro:
        ops = [("rewrite_us", "(a) open + pwrite 4 KiB + close, new episode", "us", True),
               ("big_us", "(b) pwrite 4 KiB at random offsets, open 64 MiB file", "us", True),
               ("big_first_ms", "(b') first pwrite into the 64 MiB file (whole-file copy)", "ms", False),
               ("trunc_us", "(c) open(O_TRUNC) + write 4 KiB + close", "us", True),
               ("read_us", "(d) open + read 4 KiB + close (read-only)", "us", False)]
        off = [r for r in micro if r["mode"] == "off"]
        on = [r for r in micro if r["mode"] == "on"]
        flo = [r for r in micro if r["mode"] == "floor"]
        rows = []
        worst = None
        for key, label, unit, target in ops:
            a_ = med([r.get(key) for r in off])
            b_ = med([r.get(key) for r in on])
            c_ = med([r.get(key) for r in flo])
            ratio = b_ / a_ if a_ and b_ is not None else None
            fratio = c_ / a_ if a_ and c_ is not None else None
            if target and ratio is not None:
                worst = ratio if worst is None else max(worst, ratio)
            rows.append([label, fmt(a_, "%.2f") + " " + unit, fmt(b_, "%.2f") + " " + unit,
                         fmt(ratio, "%.2fx"), ("<= %.1fx" % T_REWRITE) if target else "-",
                         fmt(c_, "%.2f") + " " + unit, fmt(fratio, "%.2fx")])
        r0 = (off or on)[0]
        out.append("")
        out.append("3. Rewrite microbenchmark (bench/guard_rewrite.c, cc -O2): %d files of 4-64 KiB x %d rounds, %d big-file writes; median of %d run(s)" % (
            r0.get("files", 0), r0.get("rounds", 0), r0.get("ops", 0), len(off)))
        out.append(table(["operation", "guard off", "guard on", "on/off", "target", "bare listener", "bare/off"],
                         rows, ["<", ">", ">", ">", ">", ">", ">"]))
        out.append("   bare listener: bench/fanotify_floor.c marks the same mount for FAN_OPEN_PERM and allows every open at")
        out.append("   once, doing nothing else: the round trip per open that any guard of this design pays (no copy, no check)")
        ra = med([r.get("rewrite_us") for r in on])
        rb = med([r.get("rewrite_us") for r in off])
        summary.append(("per 4 KiB rewrite (a), on/off", "%s (target <= %.1fx) %s" % (
            fmt(ra / rb if ra and rb else None, "%.2fx"), T_REWRITE,
            "ok" if ra and rb and ra / rb <= T_REWRITE else "FAIL")))
        summary.append(("worst rewrite ratio (a, b, c)", fmt(worst, "%.2fx")))

    # ---- 4. RSS
    if rss:
        rows = []
        phases = []
        for r in rss:
            if r["phase"] not in phases:
                phases.append(r["phase"])
        peak = 0
        for p in phases:
            rs = [r for r in rss if r["phase"] == p]
            h = max(r.get("hwm_kib", 0) for r in rs)
            peak = max(peak, h)
            rows.append([p, "%d" % len(rs), "%.1f" % (h / 1024), "%.1f" % (max(r.get("rss_kib", 0) for r in rs) / 1024),
                         "%.1f" % (max(r.get("sup_hwm_kib", 0) for r in rs) / 1024)])
        out.append("")
        out.append("4. Guard memory: engine VmHWM (peak RSS) sampled before every stop of the guard, MiB")
        out.append(table(["phase", "samples", "engine VmHWM", "engine VmRSS", "supervisor VmHWM"], rows))
        out.append("   peak engine VmHWM over the whole run: %.1f MiB (target <= %.0f MB)" % (peak / 1024, T_RSS_MB))
        summary.append(("guard engine peak VmHWM", "%.1f MiB (target <= %.0f) %s" % (
            peak / 1024, T_RSS_MB, "ok" if peak / 1024 <= T_RSS_MB else "FAIL")))

    # ---- problems seen
    findings = []
    for r in missed:
        findings.append("not detected: %s run %d (%s), exit %s, %d file(s) damaged, %d unrecoverable" % (
            r["scenario"], r["run"], r["args"], r["rc"], r["files_damaged"], r["unrecoverable"]))
    for r in unrec:
        findings.append("unrecoverable after rollback: %s run %d (%s): %s" % (
            r["scenario"], r["run"], r["args"], "; ".join(r["bad_files"][:8])))
    for r in avail:
        if r["detected"] and r["rc"] not in (137, 143):
            findings.append("detected but emulator exit %s (not killed): %s run %d" % (r["rc"], r["scenario"], r["run"]))
        if r.get("other_alerts"):
            findings.append("other alerts during %s run %d: %s" % (r["scenario"], r["run"], " ".join(r["other_alerts"])))
    for r in benign:
        if r["mode"] == "on" and (r.get("alerts") or r.get("denied")):
            findings.append("benign %s run %d: %d alert(s), %d kill(s), %d denied write(s), job exit %s%s" % (
                r["job"], r["run"], r.get("alerts", 0), r.get("kills", 0), r.get("denied", 0), r["rc"],
                "".join("\n      " + describe_alert(x) for x in "\n".join(r.get("alert_lines") or []).splitlines())))
        elif r["rc"] != 0:
            findings.append("benign %s run %d (guard %s) exited %s" % (r["job"], r["run"], r["mode"], r["rc"]))
    for r in problems:
        findings.append(r.get("what", "?"))
    out.append("")
    out.append("Findings (%d):" % len(findings))
    out += ["  - " + f for f in findings] if findings else ["  none"]

    out.append("")
    out.append("Summary")
    w = max(len(k) for k, _ in summary) if summary else 0
    out.append("  %-*s  %s" % (w, "machine", "nproc %s, %s, kernel %s" % (meta.get("nproc", "?"), meta.get("cpu", "?"), meta.get("kernel", "?"))))
    out += ["  %-*s  %s" % (w, k, v) for k, v in summary]
    print("\n".join(out))


def main():
    ap = argparse.ArgumentParser()
    sub = ap.add_subparsers(dest="cmd", required=True)
    p = sub.add_parser("attack")
    p.add_argument("--run", type=int, required=True)
    p.add_argument("--scenario", required=True)
    p.add_argument("--cls", default="full")
    p.add_argument("--args", default="")
    p.add_argument("--rc", type=int, required=True)
    p.add_argument("--log", required=True)
    p.add_argument("--alerts", required=True)
    p.add_argument("--tree", required=True)
    p.add_argument("--manifest", required=True)
    p.add_argument("--out")
    p = sub.add_parser("state")
    p.add_argument("path")
    p = sub.add_parser("alerts")
    p.add_argument("path")
    p = sub.add_parser("report")
    p.add_argument("path")
    a = ap.parse_args()
    {"attack": cmd_attack, "state": cmd_state, "alerts": cmd_alerts, "report": cmd_report}[a.cmd](a)


if __name__ == "__main__":
    main()
