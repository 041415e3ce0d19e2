"""``python manage.py train``: train a tagger on annotated files and export a model bundle."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from django.core.management.base import BaseCommand, CommandError, DjangoHelpFormatter

from annotation.formats import FormatError, read_file
from learner.nets import ARCHITECTURES, check_hparams


class DefaultsHelpFormatter(DjangoHelpFormatter):
    """Django's help layout, with the default of every option that has one."""

    def _get_help_string(self, action):
        text = action.help or ""
        if action.default in (None, False, argparse.SUPPRESS) or "default" in text:
            return text
        return f"{text} (default: %(default)s)".lstrip()


class Command(BaseCommand):
    help = (
        "Train a Chinese NER model (any format annotation.formats reads), print per-epoch dev "
        "F1, and write a model bundle (ONNX, INT8, vocabulary, CRF, metrics, manifest) to --out."
    )

    def create_parser(self, prog_name, subcommand, **kwargs):
        kwargs.setdefault("formatter_class", DefaultsHelpFormatter)
        return super().create_parser(prog_name, subcommand, **kwargs)

    def add_arguments(self, parser):
        parser.add_argument("--train", required=True, help="training file")
        parser.add_argument("--dev", required=True, help="dev file: early stopping, model choice")
        parser.add_argument("--test", help="test file, scored once at the end")
        parser.add_argument("--out", required=True, help="bundle folder to write")
        parser.add_argument("--format", help="force a file format (detected by default)")
        parser.add_argument(
            "--arch",
            default=None,
            choices=sorted(ARCHITECTURES),
            help="architecture (default: bilstm_crf; hf_crf when --init-from is a Hugging Face "
            "checkpoint)",
        )
        parser.add_argument("--epochs", type=int, default=30, help="at most this many epochs")
        parser.add_argument(
            "--patience", type=int, default=5, help="epochs without a dev F1 gain before stopping"
        )
        parser.add_argument("--batch-size", type=int, default=32, help="sentences per batch")
        parser.add_argument(
            "--lr", type=float, default=None, help="learning rate (default: the architecture's)"
        )
        parser.add_argument(
            "--time-budget", type=float, default=None, help="seconds of training (default: none)"
        )
        parser.add_argument("--init-from", default=None, help="HF checkpoint or nerloop bundle")
        parser.add_argument("--seed", type=int, default=13, help="random seed")
        parser.add_argument(
            "--threads", type=int, default=None, help="torch threads (default: the cores available)"
        )
        parser.add_argument("--hparams", default="{}", help='JSON, e.g. {"hidden": 128}')
        parser.add_argument("--no-int8", action="store_true", help="skip the INT8 twin")
        parser.add_argument(
            "--repair",
            action="store_true",
            help="repair ill-formed tag sequences in CoNLL files instead of stopping",
        )
        parser.add_argument("--overwrite", action="store_true", help="replace --out if present")
        parser.add_argument("--quiet", action="store_true", help="no progress bar")

    def handle(self, *args, **opts):
        from learner.export import check_overwritable, export_bundle
        from learner.training import TrainOptions, train

        def load(path):
            try:
                return read_file(path, opts["format"], strict=not opts["repair"])
            except FileNotFoundError:
                raise CommandError(f"{path}: no such file") from None
            except FormatError as exc:
                # only an ill-formed tag sequence can be repaired, and only once
                fixable = exc.repairable and not opts["repair"]
                hint = " (use --repair to fix ill-formed tag sequences)" if fixable else ""
                raise CommandError(f"{exc}{hint}") from None

        train_examples = load(opts["train"])
        if not any(example.spans for example in train_examples):
            raise CommandError(
                f"{opts['train']}: no entities in {len(train_examples)} sentences; a model "
                "trained on it would never predict one (is the file in the format you meant?)"
            )
        dev_examples = load(opts["dev"])
        test_examples = load(opts["test"]) if opts["test"] else None
        trained_types = {span.label for example in train_examples for span in example.spans}
        train_texts = {example.text for example in train_examples}
        for role, examples in (("dev", dev_examples), ("test", test_examples or [])):
            unseen = sorted({s.label for ex in examples for s in ex.spans} - trained_types)
            if unseen:
                raise CommandError(
                    f"{opts[role]}: entity types {', '.join(unseen)} are not in the training file "
                    f"(it has {', '.join(sorted(trained_types))}): the model could never predict "
                    "them and F1 would count each a miss; make the label names agree"
                )
            repeated = sum(1 for example in examples if example.text in train_texts)
            if repeated:
                self.stdout.write(
                    self.style.WARNING(
                        f"{repeated} of the {len(examples)} {role} sentences are also in the "
                        "training file: their score flatters the model"
                    )
                )
        for name in ("epochs", "batch_size"):
            if opts[name] < 1:
                raise CommandError(f"--{name.replace('_', '-')} must be at least 1")
        if opts["patience"] < 0:
            raise CommandError("--patience must be 0 (no early stopping) or more")
        out = Path(opts["out"])
        if out.exists() and not out.is_dir():
            raise CommandError(f"--out {out} is a file; name a folder for the bundle")
        if out.exists() and any(out.iterdir()):
            if not opts["overwrite"]:
                raise CommandError(
                    f"{out} is not empty (use --overwrite to replace a bundle there)"
                )
            try:
                check_overwritable(out)  # before hours of training, not after
            except FileExistsError as exc:
                raise CommandError(str(exc)) from None
        try:
            hparams = json.loads(opts["hparams"])
        except json.JSONDecodeError as exc:
            raise CommandError(f"--hparams is not JSON: {exc}") from None
        if not isinstance(hparams, dict):
            raise CommandError('--hparams must be a JSON object, e.g. {"hidden": 128}')
        arch = self._architecture(opts["arch"], opts["init_from"], train_examples, hparams)
        options = TrainOptions(
            epochs=opts["epochs"],
            patience=opts["patience"],
            batch_size=opts["batch_size"],
            lr=opts["lr"],
            time_budget=opts["time_budget"],
            seed=opts["seed"],
            threads=opts["threads"],
            hparams=hparams,
            init_from=opts["init_from"],
            progress=not opts["quiet"],
        )
        self.stdout.write(
            f"training {arch} on {len(train_examples)} sentences, "
            f"dev {len(dev_examples)}" + (f", test {len(test_examples)}" if test_examples else "")
        )
        trained = train(train_examples, dev_examples, arch, options, log=self.stdout.write)
        summary = trained.summary
        capped = summary["best_epoch"] == summary["epochs"] == opts["epochs"]
        self.stdout.write(
            f"best dev F1 {summary['dev_f1']:.4f} at epoch {summary['best_epoch']} of "
            f"{summary['epochs']} ({summary['train_seconds']:.0f}s of training)"
            + (" - still improving at the --epochs cap: more epochs may help" if capped else "")
        )
        evaluations = {"dev": dev_examples}
        if test_examples:
            evaluations["test"] = test_examples
        try:
            export_bundle(
                trained, out, evaluations, int8=not opts["no_int8"], overwrite=opts["overwrite"]
            )
        except (FileExistsError, NotADirectoryError) as exc:
            raise CommandError(str(exc)) from None
        metrics = json.loads((out / "metrics.json").read_text("utf-8"))
        for split, scores in metrics["splits"].items():
            line = (
                f"{split}: P {scores['precision']:.4f} R {scores['recall']:.4f} "
                f"F1 {scores['f1']:.4f}"
            )
            if "int8" in scores:
                line += f"  (INT8 F1 {scores['int8']['f1']:.4f})"
            self.stdout.write(line)
            for label, row in scores["per_type"].items():
                self.stdout.write(f"  {label:<14} F1 {row['f1']:.4f}  support {row['support']}")
        self.stdout.write(self.style.SUCCESS(f"bundle written to {out}"))

    def _architecture(self, arch, init_from, train_examples, hparams) -> str:
        """The architecture to train, checked against --init-from and --hparams before any
        training: a warm start asked for on the command line is not silently dropped."""
        from learner.training import TrainedModel, is_hf_checkpoint, label_tags

        if init_from is None:
            if arch == "hf_crf":
                raise CommandError(
                    "--arch hf_crf needs --init-from PATH (a Hugging Face checkpoint)"
                )
            arch = arch or "bilstm_crf"
        elif not Path(init_from).is_dir():
            raise CommandError(f"--init-from {init_from}: no such folder")
        elif is_hf_checkpoint(init_from):
            if arch not in (None, "hf_crf"):
                raise CommandError(
                    f"--init-from {init_from} is a Hugging Face checkpoint: it trains hf_crf, "
                    f"not {arch}"
                )
            arch = "hf_crf"
        else:
            try:
                old = TrainedModel.load(init_from)
            except (FileNotFoundError, KeyError, ValueError) as exc:
                raise CommandError(
                    f"--init-from {init_from} is neither a nerloop bundle nor a Hugging Face "
                    f"checkpoint ({exc})"
                ) from None
            arch = arch or old.arch
            if old.arch != arch:
                raise CommandError(f"--init-from {init_from} is a {old.arch} model, not {arch}")
            labels = {span.label for ex in train_examples for span in ex.spans}
            if old.tags != label_tags(labels):
                had = {tag.split("-", 1)[1] for tag in old.tags if tag != "O"}
                raise CommandError(
                    f"--init-from {init_from}: a warm start needs the same labels; only in the "
                    f"model: {sorted(had - labels) or 'none'}, only in the training data: "
                    f"{sorted(labels - had) or 'none'}"
                )
        if arch != "hf_crf":
            try:
                check_hparams(arch, hparams)
            except ValueError as exc:
                raise CommandError(f"--hparams: {exc}") from None
        return arch
