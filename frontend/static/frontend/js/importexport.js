/* Import (upload a file) and export (download links) pages; both are for project admins,
 * and the API refuses anyone else whatever the page shows. */
(function () {
  "use strict";
  const N = window.Nerloop;
  const projectId = N.projectId();
  const $ = (id) => document.getElementById(id);

  function say(id, message, kind) {
    const line = $(id);
    line.textContent = message;
    line.className = "status-line" + (kind ? " " + kind : "");
  }

  function setupImport() {
    const form = $("import-form");
    const file = $("f-file");
    const drop = $("drop");
    const showName = () => {
      $("drop-text").textContent = file.files.length ? file.files[0].name : $("drop-text").textContent;
    };
    file.addEventListener("change", showName);
    ["dragenter", "dragover"].forEach((type) =>
      drop.addEventListener(type, (event) => {
        event.preventDefault();
        drop.classList.add("over");
      }),
    );
    ["dragleave", "drop"].forEach((type) =>
      drop.addEventListener(type, () => drop.classList.remove("over")),
    );
    drop.addEventListener("drop", (event) => {
      event.preventDefault();
      if (event.dataTransfer.files.length) {
        file.files = event.dataTransfer.files;
        showName();
      }
    });
    form.addEventListener("submit", async (event) => {
      event.preventDefault();
      if (!file.files.length) {
        say("import-status", N.gettext("Choose a file first."), "error");
        return;
      }
      const body = new FormData();
      body.append("file", file.files[0]);
      for (const name of ["format", "scheme", "split", "gold"]) body.append(name, $("f-" + name).value);
      body.append("extend_labels", $("f-extend_labels").checked ? "true" : "false");
      body.append("strict", $("f-repair").checked ? "false" : "true");
      body.append("skip_duplicates", $("f-skip_duplicates").checked ? "true" : "false");
      body.append("drop_unknown_labels", $("f-drop_unknown_labels").checked ? "true" : "false");
      $("btn-upload").disabled = true;
      say("import-status", N.gettext("Uploading…"));
      try {
        const result = await N.api.post(`projects/${projectId}/documents/upload`, body);
        $("r-documents").textContent = String(result.documents);
        $("r-annotated").textContent = String(result.annotated);
        $("r-labels").textContent = result.labels_added && result.labels_added.length
          ? N.interpolate(N.gettext("Labels added: %(labels)s"), { labels: result.labels_added.join(", ") }, true)
          : "";
        const duplicates = $("r-duplicates");
        duplicates.hidden = !result.duplicates;
        duplicates.className = result.duplicates_other_split && !result.skipped ? "status-line error" : "muted";
        if (result.skipped) {
          duplicates.textContent = N.interpolate(
            N.gettext("Skipped %(n)s documents whose text the project or the file already had."), { n: result.skipped }, true);
        } else if (result.duplicates) {
          let text = N.interpolate(
            N.gettext("%(n)s documents repeat a text the project or the file already had."), { n: result.duplicates }, true);
          if (result.duplicates_other_split) {
            text += N.GAP + N.interpolate(
              N.gettext("%(n)s of them are in the other split (train or eval): training leaves those train documents out, so no model is scored on what it learned from."),
              { n: result.duplicates_other_split }, true);
          }
          duplicates.textContent = text;
        }
        $("r-eval-unanswered").hidden = !result.eval_unanswered;
        $("r-eval-unanswered").textContent = result.eval_unanswered
          ? N.interpolate(N.gettext("%(n)s eval documents came without spans and wait to be annotated: no model is scored on them until then. If they are sentences without entities, import them with “every document is gold” so they count."), { n: result.eval_unanswered }, true)
          : "";
        $("r-retrain").hidden = !result.retrain_due;
        $("r-dropped").hidden = !result.spans_dropped;
        $("r-dropped").textContent = result.spans_dropped
          ? N.interpolate(N.gettext("Left out %(n)s spans of labels the project does not have."), { n: result.spans_dropped }, true)
          : "";
        $("import-result").hidden = false;
        listProblems(null);
        // nothing new (every text already there): no model has anything to pre-annotate
        say("import-status", result.documents ? await nextStep() : N.gettext("Nothing new was imported."), "ok");
      } catch (err) {
        $("import-result").hidden = true;
        let message = N.describeError(err);
        if (err.code === "E103" && /is not in the schema/.test(JSON.stringify(err.detail || ""))) {
          message = N.sentences(message, N.gettext("To add the file's new labels, tick “Add labels found in the file to the schema”; to import only the project's, tick “Leave out spans of labels the project does not have”."));
        }
        say("import-status", message, "error");
        listProblems(err.code === "E103" && err.detail ? err.detail.problems : null);
      } finally {
        $("btn-upload").disabled = false;
      }
    });
  }

  /** What happens to the new documents: pre-annotated by the model serving the project, or
   * waiting for the project's first model (the default one predicts other types). */
  async function nextStep() {
    let serving = null;
    try {
      serving = (await N.api.get(`projects/${projectId}/progress`)).serving_model;
    } catch (err) {
      return N.gettext("Import finished.");
    }
    if (serving) {
      return N.interpolate(
        N.gettext("Import finished; model %(version)s pre-annotates the documents in the background."),
        { version: serving.version }, true);
    }
    let metrics = null;
    try {
      metrics = await N.api.get(`projects/${projectId}/metrics`);
    } catch (err) {
      // the general advice below stands
    }
    if (metrics && metrics.cannot_train) { // why no run can start yet (no validated eval document, ...)
      return N.interpolate(
        N.gettext("Import finished. No model can pre-annotate this project yet, and training cannot start: %(why)s."),
        { why: metrics.cannot_train }, true);
    }
    if (metrics && (metrics.busy_run ||
        (metrics.retrain_threshold > 0 && metrics.new_since_last_run >= metrics.retrain_threshold))) {
      return N.interpolate(
        N.gettext("Import finished. No model pre-annotates this project yet; its first training run (on %(n)s validated train documents) starts within a minute: see the dashboard."),
        { n: metrics.feedback_pool }, true);
    }
    if (metrics && metrics.retrain_threshold > 0) {
      return N.interpolate(
        N.gettext("Import finished. No model can pre-annotate this project yet: annotate the review queue (a diverse first batch); the first training run starts after %(n)s more validated train documents, or from the dashboard now."),
        { n: metrics.retrain_threshold - metrics.new_since_last_run }, true);
    }
    return N.gettext("Import finished. No model can pre-annotate this project yet: annotate the review queue (a diverse first batch) and the eval set (Documents page), and the first training run makes one.");
  }

  function setupExport() {
    const update = () => {
      const params = new URLSearchParams();
      if ($("x-split").value) params.set("split", $("x-split").value);
      if ($("x-annotated").checked) params.set("annotated", "1");
      if ($("x-predictions").checked) params.set("predictions", "1");
      document.querySelectorAll(".export-link").forEach((link) => {
        const own = new URLSearchParams(params);
        // only CoNLL has tags to write in a scheme
        if (link.dataset.format === "conll" && $("x-scheme").value !== "bio") own.set("scheme", $("x-scheme").value);
        const query = own.toString();
        link.href = `/api/v1/projects/${projectId}/export/${link.dataset.format}${query ? "?" + query : ""}`;
      });
    };
    $("x-split").addEventListener("change", update);
    $("x-annotated").addEventListener("change", update);
    $("x-predictions").addEventListener("change", update);
    $("x-scheme").addEventListener("change", update);
    update();
  }

  /** Every problem an import names (a file's bad lines), one a line, to fix them at once. */
  function listProblems(problems) {
    const list = $("import-problems");
    list.replaceChildren();
    list.hidden = !Array.isArray(problems) || problems.length < 2;
    if (list.hidden) return;
    for (const problem of problems) {
      const item = document.createElement("li");
      const where = problem.line != null
        ? N.interpolate(N.gettext("line %(n)s"), { n: problem.line }, true)
        : problem.document ? N.interpolate(N.gettext("document %(n)s"), { n: problem.document }, true) : "";
      item.textContent = where ? `${where}: ${problem.problem}` : problem.problem;
      list.append(item);
    }
  }

  async function start() {
    // Wire the forms at once; whether they stay enabled depends on the caller's role.
    if ($("import-form")) setupImport();
    if ($("export-card")) setupExport();
    let project;
    try {
      project = await N.api.get(`projects/${projectId}`);
    } catch (err) {
      say($("import-status") ? "import-status" : "export-status", N.describeError(err), "error");
      return;
    }
    $("nav-project-name").textContent = project.name;
    $("nav-project-name").title = project.name; // the whole name, when the bar cuts it short
    N.revealAdmin(project.role === "admin");
    const admin = project.role === "admin";
    if ($("import-form")) {
      if (!admin) {
        $("import-form").querySelectorAll("input, select, textarea, button").forEach((el) => (el.disabled = true));
        say("import-status", N.gettext("Only the project's admins can import documents."), "error");
      }
    }
    if ($("export-card")) {
      if (!admin) {
        $("export-card").hidden = true;
        say("export-status", N.gettext("Only the project's admins can export the project."), "error");
      }
    }
  }

  start();
})();
