#!/usr/bin/env python3
"""Serving speed: `llmedge serve` against llama.cpp's llama-server; writes the "serving" section
of BENCHMARKS.md.

Both servers get the same model, threads, slots and per-slot context, and the same client: the
OpenAI-compatible HTTP API, streamed over SSE, Python's standard library only. Per round, both
servers start and warm up, then each measurement below is taken on each server in turn (the
order alternating between measurements, so the two figures of a pair are seconds apart):
  1. the concurrency sweep: N clients at once (1, 4, 8, 16), each a greedy chat request with
     its own short prompt, `max_tokens` fixed and `ignore_eos`, so every stream yields the
     same number of tokens; aggregate generated tokens / wall time, and each request's time
     to first token;
  2. the sequential baseline: the same N requests one after another;
  3. time to first token with a ~1,000-token system prompt: cold (a system prompt the server
     has never seen) and on a prefix hit (the same system prompt, another question);
then both stop. Prompt caching is left at each server's default. Then, llmedge alone: mixed LoRA
adapters, 8 streams at once on a server with two adapters (the seeded fixtures), all on the
bare model, all on one adapter, half on each adapter, and a third each on bare/a/b, since
llama.cpp applies adapters per context and the engine decodes one adapter group at a time. The batched ceiling is llmedge's
own prompt-processing speed (`llmedge bench`, pp512) on the same model and threads, measured
in every round. Ratios are taken within a round and summarised by their median (the machine's
speed drifts between runs).

Without a `serve` subcommand in --llmedge, only llama-server is measured and the llmedge goals
are reported as not measured.
"""
import argparse
import contextlib
import datetime
import http.client
import itertools
import json
import os
import platform
import signal
import socket
import statistics
import subprocess
import sys
import threading
import time
from pathlib import Path

from bench import ROOT, cpu_name, replace_section

LLAMA_SERVER = ROOT / ".bench/llama-server/build/bin/llama-server"
LOGS = ROOT / ".bench/serving"
SDIST = "llama-cpp-python 0.3.36"  # as in bench/build-llama-tools.sh
LLMEDGE, LLAMA = "llmedge", "llama-server"

TOPICS = [
    "lighthouses", "bread baking", "glaciers", "chess openings", "bees", "tram networks",
    "volcanoes", "paper making", "owls", "tide pools", "wind turbines", "libraries",
    "mountain huts", "coral reefs", "clock towers", "river deltas", "honey", "kites",
]

# Sentences for the long system prompt: a hospital's clinical-documentation policy. About 23
# SmolLM2 tokens each; SYSTEM_SENTENCES of them make roughly 1,000 tokens (the measured count
# is reported from the servers' usage).
POLICY = [
    "Clinical notes are written in plain language and state the date, the ward and the author's role.",
    "Medication entries give the drug's generic name, the dose, the route, the frequency and the reason.",
    "Allergies are recorded with the reaction observed and the date it was first noticed by staff.",
    "Laboratory values are quoted with their units and the reference range used by the hospital laboratory.",
    "Summaries never include a patient's name, address or identifier beyond the record number given.",
    "When a finding is uncertain the note says so and names the test that would settle the question.",
    "Discharge letters list follow-up appointments, the responsible clinic and the warning signs to watch.",
    "Abbreviations are avoided unless they appear in the approved list kept by the records committee.",
    "Each recommendation is numbered, starts with a verb and can be checked by the next shift.",
    "Answers to staff questions cite the section of this policy they rely on, by its number.",
]
SYSTEM_SENTENCES = 44
QUESTIONS = [
    "Which details must a medication entry contain?",
    "How should an uncertain finding be written up?",
    "What belongs in a discharge letter?",
    "How are laboratory values quoted?",
    "May a summary include the patient's address?",
    "How are recommendations formatted?",
]


def sys_crate():
    for line in (ROOT / "Cargo.toml").read_text().splitlines():
        if line.startswith("llama-cpp-sys-2 = "):
            return "llama-cpp-sys-2 " + line.split('"')[1].lstrip("=")
    return "llama-cpp-sys-2"


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class StreamResult:
    __slots__ = ("ttft", "tokens", "prompt_tokens", "cached_tokens", "wall")

    def __init__(self, ttft, tokens, prompt_tokens, cached_tokens, wall):
        self.ttft, self.tokens, self.prompt_tokens, self.cached_tokens, self.wall = (
            ttft, tokens, prompt_tokens, cached_tokens, wall)


