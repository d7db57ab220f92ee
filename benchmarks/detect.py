"""Detection speed: redactor's Detector against the stock Presidio setup, on one core.

Corpora:
  (a) mix    the synthetic support mix (`support_mix.generate_mix`): mostly no card, short
             numbers, a few cards and SSNs, long quoted e-mails, HTML;
  (b) dev    the digit-dense development set, tests/data/eval/dev.jsonl (copied into the repo);
  (c) clean  prose with short numbers only (`support_mix.generate_clean`): no digit run that
             could be a PAN or SSN, for the MB/s figure;
  (d) redactor with and without its pre-filter (the engine called on every text), on (a), (c).

Detectors:
  redactor          `Detector().find(text)`
  redactor-no-pf    redactor's AnalyzerEngine called on every text (the pre-filter bypassed)
  stock             presidio's CreditCardRecognizer + UsSsnRecognizer in an AnalyzerEngine on
                    `spacy.blank("en")` (SpacyNlpEngine, no model), default threshold

All measurements run in `--rounds` rounds (default 3), each a share of `--min-time` of
uninstrumented passes over the corpus plus one pass that times each call. Throughput is the
best pass (the one least disturbed by other processes, as `timeit` advises); latency is, per
message, the median of its timed calls. The garbage collector is off during timed passes (as in `timeit`), for
every detector alike. The process is pinned to one core when the OS allows it.

    python benchmarks/detect.py                 # ~1 minute; writes benchmarks/results/detect.json
    python benchmarks/detect.py --quick         # a few seconds, smoke test
    python benchmarks/detect.py --messages 5000 --min-time 3
    python benchmarks/detect.py --profile       # cProfile of redactor on (b) and (a) instead

Output holds figures only: never a card number or SSN from the corpora.
"""

from __future__ import annotations

import argparse
import cProfile
import gc
import importlib.metadata
import importlib.util
import json
import os
import platform
import pstats
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from types import ModuleType

import spacy
from presidio_analyzer import AnalyzerEngine, RecognizerRegistry
from presidio_analyzer.nlp_engine import SpacyNlpEngine
from presidio_analyzer.predefined_recognizers import CreditCardRecognizer, UsSsnRecognizer

from redactor.detection import Detector

try:
    from benchmarks.support_mix import SupportMessage, generate_clean, generate_mix, summarize
except ImportError:  # run as `python benchmarks/detect.py`: benchmarks/ itself is on sys.path
    from support_mix import SupportMessage, generate_clean, generate_mix, summarize

ROOT = Path(__file__).resolve().parents[1]
DEV_SET = ROOT / "tests" / "data" / "eval" / "dev.jsonl"
SCORER = ROOT / "tests" / "data" / "tools" / "score_detection.py"
RESULTS = ROOT / "benchmarks" / "results" / "detect.json"
ENTITIES = ["CREDIT_CARD", "US_SSN"]

# The targets.
TARGET_MIX_SPEEDUP = 20.0
TARGET_DEV_SPEEDUP = 5.0
TARGET_CLEAN_MB_S = 50.0

Spans = list[tuple[str, int, int]]


class BlankSpacyNlpEngine(SpacyNlpEngine):
    """presidio's spaCy NLP engine on `spacy.blank("en")`: a tokenizer only, nothing downloaded.

    `SpacyNlpEngine.load` would `spacy.load` (and download) a trained pipeline; the stock
    setup under test has none, so `load` hands it a blank English pipeline instead.
    """

    def load(self) -> None:
        self.nlp = {"en": spacy.blank("en")}


def build_stock() -> AnalyzerEngine:
    """The stock Presidio setup: its own card and SSN recognizers, default threshold."""
    nlp = BlankSpacyNlpEngine(models=[{"lang_code": "en", "model_name": "blank:en"}])
    nlp.load()
    registry = RecognizerRegistry(
        recognizers=[CreditCardRecognizer(), UsSsnRecognizer()], supported_languages=["en"]
    )
    return AnalyzerEngine(registry=registry, nlp_engine=nlp, supported_languages=["en"])


