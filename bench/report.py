#!/usr/bin/env python3
"""Turns bench/run.sh's key=value results into the table printed on the
terminal and written into BENCHMARKS.md between the `bench:results` markers
(the prose around them is kept; a missing file or missing markers start a
fresh file)."""

import statistics
import sys
from pathlib import Path

MARKERS = {
    "sqlite": ("<!-- bench:results:begin (written by bench/run.sh; edits inside are lost) -->",
               "<!-- bench:results:end -->"),
    "postgres": ("<!-- bench:postgres:begin (written by bench/run.sh --postgres; edits inside are lost) -->",
                 "<!-- bench:postgres:end -->"),
}
CONTENDED = 0.15  # cores used by other processes during a run before we say so


def load(path):
    r = {}
    for line in Path(path).read_text().splitlines():
        if "=" in line:
            k, v = line.split("=", 1)
            r[k] = v
    return r


def statuses(r, run):
    """{status: count} of a wrk run, from report.lua's status_<code> keys."""
    prefix = f"{run}_status_"
    return {int(k[len(prefix):]): int(v) for k, v in r.items() if k.startswith(prefix)}


def status(r, run, code):
    return statuses(r, run).get(code, 0)


def nginx_rows(r, rounds, med, spread, ok, f):
    """--postgres: two instances behind nginx, pages against nginx's /healthz."""
    if r.get("backend") != "postgres":
        return []
    rps = lambda name, i: f(f"nginx_{name}_{i}_rps")
    healthz = med(rps("healthz", i) for i in rounds)
    rows = [("GET /healthz through nginx, two instances (floor of this setup)", f"{healthz:,.0f} req/s", "", "")]
    for name, label in (("bearer", "Bearer (JSON)"), ("cookie", "cookie (HTML page)")):
        ratios = [rps(name, i) / rps("healthz", i) for i in rounds]
        ratio = med(ratios)
        rows.append((f"GET /protected through nginx, two instances, {label}",
                     f"{med(rps(name, i) for i in rounds):,.0f} req/s = **{ratio:.3f}** × nginx healthz "
                     f"(rounds: {spread(ratios)})", "≥ 0.80 × nginx healthz", ok(ratio >= 0.8)))
    rows.append(("requests the second instance served (its request log)", f"{int(r['second_requests']):,}", "", ""))
    return rows


