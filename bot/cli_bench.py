"""`teller bench retrieval|answers|intents|phrasing|scale`: the benchmarks, each printing one JSON
object (`teller bench feedback` and `bench split` are in `bot.cli_feedback`).

Wire them into the main CLI's `bench` group with `register`::

    from bot import cli_bench

    cli_bench.register(bench_app)

The measuring is done by `bot.bench` and `bot.bench_intents`; these commands check
their arguments and print the result. Failures print `error: ...` on stderr and exit
with status 2.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, cast

import typer

from bot.cli_common import fail, load_settings

if TYPE_CHECKING:
    from bot.settings import Settings


def _echo(result: dict[str, Any], as_json: bool) -> None:
    typer.echo(json.dumps(result, indent=2 if not as_json else None))


def _run_on_beir(
    run: Callable[[Settings, Path, str], dict[str, Any]], dataset: Path, split: str, as_json: bool
) -> None:
    """Check that `dataset` is a BEIR folder, run the benchmark on it, print its JSON."""
    if not (dataset / "corpus.jsonl").exists():
        fail(f"{dataset} has no corpus.jsonl")
    _echo(run(load_settings(), dataset, split), as_json)


def bench_retrieval(
    dataset: Annotated[
        Path, typer.Option(help="BEIR folder (corpus.jsonl, queries.jsonl, qrels/).")
    ],
    split: Annotated[str, typer.Option()] = "dev",
    as_json: Annotated[bool, typer.Option("--json")] = True,
) -> None:
    """nDCG@10, recall@5, MRR@10 of bm25, dense and hybrid, plus query latency."""
    from bot.bench import bench_retrieval as run

    _run_on_beir(run, dataset, split, as_json)


def bench_answers(
    dataset: Annotated[Path, typer.Option(help="BEIR folder with corpus, queries, qrels.")],
    split: Annotated[str, typer.Option()] = "dev",
    as_json: Annotated[bool, typer.Option("--json")] = True,
) -> None:
    """Answer every judged query: abstentions, citation hit@1, grounded figures, latency."""
    from bot.bench import bench_answers as run

    _run_on_beir(run, dataset, split, as_json)


def bench_intents(
    train: Annotated[Path | None, typer.Option(help="CSV with text,category to train on.")] = None,
    test: Annotated[Path | None, typer.Option(help="CSV with text,category to test on.")] = None,
    dataset: Annotated[
        Path | None,
        typer.Option(help="One text,category CSV to split instead (stratified, seeded)."),
    ] = None,
    test_share: Annotated[float, typer.Option(help="Share of --dataset held out.")] = 0.2,
    seed: Annotated[int, typer.Option(help="Seed of the --dataset split.")] = 13,
    as_json: Annotated[bool, typer.Option("--json")] = True,
) -> None:
    """Train the production NLU config on one CSV, evaluate on another through Rasa's API."""
    from bot import rasa_process as rp
    from bot import rasa_setup as rs
    from bot.bench_intents import bench_intents as run
    from bot.bench_intents import read_examples, stratified_split
    from bot.nlu_encoder import EncoderExportError

    if (dataset is None) == (train is None and test is None) or (train is None) != (test is None):
        fail("give --train and --test, or --dataset alone (split into train and test)")
    try:
        if dataset is not None:
            examples = read_examples(dataset)
            train_set, test_set = stratified_split(examples, test_share=test_share, seed=seed)
        else:
            train_set, test_set = read_examples(cast(Path, train)), read_examples(cast(Path, test))
        result = run(train_set, test_set)
    except (
        rs.RasaSetupError,
        rs.RasaTrainingError,
        rp.RasaStartError,
        EncoderExportError,
        OSError,
        ValueError,
    ) as exc:
        fail(str(exc))
    _echo(result, as_json)


def bench_phrasing(
    dataset: Annotated[Path, typer.Option(help="BANKING77 folder (train.csv with text,category).")],
    sample: Annotated[
        str, typer.Option(help="tuning (seed 13) or validation (seed 14, disjoint).")
    ] = "validation",
    per_intent: Annotated[int, typer.Option(min=1)] = 25,
    as_json: Annotated[bool, typer.Option("--json")] = True,
) -> None:
    """Customers' own words on the demo bank: answered, and with the right document first."""
    from bot.bench_phrasing import Sample
    from bot.bench_phrasing import bench_phrasing as run

    if sample not in ("tuning", "validation"):
        fail(f"--sample must be tuning or validation, not {sample!r}")
    train = dataset / "train.csv"
    if not train.exists():
        fail(f"{dataset} has no train.csv")
    try:
        result = run(load_settings(), train, sample=cast(Sample, sample), per_intent=per_intent)
    except ValueError as exc:
        fail(str(exc))
    _echo(result, as_json)


def bench_scale(
    chunks: Annotated[int, typer.Option(min=1)] = 100_000,
    as_json: Annotated[bool, typer.Option("--json")] = True,
) -> None:
    """Search and upsert latency and memory of the embedded index at scale."""
    from bot.bench import bench_scale as run

    result = run(chunks)
    _echo(result, as_json)


def register(bench_app: typer.Typer) -> None:
    """Add `retrieval`, `answers`, `intents`, `phrasing` and `scale` to `teller bench`."""
    bench_app.command("retrieval")(bench_retrieval)
    bench_app.command("answers")(bench_answers)
    bench_app.command("intents")(bench_intents)
    bench_app.command("phrasing")(bench_phrasing)
    bench_app.command("scale")(bench_scale)


__all__ = [
    "bench_answers",
    "bench_intents",
    "bench_phrasing",
    "bench_retrieval",
    "bench_scale",
    "register",
]