def detector_functions(det: Detector, stock: AnalyzerEngine) -> dict[str, Callable[[str], Spans]]:
    """Each detector as text -> [(entity, start, end)]."""

    def redactor(text: str) -> Spans:
        return [(f.entity, f.start, f.end) for f in det.find(text)]

    def redactor_no_prefilter(text: str) -> Spans:
        # Benchmark-only use of Detector's private engine and NLP engine: the same analysis
        # `find` does, minus the early return when the text holds no candidate.
        results = det._engine.analyze(
            text=text,
            language="en",
            entities=ENTITIES,
            nlp_artifacts=det._nlp.artifacts_for(text),
        )
        return [(r.entity_type, r.start, r.end) for r in results]

    def stock_presidio(text: str) -> Spans:
        results = stock.analyze(text=text, language="en", entities=ENTITIES)
        return [(r.entity_type, r.start, r.end) for r in results]

    return {
        "redactor": redactor,
        "redactor-no-pf": redactor_no_prefilter,
        "stock": stock_presidio,
    }


# --- measurement ----------------------------------------------------------------------------


@dataclass
class Measurement:
    corpus: str
    detector: str
    texts: list[str] = field(repr=False)
    passes: list[float] = field(default_factory=list)  # seconds per uninstrumented pass
    timings_ns: list[list[int]] = field(default_factory=list)  # per message, one per round

    @property
    def messages(self) -> int:
        return len(self.texts)

    @property
    def megabytes(self) -> float:
        return sum(len(t.encode("utf-8")) for t in self.texts) / 1e6

    def as_dict(self) -> dict[str, object]:
        best, worst = min(self.passes), max(self.passes)
        # Each message's median over the rounds: one call hit by another process's time slice
        # should not become the p99 of a 288-message corpus.
        lat = sorted(int(statistics.median(v)) for v in self.timings_ns)
        return {
            "corpus": self.corpus,
            "detector": self.detector,
            "messages": self.messages,
            "megabytes": round(self.megabytes, 4),
            "passes": len(self.passes),
            "messages_per_s": round(self.messages / best, 1),
            "messages_per_s_worst_pass": round(self.messages / worst, 1),
            "mb_per_s": round(self.megabytes / best, 3),
            "latency_median_us": round(statistics.median(lat) / 1e3, 2),
            "latency_p99_us": round(_percentile(lat, 0.99) / 1e3, 2),
            "latency_max_us": round(lat[-1] / 1e3, 2),
        }


def _percentile(sorted_values: list[int], q: float) -> float:
    """Nearest-rank percentile of an already sorted list."""
    rank = max(0, min(len(sorted_values) - 1, round(q * len(sorted_values) + 0.5) - 1))
    return float(sorted_values[rank])


def measure(m: Measurement, fn: Callable[[str], Spans], min_time_s: float) -> None:
    """One round: passes over the texts until `min_time_s` is spent, then one timed-call pass."""
    texts = m.texts
    for t in texts[:20]:  # warm-up: first-call imports, regex and spaCy caches
        fn(t)
    if not m.timings_ns:
        m.timings_ns = [[] for _ in texts]
    gc.collect()
    gc.disable()
    try:
        spent = 0.0
        while spent < min_time_s or not spent:
            t0 = time.perf_counter()
            for t in texts:
                fn(t)
            dt = time.perf_counter() - t0
            m.passes.append(dt)
            spent += dt
        clock = time.perf_counter_ns
        for i, t in enumerate(texts):
            t0 = clock()
            fn(t)
            m.timings_ns[i].append(clock() - t0)
    finally:
        gc.enable()


# --- quality (informative) -------------------------------------------------------------------


