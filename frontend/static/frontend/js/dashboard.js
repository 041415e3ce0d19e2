/* Dashboard: F1 per model version against labelled characters (hand-written SVG), pool and
 * queue sizes, annotations per annotator per day, model versions and training runs.
 *
 * The page polls the API every few seconds and redraws only what changed, so a retrain that
 * finishes while the page is open shows up as a new point without a reload.
 */
(function () {
  "use strict";
  const N = window.Nerloop;
  const gettext = N.gettext;
  const interpolate = N.interpolate;
  const projectId = N.projectId();
  const $ = (id) => document.getElementById(id);
  const SVG = "http://www.w3.org/2000/svg";
  const POLL_MS = 3000;

  const endpoints = {
    project: () => `projects/${projectId}`,
    progress: () => `projects/${projectId}/progress`,
    metrics: () => `projects/${projectId}/metrics`,
    activate: (id) => `projects/${projectId}/versions/${id}/activate`,
    runs: () => `projects/${projectId}/runs`,
    run: (id) => `projects/${projectId}/runs/${id}`,
    train: () => `projects/${projectId}/train`,
    cancelRun: (id) => `projects/${projectId}/runs/${id}/cancel`,
    activity: () => `projects/${projectId}/activity`,
  };

  const state = {
    project: null,
    isAdmin: false,
    colours: {},
    hidden: new Set(),
    last: {},
    timer: null,
    stopped: false, // access lost: polling stops
  };

  function say(message, kind) {
    const line = $("dash-status");
    line.textContent = message;
    line.className = "status-line" + (kind ? " " + kind : "");
  }

  function el(tag, attrs, text) {
    const node = document.createElement(tag);
    for (const [key, value] of Object.entries(attrs || {})) {
      if (key === "class") node.className = value;
      else node.setAttribute(key, value);
    }
    if (text !== undefined && text !== null) node.textContent = String(text);
    return node;
  }

  function svg(tag, attrs, text) {
    const node = document.createElementNS(SVG, tag);
    for (const [key, value] of Object.entries(attrs || {})) node.setAttribute(key, String(value));
    if (text !== undefined) node.textContent = String(text);
    return node;
  }

  const fmt = (x, digits = 3) => (typeof x === "number" && isFinite(x) ? x.toFixed(digits) : "–");
  const pageLanguage = document.documentElement.lang || undefined; // dates as the page reads
  const when = (iso) => (iso ? new Date(iso).toLocaleString(pageLanguage) : "–");

  /** The promotion gate's decision in the page's language, from the version's metrics (the
   * server's English sentence stays in the cell's tooltip, and is the text for versions
   * recorded before the decision was). */
  function gateText(p) {
    if (typeof p.promoted_by_gate !== "boolean") return p.gate_reason || "";
    const parts = [];
    if (typeof p.previous_f1 !== "number") {
      parts.push(gettext("promoted: there was no model to compare with"));
    } else {
      const values = {
        f1: fmt(p.f1, 4),
        previous: fmt(p.previous_f1, 4),
        tolerance: fmt(p.tolerance, 4),
        gap: typeof p.f1 === "number" ? fmt(p.previous_f1 - p.f1, 4) : "–",
        against: p.compared_with === "default" ? gettext("the default model") : gettext("the active model"),
      };
      parts.push(interpolate(p.promoted_by_gate
        ? gettext("promoted: F1 %(f1)s against %(previous)s for %(against)s (tolerance %(tolerance)s)")
        : gettext("kept as candidate: F1 %(f1)s is %(gap)s below %(previous)s for %(against)s, more than the tolerance of %(tolerance)s"),
      values, true));
      if (p.previous_f1_recorded) {
        parts.push(gettext("its bundle could not be scored, so its recorded F1 was used"));
      }
    }
    if (p.activated_by_admin_at) {
      parts.push(interpolate(gettext("activated by an admin on %(when)s"), { when: when(p.activated_by_admin_at) }, true));
    }
    return parts.join(" · ");
  }
  function chars(n) {
    if (typeof n !== "number") return "–";
    if (n >= 1e6) return (n / 1e6).toFixed(n >= 1e7 ? 0 : 1) + "M";
    if (n >= 1e3) return (n / 1e3).toFixed(n >= 1e4 ? 0 : 1) + "k";
    return String(n);
  }
  function seconds(s) {
    if (typeof s !== "number") return "–";
    return s >= 90
      ? interpolate(gettext("%(n)s min"), { n: (s / 60).toFixed(1) }, true)
      : interpolate(gettext("%(n)s s"), { n: s.toFixed(1) }, true);
  }

  // ---- data shapes ------------------------------------------------------------------------

  /** One point per model version: {id, version, status, chars, sentences, f1, per_type}. */
  function pointsFrom(metrics) {
    return (metrics.versions || []).map((row) => {
      const labelled = row.labels || {};
      return {
        id: row.id,
        version: row.version,
        status: row.status,
        chars: labelled.characters ?? 0,
        sentences: labelled.sentences ?? 0,
        f1: row.f1,
        precision: row.precision,
        recall: row.recall,
        per_type: row.per_type || {},
        created: row.created,
        gate_reason: row.gate_reason || "",
        timings: row.timings || {},
        // the serving model's F1 that the gate compared with: "active" or "default"
        previous_f1: row.previous_f1,
        compared_with: row.compared_with,
        previous_f1_recorded: row.previous_f1_recorded,
        tolerance: row.tolerance,
        promoted_by_gate: row.promoted_by_gate,
        activated_by_admin_at: row.activated_by_admin_at,
        bundle_pruned: row.bundle_pruned,
      };
    });
  }

  // ---- chart ----------------------------------------------------------------------------------

  function niceStep(span, count) {
    const raw = span / Math.max(1, count);
    const power = Math.pow(10, Math.floor(Math.log10(raw || 1)));
    for (const m of [1, 2, 2.5, 5, 10]) if (m * power >= raw) return m * power;
    return 10 * power;
  }

  $("chart-x").addEventListener("change", () => {
    state.xMode = $("chart-x").value;
    drawChart(state.points || []);
  });

  function drawChart(points) {
    const chart = $("f1-chart");
    const title = chart.querySelector("title");
    chart.replaceChildren(title);
    const usable = points.filter((p) => typeof p.f1 === "number");
    $("chart-empty").hidden = usable.length > 0;
    chart.style.display = usable.length ? "" : "none";
    if (!usable.length) {
      $("chart-legend").replaceChildren();
      return;
    }
    const W = 900;
    const H = 340;
    const M = { left: 52, right: 24, top: 22, bottom: 44 };
    // along labelled characters, or one step per version (retrains on nearly the same labels
    // otherwise stack on one vertical line)
    const byVersion = state.xMode === "version";
    const rank = new Map([...usable].sort((a, b) => a.id - b.id).map((p, i) => [p.id, i + 1]));
    const along = (p) => (byVersion ? rank.get(p.id) : p.chars);
    const sorted = [...usable].sort((a, b) => along(a) - along(b) || a.id - b.id);
    const maxX = Math.max(...sorted.map(along), 1);
    const minX = Math.min(...sorted.map(along));
    // characters: from 0, unless every version has most of the labels (then 0 to the first
    // one is empty space and the versions crowd at the right edge)
    const zoomed = !byVersion && minX > 0.4 * maxX && maxX - minX >= 0.05 * maxX;
    const xStep = byVersion
      ? Math.max(1, Math.ceil(maxX / 12))
      : Math.max(1, niceStep(zoomed ? maxX - minX : maxX, 6)); // whole characters, not 0.6000000000000001
    const xMax = byVersion ? maxX + 1 : Math.ceil((maxX + 0.04 * (zoomed ? maxX - minX : maxX)) / xStep) * xStep;
    const xMin = zoomed ? Math.max(0, Math.floor((minX - 0.04 * (maxX - minX) - 1e-9) / xStep) * xStep) : 0;
    const schema = ((state.project && state.project.labels) || []).map((l) => l.name);
    const seen = new Set(sorted.flatMap((p) => Object.keys(p.per_type)));
    const labels = [...schema.filter((l) => seen.has(l)), ...[...seen].filter((l) => !schema.includes(l))];
    // While the project has no version of its own, the platform's default model serves it:
    // its F1 on this eval set (measured by the last gate) is the bar a first model must clear.
    const active = sorted.find((p) => p.status === "active");
    const gated = sorted.filter((p) => p.compared_with === "default");
    const bar = !active && gated.length ? gated[gated.length - 1].previous_f1 : null;
    const values = sorted.flatMap((p) => [p.f1, ...labels.map((l) => (p.per_type[l] || {}).f1)]);
    if (typeof bar === "number") values.push(bar);
    const finite = values.filter((v) => typeof v === "number");
    const yMin = Math.max(0, Math.floor((Math.min(...finite) - 0.05) * 10) / 10);
    const x = (v) => M.left + ((v - xMin) / (xMax - xMin)) * (W - M.left - M.right);
    const y = (v) => H - M.bottom - ((v - yMin) / (1 - yMin)) * (H - M.top - M.bottom);

    for (let v = xMin; v <= xMax + 1e-9; v += xStep) {
      chart.append(svg("line", { class: "grid-line", x1: x(v), x2: x(v), y1: M.top, y2: H - M.bottom }));
      const tick = byVersion ? (v >= 1 && v <= maxX ? String(v) : "") : chars(v);
      chart.append(svg("text", { x: x(v), y: H - M.bottom + 16, "text-anchor": "middle" }, tick));
    }
    const yStep = (1 - yMin) > 0.5 ? 0.2 : 0.1;
    for (let v = yMin; v <= 1 + 1e-9; v += yStep) {
      chart.append(svg("line", { class: "grid-line", x1: M.left, x2: W - M.right, y1: y(v), y2: y(v) }));
      chart.append(svg("text", { x: M.left - 8, y: y(v) + 4, "text-anchor": "end" }, v.toFixed(1)));
    }
    chart.append(svg("line", { class: "axis", x1: M.left, x2: W - M.right, y1: H - M.bottom, y2: H - M.bottom }));
    chart.append(svg("line", { class: "axis", x1: M.left, x2: M.left, y1: M.top, y2: H - M.bottom }));
    chart.append(
      svg("text", { x: (M.left + W - M.right) / 2, y: H - 8, "text-anchor": "middle" },
        byVersion ? gettext("versions, oldest first") : gettext("labelled characters")),
    );
    chart.append(svg("text", { x: 14, y: M.top - 6 }, "F1"));

    const series = [{ key: "__overall", name: gettext("overall"), colour: "#f8fafc", get: (p) => p.f1 }];
    for (const label of labels) {
      series.push({
        key: label,
        name: label,
        colour: state.colours[label] || "#94a3b8",
        get: (p) => (p.per_type[label] || {}).f1,
        support: (p) => (p.per_type[label] || {}).support,
      });
    }
    for (const s of series) {
      if (state.hidden.has(s.key)) continue;
      const pts = sorted.filter((p) => typeof s.get(p) === "number");
      const group = svg("g", { "data-series": s.key });
      if (pts.length > 1) {
        group.append(
          svg("polyline", {
            class: "series",
            stroke: s.colour,
            "stroke-dasharray": s.key === "__overall" ? "" : "5 4",
            points: pts.map((p) => `${x(along(p))},${y(s.get(p))}`).join(" "),
          }),
        );
      }
      for (const p of pts) {
        const dot = svg("circle", {
          class: "point",
          cx: x(along(p)),
          cy: y(s.get(p)),
          r: s.key === "__overall" ? 6 : 4,
          fill: p.status === "active" || p.status === "retired" ? s.colour : "#0b1020",
          // inline, so that the stylesheet's dark outline of filled points spares the ring
          // that is all a hollow (candidate) point has
          style: `stroke: ${s.colour}`,
          "data-version": p.version,
          "data-series": s.key,
        });
        dot.append(
          svg("title", {}, `${p.version} · ${s.name} F1 ${fmt(s.get(p))}` +
            (s.support && typeof s.support(p) === "number"
              ? ` (${interpolate(gettext("%(n)s eval entities"), { n: s.support(p) }, true)})` : "") +
            ` · ${p.chars} ${gettext("characters")} · ${word(p.status)}`),
        );
        group.append(dot);
      }
      chart.append(group);
    }
    if (typeof bar === "number") {
      chart.append(svg("line", {
        class: "default-bar", x1: M.left, x2: W - M.right, y1: y(bar), y2: y(bar),
        "data-f1": bar,
      }));
      chart.append(svg("text", { x: W - M.right, y: y(bar) - 6, "text-anchor": "end", class: "default-bar-label" },
        interpolate(gettext("default model %(f1)s"), { f1: fmt(bar) }, true)));
    }
    if (active) {
      chart.append(svg("circle", { class: "active-marker", cx: x(along(active)), cy: y(active.f1), r: 11 }));
      const ax = x(along(active));
      chart.append(
        svg("text", {
          x: ax,
          y: y(active.f1) - 16,
          "text-anchor": ax > W * 0.75 ? "end" : ax < W * 0.25 ? "start" : "middle",
          fill: "#34d399",
          style: "fill:#34d399;font-weight:700",
          "data-active": active.version,
        }, `${gettext("active")} ${active.version}`),
      );
      $("chart-active").textContent = interpolate(
        gettext("Active: %(version)s, F1 %(f1)s"), { version: active.version, f1: fmt(active.f1) }, true);
    } else {
      $("chart-active").textContent = typeof bar === "number"
        ? interpolate(gettext("No active model: the default model serves (F1 %(f1)s on the eval set)."),
          { f1: fmt(bar) }, true)
        : gettext("No active model.");
    }
    const legend = $("chart-legend");
    legend.replaceChildren();
    legend.append(el("em", { class: "muted" }, gettext("filled: served at some point · hollow: candidate")));
    for (const s of series) {
      const item = el("span", { role: "button", tabindex: "0", "data-series": s.key }, s.name);
      item.style.setProperty("--c", s.colour);
      item.style.cursor = "pointer";
      item.style.opacity = state.hidden.has(s.key) ? "0.4" : "1";
      const toggle = () => {
        if (state.hidden.has(s.key)) state.hidden.delete(s.key);
        else state.hidden.add(s.key);
        drawChart(points);
      };
      item.addEventListener("click", toggle);
      item.addEventListener("keydown", (e) => (e.key === "Enter" || e.key === " ") && toggle());
      legend.append(item);
    }
  }

  // ---- tables and stats -------------------------------------------------------------------

  function drawProgress(p) {
    $("stat-documents").textContent = String(p.documents);
    $("stat-documents-sub").textContent = interpolate(
      gettext("%(predicted)s predicted · eval %(validated)s of %(eval)s validated"),
      { predicted: p.predicted, eval: p.eval, validated: p.eval_validated ?? 0 }, true);
    $("stat-pool").textContent = String(p.unlabelled_pool);
    $("stat-pool-sub").textContent = interpolate(
      gettext("%(n)s validated"), { n: (p.by_status || {}).validated ?? 0 }, true);
    $("stat-queue").textContent = String(p.queue);
    $("stat-queue-sub").textContent = interpolate(
      gettext("%(n)s assigned now"), { n: p.assigned ?? 0 }, true);
    // the number the retraining trigger compares with the threshold (0: only by hand)
    const fresh = p.new_since_last_run ?? p.feedback_pool;
    $("stat-feedback").textContent = p.retrain_threshold
      ? `${fresh} / ${p.retrain_threshold}` : `${fresh} / –`;
    const share = p.retrain_threshold ? Math.min(1, fresh / p.retrain_threshold) : 0;
    $("feedback-meter").style.width = `${(share * 100).toFixed(1)}%`;
    const serving = p.serving_model; // the project's active version, or the default model
    const model = !serving
      ? gettext("no model yet: the first training run makes one")
      : serving.default
        ? interpolate(gettext("no model of its own yet: the default model %(v)s serves"), { v: serving.version }, true)
        : interpolate(gettext("active model %(v)s"), { v: serving.version }, true);
    $("stat-feedback-sub").textContent = interpolate(
      gettext("feedback pool %(n)s (validated, not yet learnt by the serving model) · %(model)s"),
      { n: p.feedback_pool, model }, true);
  }

  const WORDS = {
    active: gettext("active"),
    candidate: gettext("candidate"),
    retired: gettext("retired"),
    queued: gettext("queued"),
    running: gettext("running"),
    succeeded: gettext("succeeded"),
    failed: gettext("failed"),
    cancelled: gettext("cancelled"),
    manual: gettext("manual"),
    threshold: gettext("threshold"),
  };
  const word = (value) => WORDS[value] || value || "";

  function badge(status) {
    return el("span", { class: `badge badge-${status}` }, word(status));
  }

  function timingText(timings) {
    const names = { train_seconds: gettext("train"), export_seconds: gettext("export"),
      gate_seconds: gettext("gate"), total_seconds: gettext("total") };
    return Object.entries(names)
      .filter(([key]) => typeof timings[key] === "number")
      .map(([key, name]) => `${name} ${seconds(timings[key])}`)
      .join(" · ");
  }

  function drawVersions(points) {
    const body = $("versions-body");
    body.replaceChildren();
    $("versions-empty").hidden = points.length > 0;
    const newest = [...points].sort((a, b) => b.id - a.id);
    for (const p of newest) {
      const row = el("tr", { "data-version-id": p.id, "data-status": p.status });
      if (p.status === "active") row.className = "active-row";
      const perLabel = Object.entries(p.per_type)
        // with its support: an F1 over one or two eval entities swings from 0 to 1
        .map(([label, m]) => `${label} ${fmt(m.f1, 2)}` + (typeof m.support === "number" ? ` (${m.support})` : ""))
        .join(" · ");
      const cells = [
        el("td", { class: "nowrap" }, p.version),
        el("td"),
        el("td", {}, fmt(p.f1)),
        el("td", {}, `${fmt(p.precision, 2)} / ${fmt(p.recall, 2)}`),
        el("td", {}, perLabel || "–"),
        el("td", {}, `${p.sentences} / ${chars(p.chars)}`),
        el("td", { class: "muted gate", title: p.gate_reason || "" }, gateText(p)),
        el("td", {}, when(p.created)),
      ];
      cells[1].append(badge(p.status));
      const timing = timingText(p.timings);
      if (timing) cells[7].append(el("div", { class: "muted" }, timing));
      row.append(...cells);
      if (state.isAdmin) {
        const cell = el("td");
        if (p.bundle_pruned) {
          cell.append(el("span", { class: "muted" }, gettext("bundle removed")));
        } else if (p.status !== "active") {
          const button = el("button", { type: "button", class: "btn btn-small activate-btn" },
            gettext("Activate"));
          button.addEventListener("click", () => activate(p, button));
          cell.append(button);
        }
        row.append(cell);
      }
      body.append(row);
    }
    N.labelCells(body);
  }

  /** The log of a run, fetched when its details are opened (the list leaves it out). */
  async function loadLog(run, pre) {
    try {
      const detail = await N.api.get(endpoints.run(run.id));
      // a reader at the end (or a fresh box) follows the newest epoch; one scrolled up stays
      const following = pre.scrollTop + pre.clientHeight >= pre.scrollHeight - 8;
      pre.textContent = detail.log || gettext("(empty log)");
      if (following) pre.scrollTop = pre.scrollHeight;
    } catch (err) {
      pre.textContent = N.describeError(err);
    }
  }

  function drawRuns(runs) {
    const body = $("runs-body");
    const open = new Set(
      [...body.querySelectorAll("details[open]")].map((d) => d.closest("tr").dataset.runId),
    );
    body.replaceChildren();
    $("runs-empty").hidden = runs.length > 0;
    const newest = [...runs].sort((a, b) => b.id - a.id).slice(0, 20);
    for (const run of newest) {
      const row = el("tr", { "data-run-id": run.id, "data-state": run.state });
      const cells = [
        el("td", {}, run.id),
        el("td", {}, word(run.trigger)),
        el("td"),
        el("td", {}, when(run.started || run.created)),
        el("td", {}, seconds(run.duration)),
        el("td", {}, run.model_version || "–"),
      ];
      // a cancelled run ended failed (E303): said as cancelled, in the failed colour
      const cancelled = run.state === "failed" && run.error_code === "E303";
      cells[2].append(cancelled ? el("span", { class: "badge badge-failed" }, word("cancelled")) : badge(run.state));
      const details = el("details");
      details.append(el("summary", {}, run.error ? gettext("error and log") : gettext("log")));
      // The error and log are read in a row of their own under the run, as wide as the table.
      const pre = el("pre", { class: "log" }, gettext("Loading…"));
      const logRow = el("tr", { class: "log-row", "data-log-of": run.id });
      const logCell = el("td", { colspan: cells.length });
      if (run.error) logCell.append(el("pre", { class: "log error-box" }, run.error));
      logCell.append(pre);
      logRow.append(logCell);
      details.addEventListener("toggle", () => {
        if (details.open) {
          row.after(logRow);
          loadLog(run, pre);
        } else {
          logRow.remove();
        }
      });
      cells[2].append(details);
      row.append(...cells);
      body.append(row);
      if (open.has(String(run.id))) details.open = true;
    }
  }

  function drawBusy(metrics) {
    const busy = metrics.busy_run;
    const retrain = $("btn-retrain");
    retrain.disabled = Boolean(busy);
    retrain.title = busy
      ? interpolate(gettext("Training run #%(id)s is %(state)s."), { id: busy.id, state: word(busy.state) }, true)
      : "";
    state.busyRun = busy ? busy.id : null;
    $("btn-cancel-run").hidden = !busy || !state.isAdmin; // admins, while a run is busy
  }

  function drawActivity(activity) {
    const rows = Array.isArray(activity) ? activity : activity.per_annotator_day || activity.results || [];
    const annotators = [...new Set(rows.map((r) => r.annotator))].sort();
    const days = [...new Set(rows.map((r) => r.day))].sort().reverse();
    const head = $("per-day-head");
    const body = $("per-day-body");
    head.replaceChildren();
    body.replaceChildren();
    $("per-day-empty").hidden = rows.length > 0;
    if (!rows.length) return;
    const tr = el("tr");
    tr.append(el("th", {}, gettext("Day")));
    for (const name of annotators) tr.append(el("th", {}, name));
    head.append(tr);
    const count = {};
    for (const r of rows) count[`${r.day}\u0000${r.annotator}`] = r.count;
    for (const day of days.slice(0, 14)) {
      const row = el("tr");
      row.append(el("td", {}, day));
      for (const name of annotators) row.append(el("td", {}, count[`${day}\u0000${name}`] ?? 0));
      body.append(row);
    }
  }

  function activityMissing() {
    $("per-day-empty").hidden = false;
    $("per-day-empty").textContent = gettext(
      "The API does not report annotations per annotator per day yet.");
  }

  // ---- actions ------------------------------------------------------------------------------

  /** The default model, offered to admins while a version of the project's own serves. */
  function drawDefault(metrics) {
    const model = metrics.default_model;
    const box = $("default-model");
    state.defaultModel = model;
    box.hidden = !model || model.serving || !state.isAdmin;
    if (box.hidden) return;
    $("default-model-text").textContent = model.project_f1 != null
      ? interpolate(
        gettext("The default model %(v)s (F1 %(f1)s on this project's evaluation set, when %(gate)s was gated) can serve this project again."),
        { v: model.version, f1: fmt(model.project_f1), gate: model.project_f1_gate }, true)
      : interpolate(
        gettext("The default model %(v)s (F1 %(f1)s on its own evaluation data) can serve this project again."),
        { v: model.version, f1: fmt(model.f1) }, true);
  }

  $("btn-default-model").addEventListener("click", async () => {
    const model = state.defaultModel;
    if (!model) return;
    const question = interpolate(
      gettext("Serve the default model %(v)s instead of this project's active version?"),
      { v: model.version }, true);
    if (!window.confirm(question)) return;
    const button = $("btn-default-model");
    button.disabled = true;
    try {
      await N.api.post(endpoints.activate(model.id), {});
      N.flash(interpolate(gettext("The default model %(v)s serves this project again."), { v: model.version }, true), "ok");
      await refresh();
    } catch (err) {
      say(N.describeError(err), "error");
    } finally {
      button.disabled = false;
    }
  });

  async function activate(point, button) {
    // what serves now: the project's active version, else the default model
    // (the default model's own f1 is on its own corpus: on this project's eval set it scored
    // project_f1, the number the project's versions compare with)
    const fallback = state.defaultModel && state.defaultModel.serving
      ? { version: state.defaultModel.version, f1: state.defaultModel.project_f1 } : null;
    const serving = (state.points || []).find((p) => p.status === "active") || fallback;
    if (serving && typeof point.f1 === "number" && typeof serving.f1 === "number" && point.f1 < serving.f1) {
      const question = interpolate(
        gettext("Version %(v)s scored F1 %(f1)s, below %(active)s (%(active_f1)s) which serves now. Serve it anyway?"),
        { v: point.version, f1: fmt(point.f1), active: serving.version, active_f1: fmt(serving.f1) }, true);
      if (!window.confirm(question)) return;
    }
    button.disabled = true;
    try {
      await N.api.post(endpoints.activate(point.id), {});
      N.flash(interpolate(gettext("Version %(v)s is now active."), { v: point.version }, true), "ok");
      await refresh();
    } catch (err) {
      say(N.describeError(err), "error");
      button.disabled = false;
    }
  }

  $("btn-retrain").addEventListener("click", async () => {
    const button = $("btn-retrain");
    if (state.hasRuns && state.nothingNew) {
      const question = gettext(
        "Nothing was validated since the last training run: a new run would learn from the same annotations. Train anyway?");
      if (!window.confirm(question)) return;
    }
    button.disabled = true;
    try {
      const answer = await N.api.post(endpoints.train(), {});
      const run = answer.run;
      const text = answer.created
        ? gettext("Training run #%(id)s is queued.")
        : gettext("Training run #%(id)s is already %(state)s.");
      N.flash(interpolate(text, { id: run.id, state: word(run.state) }, true), "ok");
      await refresh();
    } catch (err) {
      say(N.describeError(err), "error");
      button.disabled = false;
    }
  });

  $("btn-cancel-run").addEventListener("click", async () => {
    const id = state.busyRun;
    if (id === null) return;
    const question = interpolate(
      gettext("Cancel training run #%(id)s? The model serving now stays; a run in progress stops at the end of its epoch."),
      { id }, true);
    if (!window.confirm(question)) return;
    const button = $("btn-cancel-run");
    button.disabled = true;
    try {
      await N.api.post(endpoints.cancelRun(id), {});
      N.flash(interpolate(gettext("Training run #%(id)s is cancelled."), { id }, true), "ok");
      await refresh();
    } catch (err) {
      say(N.describeError(err), "error");
      await refresh();
    } finally {
      button.disabled = false;
    }
  });

  // ---- polling -------------------------------------------------------------------------------

  /** Fetch one source; draw it only when its JSON changed since the last poll. */
  async function pull(name, draw) {
    let data;
    try {
      data = await N.api.get(endpoints[name]());
    } catch (err) {
      if (name === "activity" && err instanceof N.ApiError && err.status === 404) {
        state.noActivity = true; // not offered by this API: stop asking every few seconds
        activityMissing();
      } else {
        say(N.describeError(err), "error");
        // no longer a member, or a role that may not read this: asking again will not help
        if (err instanceof N.ApiError && [401, 403, 404].includes(err.status)) state.stopped = true;
      }
      return false;
    }
    const key = JSON.stringify(data);
    if (state.last[name] === key) return true;
    state.last[name] = key;
    draw(data);
    return true;
  }

  async function refresh() {
    await Promise.all([
      pull("progress", drawProgress),
      pull("metrics", (data) => {
        const points = pointsFrom(data);
        state.points = points;
        drawChart(points);
        drawVersions(points);
        drawBusy(data);
        drawDefault(data);
        state.nothingNew = data.new_since_last_run === 0;
        const blocked = $("stat-cannot-train");
        blocked.hidden = !data.cannot_train;
        blocked.textContent = data.cannot_train
          ? interpolate(gettext("Training cannot start: %(why)s"), { why: data.cannot_train }, true)
          : "";
      }),
      pull("runs", (data) => {
        state.hasRuns = (data.results || data).length > 0;
        drawRuns(data.results || data);
      }),
      state.noActivity ? null : pull("activity", drawActivity),
    ]);
    if (state.stopped) {
      clearTimeout(state.timer);
      $("dash-updated").textContent = gettext("not updated: reload the page once the problem is solved");
      return;
    }
    $("dash-updated").textContent = interpolate(
      gettext("updated %(time)s"), { time: new Date().toLocaleTimeString(pageLanguage) }, true);
  }

  function schedule() {
    clearTimeout(state.timer);
    if (state.stopped) return;
    state.timer = setTimeout(async () => {
      if (!document.hidden) await refresh();
      schedule();
    }, POLL_MS);
  }

  async function start() {
    try {
      state.project = await N.api.get(endpoints.project());
    } catch (err) {
      say(N.describeError(err), "error");
      return;
    }
    $("nav-project-name").textContent = state.project.name;
    $("nav-project-name").title = state.project.name; // the whole name, when the bar cuts it short
    if (N.clientOnly(state.project)) return;
    state.isAdmin = state.project.role === "admin";
    N.revealAdmin(state.isAdmin);
    $("per-day-scope").hidden = state.isAdmin; // the API gives annotators their own rows only
    state.colours = N.labelColours(state.project.labels || []);
    await refresh();
    schedule();
  }

  start();
})();
