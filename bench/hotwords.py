"""Hot-words at tenant scale: each language's clip terms hidden among 1,000 distractors.

    python -m bench.hotwords [--distractors 1000] [--rounds 1]

Per language, the hot-word list is the terms spoken in that language's clips (hotwords.tsv)
plus seeded Faker names, companies and cities. In one run it transcribes every clip with:

- callscribe, no list (the baseline for accuracy and time);
- callscribe with the list (retrieval: first pass -> top-K -> prompted final pass -> correction);
- plain faster-whisper, no list, and with the whole list as its `hotwords` prompt (the naive
  approach, cut at 223 tokens).

It reports recall of the clips' terms, false alarms (a listed phrase in the output of a clip
whose reference lacks it, over clip x absent-phrase trials), WER/CER and time, then index build
time and retrieval latency on a 5,000-phrase list.
"""

import argparse
import json
import random
import statistics
import time

from faker import Faker

from asr_core.audio import decode_audio
from asr_core.engines import load_engine
from asr_core.evaluation import Scorer, normalize
from asr_core.hotwords import Hotword, HotwordIndex, HotwordList
from asr_core.model_registry import resolve_model
from asr_core.transcribe import TranscribeOptions, Transcriber
from bench.common import plain_faster_whisper, shared_clips, threads

FAKER_LOCALES = {"en": "en_US", "zh": "zh_CN"}


def distractors(language: str, count: int, avoid: list[str], seed: int = 2026) -> list[str]:
    """Realistic tenant phrases: people, companies and cities, none overlapping `avoid`."""
    fake = Faker(FAKER_LOCALES[language])
    fake.seed_instance(seed)
    makers = [fake.name, fake.name, fake.company, fake.city]
    avoided = [normalize(a, language) for a in avoid]
    found: dict[str, None] = {}
    attempts = 0
    while len(found) < count and attempts < count * 50:
        phrase = makers[attempts % len(makers)]()
        attempts += 1
        norm = normalize(phrase, language)
        if any(a in norm or norm in a for a in avoided):
            continue
        found[phrase] = None
    return list(found)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--distractors", type=int, default=1000)
    parser.add_argument("--model", default="whisper-base")
    args = parser.parse_args()

    utterances, terms = shared_clips()
    lists: dict[str, list[str]] = {}
    for language in ("en", "zh"):
        spoken = list(
            dict.fromkeys(
                t for u in utterances if u.language == language for t in terms.get(u.id, [])
            )
        )
        references = [u.reference for u in utterances if u.language == language]
        phrases = spoken + distractors(language, args.distractors, spoken + references)
        random.Random(language).shuffle(phrases)  # the terms hide anywhere in the list
        lists[language] = phrases
    indexes = {
        lang: HotwordIndex(HotwordList([Hotword(p) for p in ps])) for lang, ps in lists.items()
    }

    engine = load_engine(args.model, cpu_threads=threads())
    transcriber = Transcriber(engine)
    baseline = plain_faster_whisper(resolve_model(args.model))

    def callscribe(index):
        def run(u):
            options = TranscribeOptions(
                language=u.language, hotword_index=index and index[u.language]
            )
            transcript = transcriber.transcribe(u.path, options)
            return transcript.text, transcript.duration

        return run

    def plain(with_list: bool):
        def run(u):
            hotwords = " ".join(lists[u.language]) if with_list else None
            segments, info = baseline.transcribe(
                str(u.path), beam_size=5, language=u.language, hotwords=hotwords
            )
            return "".join(s.text for s in segments).strip(), info.duration

        return run

    systems = {
        "callscribe_no_list": callscribe(None),
        "callscribe_retrieval": callscribe(indexes),
        "faster_whisper_no_list": plain(False),
        "faster_whisper_whole_list_prompt": plain(True),
    }
    scorers = {name: Scorer(vocabulary=lists) for name in systems}
    for position, utterance in enumerate(utterances):
        names = list(systems)
        names = names[position % len(names) :] + names[: position % len(names)]
        for name in names:
            started = time.perf_counter()
            text, duration = systems[name](utterance)
            elapsed = time.perf_counter() - started
            scorers[name].add(utterance, text, terms.get(utterance.id, []), duration, elapsed)

    report = {
        "benchmark": "hotwords",
        "model": args.model,
        "threads": threads(),
        "list_sizes": {lang: len(ps) for lang, ps in lists.items()},
        "systems": {name: _compact(scorer.summary()) for name, scorer in scorers.items()},
    }
    base, ours = scorers["callscribe_no_list"].summary(), scorers["callscribe_retrieval"].summary()
    report["time_ratio_retrieval_over_no_list"] = round(ours["elapsed_s"] / base["elapsed_s"], 3)
    report["index_5000"] = _index_latency(transcriber, utterances, lists)
    print(json.dumps(report, indent=2, ensure_ascii=False))


def _compact(summary: dict) -> dict:
    keep = (
        "wer",
        "cer",
        "hotword_recall",
        "hotword_terms",
        "hotword_false_alarms",
        "hotword_false_alarm_rate",
        "elapsed_s",
        "rtf",
    )
    return {
        "elapsed_s": summary["elapsed_s"],
        **{
            lang: {k: v for k, v in s.items() if k in keep}
            for lang, s in summary["languages"].items()
        },
    }


def _index_latency(transcriber, utterances, lists) -> dict:
    """Build time of a 5,000-phrase index and retrieval time on real first-pass hypotheses."""
    phrases = lists["en"] + lists["zh"]
    for language in ("en", "zh"):
        phrases += distractors(language, 2600, phrases, seed=7)
    phrases = list(dict.fromkeys(phrases))[:5000]
    started = time.perf_counter()
    index = HotwordIndex(HotwordList([Hotword(p) for p in phrases]))
    build_s = time.perf_counter() - started
    engine = transcriber.engine
    hypotheses = []
    for u in utterances:
        encoded = engine.encode(decode_audio(u.path)[: 30 * 16000])
        hypotheses.append(engine.first_pass(encoded, u.language))
    timings = []
    for _ in range(3):
        for hypothesis in hypotheses:
            started = time.perf_counter()
            index.retrieve(hypothesis)
            timings.append((time.perf_counter() - started) * 1000)
    timings.sort()
    return {
        "phrases": len(index),
        "build_s": round(build_s, 3),
        "retrieve_ms_p50": round(statistics.median(timings), 2),
        "retrieve_ms_p95": round(timings[int(0.95 * (len(timings) - 1))], 2),
        "retrieve_ms_max": round(timings[-1], 2),
        "hypothesis_chars_max": max(len(h) for h in hypotheses),
    }


if __name__ == "__main__":
    main()
