/* Project settings: labels (name, colour, hotkey) and the active-learning knobs.
 * Saved with one PATCH; the API validates and its refusal is shown in words. */
(function () {
  "use strict";
  const N = window.Nerloop;
  const projectId = N.projectId();
  const $ = (id) => document.getElementById(id);
  const rows = $("label-rows");
  const status = $("settings-status");
  const FIELDS = ["name", "description", "retrain_threshold", "promotion_tolerance",
    "selection_strategy", "batch_size"];
  const NUMBERS = new Set(["retrain_threshold", "batch_size", "promotion_tolerance"]);

  function say(message, kind) {
    status.textContent = message;
    status.className = "status-line" + (kind ? " " + kind : "");
  }

  function addRow(label) {
    const row = $("label-row").content.firstElementChild.cloneNode(true);
    row.querySelector(".l-name").value = label.name || "";
    row.querySelector(".l-color").value = label.color || "#a78bfa";
    row.querySelector(".l-hotkey").value = label.hotkey || "";
    row.querySelector(".l-remove").addEventListener("click", () => row.remove());
    rows.append(row);
  }

  function fill(project) {
    $("nav-project-name").textContent = project.name;
    N.revealAdmin(project.role === "admin");
    for (const field of FIELDS) {
      const input = $("f-" + field);
      if (field === "selection_strategy" && ![...input.options].some((o) => o.value === project[field])) {
        const option = document.createElement("option");
        option.value = option.textContent = project[field];
        input.append(option);
      }
      input.value = project[field] ?? "";
    }
    rows.replaceChildren();
    const colours = N.labelColours(project.labels);
    project.labels.forEach((label) => addRow({ ...label, color: label.color || colours[label.name] }));
    const editable = project.role === "admin";
    document.querySelectorAll("#settings-form input, #settings-form select, #settings-form button")
      .forEach((el) => (el.disabled = !editable));
    if (!editable) say(N.gettext("Only the project's admins can change its settings."), "error");
  }

  function collect() {
    const body = {};
    for (const field of FIELDS) {
      const raw = $("f-" + field).value;
      body[field] = NUMBERS.has(field) ? Number(raw) : raw;
    }
    body.labels = [...rows.querySelectorAll(".label-row")].map((row) => ({
      name: row.querySelector(".l-name").value.trim(),
      color: row.querySelector(".l-color").value,
      hotkey: row.querySelector(".l-hotkey").value.trim(),
    }));
    return body;
  }

  $("btn-add-label").addEventListener("click", () => {
    const used = new Set([...rows.querySelectorAll(".l-hotkey")].map((i) => i.value));
    const free = "123456789".split("").find((k) => !used.has(k)) || "";
    addRow({ name: "", color: "#a78bfa", hotkey: free });
    rows.lastElementChild.querySelector(".l-name").focus();
  });

  $("settings-form").addEventListener("submit", async (event) => {
    event.preventDefault();
    $("btn-save").disabled = true;
    try {
      const project = await N.api.patch(`projects/${projectId}`, collect());
      fill(project);
      say(N.gettext("Settings saved."), "ok");
    } catch (err) {
      say(N.describeError(err), "error");
    } finally {
      $("btn-save").disabled = false;
    }
  });

  N.api.get(`projects/${projectId}`).then(fill, (err) => say(N.describeError(err), "error"));
})();