def main():
    r = load(sys.argv[1])
    out = sys.argv[2]
    f = lambda k: float(r[k])
    pg = r.get("backend") == "postgres"
    BEGIN, END = MARKERS["postgres" if pg else "sqlite"]

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
    login = status(r, "login", 200) / f("login_duration_s")  # logins done: a 503 is not one
    login_hog = status(r, "login_hog", 200) / f("login_hog_duration_s")
    refresh = f("refresh_rps")
    rss_mib = f("rss_peak_kib") / 1024
    startup_ms = f("startup_us") / 1000
    page_runs = [f"{name}_{i}" for i in rounds
                 for name in ("healthz", "bearer", "cookie", "healthz_padding", "healthz_bytes", "healthz_cookies")
                 if f"{name}_{i}_rps" in r]
    padded = all(f"healthz_padding_{i}_rps" in r for i in rounds)
    padding_ratio = med(f(f"healthz_padding_{i}_rps") / f(f"healthz_{i}_rps") for i in rounds) if padded else None
    # The server's CPU time per request (µs), median over the rounds.
    cpu_us = lambda name: med(f(f"{name}_{i}_server_cores") * f(f"{name}_{i}_duration_s") * 1e6
                              / f(f"{name}_{i}_requests") for i in rounds)
    bytes_ratio = med(f(f"healthz_bytes_{i}_rps") / f(f"healthz_{i}_rps") for i in rounds)
    cookies_ratio = med(f(f"healthz_cookies_{i}_rps") / f(f"healthz_{i}_rps") for i in rounds)
    floods = ["flood", "spray", "locked"]  # meant to overflow the hash queue or the limits: their own status mix
    probes = [f"{fl}_probe_{face}" for fl in floods for face in ("bearer", "cookie")]
    nginx_runs = [f"nginx_{name}_{i}" for i in rounds for name in ("healthz", "bearer", "cookie")] if pg else []
    runs = page_runs + nginx_runs + ["login", "refresh", "chain", "flood", "flood_probe_bearer", "flood_probe_cookie",
                        "spray", "spray_probe_bearer", "spray_probe_cookie", "login_hog",
                        "locked", "locked_probe_bearer", "locked_probe_cookie"]
    # The probes run inside their flood's window: its CPU accounting covers them.
    accounted = [run for run in runs if run not in probes]

    def errors(run):
        return sum(int(r[f"{run}_{k}"]) for k in ("connect", "read", "write", "timeout"))

    bad = {run: (int(r[f"{run}_non2xx"]), errors(run)) for run in runs}
    steady = [run for run in runs if run not in floods]
    clean = all(bad[run] == (0, 0) for run in steady)
    p99s = {p: f(f"{p}_p99_ms") for p in probes}
    ok = lambda b: "met" if b else "**missed**"
    queue = int(r["hash_queue"])
    conns, login_conns, hog_conns = int(r["connections"]), int(r["login_connections"]), int(r["hog_connections"])

    def per_s(run, code):
        return status(r, run, code) / f(f"{run}_duration_s")

    def mix(run):  # every status a run got, e.g. "401: 6.8 /s (0.1 %), 503: 6,600.0 /s (99.9 %)"
        total = sum(statuses(r, run).values()) or 1
        return ", ".join(f"{code}: {n / f(run + '_duration_s'):,.1f} /s ({100 * n / total:.1f} %)"
                         for code, n in sorted(statuses(r, run).items()))

    # 503s (and 429s) without Retry-After: wrk's count over every run, and curl's.
    no_retry = sum(int(r.get(f"{run}_no_retry_after", 0)) for run in runs) + int(r.get("curl_503_no_retry_after", 0))
    n503 = sum(status(r, run, 503) for run in runs) + int(r.get("curl_503", 0))
    curl_n = int(r.get("curl_503", 0))
    if curl_n:
        curl_503 = (f"median {f('curl_503_p50_ms'):.1f} / p99 **{f('curl_503_p99_ms'):.1f}** ms (max "
                    f"{f('curl_503_max_ms'):.1f}) over {curl_n} of {r['curl_requests']} sequential curl logins "
                    f"(the others: {r['curl_401']} × 401, {r['curl_other']} other)")
    else:
        curl_503 = f"no 503 among {r.get('curl_requests', 0)} sequential curl logins"

    # The raw rotation loop (no server, no HTTP) and the refresh run against it.
    rotation = "rotation_per_s" in r
    rot_secs, rot_sessions = r["rotation_secs"], r["rotation_sessions"]
    refresh_p99 = f("refresh_p99_ms")
    refresh_bad = bad["refresh"]
    refresh_ok = refresh >= 10000 and refresh_p99 <= 20 and refresh_bad == (0, 0)
    if rotation and pg:
        raw = f("rotation_per_s")
        rotation_row = (f"pgbench, the refresh's rotation statement ({conns} clients, {rot_sessions} sessions, "
                        f"{r['duration']} s): **{raw:,.0f}** tx/s ({int(r['rotation_rotations']):,} transactions, "
                        f"latency average {r['rotation_latency_ms']} ms, {r.get('rotation_failed', '0')} failed)")
        aim = refresh / raw >= 0.7
        vs_raw = f" = **{refresh / raw:.2f}** × pgbench"
        if "rotation_batched_per_s" in r:
            batched = f("rotation_batched_per_s")
            rotation_row += (f"; the same rotations 64 to a statement (`rotate_many`, as an instance batches "
                             f"them), 1 client: **{batched:,.0f}** rotations/s (latency average "
                             f"{r['rotation_batched_latency_ms']} ms a statement)")
            vs_raw += f" ({refresh / batched:.2f} × pgbench batched)"
    elif rotation:
        raw, raw_batched = f("rotation_per_s"), f("rotation_batched_per_s")
        rotation_row = (f"one transaction per rotation: **{raw:,.0f}** /s ({int(r['rotation_rotations']):,} in "
                        f"{f('rotation_seconds'):.1f} s); one per pass over the {rot_sessions} sessions: "
                        f"**{raw_batched:,.0f}** /s")
        aim = refresh / raw >= 0.5
        vs_raw = f" = **{refresh / raw:.2f}** × raw per_s ({refresh / raw_batched:.2f} × raw batched_per_s)"
    else:
        rotation_row = f"**{r['rotation_note']}**"
        aim = None
        vs_raw = " (raw loop not measured: no ratio)"

    # One session refreshed CHAIN_REFRESHES times: its storage must not grow.
    cb = lambda k: int(r[f"chain_before_{k}"])
    ca = lambda k: int(r[f"chain_after_{k}"])
    chain_done = status(r, "chain", 200)
    chain_rows_same = all(cb(k) == ca(k) for k in ("sessions", "session_rows", "all_rows"))
    chain_ok = chain_rows_same and cb("session_rows") == 1 and chain_done >= int(r["chain_target"]) \
        and bad["chain"] == (0, 0)
    kib = lambda n: f"{n / 1024:,.0f}"
    chain_row = (
        f"**{chain_done:,}** refreshes in {f('chain_duration_s'):.1f} s ({f('chain_rps'):,.0f} /s, p50 / p99 "
        f"{f('chain_p50_ms'):.2f} / {f('chain_p99_ms'):.2f} ms; the session's generation {cb('generation'):,} → "
        f"{ca('generation'):,}); rows of `sessions` **{cb('sessions'):,} → {ca('sessions'):,}**, of that session "
        f"**{cb('session_rows')} → {ca('session_rows')}**, of all tables {cb('all_rows'):,} → {ca('all_rows'):,}; "
        + (f"database {kib(cb('db_bytes'))} → {kib(ca('db_bytes'))} KiB; " if pg else
           f"bench.db + WAL {kib(cb('db_bytes'))} + {kib(cb('wal_bytes'))} KiB → "
           f"{kib(ca('db_bytes'))} + {kib(ca('wal_bytes'))} KiB; ")
        + f"non-2xx / socket errors "
        f"{bad['chain'][0]} / {bad['chain'][1]}")

    rows = [
        ("GET /healthz (framework floor)", f"{healthz:,.0f} req/s", "", ""),
        ("GET /protected, Bearer (JSON)",
         f"{bearer:,.0f} req/s = **{bearer_ratio:.3f}** × healthz (rounds: {spread(bearer_ratios)})",
         "≥ 0.85 × healthz", ok(bearer_ratio >= 0.85)),
        ("GET /protected, cookie (HTML page)",
         f"{cookie:,.0f} req/s = **{cookie_ratio:.3f}** × healthz (rounds: {spread(cookie_ratios)})",
         "≥ 0.80 × healthz", ok(cookie_ratio >= 0.8)),
        ("where the cookie page's cost goes: GET /healthz with the page's Cookie header byte for byte "
         + ("in an `X-Padding` header (the request's size only); " if padded else "")
         + "as cookies under names the app ignores (actix-web's parsing of the header's cookies, which the "
         "cookie session asks for); as they are (cookie session decoded, access token verified; no page)",
         (f"**{padding_ratio:.3f}** × healthz; " if padded else "")
         + f"**{bytes_ratio:.3f}** × healthz; **{cookies_ratio:.3f}** × healthz; the page itself: "
         f"{cookie_ratio:.3f} × healthz", "", ""),
        ("the server's CPU per request in those runs (median of the rounds; cores × seconds ÷ requests)",
         "; ".join(f"{label} {cpu_us(name):.2f} µs" for label, name in
                   [("healthz", "healthz")] + ([("padding", "healthz_padding")] if padded else [])
                   + [("foreign cookies", "healthz_bytes"), ("cookies", "healthz_cookies"),
                      ("the page", "cookie"), ("Bearer", "bearer")]), "", ""),
        ("one bcrypt cost-12 hash (release binary)",
         f"{hash_s * 1000:.1f} ms → bcrypt limit {cores} ÷ {hash_s:.4f} s = {limit:.2f} /s; the server's "
         f"start-up estimate (a cost-4 hash × 2⁸): {r['server_hash_ms']} ms → hash queue of {queue} at start "
         "(then it follows the measured hash times)", "", ""),
        (f"POST /login, right password ({login_conns} connections, below the queue)",
         f"{login:.2f} /s = **{login / limit:.3f}** × bcrypt limit",
         "≥ 0.90 × limit", ok(login / limit >= 0.9)),
        (("pgbench (physical limit): the refresh's rotation statement on the same server, no HTTP" if pg else
          f"raw rotation loop (physical limit): the refresh's SQL over one connection, no HTTP, "
          f"{rot_secs} s each, {rot_sessions} sessions"), rotation_row, "", ""),
        (f"POST /token/refresh (rotation, DB write, {conns} connections)",
         f"**{refresh:,.0f}** /s{vs_raw}; p99 **{refresh_p99:.2f}** ms; non-2xx / socket errors "
         f"{refresh_bad[0]} / {refresh_bad[1]}",
         ("≥ 0.70 × pgbench, 0 / 0" if pg else "≥ 10,000 /s, p99 ≤ 20 ms, 0 / 0; aim: ≥ 0.50 × raw per_s"),
         (ok(bool(aim) and refresh_bad == (0, 0)) if pg else
          ok(refresh_ok) + "; aim " + ("not measured" if aim is None else "met" if aim else "**missed**"))),
        (f"rows stay constant while one session is refreshed {int(r['chain_target']):,} times "
         "(1 connection, each request presenting the token the last answer returned)",
         chain_row, f"rows unchanged, ≥ {int(r['chain_target']):,} refreshes, 0 / 0", ok(chain_ok)),
        (f"GET /protected p50 / p99 during a login flood (one user, right password, {conns} connections), Bearer",
         f"{f('flood_probe_bearer_p50_ms'):.2f} / **{p99s['flood_probe_bearer']:.2f}** ms", "p99 ≤ 10 ms",
         ok(p99s["flood_probe_bearer"] <= 10)),
        ("GET /protected p50 / p99 during that flood, cookie",
         f"{f('flood_probe_cookie_p50_ms'):.2f} / **{p99s['flood_probe_cookie']:.2f}** ms", "p99 ≤ 10 ms",
         ok(p99s["flood_probe_cookie"] <= 10)),
        ("logins/s during that flood (probes running)",
         f"{per_s('flood', 200):.2f} /s = {per_s('flood', 200) / limit:.3f} × limit; answers: {mix('flood')}",
         "", ""),
        (f"GET /protected p50 / p99 during a login flood from {int(r['spray_users']):,} distinct usernames "
         f"(wrong passwords, {conns} connections), Bearer",
         f"{f('spray_probe_bearer_p50_ms'):.2f} / **{p99s['spray_probe_bearer']:.2f}** ms", "p99 ≤ 10 ms",
         ok(p99s["spray_probe_bearer"] <= 10)),
        ("GET /protected p50 / p99 during that flood, cookie",
         f"{f('spray_probe_cookie_p50_ms'):.2f} / **{p99s['spray_probe_cookie']:.2f}** ms", "p99 ≤ 10 ms",
         ok(p99s["spray_probe_cookie"] <= 10)),
        ("that flood's answers (probes running)",
         f"{mix('spray')}; checked (401): {per_s('spray', 401) / limit:.3f} × limit", "", ""),
        ("time of a 503 during that flood", curl_503, "", ""),
        (f"GET /protected p50 / p99 during a locked-out client's login flood (a second server, limits of "
         f"{int(r['locked_failures'])} failures: every attempt a 429 and a `login_locked` audit event; "
         f"{conns} connections), Bearer",
         f"{f('locked_probe_bearer_p50_ms'):.2f} / **{p99s['locked_probe_bearer']:.2f}** ms", "p99 ≤ 10 ms",
         ok(p99s["locked_probe_bearer"] <= 10)),
        ("GET /protected p50 / p99 during that flood, cookie",
         f"{f('locked_probe_cookie_p50_ms'):.2f} / **{p99s['locked_probe_cookie']:.2f}** ms", "p99 ≤ 10 ms",
         ok(p99s["locked_probe_cookie"] <= 10)),
        ("that flood's answers and its audit events",
         f"{mix('locked')}; `login_locked` events: {int(r['locked_events']):,} written one by one, "
         f"{int(r.get('locked_events_counted', 0)):,} more as counts (the queue full), together "
         f"{(int(r['locked_events']) + int(r.get('locked_events_counted', 0))) / max(1, status(r, 'locked', 429)):.3f}"
         f" of the 429s ({int(r['locked_dropped_warnings'])} \"audit queue full\" warnings)", "", ""),
        ("503 (or 429) answers without Retry-After, all runs", f"{no_retry} of {n503:,}", "0", ok(no_retry == 0)),
        (f"logins/s while {cores} normal-priority CPU hogs run, one per core ({hog_conns} connections)",
         f"{login_hog:.2f} /s = **{login_hog / limit:.3f}** × bcrypt limit (the hogs used "
         f"{f('login_hog_hog_cores'):.2f} cores, the server {f('login_hog_server_cores'):.2f})",
         "≥ 0.25 × limit", ok(login_hog / limit >= 0.25)),
        *nginx_rows(r, rounds, med, spread, ok, f),
        ("peak RSS of the server (VmHWM)", f"**{rss_mib:.1f}** MiB", "≤ 64 MiB", ok(rss_mib <= 64)),
        ("process start → first 200 from /healthz", f"**{startup_ms:.1f}** ms", "≤ 100 ms", ok(startup_ms <= 100)),
        ("non-2xx responses / socket errors, all runs but the three floods",
         f"{sum(bad[run][0] for run in steady)} / {sum(bad[run][1] for run in steady)}", "0 / 0", ok(clean)),
    ]

    # The raw rotation loop runs before the server: its own CPU is in the "wrk" column.
    measured = (["rotation"] if rotation else []) + accounted
    contended = [
        run for run in measured
        if f(f"{run}_other_cores") > CONTENDED or f(f"{run}_steal_cores") > CONTENDED
    ]
    lines = [
        BEGIN,
        "",
        f"Run of {r['date']} at `{r['git_rev']}`: **{cores} cores, {r['cpu_model']}**, "
        f"Linux {r['kernel']}, wrk {r['wrk_version']}, {r['rustc']}."
        + (f" **PostgreSQL {r['pg_version']}** on the same machine (127.0.0.1), a cluster started by the "
           f"script: {r['pg_settings']}; each instance's pool holds 32 connections." if pg else ""),
        "",
        "```sh",
        r["command"],
        "```",
        "",
        f"Each wrk run: {r['duration']} s (logins: {r['login_duration']} s), {conns} connections "
        f"(logins: {login_conns}; beside the CPU hogs: {hog_conns}), 2 threads; "
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
        "the server, wrk itself (and the curl logins), the CPU hogs of `login_hog`, "
        + ("PostgreSQL (pgbench itself is in the wrk column), " if pg else "")
        + "every other process on the machine, and time the hypervisor took from this VM"
        + ("; in the `nginx_*` runs \"server\" is both instances and nginx" if pg else "") + "):",
        "",
        "| run | requests | req/s | p50 ms | p99 ms | max ms | non-2xx | socket errors | server | wrk | hogs "
        + ("| PostgreSQL " if pg else "") + "| other | steal |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|" + ("---|" if pg else "") + "---|",
    ]
    cpu_cols = ("server", "wrk", "hog", "db", "other", "steal") if pg else ("server", "wrk", "hog", "other", "steal")
    if rotation:  # not a wrk run: its rotations (first pass) and their rate; its CPU is in "wrk"
        lines.append(
            f"| rotation ({'pgbench' if pg else 'raw loop'}, no server) | {int(r['rotation_rotations']):,} "
            f"| {f('rotation_per_s'):,.1f} | — | — | — | — | — | "
            + " | ".join(f"{f('rotation_' + k + '_cores'):.2f}" for k in cpu_cols)
            + " |"
        )
    for run in runs:
        cpu = (
            [f"{f(run + '_' + k + '_cores'):.2f}" for k in cpu_cols]
            if run in accounted
            else ["(in flood)"] * len(cpu_cols)
        )
        if run in floods:  # wrk's percentiles of a flood mix 503s with queued hashes: see below
            lat = ["—", "—", f"{f(run + '_max_ms'):.2f}"]
            non2xx = ", ".join(f"{n:,} × {code}" for code, n in sorted(statuses(r, run).items()) if code != 200)
        else:
            lat = [f"{f(run + '_' + k + '_ms'):.2f}" for k in ("p50", "p99", "max")]
            non2xx = str(bad[run][0])
        lines.append(
            f"| {run} | {int(r[run + '_requests']):,} | {f(run + '_rps'):,.1f} | " + " | ".join(lat)
            + f" | {non2xx} | {bad[run][1]} | " + " | ".join(cpu) + " |"
        )
    other_errors = int(r["server_other_errors"])
    lines += [
        "",
        "The floods' p50 / p99 are left out: their answers are a mix of immediate 503s and logins that "
        "waited seconds in the hash queue, and wrk's coordinated-omission correction adds samples for the "
        "slow ones, so its percentiles describe neither; the 503s are timed by curl instead.",
        "",
        f"Refresh chains were seeded from {r['refresh_sessions']} sessions opened by real logins. "
        f"Server: {r['threads']} threads at the end, {int(r['rss_end_kib']) / 1024:.1f} MiB RSS at the end; "
        f"its log: {int(r['server_log_lines']):,} lines ({int(r['server_log_bytes']) / 2**20:.0f} MiB), "
        f"{int(r['server_errors']):,} WARN/ERROR lines: {int(r['server_queue_full_warns']):,} "
        f"\"password hashing refused: queue full\" WARN and {int(r['server_overloaded_errors']):,} "
        f"\"request failed status=503\" ERROR (since c67de5d the hasher warns at most once a second and a "
        f"refusal logs no ERROR; {int(r['server_503']):,} 503s logged), "
        f"**{other_errors}** other"
        + (" (see the run's terminal)" if other_errors else "")
        + f"; {r['server_5xx_not_503']} answers of another 5xx. The HTML page is {r['page_bytes']} bytes "
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
    elif old:
        new = old.rstrip("\n") + "\n\n" + block
    else:
        new = "# Benchmarks\n\n" + block
    path.write_text(new)
    print(f"bench: results written to {path}", file=sys.stderr)


if __name__ == "__main__":
    main()