def load_scorer() -> ModuleType:
    """The shared scorer, imported from its file so both use the same matching rules."""
    spec = importlib.util.spec_from_file_location("score_detection", SCORER)
    if spec is None or spec.loader is None:
        raise ImportError(str(SCORER))
    module = importlib.util.module_from_spec(spec)
    # dataclasses resolve the module through sys.modules while the class is being built.
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


def dev_quality(scorer: ModuleType, fn: Callable[[str], Spans]) -> dict[str, object]:
    """Precision/recall on the dev set with score_detection.py's matching (exact+overlap)."""
    items = scorer.load_corpus(DEV_SET)
    results = {it.id: scorer.match_item(it, list(dict.fromkeys(fn(it.text)))) for it in items}
    out: dict[str, object] = {}
    for subset, chosen in (("all", items), ("excl_doubtful", [i for i in items if not i.doubtful])):
        for mode, strict in (("exact+overlap", False), ("exact", True)):
            tal = scorer.tally(chosen, results, strict)
            out[f"{subset}/{mode}"] = {e: t.as_dict() for e, t in tal.items()}
    return out


def mix_quality(messages: list[SupportMessage], fn: Callable[[str], Spans]) -> dict[str, int]:
    """Planted values found (same entity, same digits) and findings beyond them, on (a)."""
    out = {f"{e}_{k}": 0 for e in ENTITIES for k in ("found", "missed")} | {"other_findings": 0}
    for m in messages:
        spans = fn(m.text)
        got = [(e, _digits(m.text[s:t])) for e, s, t in spans]
        for p in m.planted:
            out[f"{p.entity}_{'found' if (p.entity, _digits(p.value)) in got else 'missed'}"] += 1
        out["other_findings"] += len(spans) - sum(
            1 for p in m.planted if (p.entity, _digits(p.value)) in got
        )
    out["planted_found"] = sum(out[f"{e}_found"] for e in ENTITIES)
    out["planted_missed"] = sum(out[f"{e}_missed"] for e in ENTITIES)
    return out


def _digits(s: str) -> str:
    return "".join(c for c in s if c.isdigit())


# --- machine --------------------------------------------------------------------------------


def pin_to_one_core(cpu: int) -> str:
    """Pin this process to `cpu`; say what happened (for the results file)."""
    if not hasattr(os, "sched_setaffinity"):
        return "not pinned: os.sched_setaffinity unavailable on this platform"
    try:
        os.sched_setaffinity(0, {cpu})
    except OSError as exc:
        return f"not pinned: {exc.strerror}"
    return f"pinned to cpu {cpu} with os.sched_setaffinity"


def machine_info(pinning: str) -> dict[str, object]:
    model = platform.processor() or ""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    try:
        commit = subprocess.run(
            ["git", "-C", str(ROOT), "rev-parse", "--short", "HEAD"],
            capture_output=True,
            text=True,
            check=False,
        ).stdout.strip()
    except OSError:
        commit = ""
    return {
        "date_utc": datetime.now(UTC).isoformat(timespec="seconds"),
        "cpu_count": os.cpu_count(),
        "cpu_model": model,
        "pinning": pinning,
        "load_average_1_5_15": [round(x, 2) for x in os.getloadavg()],
        "python": platform.python_version(),
        "platform": platform.platform(),
        "presidio_analyzer": importlib.metadata.version("presidio-analyzer"),
        "spacy": importlib.metadata.version("spacy"),
        "git_commit": commit,
    }


# --- report ---------------------------------------------------------------------------------


def print_table(rows: list[dict[str, object]], stock_of: dict[str, float]) -> None:
    head = (
        f"{'corpus':<7}{'detector':<16}{'msgs':>6}{'msgs/s':>11}{'MB/s':>9}"
        f"{'p50 us':>9}{'p99 us':>10}{'vs stock':>10}{'spread':>8}"
    )
    print(head)
    print("-" * len(head))
    for r in rows:
        stock = stock_of.get(str(r["corpus"]))
        tput = float(r["messages_per_s"])  # type: ignore[arg-type]
        ratio = f"{tput / stock:.1f}x" if stock else "-"
        spread = 1 - float(r["messages_per_s_worst_pass"]) / tput  # type: ignore[arg-type]
        print(
            f"{r['corpus']!s:<7}{r['detector']!s:<16}{r['messages']!s:>6}{tput:>11,.0f}"
            f"{r['mb_per_s']!s:>9}{r['latency_median_us']!s:>9}{r['latency_p99_us']!s:>10}"
            f"{ratio:>10}{spread:>8.0%}"
        )


