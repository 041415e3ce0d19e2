"""Projects, their documents, the model's predictions and the humans' annotations.

The methods here own every state change (claiming a document, submitting an annotation,
changing the label schema), so the API, the tasks and the admin cannot disagree about the
invariants. Spans are stored as ``{"start", "end", "label"}`` dicts over the document's
characters (``end`` exclusive), the same convention as ``annotation.spans``.
"""

from __future__ import annotations

import colorsys
import re
import shutil
from datetime import timedelta
from pathlib import Path

import numpy as np
from django.conf import settings
from django.db import IntegrityError, models, transaction
from django.db.models import Q
from django.utils import timezone
from django.utils.translation import gettext, gettext_noop, pgettext_lazy

from inference.windows import has_line_break
from nerloop.errors import CodedAPIException

from .spans import Span, SpanError, validate_spans

# Colours of labels created without one: twelve that read apart on the UI's dark background
# (one violet, one fuchsia, and a light stone grey where a third purple read as the first)
PALETTE = [
    "#a78bfa", "#34d399", "#fb923c", "#f472b6", "#60a5fa", "#a3e635",
    "#e879f9", "#2dd4bf", "#f87171", "#d6d3d1", "#fde047", "#38bdf8",
]  # fmt: skip
COLOR_RE = re.compile(r"^#[0-9a-fA-F]{6}$")
LABEL_RE = re.compile(r"^[^\s-][^\s]*$")


class Role(models.TextChoices):
    ADMIN = "admin", "admin"
    ANNOTATOR = "annotator", "annotator"
    CLIENT = "client", "client (predict only)"


DEFAULT_HOTKEYS = "1234567890"


def default_labels() -> list[dict]:
    """PER, LOC, ORG with the palette's colours, as any project's first labels get them."""
    return normalize_labels(["PER", "LOC", "ORG"])


# Keys the annotation workspace itself answers to (frontend/static/frontend/js/workspace.js).
WORKSPACE_KEYS = {
    "s": gettext_noop("skip key"),
    "S": gettext_noop("skip key"),
    "a": gettext_noop("keep-suggestions key"),
    "A": gettext_noop("keep-suggestions key"),
}


def _hue(k: int) -> str:
    """The k-th of a sequence of colours spread round the hue circle (golden angle)."""
    red, green, blue = colorsys.hls_to_rgb((k * 0.381966) % 1.0, 0.62, 0.75)
    return "#" + "".join(f"{round(channel * 255):02x}" for channel in (red, green, blue))


def valid_label_name(name: str) -> bool:
    """No whitespace, no leading dash, at most 50 characters (names become ``B-NAME`` tags),
    and not ``O``, the tag of no entity."""
    return bool(LABEL_RE.match(name)) and len(name) <= 50 and name != "O"