def stream_chat(port, body, timeout=600):
    """One streamed chat completion: time to first content token, and the token counts of the
    usage object (OpenAI's `prompt_tokens_details.cached_tokens` when the server reports it)."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    payload = json.dumps(body)
    start = time.perf_counter()
    conn.request("POST", "/v1/chat/completions", payload,
                 {"Content-Type": "application/json", "Accept": "text/event-stream"})
    resp = conn.getresponse()
    if resp.status != 200:
        raise RuntimeError(f"HTTP {resp.status} from port {port}: {resp.read()[:500]!r}")
    ttft, usage = None, None
    for raw in resp:
        line = raw.strip()
        if not line.startswith(b"data:"):
            continue
        data = line[5:].strip()
        if data == b"[DONE]":
            break
        event = json.loads(data)
        if event.get("usage"):
            usage = event["usage"]
        for choice in event.get("choices") or []:
            piece = (choice.get("delta") or {}).get("content")
            if piece:
                if ttft is None:
                    ttft = time.perf_counter() - start
    wall = time.perf_counter() - start
    conn.close()
    if usage is None:
        raise RuntimeError(f"no usage in the stream from port {port} (stream_options.include_usage)")
    cached = (usage.get("prompt_tokens_details") or {}).get("cached_tokens")
    return StreamResult(ttft, usage["completion_tokens"], usage["prompt_tokens"], cached, wall)


def get_json(port, path):
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    conn.request("GET", path)
    resp = conn.getresponse()
    body = resp.read()
    conn.close()
    return resp.status, body


class Server:
    """One server process on a free 127.0.0.1 port, its log in .bench/serving/."""

    def __init__(self, name, argv_for_port, ready_path):
        self.name, self.argv_for_port, self.ready_path = name, argv_for_port, ready_path
        self.proc = None

    def __enter__(self):
        self.port = free_port()
        LOGS.mkdir(parents=True, exist_ok=True)
        self.log_path = LOGS / f"{self.name}.log"
        self.log = open(self.log_path, "w")
        self.proc = subprocess.Popen([str(a) for a in self.argv_for_port(self.port)], stdout=self.log,
                                     stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
        deadline = time.monotonic() + 300
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"{self.name} exited with {self.proc.returncode}; log:\n{self.log_tail()}")
            try:
                if get_json(self.port, self.ready_path)[0] == 200:
                    break
            except OSError:
                pass
            time.sleep(0.2)
        else:
            raise RuntimeError(f"{self.name} not ready after 300 s; log:\n{self.log_tail()}")
        status, body = get_json(self.port, "/v1/models")
        self.model_id = json.loads(body)["data"][0]["id"] if status == 200 else "default"
        return self

    def log_tail(self):
        self.log.flush()
        return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-30:])

    def __exit__(self, *exc):
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(timeout=60)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        self.log.close()


class Client:
    """Request bodies (every prompt distinct in the whole run, so no response cache can answer)
    and the three measurements."""

    def __init__(self, max_tokens):
        self.max_tokens = max_tokens
        self.counter = 0

    def body(self, model_id, messages, max_tokens):
        return {"model": model_id, "messages": messages, "max_tokens": max_tokens, "temperature": 0,
                "stream": True, "stream_options": {"include_usage": True}, "ignore_eos": True}

    def short_bodies(self, model_id, n):
        bodies = []
        for _ in range(n):
            self.counter += 1
            topic = TOPICS[self.counter % len(TOPICS)]
            prompt = f"Request {self.counter}: write a short paragraph about {topic}."
            bodies.append(self.body(model_id, [{"role": "user", "content": prompt}], self.max_tokens))
        return bodies

    def check(self, results, expect):
        short = [r.tokens for r in results if r.tokens != expect]
        if short:
            raise RuntimeError(f"streams with other than {expect} tokens (ignore_eos ignored?): {short}")

    def concurrent(self, port, bodies):
        results = [None] * len(bodies)
        errors = []
        gate = threading.Barrier(len(bodies) + 1)

        def worker(i):
            gate.wait()
            try:
                results[i] = stream_chat(port, bodies[i])
            except Exception as e:  # reported below, after every thread is joined
                errors.append(e)

        threads = [threading.Thread(target=worker, args=(i,)) for i in range(len(bodies))]
        for t in threads:
            t.start()
        gate.wait()
        start = time.perf_counter()
        for t in threads:
            t.join()
        wall = time.perf_counter() - start
        if errors:
            raise errors[0]
        self.check(results, self.max_tokens)
        return sum(r.tokens for r in results) / wall, [r.ttft for r in results]

    def sequential(self, port, bodies):
        start = time.perf_counter()
        results = [stream_chat(port, b) for b in bodies]
        wall = time.perf_counter() - start
        self.check(results, self.max_tokens)
        return sum(r.tokens for r in results) / wall

    def ttft_pair(self, port, model_id, tag):
        """Cold: a system prompt never sent before (it differs from every earlier one in its
        first line). Hit: the same system prompt, another question."""
        self.counter += 1
        system = f"Policy document {tag}-{self.counter}. " + " ".join(
            f"({i + 1}) {POLICY[i % len(POLICY)]}" for i in range(SYSTEM_SENTENCES))
        out = []
        for q in (QUESTIONS[self.counter % len(QUESTIONS)], QUESTIONS[(self.counter + 1) % len(QUESTIONS)]):
            msgs = [{"role": "system", "content": system}, {"role": "user", "content": q}]
            r = stream_chat(port, self.body(model_id, msgs, 4))
            out.append(r)
        return out


def measure_round(servers, order, client, concurrency, ttft_reps, tag):
    """Everything measured in one round. Both servers run for the whole round (an idle one
    sleeps), and every measurement is taken on each server in turn, the order alternating
    from one measurement to the next: the two figures of a pair are seconds apart, not minutes
    (this VM's speed drifts between minutes by more than the gaps being measured)."""
    with contextlib.ExitStack() as stack:
        live = {name: stack.enter_context(servers[name]) for name in order}
        res = {name: {"aggregate": {}, "ttft": {}, "sequential": {}, "ttft_cold": [], "ttft_hit": [],
                      "prompt_tokens": [], "cached_cold": [], "cached_hit": []} for name in order}
        turns = itertools.count()

        def in_turn():
            names = order if next(turns) % 2 == 0 else order[::-1]
            return [(res[name], live[name]) for name in names]

        for _, s in in_turn():
            client.concurrent(s.port, client.short_bodies(s.model_id, 2))  # warm-up
        for n in concurrency:
            for r, s in in_turn():
                tps, ttfts = client.concurrent(s.port, client.short_bodies(s.model_id, n))
                r["aggregate"][n] = tps
                r["ttft"][n] = statistics.median(ttfts)
                print(f"  {s.name}: {n:>2} streams {tps:7.1f} tok/s, median TTFT {1000 * r['ttft'][n]:.0f} ms",
                      file=sys.stderr)
        for n in concurrency:
            for r, s in in_turn():
                r["sequential"][n] = (r["aggregate"][n] if n == 1
                                      else client.sequential(s.port, client.short_bodies(s.model_id, n)))
                print(f"  {s.name}: {n:>2} sequential {r['sequential'][n]:7.1f} tok/s", file=sys.stderr)
        for _ in range(ttft_reps):
            for r, s in in_turn():
                cold, hit = client.ttft_pair(s.port, s.model_id, tag)
                r["ttft_cold"].append(cold.ttft)
                r["ttft_hit"].append(hit.ttft)
                r["prompt_tokens"].append(cold.prompt_tokens)
                r["cached_cold"].append(cold.cached_tokens)
                r["cached_hit"].append(hit.cached_tokens)
        for r, s in in_turn():
            print(f"  {s.name}: TTFT {r['prompt_tokens'][-1]} prompt tokens (cached: cold {r['cached_cold'][-1]}, "
                  f"hit {r['cached_hit'][-1]}): cold {1000 * statistics.median(r['ttft_cold']):.0f} ms, "
                  f"hit {1000 * statistics.median(r['ttft_hit']):.1f} ms", file=sys.stderr)
        return res


ADAPTER_MIXES = {
    "all bare": ["bare"],
    "all adapter a": ["a"],
    "a / b alternating": ["a", "b"],
    "bare / a / b": ["bare", "a", "b"],
}


def adapter_server(args, lora_dir):
    """llmedge serve with adapters a and b loaded; the routes bare, a and b select them."""
    def argv(port):
        config = LOGS / "adapters.toml"
        config.write_text(f"""[server]
bind = "127.0.0.1:{port}"
[[models]]
id = "smollm2"
path = "{args.model}"
slots = {args.slots}
n_ctx = {args.ctx_size}
threads = {args.threads}
[[models.adapters]]
name = "a"
path = "{lora_dir / 'lora_smollm2_a.gguf'}"
[[models.adapters]]
name = "b"
path = "{lora_dir / 'lora_smollm2_b.gguf'}"
[[routes]]
name = "bare"
model = "smollm2"
default = true
[[routes]]
name = "a"
model = "smollm2"
adapters = [{{ name = "a" }}]
[[routes]]
name = "b"
model = "smollm2"
adapters = [{{ name = "b" }}]
[safety]
enabled = false
[cache]
backend = "none"
""")
        return [args.llmedge, "serve", "--config", config]
    return Server("llmedge-adapters", argv, "/ready")


def measure_adapters(server, client, streams, rounds):
    """Aggregate tok/s of `streams` concurrent requests per adapter mix, `rounds` times each."""
    out = {mix: [] for mix in ADAPTER_MIXES}
    with server as s:
        client.concurrent(s.port, client.short_bodies("a", 2))  # warm-up
        for _ in range(rounds):
            for mix, routes in ADAPTER_MIXES.items():
                bodies = client.short_bodies("bare", streams)
                for i, b in enumerate(bodies):
                    b["model"] = routes[i % len(routes)]
                tps, _ = client.concurrent(s.port, bodies)
                out[mix].append(tps)
                print(f"  adapters: {mix:<18} {streams} streams {tps:7.1f} tok/s", file=sys.stderr)
    return out


def has_serve(exe):
    try:
        return subprocess.run([exe, "serve", "--help"], capture_output=True, timeout=30).returncode == 0
    except (OSError, subprocess.TimeoutExpired):
        return False


def pp_ceiling(exe, model, threads):
    out = subprocess.run([exe, "bench", "--json", "-m", str(model), "-t", str(threads), "--pp", "512", "--tg", "16",
                          "--reps", "3"], check=True, capture_output=True, text=True).stdout
    return json.loads(out.strip().splitlines()[-1])["pp"]["tokens_per_second"]


def med(xs):
    return statistics.median(xs) if xs else float("nan")


def rounded(x):
    """Raw figures to 4 significant digits, for the record in BENCHMARKS.md."""
    if isinstance(x, float):
        return float(f"{x:.4g}")
    if isinstance(x, dict):
        return {k: rounded(v) for k, v in x.items()}
    if isinstance(x, list):
        return [rounded(v) for v in x]
    return x


def verdict(ok):
    return "**met**" if ok else "**not met**"


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--llmedge", default=str(ROOT / "target/release/llmedge"))
    ap.add_argument("--llama-server", default=str(LLAMA_SERVER))
    ap.add_argument("--model", default=str(ROOT / "models/cache/SmolLM2-135M-Instruct.Q4_1.gguf"))
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--slots", type=int, default=16)
    ap.add_argument("--ctx-size", type=int, default=2048, help="context per slot")
    ap.add_argument("--concurrency", default="1,4,8,16")
    ap.add_argument("--max-tokens", type=int, default=64)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--ttft-reps", type=int, default=3, help="cold/hit pairs per server and round")
    ap.add_argument("--llmedge-safety", action="store_true",
                    help="keep llmedge's safety layer on (default: --no-safety, as llama-server has none)")
    ap.add_argument("--out", default=str(ROOT / "BENCHMARKS.md"))
    args = ap.parse_args()
    concurrency = [int(c) for c in args.concurrency.split(",")]
    if max(concurrency) > args.slots:
        ap.error("--concurrency above --slots would measure queueing, not batching")

    if not Path(args.llama_server).exists():
        subprocess.run([str(ROOT / "bench/build-llama-tools.sh"), "llama-server"], check=True)
    load = os.getloadavg()[0]
    if load > 0.5:
        print(f"warning: load average {load:.2f}: other work shares the CPUs, figures will be noisy", file=sys.stderr)

    t, slots, ctx = args.threads, args.slots, args.ctx_size
    servers = {
        LLAMA: Server(LLAMA, lambda port: [args.llama_server, "-m", args.model, "--host", "127.0.0.1",
                                           "--port", port, "-t", t, "-np", slots, "-c", slots * ctx, "--no-webui"],
                      "/health"),
    }
    llmedge_ok = has_serve(args.llmedge)
    if llmedge_ok:
        servers[LLMEDGE] = Server(LLMEDGE, lambda port: [args.llmedge, "serve", "--model", args.model, "--host",
                                                         "127.0.0.1", "--port", port, "--slots", slots,
                                                         "--ctx-size", ctx, "--threads", t]
                                  + ([] if args.llmedge_safety else ["--no-safety"]), "/ready")
    else:
        print(f"{args.llmedge} has no `serve` subcommand: measuring llama-server only", file=sys.stderr)

    client = Client(args.max_tokens)
    rounds = []
    for rnd in range(args.rounds):
        order = list(servers) if rnd % 2 == 0 else list(reversed(servers))
        r = {"order": order, "pp512": pp_ceiling(args.llmedge, args.model, t)}
        print(f"round {rnd + 1}: pp512 {r['pp512']:.1f} tok/s; order {' then '.join(order)}", file=sys.stderr)
        r.update(measure_round(servers, order, client, concurrency, args.ttft_reps, f"r{rnd}"))
        rounds.append(r)

    adapters = None
    lora_dir = ROOT / "models/cache/fixtures/lora"
    if llmedge_ok and (lora_dir / "lora_smollm2_b.gguf").exists():
        adapters = measure_adapters(adapter_server(args, lora_dir), client, 8, args.rounds)
    elif llmedge_ok:
        print(f"no LoRA fixtures in {lora_dir} (make fixtures): mixed adapters not measured", file=sys.stderr)

    write_section(args, concurrency, rounds, list(servers), llmedge_ok, load, adapters)


def adapter_table(adapters):
    if adapters is None:
        return "Mixed adapters: not measured (no LoRA fixtures; `make fixtures`)."
    bare = med(adapters["all bare"])
    rows = [f"| {mix} | {len(ADAPTER_MIXES[mix])} | {med(xs):.1f} | {med(xs) / bare:.2f} |" for mix, xs in adapters.items()]
    return f"""Mixed LoRA adapters, llmedge alone (8 concurrent streams, two rank-8 adapters loaded, safety off; median
of the rounds): requests naming different adapter sets form groups, decoded one group at a time.

| mix | adapter groups | tok/s | vs all bare |
|---|---|---|---|
{chr(10).join(rows)}"""


def write_section(args, concurrency, rounds, names, llmedge_ok, load, adapters=None):
    def series(name, key, n=None):
        return [r[name][key][n] if n is not None else r[name][key] for r in rounds]

    def per_round(f):
        return med([f(r) for r in rounds])

    def agg(name, n):
        return med(series(name, "aggregate", n))

    pp = med([r["pp512"] for r in rounds])
    rows = []
    for n in concurrency:
        cells = [str(n)]
        for name in (LLMEDGE, LLAMA):
            if name in names:
                cells += [f"{agg(name, n):.1f}",
                          f"{per_round(lambda r: r[name]['aggregate'][n] / r[name]['sequential'][n]):.2f}×",
                          f"{1000 * med(series(name, 'ttft', n)):.0f}"]
            else:
                cells += ["–", "–", "–"]
        if LLMEDGE in names:
            cells.append(f"{per_round(lambda r: r[LLMEDGE]['aggregate'][n] / r[LLAMA]['aggregate'][n]):.3f}")
        else:
            cells.append("–")
        rows.append("| " + " | ".join(cells) + " |")

    ttft_rows = []
    for name in names:
        cold = [x for r in rounds for x in r[name]["ttft_cold"]]
        hit = [x for r in rounds for x in r[name]["ttft_hit"]]
        ptoks = sorted({p for r in rounds for p in r[name]["prompt_tokens"]})
        cached = []
        for key in ("cached_cold", "cached_hit"):
            xs = [x for r in rounds for x in r[name][key] if x is not None]
            cached.append(f"{med(xs):.0f}" if xs else "not reported")
        ttft_rows.append(f"| {name} | {ptoks[0]}–{ptoks[-1]} | {cached[0]} | {cached[1]} | {1000 * med(cold):.0f} | "
                         f"{1000 * med(hit):.1f} | {med(cold) / med(hit):.1f}× |")

    def scale(name, n):
        return per_round(lambda r: r[name]["aggregate"][n] / r[name]["aggregate"][1]) if 1 in concurrency else None

    goals = []
    if llmedge_ok:
        ratios = {n: per_round(lambda r: r[LLMEDGE]["aggregate"][n] / r[LLAMA]["aggregate"][n]) for n in concurrency}
        goals.append(f"- ≥ 1.0× llama-server at every concurrency: {verdict(all(v >= 1.0 for v in ratios.values()))} "
                     f"({', '.join(f'{n}: {v:.3f}' for n, v in ratios.items())})")
        if 8 in concurrency:
            c8 = per_round(lambda r: r[LLMEDGE]["aggregate"][8] / r["pp512"])
            goals.append(f"- at 8 streams ≥ 80% of the batched ceiling (pp512): {verdict(c8 >= 0.8)} ({100 * c8:.0f}%)")
        cold = med([x for r in rounds for x in r[LLMEDGE]["ttft_cold"]])
        hit = med([x for r in rounds for x in r[LLMEDGE]["ttft_hit"]])
        goals.append(f"- ≥ 10× faster time to first token on a prefix hit: {verdict(cold / hit >= 10)} "
                     f"({cold / hit:.1f}×)")
    else:
        goals.append(f"- not measured: `{Path(args.llmedge).name}` has no `serve` subcommand; llama-server figures only")

    context = []
    if 8 in concurrency and 1 in concurrency:
        for name in names:
            context.append(f"{name}: 8 streams = {scale(name, 8):.2f}× its single stream, "
                           f"{100 * per_round(lambda r: r[name]['aggregate'][8] / r['pp512']):.0f}% of the ceiling")
    safety = "on" if args.llmedge_safety else "off (`--no-safety`)"
    body = f"""## Serving: llmedge serve vs llama-server (`make bench`, `bench/serving_bench.py`)

Model `{Path(args.model).name}`, {args.threads} threads, {args.slots} slots × {args.ctx_size} tokens of context
per slot, both servers on 127.0.0.1 driven by the same client (OpenAI chat completions streamed over SSE,
greedy, `max_tokens` {args.max_tokens} with `ignore_eos`, a distinct short prompt per request), prompt caching
at each server's default, llmedge's safety layer {safety}. llama-server is llama.cpp's own: the server and
common library of {SDIST}'s llama.cpp (the nearest release a package registry serves) over the very
llama.cpp library llmedge links ({sys_crate()}), `GGML_NATIVE` (`bench/build-llama-tools.sh`).
Rounds: {args.rounds}, both servers up through a round and measured in turn, the order alternating between measurements; ratios are medians of per-round ratios. Machine:
{cpu_name()}, {os.cpu_count()} cores, {platform.system()} {platform.release()}, load average {load:.2f} at the start.
Measured {datetime.date.today().isoformat()}.

Aggregate generation tok/s (median), against the same requests sent one after another to the same server,
and the median time to first token of the N requests:

| streams | llmedge tok/s | llmedge vs sequential | llmedge TTFT ms | llama-server tok/s | llama-server vs sequential | llama-server TTFT ms | llmedge / llama-server |
|---|---|---|---|---|---|---|---|
{chr(10).join(rows)}

Batched ceiling: llmedge's pp512 = {pp:.1f} tok/s (`llmedge bench`, each round).{''.join(f' {c}.' for c in context)}

Time to first token with a long shared system prompt (median of {args.ttft_reps} × {args.rounds} pairs; cold: a system
prompt never seen before; hit: the same system prompt, another question):

| server | prompt tokens | cached tokens, cold | cached tokens, hit | cold ms | hit ms | cold / hit |
|---|---|---|---|---|---|---|
{chr(10).join(ttft_rows)}

{adapter_table(adapters)}

Goals (issue #11):
{chr(10).join(goals)}

Raw per-round figures (seconds for TTFT): `{json.dumps(rounded(rounds))}`
{'' if adapters is None else f"Raw mixed-adapter tok/s: `{json.dumps(rounded(adapters))}`"}
"""
    out = Path(args.out)
    text = out.read_text() if out.exists() else "# llmedge benchmarks\n"
    out.write_text(replace_section(text, "serving", body))
    print(body)


if __name__ == "__main__":
    main()
