#!/usr/bin/env python3
"""Turns bench/run.sh's key=value results into the table printed on the
terminal and written into BENCHMARKS.md between the `bench:results` markers
(the prose around them is kept; a missing file or missing markers start a
fresh file)."""

import statistics
import sys
from pathlib import Path

BEGIN = "<!-- bench:results:begin (written by bench/run.sh; edits inside are lost) -->"
END = "<!-- bench:results:end -->"
CONTENDED = 0.15  # cores used by other processes during a run before we say so


def load(path):
    r = {}
    for line in Path(path).read_text().splitlines():
        if "=" in line:
            k, v = line.split("=", 1)
            r[k] = v
    return r


def main():
    r = load(sys.argv[1])
    out = sys.argv[2]
    f = lambda k: float(r[k])

    cores = int(r["cores"])
    hash_s = f("bcrypt_hash_s")
    limit = cores / hash_s
    rounds = range(1, int(r["rounds"]) + 1)
    med = lambda xs: statistics.median(list(xs))
    healthz = med(f(f"healthz_{i}_rps") for i in rounds)
    bearer = med(f(f"bearer_{i}_rps") for i in rounds)
    cookie = med(f(f"cookie_{i}_rps") for i in rounds)
    bearer_ratios = [f(f"bearer_{i}_rps") / f(f"healthz_{i}_rps") for i in rounds]
    cookie_ratios = [f(f"cookie_{i}_rps") / f(f"healthz_{i}_rps") for i in rounds]
    bearer_ratio, cookie_ratio = med(bearer_ratios), med(cookie_ratios)
    spread = lambda xs: ", ".join(f"{x:.3f}" for x in xs)
    login = f("login_rps")
    refresh = f("refresh_rps")
    rss_mib = f("rss_peak_kib") / 1024
    startup_ms = f("startup_us") / 1000
    page_runs = [f"{name}_{i}" for i in rounds for name in ("healthz", "bearer", "cookie")]
    runs = page_runs + ["login", "refresh", "flood", "probe_bearer", "probe_cookie"]
    # The probes run inside the flood's window: its CPU accounting covers them.
    accounted = page_runs + ["login", "refresh", "flood"]

    def errors(run):
        return sum(int(r[f"{run}_{k}"]) for k in ("connect", "read", "write", "timeout"))

    bad = {run: (int(r[f"{run}_non2xx"]), errors(run)) for run in runs}
    clean = all(n == 0 and e == 0 for n, e in bad.values())
    p99s = (f("probe_bearer_p99_ms"), f("probe_cookie_p99_ms"))
    ok = lambda b: "met" if b else "**missed**"

    rows = [
        ("GET /healthz (framework floor)", f"{healthz:,.0f} req/s", "", ""),
        ("GET /protected, Bearer (JSON)",
         f"{bearer:,.0f} req/s = **{bearer_ratio:.3f}** × healthz (rounds: {spread(bearer_ratios)})",
         "≥ 0.80 × healthz", ok(bearer_ratio >= 0.8)),
        ("GET /protected, cookie (HTML page)",
         f"{cookie:,.0f} req/s = **{cookie_ratio:.3f}** × healthz (rounds: {spread(cookie_ratios)})",
         "≥ 0.70 × healthz", ok(cookie_ratio >= 0.7)),
        ("one bcrypt cost-12 hash (release binary)",
         f"{hash_s * 1000:.1f} ms → bcrypt limit {cores} ÷ {hash_s:.4f} s = {limit:.2f} /s", "", ""),
        ("POST /login, right password", f"{login:.2f} /s = **{login / limit:.3f}** × bcrypt limit",
         "≥ 0.90 × limit", ok(login / limit >= 0.9)),
        ("POST /token/refresh (rotation, DB write)", f"**{refresh:,.0f}** /s", "≥ 5,000 /s", ok(refresh >= 5000)),
        ("GET /protected p50 / p99 during a login flood, Bearer",
         f"{f('probe_bearer_p50_ms'):.2f} / **{p99s[0]:.2f}** ms", "p99 ≤ 10 ms", ok(p99s[0] <= 10)),
        ("GET /protected p50 / p99 during a login flood, cookie",
         f"{f('probe_cookie_p50_ms'):.2f} / **{p99s[1]:.2f}** ms", "p99 ≤ 10 ms", ok(p99s[1] <= 10)),
        ("logins/s during that flood (probes running)", f"{f('flood_rps'):.2f} /s = {f('flood_rps') / limit:.3f} × limit",
         "", ""),
        ("peak RSS of the server (VmHWM)", f"**{rss_mib:.1f}** MiB", "≤ 64 MiB", ok(rss_mib <= 64)),
        ("process start → first 200 from /healthz", f"**{startup_ms:.1f}** ms", "≤ 100 ms", ok(startup_ms <= 100)),
        ("non-2xx responses / socket errors, all runs",
         f"{sum(n for n, _ in bad.values())} / {sum(e for _, e in bad.values())}", "0 / 0", ok(clean)),
    ]

    contended = [
        run for run in accounted
        if f(f"{run}_other_cores") > CONTENDED or f(f"{run}_steal_cores") > CONTENDED
    ]
    lines = [
        BEGIN,
        "",
        f"Run of {r['date']} at `{r['git_rev']}`: **{cores} cores, {r['cpu_model']}**, "
        f"Linux {r['kernel']}, wrk {r['wrk_version']}, {r['rustc']}.",
        "",
        "```sh",
        r["command"],
        "```",
        "",
        f"Each wrk run: {r['duration']} s (logins: {r['login_duration']} s), 64 connections, 2 threads; "
        f"healthz, Bearer and cookie in {r['rounds']} interleaved rounds: req/s are medians, each ratio the "
        f"median of the rounds' ratios. "
        f"Load average before / after: {r['load_before']} / {r['load_after']}.",
        "",
    ]
    if contended:
        lines += [
            f"> **Contended run**: other processes or the hypervisor took more than {CONTENDED} cores during "
            + ", ".join(f"`{c}` ({f(c + '_other_cores'):.2f} + {f(c + '_steal_cores'):.2f} steal)" for c in contended)
            + ". Treat those figures as lower bounds; rerun on a quiet machine.",
            "",
        ]
    else:
        lines += [
            f"Quiet run: no other process (nor the hypervisor) took more than {CONTENDED} cores "
            "during any measurement.",
            "",
        ]
    lines += ["| measurement | result | target | |", "|---|---|---|---|"]
    lines += [f"| {a} | {b} | {c} | {d} |" for a, b, c, d in rows]
    lines += [
        "",
        "Per run (latency from wrk; CPU in cores, averaged over the run: "
        "the server, wrk itself, every other process on the machine, and time "
        "the hypervisor took from this VM):",
        "",
        "| run | requests | req/s | p50 ms | p99 ms | max ms | non-2xx | socket errors | server | wrk | other | steal |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for run in runs:
        cpu = (
            [f"{f(run + '_' + k + '_cores'):.2f}" for k in ("server", "wrk", "other", "steal")]
            if run in accounted
            else ["(in flood)"] * 4
        )
        lines.append(
            f"| {run} | {int(r[run + '_requests']):,} | {f(run + '_rps'):,.1f} | {f(run + '_p50_ms'):.2f} | "
            f"{f(run + '_p99_ms'):.2f} | {f(run + '_max_ms'):.2f} | {bad[run][0]} | {bad[run][1]} | "
            + " | ".join(cpu)
            + " |"
        )
    lines += [
        "",
        f"Refresh chains were seeded from {r['refresh_sessions']} sessions opened by real logins. "
        f"Server: {r['threads']} threads at the end, {int(r['rss_end_kib']) / 1024:.1f} MiB RSS at the end; "
        f"{r['server_errors']} WARN/ERROR lines in its log. The HTML page is {r['page_bytes']} bytes "
        f"({r['page_sets_cookie']} Set-Cookie headers on a repeat visit).",
        "",
        END,
    ]
    block = "\n".join(lines) + "\n"
    print(block)

    if out == "-":
        return
    path = Path(out)
    old = path.read_text() if path.exists() else ""
    if BEGIN in old and END in old:
        head, rest = old.split(BEGIN, 1)
        tail = rest.split(END, 1)[1].lstrip("\n")
        new = head + block + ("\n" + tail if tail else "")
    else:
        new = "# Benchmarks\n\n" + block + ("\n" + old if old else "")
    path.write_text(new)
    print(f"bench: results written to {path}", file=sys.stderr)


if __name__ == "__main__":
    main()