def normalize_labels(raw) -> list[dict]:
    """Check a label schema and fill in colours; raise E106 naming the first problem.

    A label is ``{"name", "color", "hotkey"}``; names are unique and carry no whitespace
    or leading dash (they become ``B-NAME`` tags), hotkeys are single characters (the first
    free digit when not given).
    """
    if not isinstance(raw, list):
        raise CodedAPIException("E106", gettext("labels must be a list"))
    labels: list[dict] = []
    names: set[str] = set()
    hotkeys: set[str] = set()
    for index, item in enumerate(raw):
        if isinstance(item, str):
            item = {"name": item}
        row = index + 1  # as the settings page and a person count them
        if not isinstance(item, dict) or not isinstance(item.get("name"), str):
            raise CodedAPIException(
                "E106", gettext("label %(row)d: expected an object with a name") % {"row": row}
            )
        name = item["name"].strip()
        if not valid_label_name(name):
            if not name:
                why = gettext("a name is needed")
            elif len(name) > 50:
                why = gettext("%(count)d characters; at most 50") % {"count": len(name)}
            elif name == "O":
                why = gettext("O is the tag of no entity in BIO files")
            else:
                why = gettext("no spaces, no leading '-'")
            raise CodedAPIException(
                "E106",
                gettext("label %(row)d: invalid name %(name)s (%(why)s)")
                % {"row": row, "name": repr(name), "why": why},
            )
        if name in names:
            raise CodedAPIException(
                "E106",
                gettext("label %(row)d: duplicate name %(name)s")
                % {"row": row, "name": repr(name)},
            )
        color = item.get("color") or ""
        if not isinstance(color, str) or (color and not COLOR_RE.match(color)):
            raise CodedAPIException(
                "E106", gettext("label %(name)s: colour must be #rrggbb") % {"name": repr(name)}
            )
        hotkey = item.get("hotkey") or ""
        if not isinstance(hotkey, str) or len(hotkey) > 1 or hotkey.isspace():
            raise CodedAPIException(
                "E106",
                gettext("label %(name)s: hotkey must be one character") % {"name": repr(name)},
            )
        said = {"name": repr(name), "key": repr(hotkey)}
        if hotkey and not (hotkey.isascii() and hotkey.isprintable()):
            # "中" comes from an input method, which sends no such key press
            raise CodedAPIException(
                "E106",
                gettext("label %(name)s: hotkey %(key)s is not a key (one ASCII character)") % said,
            )
        if hotkey in WORKSPACE_KEYS:
            raise CodedAPIException(
                "E106",
                gettext("label %(name)s: hotkey %(key)s is the workspace's %(use)s")
                % {**said, "use": gettext(WORKSPACE_KEYS[hotkey])},
            )
        if hotkey and hotkey in hotkeys:
            raise CodedAPIException(
                "E106", gettext("label %(name)s: hotkey %(key)s already used") % said
            )
        names.add(name)
        if hotkey:
            hotkeys.add(hotkey)
        labels.append({"name": name, "color": color.lower(), "hotkey": hotkey})
    # A label without a colour gets the first one no other label has (then colours made by
    # stepping round the hue circle), so labels never share one by accident.
    used = {label["color"] for label in labels}
    spare = iter([c for c in PALETTE if c not in used] + [_hue(k) for k in range(len(labels))])
    for label in labels:
        if not label["color"]:
            label["color"] = next(spare)
    # A label without a hotkey gets the first free one of 1-9, 0 (ten labels fit the digits).
    free = (key for key in DEFAULT_HOTKEYS if key not in hotkeys)
    for label in labels:
        if not label["hotkey"]:
            label["hotkey"] = next(free, "")
    return labels


def spans_to_json(spans) -> list[dict]:
    return [{"start": s.start, "end": s.end, "label": s.label} for s in spans]


def spans_from_json(raw) -> list[tuple]:
    """Accept spans as ``{"start","end","label"}`` objects or ``[start, end, label]`` lists."""
    if not isinstance(raw, list):
        raise SpanError("spans must be a list")
    out = []
    for item in raw:
        if isinstance(item, dict):
            out.append((item.get("start"), item.get("end"), item.get("label")))
        else:
            out.append(item)
    return out


