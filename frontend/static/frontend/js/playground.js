/* Playground: type Chinese text, see the model's entities as you type.
 *
 * Each pause in typing (debounced) sends one POST /api/v1/predict; an answer that arrives
 * after a newer request was sent is dropped (the older request is aborted), so the
 * highlight always matches the text in the box.
 */
(function () {
  "use strict";
  const N = window.Nerloop;
  const $ = (id) => document.getElementById(id);
  const input = $("play-input");
  const output = $("play-output");
  const projectSelect = $("play-project");
  const DEBOUNCE_MS = 200;

  let controller = null;
  let colours = N.labelColours(["PER", "LOC", "ORG"]);
  let legendLabels = ["PER", "LOC", "ORG"];

  function say(message, kind) {
    const line = $("play-status");
    line.textContent = message;
    line.className = "status-line" + (kind ? " " + kind : "");
  }

  function renderLegend() {
    N.renderLegend($("play-legend"), legendLabels, colours);
  }

  /** The entities of the first text, whatever envelope the predict answer uses. */
  function entitiesOf(data) {
    if (Array.isArray(data.entities)) return data.entities;
    const results = data.results || data.predictions || data.documents || [];
    const first = Array.isArray(results) ? results[0] || {} : results;
    return first.entities || first.spans || [];
  }

  function show(text, data, elapsed) {
    const entities = entitiesOf(data);
    const seen = new Set(legendLabels);
    let grew = false;
    for (const entity of entities) {
      if (!seen.has(entity.label)) {
        seen.add(entity.label);
        legendLabels.push(entity.label);
        grew = true;
      }
    }
    if (grew) {
      colours = { ...N.labelColours(legendLabels), ...colours };
      renderLegend();
    }
    N.renderHighlighted(output, text, entities, colours, (mark, entity) => {
      if (typeof entity.score === "number") mark.title = `${entity.label} ${entity.score.toFixed(3)}`;
    });
    const body = $("play-entities");
    body.replaceChildren();
    const points = Array.from(text);
    for (const entity of entities) {
      const row = document.createElement("tr");
      const cells = [
        entity.text ?? points.slice(entity.start, entity.end).join(""),
        entity.label,
        `${entity.start}–${entity.end}`,
        typeof entity.score === "number" ? entity.score.toFixed(3) : "",
      ];
      for (const value of cells) {
        const cell = document.createElement("td");
        cell.textContent = value;
        row.append(cell);
      }
      row.cells[1].style.color = colours[entity.label] || "";
      body.append(row);
    }
    $("play-json").textContent = JSON.stringify(data, null, 2);
    const server = typeof data.took_ms === "number" ? data.took_ms : null;
    $("play-time").textContent =
      `${elapsed.toFixed(1)} ms` +
      (server === null ? "" : ` (${N.gettext("model")} ${server.toFixed(1)} ms)`);
    const version = data.model_version || (data.model && data.model.version) || "";
    $("play-version").textContent = version ? `· ${version}` : "";
    output.dataset.entities = String(entities.length);
    say(
      entities.length
        ? N.interpolate(N.gettext("%(n)s entities"), { n: entities.length }, true)
        : N.gettext("No entities found."),
    );
  }

  async function predict() {
    const text = input.value;
    if (controller) controller.abort();
    if (!text.trim()) {
      output.replaceChildren();
      $("play-entities").replaceChildren();
      $("play-json").textContent = "{}";
      $("play-time").textContent = "–";
      say("");
      return;
    }
    controller = new AbortController();
    const mine = controller;
    const body = { text };
    if (projectSelect.value) body.project = Number(projectSelect.value);
    const started = performance.now();
    // a model not used yet in this process loads first (seconds): say so rather than nothing
    const slow = setTimeout(() => {
      if (mine === controller) say(N.gettext("Waiting for the model (it may be loading)…"));
    }, 1000);
    try {
      const data = await N.api.post("predict", body, { signal: mine.signal });
      if (mine !== controller) return;
      show(text, data, performance.now() - started);
    } catch (err) {
      if (err && err.name === "AbortError") return;
      output.textContent = text;
      // nothing of the last answer stays on screen: its entities, time and model are not this one's
      $("play-entities").replaceChildren();
      $("play-time").textContent = "–";
      $("play-version").textContent = "";
      say(N.describeError(err), "error");
      $("play-json").textContent = JSON.stringify(
        { status: err.status, code: err.code, message: err.message, detail: err.detail ?? null },
        null,
        2,
      );
    } finally {
      clearTimeout(slow);
    }
  }

  async function loadProjects() {
    try {
      const projects = await N.getAll("projects");
      for (const project of projects) {
        const option = document.createElement("option");
        option.value = String(project.id);
        option.textContent = project.name;
        option.dataset.labels = JSON.stringify(project.labels || []);
        projectSelect.append(option);
      }
      // ?project=<id> (a client's link from the projects page) picks that project's model
      const wanted = new URLSearchParams(location.search).get("project");
      if (wanted && projects.some((p) => String(p.id) === wanted)) {
        projectSelect.value = wanted;
        projectSelect.dispatchEvent(new Event("change"));
      }
    } catch (err) {
      say(N.describeError(err), "error");
    }
  }

  projectSelect.addEventListener("change", () => {
    const option = projectSelect.selectedOptions[0];
    const labels = option && option.dataset.labels ? JSON.parse(option.dataset.labels) : null;
    legendLabels = labels && labels.length ? labels.map((l) => l.name) : ["PER", "LOC", "ORG"];
    colours = N.labelColours(labels && labels.length ? labels : legendLabels);
    renderLegend();
    predict();
  });
  input.addEventListener("input", N.debounce(predict, DEBOUNCE_MS));

  renderLegend();
  loadProjects();
  predict();
})();
