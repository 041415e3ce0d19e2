/* Document list: filter, search and page through a project's documents, and open one in the
 * workspace. The filters live in the page's URL, so the back button and a shared link
 * return to the same list. Opening a document remembers the ids of the page on screen
 * (sessionStorage), so the workspace can go on to the next one after saving. */
(function () {
  "use strict";
  const N = window.Nerloop;
  const gettext = N.gettext;
  const interpolate = N.interpolate;
  const projectId = N.projectId();
  const $ = (id) => document.getElementById(id);
  const FILTERS = ["q", "split", "status", "ordering"];
  const PREVIEW = 300; // characters of a document the list shows
  const PAGE_SIZE = 100; // the API's page

  let colours = {};
  let page = 1;
  let pages = 1;
  let toLastPage = false;
  let shownIds = [];
  let listed = 0; // documents the filters match, every page
  let loadToken = 0;
  const defaults = Object.fromEntries(FILTERS.map((name) => [name, $("f-" + name).value]));

  function filtersFromUrl() {
    const params = new URLSearchParams(location.search);
    for (const name of FILTERS) $("f-" + name).value = params.get(name) || defaults[name];
    page = Math.max(1, Number(params.get("page")) || 1);
  }

  function query() {
    const params = new URLSearchParams();
    for (const name of FILTERS) {
      const value = $("f-" + name).value.trim();
      if (value) params.set(name, value);
    }
    if (page > 1) params.set("page", String(page));
    return params.toString();
  }

  function say(message, kind) {
    $("doc-status").textContent = message;
    $("doc-status").className = "status-line" + (kind ? " " + kind : "");
  }

  function workspaceUrl(id) {
    return `/projects/${projectId}/annotate/?document=${id}`;
  }

  function row(doc) {
    const tr = document.createElement("tr");
    tr.dataset.docId = String(doc.id);
    const cells = [];
    const idCell = document.createElement("td");
    const link = document.createElement("a");
    link.href = workspaceUrl(doc.id);
    link.textContent = `#${doc.id}`;
    link.className = "doc-link";
    idCell.append(link);
    cells.push(idCell);
    const text = document.createElement("td");
    text.className = "doc-text doc-cell";
    text.lang = "zh";
    const annotation = doc.annotation;
    // A long document shows its beginning: the whole text is the workspace's job.
    const points = Array.from(doc.text);
    const shown = points.length > PREVIEW ? points.slice(0, PREVIEW).join("") : doc.text;
    const spans = (annotation ? annotation.spans : []).filter((s) => s.end <= PREVIEW);
    N.renderHighlighted(text, shown, spans, colours);
    if (points.length > PREVIEW) {
      const more = document.createElement("span");
      more.className = "muted";
      more.textContent = " " + interpolate(gettext("… (%(n)s characters in all)"), { n: points.length }, true);
      text.append(more);
    }
    cells.push(text);
    const split = document.createElement("td");
    split.textContent = N.docWord(doc.split);
    cells.push(split);
    const statusCell = document.createElement("td");
    const badge = document.createElement("span");
    badge.className = `badge badge-doc-${doc.status}`;
    badge.textContent = N.docWord(doc.status);
    statusCell.append(badge);
    cells.push(statusCell);
    const uncertainty = document.createElement("td");
    uncertainty.textContent = typeof doc.uncertainty === "number" ? doc.uncertainty.toFixed(3) : "–";
    cells.push(uncertainty);
    const annotator = document.createElement("td");
    annotator.textContent = annotation ? annotation.annotator || "" : "";
    cells.push(annotator);
    tr.append(...cells);
    text.addEventListener("click", () => link.click());
    return tr;
  }

  /** Show the page the filters and ``page`` ask for. ``push``: a step of its own in the
   *  browser's history (another page, another filter), so Back returns to the one before. */
  async function load({ push = false } = {}) {
    const token = ++loadToken;
    const qs = query();
    const address = location.pathname + (qs ? "?" + qs : "");
    if (push && address !== location.pathname + location.search) history.pushState(null, "", address);
    else history.replaceState(null, "", address);
    let data;
    try {
      data = await N.api.get(`projects/${projectId}/documents` + (qs ? "?" + qs : ""));
    } catch (err) {
      if (token !== loadToken) return;
      if (err.status === 404 && page > 1) {
        // past the end (documents deleted, filters changed, an old link): learn the count
        // from the first page, then show the last one
        page = 1;
        toLastPage = true;
        return load();
      }
      say(N.describeError(err), "error");
      return;
    }
    if (token !== loadToken) return; // an older answer after a newer request
    say("");
    $("doc-rows").replaceChildren(...data.results.map(row));
    shownIds = data.results.map((doc) => doc.id);
    $("doc-empty").hidden = data.results.length > 0;
    pages = Math.max(1, Math.ceil(data.count / PAGE_SIZE));
    if (toLastPage) {
      toLastPage = false;
      if (pages > 1) {
        page = pages;
        return load();
      }
    }
    $("page-info").textContent = interpolate(
      gettext("%(count)s documents · page %(page)s of %(pages)s"),
      { count: data.count, page, pages },
      true,
    );
    $("btn-prev").disabled = !data.previous;
    $("btn-next").disabled = !data.next;
    listed = data.count;
    $("btn-delete-listed").disabled = !(filtered() && listed > 0);
  }

  /** The filters that narrow the list (the order does not): deleting needs one. */
  function filtered() {
    const params = new URLSearchParams();
    for (const name of FILTERS) {
      const value = $("f-" + name).value.trim();
      if (value && name !== "ordering") params.set(name, value);
    }
    return params.toString();
  }

  async function deleteListed() {
    const qs = filtered();
    if (!qs || !listed) return;
    const question = interpolate(
      gettext("Delete the %(count)s documents this list shows (on every page), with their annotations and predictions? This cannot be undone."),
      { count: listed }, true);
    if (!window.confirm(question)) return;
    $("btn-delete-listed").disabled = true;
    try {
      const answer = await N.api.del(`projects/${projectId}/documents?${qs}`);
      N.flash(interpolate(gettext("Deleted %(count)s documents."), { count: answer.deleted }, true), "ok");
      page = 1;
      await load();
    } catch (err) {
      say(N.describeError(err), "error");
      $("btn-delete-listed").disabled = false;
    }
  }

  function rememberList() {
    sessionStorage.setItem(
      `nerloop:documents:${projectId}`,
      JSON.stringify({ ids: shownIds, back: location.pathname + location.search }),
    );
  }

  const reload = (push = true) => {
    page = 1;
    load({ push });
  };
  for (const name of ["split", "status", "ordering"]) $("f-" + name).addEventListener("change", () => reload());
  $("f-q").addEventListener("input", N.debounce(() => reload(false), 250)); // not a step per key
  $("doc-filters").addEventListener("submit", (event) => {
    event.preventDefault();
    reload();
  });
  $("btn-prev").addEventListener("click", () => {
    page = Math.max(1, page - 1);
    load({ push: true });
  });
  $("btn-next").addEventListener("click", () => {
    page = Math.min(pages, page + 1);
    load({ push: true });
  });
  window.addEventListener("popstate", () => {
    filtersFromUrl();
    load();
  });
  $("btn-delete-listed").addEventListener("click", deleteListed);
  $("doc-rows").addEventListener("click", (event) => {
    if (event.target.closest("a.doc-link")) rememberList();
  });

  async function start() {
    filtersFromUrl();
    try {
      const project = await N.api.get(`projects/${projectId}`);
      $("nav-project-name").textContent = project.name;
      $("nav-project-name").title = project.name; // the whole name, when the bar cuts it short
      if (N.clientOnly(project)) return;
      N.revealAdmin(project.role === "admin");
      colours = N.labelColours(project.labels || []);
    } catch (err) {
      say(N.describeError(err), "error");
      return;
    }
    load();
  }

  start();
})();