class Project(models.Model):
    name = models.CharField(max_length=200)
    description = models.TextField(blank=True)
    labels = models.JSONField(default=default_labels)
    retrain_threshold = models.PositiveIntegerField(
        default=50, help_text="validated annotations in the feedback pool that start a retrain"
    )
    promotion_tolerance = models.FloatField(
        default=0.01,
        help_text="how much lower (absolute F1) a new version may score and still be promoted",
    )
    selection_strategy = models.CharField(max_length=50, default="entropy_kmeans")
    batch_size = models.PositiveIntegerField(default=20, help_text="documents per selection")
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created = models.DateTimeField(auto_now_add=True)
    members = models.ManyToManyField(
        settings.AUTH_USER_MODEL, through="ProjectMembership", related_name="projects"
    )

    class Meta:
        verbose_name = pgettext_lazy("model", "project")
        verbose_name_plural = pgettext_lazy("model", "projects")
        ordering = ["id"]

    def __str__(self) -> str:
        return self.name

    def label_names(self) -> list[str]:
        return [label["name"] for label in self.labels]

    def role_of(self, user) -> str | None:
        if not user.is_authenticated:
            return None
        if user.is_superuser:
            return Role.ADMIN
        membership = self.memberships.filter(user=user).first()
        return membership.role if membership else None

    def add_member(self, user, role: str) -> ProjectMembership:
        """Add ``user`` or change their role; E107 rather than demote the last admin. A
        client cannot annotate, so the documents the user held go back to the queue."""
        with transaction.atomic():
            if role != Role.ADMIN:
                self._keep_an_admin_besides(user)
            membership, _ = ProjectMembership.objects.update_or_create(
                project=self, user=user, defaults={"role": role}
            )
            if role == Role.CLIENT:
                self._release_held_by(user)
        return membership

    def remove_member(self, user) -> bool:
        """Take ``user`` off the project and give back the documents they hold; False when
        they were not a member, E107 when they are its last admin."""
        with transaction.atomic():
            self._keep_an_admin_besides(user)
            removed, _ = self.memberships.filter(user=user).delete()
            if removed:
                self._release_held_by(user)
        return bool(removed)

    def _release_held_by(self, user) -> None:
        self.documents.filter(assignee=user).update(assignee=None, assigned_until=None)

    def delete_everything(self) -> None:
        """Delete the project, its documents, annotations, predictions, model versions and
        runs, and (once that is committed) its bundles on disk. E108 (409) while a training
        run is queued or running: its worker would write into a project that is gone."""
        from learner.models import TrainingRun

        folder = Path(settings.BUNDLE_DIR) / f"project-{self.pk}"
        with transaction.atomic():
            self.locked()
            if TrainingRun.objects.filter(project=self, state__in=TrainingRun.BUSY).exists():
                raise CodedAPIException("E108", status_code=409)
            self.delete()
            transaction.on_commit(lambda: shutil.rmtree(folder, ignore_errors=True))

    def locked(self) -> Project:
        """This project as stored now, its row locked until the transaction ends (call inside
        ``transaction.atomic``). Whatever reads the label schema and then writes on the strength
        of it (an edit of the project, a submission, an import) takes this lock first, so a
        label cannot be removed between another request's check and its write, and two edits
        do not overwrite each other with the values their requests started from."""
        return Project.objects.select_for_update().get(pk=self.pk)

    def _keep_an_admin_besides(self, user) -> None:
        self.locked()
        admins = self.memberships.filter(role=Role.ADMIN)
        if admins.filter(user=user).exists() and not admins.exclude(user=user).exists():
            raise CodedAPIException("E107", status_code=409)

    def used_labels(self) -> set[str]:
        """Labels appearing in any annotation of the project (streamed, not loaded at once)."""
        used: set[str] = set()
        rows = Annotation.objects.filter(document__project=self).values_list("spans", flat=True)
        for spans in rows.iterator(chunk_size=2000):
            used.update(span["label"] for span in spans)
        return used

    def set_labels(self, raw) -> None:
        """Replace the label schema; refuse (E104) to drop a label annotations still use."""
        labels = normalize_labels(raw)
        removed = set(self.label_names()) - {label["name"] for label in labels}
        still_used = sorted(removed & self.used_labels()) if removed else []
        if still_used:
            raise CodedAPIException(
                "E104",
                gettext("label(s) %(names)s still used by annotations")
                % {"names": ", ".join(still_used)},
            )
        self.labels = labels

    def validate_spans(self, text: str, raw_spans) -> list[Span]:
        """Spans checked against this project's schema; raises SpanError. A span may not
        cross a line break: no entity does, the model reads each line on its own (so it could
        never predict one), and a selection dragged over a line end is a slip."""
        spans = validate_spans(text, spans_from_json(raw_spans), self.label_names())
        for start, end, label in spans:
            if has_line_break(text[start:end]):
                raise SpanError(
                    f"span ({start}, {end}, {label!r}) crosses a line break; an entity lies "
                    "within one line"
                )
        return spans