def run(args: argparse.Namespace) -> dict[str, object]:
    pinning = pin_to_one_core(args.cpu)
    print(pinning)
    det = Detector()
    stock = build_stock()
    fns = detector_functions(det, stock)

    mix = generate_mix(args.seed, args.messages)
    clean = generate_clean(args.seed + 1, args.messages)
    dev = [json.loads(line)["text"] for line in DEV_SET.read_text().splitlines() if line.strip()]
    # (c) must hold nothing the pre-filter would pass on, or its MB/s measures something else.
    leaked = sum(1 for m in clean if det._nlp.artifacts_for(m.text).candidates)  # bench-only
    if leaked:
        raise SystemExit(f"clean corpus: {leaked} messages hold a candidate; fix support_mix.py")
    reach_engine = sum(1 for m in mix if det._nlp.artifacts_for(m.text).candidates)

    corpora = {
        "mix": [m.text for m in mix],
        "dev": dev,
        "clean": [m.text for m in clean],
    }
    plan = [
        ("mix", "redactor"),
        ("mix", "redactor-no-pf"),
        ("mix", "stock"),
        ("dev", "redactor"),
        ("dev", "redactor-no-pf"),
        ("dev", "stock"),
        ("clean", "redactor"),
        ("clean", "redactor-no-pf"),
        ("clean", "stock"),
    ]
    # Rounds spread each measurement over the run, so a burst of load from another process
    # cannot spoil all of one detector's passes while sparing the other's.
    measurements = [Measurement(c, n, corpora[c]) for c, n in plan]
    for r in range(args.rounds):
        for m in measurements:
            measure(m, fns[m.detector], args.min_time / args.rounds)
        print(f"  round {r + 1}/{args.rounds} done", file=sys.stderr)
    rows = [m.as_dict() for m in measurements]

    def tput(corpus: str, name: str) -> float:
        row = next(r for r in rows if r["corpus"] == corpus and r["detector"] == name)
        return float(row["messages_per_s"])  # type: ignore[arg-type]

    def mbps(corpus: str, name: str) -> float:
        row = next(r for r in rows if r["corpus"] == corpus and r["detector"] == name)
        return float(row["mb_per_s"])  # type: ignore[arg-type]

    stock_of = {c: tput(c, "stock") for c in corpora}
    targets = {
        "mix_speedup": {
            "value": round(tput("mix", "redactor") / stock_of["mix"], 1),
            "target": TARGET_MIX_SPEEDUP,
        },
        "dev_speedup": {
            "value": round(tput("dev", "redactor") / stock_of["dev"], 1),
            "target": TARGET_DEV_SPEEDUP,
        },
        "clean_mb_per_s": {"value": mbps("clean", "redactor"), "target": TARGET_CLEAN_MB_S},
    }
    for t in targets.values():
        t["met"] = t["value"] >= t["target"]
    prefilter = {
        c: round(tput(c, "redactor") / tput(c, "redactor-no-pf"), 2)
        for c in ("mix", "clean", "dev")
    }

    scorer = load_scorer()
    quality = {
        "dev": {n: dev_quality(scorer, fns[n]) for n in ("redactor", "stock")},
        "mix": {n: mix_quality(mix, fns[n]) for n in ("redactor", "stock")},
    }

    print()
    print_table(rows, stock_of)
    print()
    print(
        f"(a) mix: {len(mix)} messages, {reach_engine} ({reach_engine / len(mix):.1%}) hold a "
        f"candidate and reach the engine"
    )
    for key, t in targets.items():
        print(f"target {key}: {t['value']} (>= {t['target']}) {'MET' if t['met'] else 'MISSED'}")
    print(
        "pre-filter speed-up (redactor / redactor-no-pf): "
        + ", ".join(f"{c} {v}x" for c, v in prefilter.items())
    )
    for name in ("redactor", "stock"):
        q = quality["dev"][name]["excl_doubtful/exact+overlap"]["ALL"]  # type: ignore[index]
        qa = quality["dev"][name]["all/exact+overlap"]["ALL"]  # type: ignore[index]
        mq = quality["mix"][name]
        print(
            f"quality {name:<9} dev excl. DOUBTFUL P {q['precision']:.3f} R {q['recall']:.3f}; "
            f"all P {qa['precision']:.3f} R {qa['recall']:.3f}; mix planted found "
            f"{mq['planted_found']}/{mq['planted_found'] + mq['planted_missed']}, "
            f"other findings {mq['other_findings']}"
        )

    return {
        "machine": machine_info(pinning),
        "settings": {
            "seed": args.seed,
            "messages": args.messages,
            "min_time_s": args.min_time,
            "quick": args.quick,
            "gc_disabled_during_timing": True,
            "throughput_from": "best uninstrumented pass",
            "rounds": args.rounds,
            "latency_from": "per message, the median of one timed call per round",
        },
        "corpora": {
            "mix": {**summarize(mix), "reach_engine": reach_engine},
            "clean": summarize(clean),
            "dev": {
                "messages": len(dev),
                "bytes": sum(len(t.encode("utf-8")) for t in dev),
                "path": "tests/data/eval/dev.jsonl",
            },
        },
        "results": rows,
        "targets": targets,
        "prefilter_speedup": prefilter,
        "quality": quality,
    }


