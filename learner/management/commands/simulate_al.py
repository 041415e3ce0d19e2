"""``python manage.py simulate_al``: the active-learning simulation (``learner/simulation.py``).

The target table of the active-learning issue comes from:

    python manage.py simulate_al --corpus cluener --corpus resume --repeats 3 --jobs 2 \\
        --out bench/results/simulate_al
"""

from __future__ import annotations

import json
from pathlib import Path

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from annotation.formats import FormatError
from learner.management.commands.train import DefaultsHelpFormatter
from learner.nets import ARCHITECTURES


class Command(BaseCommand):
    help = (
        "Simulate the active-learning loop with a gold-answering oracle: seed set, then rounds "
        "of select, label, retrain (warm start) and evaluate, per strategy and repeat. Writes "
        "simulation.csv/.json and an F1-vs-labelled-characters plot to --out; prints a table."
    )

    def create_parser(self, prog_name, subcommand, **kwargs):
        kwargs.setdefault("formatter_class", DefaultsHelpFormatter)
        return super().create_parser(prog_name, subcommand, **kwargs)

    def add_arguments(self, parser):
        from learner.selection import STRATEGIES, UNITS
        from learner.simulation import CORPORA, SimulationOptions

        defaults = SimulationOptions()

        parser.add_argument(
            "--corpus",
            action="append",
            default=[],
            choices=sorted(CORPORA),
            help="a shared corpus by name (train file as the pool; repeatable)",
        )
        parser.add_argument("--train", action="append", default=[], help="pool file (repeatable)")
        parser.add_argument(
            "--eval", action="append", default=[], help="evaluation file, one per --train"
        )
        parser.add_argument(
            "--strategies",
            default=",".join(defaults.strategies),
            help=f"comma-separated, from: {', '.join(sorted(STRATEGIES))}",
        )
        parser.add_argument(
            "--unit",
            default=defaults.unit,
            choices=UNITS,
            help="what --seed-size and --batch-size count",
        )
        parser.add_argument(
            "--seed-size", default=defaults.seed_size, help="e.g. 2%% of the pool, or 500"
        )
        parser.add_argument(
            "--batch-size",
            default=",".join(defaults.batch_sizes),
            help="per round, comma-separated; the last value repeats (units of --unit)",
        )
        parser.add_argument(
            "--rounds", type=int, default=defaults.rounds, help="rounds after the seed set"
        )
        parser.add_argument(
            "--repeats", type=int, default=defaults.repeats, help="curves per strategy"
        )
        parser.add_argument(
            "--seed", type=int, default=defaults.seed, help="random seed of the first repeat"
        )
        parser.add_argument(
            "--arch",
            default=defaults.arch,
            choices=sorted(set(ARCHITECTURES) - {"hf_crf"}),
            help="network",
        )
        parser.add_argument(
            "--new-share",
            type=float,
            default=defaults.new_share,
            help="most that new data may make of a warm-started round (rest is replay)",
        )
        parser.add_argument(
            "--stop-sentences",
            type=int,
            default=defaults.stop_sentences,
            help="training-file sentences held out of the pool for early stopping (at most "
            "a fifth of it); the evaluation set is used for the reported F1 only (0: stop on "
            "the evaluation set too)",
        )
        parser.add_argument(
            "--epochs", type=int, default=defaults.epochs, help="per warm-started round"
        )
        parser.add_argument(
            "--patience", type=int, default=defaults.patience, help="per warm-started round"
        )
        parser.add_argument(
            "--first-epochs", type=int, default=defaults.first_epochs, help="seed-set model"
        )
        parser.add_argument(
            "--first-patience", type=int, default=defaults.first_patience, help="seed-set model"
        )
        parser.add_argument(
            "--min-epoch-sentences",
            type=int,
            default=defaults.min_epoch_sentences,
            help="smaller training sets are repeated up to this many sentences per epoch",
        )
        parser.add_argument(
            "--full-epochs", type=int, default=defaults.full_epochs, help="full-pool reference"
        )
        parser.add_argument(
            "--time-budget", type=float, default=defaults.time_budget, help="seconds per run"
        )
        parser.add_argument(
            "--full-time-budget",
            type=float,
            default=defaults.full_time_budget,
            help="seconds for the full-pool reference",
        )
        parser.add_argument(
            "--repair",
            action="store_true",
            help="repair ill-formed CoNLL tag sequences (an I- with no entity) as a decoder "
            "does, instead of refusing the file (as nerloop train --repair)",
        )
        parser.add_argument("--no-full", action="store_true", help="skip the full-pool reference")
        parser.add_argument(
            "--threads", type=int, default=defaults.threads, help="torch threads per process"
        )
        parser.add_argument("--jobs", type=int, default=1, help="processes running curves")
        parser.add_argument(
            "--hparams", default="{}", help='network settings as JSON, e.g. {"lm_weight": 0}'
        )
        parser.add_argument("--out", default="bench/results/simulate_al", help="output folder")

    def handle(self, *args, **opts):
        from learner.simulation import (
            CORPORA,
            SimulationOptions,
            format_table,
            load_corpus,
            simulate,
            write_outputs,
        )

        if len(opts["train"]) != len(opts["eval"]):
            raise CommandError("give one --eval file for every --train file")
        # the shared corpora are read as published, repaired: Resume's train file has an entity
        # that is never closed (line 62390); a user's own files are refused unless --repair
        sources = [
            (
                name,
                Path(settings.DATASETS_DIR) / CORPORA[name][0],
                Path(settings.DATASETS_DIR) / CORPORA[name][1],
                False,
            )
            for name in opts["corpus"]
        ]
        sources += [
            (Path(t).stem, Path(t), Path(e), not opts["repair"])
            for t, e in zip(opts["train"], opts["eval"], strict=True)
        ]
        # results are keyed by corpus name: two pools of one name would make one curve of both
        names = [name for name, *_ in sources]
        clash = sorted({name for name in names if names.count(name) > 1})
        if clash:
            raise CommandError(
                f"two corpora would both be called {clash[0]!r} (a --corpus, or the name of a "
                "--train file without its extension): give the files different names"
            )
        if not sources:
            raise CommandError("name at least one --corpus, or --train/--eval files")
        if opts["jobs"] < 1:
            raise CommandError("--jobs must be at least 1")
        try:
            hparams = json.loads(opts["hparams"])
        except json.JSONDecodeError as exc:
            raise CommandError(f"--hparams is not JSON: {exc}") from None
        try:
            options = SimulationOptions(
                strategies=[s.strip() for s in opts["strategies"].split(",") if s.strip()],
                unit=opts["unit"],
                seed_size=opts["seed_size"],
                batch_sizes=[s.strip() for s in opts["batch_size"].split(",") if s.strip()],
                rounds=opts["rounds"],
                repeats=opts["repeats"],
                seed=opts["seed"],
                arch=opts["arch"],
                new_share=opts["new_share"],
                first_epochs=opts["first_epochs"],
                first_patience=opts["first_patience"],
                min_epoch_sentences=opts["min_epoch_sentences"],
                stop_sentences=opts["stop_sentences"],
                epochs=opts["epochs"],
                patience=opts["patience"],
                time_budget=opts["time_budget"],
                full_pool=not opts["no_full"],
                full_epochs=opts["full_epochs"],
                full_time_budget=opts["full_time_budget"],
                threads=opts["threads"],
                hparams=hparams,
            )
        except ValueError as exc:
            raise CommandError(str(exc)) from None
        corpora = []
        for name, train_path, eval_path, strict in sources:
            try:
                corpora.append(
                    load_corpus(name, train_path, eval_path, options.stop_sentences, strict)
                )
            except FileNotFoundError as exc:
                raise CommandError(f"{name}: {exc}") from None
            except FormatError as exc:
                hint = " (use --repair to fix ill-formed tag sequences)" if exc.repairable else ""
                raise CommandError(f"{name}: {exc}{hint}") from None
            except ValueError as exc:
                raise CommandError(f"{name}: {exc}") from None
        for corpus in corpora:
            self.stdout.write(
                f"{corpus.name}: pool {len(corpus.pool)} sentences / {corpus.pool_chars} "
                f"characters, {len(corpus.stop)} held out for early stopping, eval "
                f"{len(corpus.eval)} sentences, {len(corpus.labels)} types"
            )
        results = simulate(corpora, options, jobs=opts["jobs"])
        written = write_outputs(results, opts["out"])
        self.stdout.write(format_table(results))
        for path in written:
            self.stdout.write(f"wrote {path}")