class ProjectMembership(models.Model):
    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="memberships")
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="memberships"
    )
    role = models.CharField(max_length=20, choices=Role.choices, default=Role.ANNOTATOR)
    created = models.DateTimeField(auto_now_add=True)

    class Meta:
        verbose_name = pgettext_lazy("model", "project membership")
        verbose_name_plural = pgettext_lazy("model", "project memberships")
        constraints = [
            models.UniqueConstraint(fields=["project", "user"], name="one_membership_per_user")
        ]

    def __str__(self) -> str:
        return f"{self.user} in {self.project} as {self.role}"


class Document(models.Model):
    class Status(models.TextChoices):
        NEW = "new", "new"  # imported, not predicted yet
        PREDICTED = "predicted", "predicted"  # has a prediction, not selected
        QUEUED = "queued", "queued"  # selected for review
        ANNOTATED = "annotated", "annotated"  # a draft annotation exists
        VALIDATED = "validated", "validated"  # a validated annotation exists

    class Split(models.TextChoices):
        TRAIN = "train", "train"
        EVAL = "eval", "eval"

    # Statuses a document can be handed out from by the review queue.
    OPEN = (Status.NEW, Status.PREDICTED, Status.QUEUED, Status.ANNOTATED)

    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="documents")
    text = models.TextField()
    meta = models.JSONField(default=dict, blank=True)
    split = models.CharField(max_length=10, choices=Split.choices, default=Split.TRAIN)
    status = models.CharField(max_length=20, choices=Status.choices, default=Status.NEW)
    # Denormalised from the latest prediction so lists filter and sort without a join.
    uncertainty = models.FloatField(null=True, blank=True)
    predicted_by = models.ForeignKey(
        "learner.ModelVersion", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    # Set by selection: higher first in the review queue (0 = not selected).
    priority = models.FloatField(default=0.0)
    # The review-queue lock: who holds the document and until when.
    assignee = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    assigned_until = models.DateTimeField(null=True, blank=True)
    created = models.DateTimeField(auto_now_add=True)

    class Meta:
        verbose_name = pgettext_lazy("model", "document")
        verbose_name_plural = pgettext_lazy("model", "documents")
        ordering = ["id"]
        indexes = [
            models.Index(fields=["project", "status", "split"], name="doc_project_status"),
            models.Index(fields=["project", "uncertainty"], name="doc_project_uncertainty"),
        ]

    def __str__(self) -> str:
        return f"{self.pk}: {self.text[:30]}"

    def is_held_by_other(self, user, now=None) -> bool:
        now = now or timezone.now()
        return bool(
            self.assignee_id
            and self.assignee_id != user.pk
            and self.assigned_until
            and self.assigned_until > now
        )

    def claim(self, user, ttl: timedelta | None = None) -> bool:
        """Assign the document to ``user`` unless someone else holds an unexpired claim.

        A conditional UPDATE, so two concurrent claims of one row cannot both win, on
        PostgreSQL and on SQLite alike.
        """
        now = timezone.now()
        until = now + (ttl or timedelta(seconds=settings.ASSIGNMENT_TTL))
        free = Q(assignee__isnull=True) | Q(assigned_until__lte=now) | Q(assignee=user)
        won = (
            Document.objects.filter(pk=self.pk)
            .filter(free)
            .update(assignee=user, assigned_until=until)
        )
        if won:
            self.assignee, self.assigned_until = user, until
        return bool(won)

    def release(self, user) -> None:
        """Give back the caller's claim; E105 when the caller does not hold it."""
        released = Document.objects.filter(pk=self.pk, assignee=user).update(
            assignee=None, assigned_until=None
        )
        if not released:
            raise CodedAPIException("E105", status_code=409)
        self.assignee, self.assigned_until = None, None

    def skip(self, user) -> None:
        """Release and remember that this user does not want this document again."""
        self.release(user)
        Skip.objects.get_or_create(document=self, user=user)

    def latest_prediction(self) -> Prediction | None:
        """The prediction of the version that predicted the document last (``predicted_by``:
        after a rollback, an older version's), else the newest one."""
        rows = self.predictions.select_related("model_version")
        if self.predicted_by_id is not None:
            current = rows.filter(model_version_id=self.predicted_by_id).first()
            if current is not None:
                return current
        return rows.order_by("-id").first()


class Skip(models.Model):
    """A document an annotator skipped: the queue does not offer it to them again."""

    document = models.ForeignKey(Document, on_delete=models.CASCADE, related_name="skips")
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+")
    created = models.DateTimeField(auto_now_add=True)

    class Meta:
        verbose_name = pgettext_lazy("model", "skip")
        verbose_name_plural = pgettext_lazy("model", "skips")
        constraints = [
            models.UniqueConstraint(fields=["document", "user"], name="one_skip_per_user")
        ]


class Prediction(models.Model):
    """One model version's answer for one document: what pre-annotation and selection read."""

    document = models.ForeignKey(Document, on_delete=models.CASCADE, related_name="predictions")
    model_version = models.ForeignKey(
        "learner.ModelVersion", on_delete=models.CASCADE, related_name="predictions"
    )
    spans = models.JSONField(default=list)  # [{"start", "end", "label", "score"}]
    mean_entropy = models.FloatField()
    max_entropy = models.FloatField()
    least_confidence = models.FloatField()
    mnlp = models.FloatField()
    embedding = models.BinaryField(blank=True, default=b"")  # float32, little-endian
    created = models.DateTimeField(auto_now_add=True)

    class Meta:
        verbose_name = pgettext_lazy("model", "prediction")
        verbose_name_plural = pgettext_lazy("model", "predictions")
        constraints = [
            models.UniqueConstraint(
                fields=["document", "model_version"], name="one_prediction_per_version"
            )
        ]
        indexes = [
            models.Index(fields=["model_version", "mean_entropy"], name="pred_version_entropy"),
        ]

    def __str__(self) -> str:
        return f"prediction of {self.document_id} by {self.model_version_id}"

    @property
    def vector(self) -> np.ndarray:
        return np.frombuffer(bytes(self.embedding), dtype="<f4")

    @staticmethod
    def pack(vector) -> bytes:
        return np.asarray(vector, dtype="<f4").tobytes()


class _StaleRevision(Exception):
    pass


class Annotation(models.Model):
    """The current human answer for a document; ``revision`` counts accepted submissions."""

    document = models.OneToOneField(Document, on_delete=models.CASCADE, related_name="annotation")
    annotator = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="annotations",
    )
    spans = models.JSONField(default=list)  # [{"start", "end", "label"}]
    revision = models.PositiveIntegerField(default=1)
    validated = models.BooleanField(default=False)
    created = models.DateTimeField(auto_now_add=True)
    updated = models.DateTimeField(auto_now=True)

    class Meta:
        verbose_name = pgettext_lazy("model", "annotation")
        verbose_name_plural = pgettext_lazy("model", "annotations")
        indexes = [
            models.Index(fields=["validated", "updated"], name="annotation_pool"),
            models.Index(fields=["annotator", "updated"], name="annotation_by_user"),
        ]

    def __str__(self) -> str:
        return f"annotation of {self.document_id} r{self.revision}"

    @classmethod
    def _identity(cls, document: Document) -> dict:
        """The annotation's id and creation time: from the document's cached relation when it
        was joined in (no query), else from the database."""
        try:
            current = document.annotation
        except cls.DoesNotExist:
            current = None
        if current is None:
            return cls.objects.filter(document=document).values("pk", "created").get()
        return {"pk": current.pk, "created": current.created}

    @classmethod
    def _stale(cls, document: Document, revision: int) -> CodedAPIException:
        current = cls.objects.filter(document=document).values_list("revision", flat=True).first()
        detail = gettext(
            "revision %(sent)s is not the current one: the document's annotation is at "
            "revision %(current)s (0: none yet); load it again"
        ) % {"sent": revision, "current": current or 0}
        return CodedAPIException("E102", detail, status_code=409)

    @classmethod
    def submit(
        cls, document: Document, user, raw_spans, revision: int, validated: bool = True
    ) -> Annotation:
        """Store ``user``'s spans if ``revision`` is the current one (0 = none yet).

        Raises E101 (400) for invalid spans, E102 (409, with the current revision) for a
        stale one and E109 (409) for a draft over a validated answer; nothing changes on any.
        The same submission again (a retry after a lost response) gets the annotation it
        made. Accepting a submission ends whoever's claim on the document. The same spans
        and state as the current revision change nothing else.
        """
        try:
            return cls._store(document, user, raw_spans, revision, validated)
        except _StaleRevision:  # told after the rolled-back transaction, which can't query
            retried = cls._retried(document, user, raw_spans, revision, validated)
            if retried is not None:
                return retried
            raise cls._stale(document, revision) from None

    @classmethod
    def _retried(cls, document: Document, user, raw_spans, revision: int, validated: bool):
        """The annotation this very submission made, when it comes again (a client retrying
        after a lost response): the next revision, by the same user, with the same spans and
        state. None otherwise: then it is a conflict."""
        current = (
            cls.objects.filter(document=document, revision=revision + 1, annotator=user)
            .select_related("annotator")
            .first()
        )
        if current is None or current.validated != validated:
            return None
        try:
            spans = spans_to_json(document.project.validate_spans(document.text, raw_spans))
        except SpanError:
            return None
        return current if current.spans == spans else None

    @classmethod
    def _store(cls, document: Document, user, raw_spans, revision: int, validated: bool):
        now = timezone.now()
        status = Document.Status.VALIDATED if validated else Document.Status.ANNOTATED
        # One transaction and no savepoint: on a conflict the exception leaves the block and
        # everything rolls back, so the request costs as few round trips as it can.
        with transaction.atomic():
            project = document.project.locked()  # the labels as they are now, kept so
            try:
                spans = spans_to_json(project.validate_spans(document.text, raw_spans))
            except SpanError as exc:
                raise CodedAPIException("E101", str(exc)) from None
            fields = {"annotator": user, "spans": spans, "validated": validated, "updated": now}
            if revision == 0:
                annotation = cls(document=document, revision=1, created=now, **fields)
                try:
                    annotation.save(force_insert=True)
                except IntegrityError:  # someone else's first submission came in before
                    raise _StaleRevision from None
            else:
                rows = cls.objects.filter(document=document, revision=revision)
                current = rows.values("spans", "validated").first()
                if current is not None and current["validated"] and not validated:
                    # a draft would take a validated answer (eval gold too) out of training
                    # and scoring, with one click: it must be saved, or corrected and saved
                    raise CodedAPIException("E109", status_code=409)
                if current == {"spans": spans, "validated": validated}:
                    # Nothing changed (reviewing with Enter): no new revision, no credit moved
                    # to this user, nothing new for the retraining trigger; the claim ends.
                    Document.objects.filter(pk=document.pk).update(
                        assignee=None, assigned_until=None
                    )
                    document.assignee, document.assigned_until = None, None
                    return rows.select_related("annotator").get()
                if current is None or not rows.update(revision=revision + 1, **fields):
                    raise _StaleRevision
                identity = cls._identity(document)
                annotation = cls(document=document, revision=revision + 1, **identity, **fields)
            Document.objects.filter(pk=document.pk).update(
                status=status, assignee=None, assigned_until=None
            )
        document.status, document.assignee, document.assigned_until = status, None, None
        return annotation