def profile(args: argparse.Namespace) -> None:
    """cProfile of redactor's `find` on (b) and (a): where the time goes, by function."""
    print(pin_to_one_core(args.cpu))
    det = Detector()
    dev = [json.loads(line)["text"] for line in DEV_SET.read_text().splitlines() if line.strip()]
    mix = [m.text for m in generate_mix(args.seed, args.messages)]
    for corpus, texts, reps in (("dev", dev, 20), ("mix", mix, 2)):
        for t in texts[:20]:
            det.find(t)
        prof = cProfile.Profile()
        prof.enable()
        for _ in range(reps):
            for t in texts:
                det.find(t)
        prof.disable()
        print(f"\n== redactor find on {corpus}: {reps} x {len(texts)} texts")
        stats = pstats.Stats(prof, stream=sys.stdout)
        stats.sort_stats("tottime").print_stats(25)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--quick", action="store_true", help="a few seconds: small corpora, 1 pass")
    ap.add_argument("--messages", type=int, help="messages in (a) and (c) (default 3000)")
    ap.add_argument("--min-time", type=float, help="seconds of passes per measurement")
    ap.add_argument("--rounds", type=int, help="rounds over all measurements (default 3)")
    ap.add_argument("--seed", type=int, default=7)
    ap.add_argument("--cpu", type=int, default=0, help="core to pin to (default 0)")
    ap.add_argument("--out", type=Path, default=RESULTS, help="results JSON (default %(default)s)")
    ap.add_argument("--no-write", action="store_true", help="do not write the results JSON")
    ap.add_argument("--profile", action="store_true", help="profile redactor instead")
    args = ap.parse_args(argv)
    if args.messages is None:
        args.messages = 300 if args.quick else 3000
    if args.rounds is None:
        args.rounds = 1 if args.quick else 3
    if args.min_time is None:
        args.min_time = 0.05 if args.quick else 1.5
    if args.profile:
        profile(args)
        return 0
    doc = run(args)
    if not args.no_write:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(doc, indent=1) + "\n")
        print(f"wrote {args.out.relative_to(ROOT) if args.out.is_relative_to(ROOT) else args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
