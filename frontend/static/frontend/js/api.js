/* Shared by every page: fetch() with the session cookie and CSRF token, API errors put into
 * words, code-point text helpers, label colours and the highlighted-text renderer.
 *
 * Offsets: the API counts Unicode code points (Python str indices); JavaScript strings count
 * UTF-16 code units. Everything here works on Array.from(text), one element per code point,
 * so characters outside the BMP (emoji, U+20BB7 "𠮷") never shift a span.
 *
 * Text from users is only ever put into the page with textContent / createTextNode.
 */
(function () {
  "use strict";

  const gettext = window.gettext || ((s) => s);
  const interpolate =
    window.interpolate ||
    ((fmt, obj) => fmt.replace(/%\((\w+)\)s/g, (_, key) => String(obj[key])));

  class ApiError extends Error {
    constructor(status, code, message, detail) {
      super(message);
      this.name = "ApiError";
      this.status = status;
      this.code = code;
      this.detail = detail;
    }
  }

  /** The CSRF token as of now: the cookie, which logging in again (in another tab) renews,
   * else the one the page was rendered with. */
  function csrfToken() {
    const cookie = document.cookie.split("; ").find((part) => part.startsWith("csrftoken="));
    if (cookie) return decodeURIComponent(cookie.slice("csrftoken=".length));
    const meta = document.querySelector('meta[name="csrf-token"]');
    return meta ? meta.content : "";
  }

  function apiRoot() {
    return (document.body && document.body.dataset.apiRoot) || "/api/v1/";
  }

  function errorFrom(status, data) {
    if (data && typeof data === "object" && data.error) {
      const err = data.error;
      return new ApiError(status, err.code || String(status), err.message || "", err.detail);
    }
    if (data && typeof data === "object" && typeof data.detail === "string") {
      return new ApiError(status, String(status), data.detail, null);
    }
    return new ApiError(status, String(status), typeof data === "string" ? data : "", data);
  }

  /** Call the REST API. Resolves with the parsed JSON (null for 204), rejects with ApiError. */
  async function request(method, path, body, options) {
    const url = path.startsWith("/") ? path : apiRoot() + path;
    // the API answers in the page's language (DRF's field messages, Django's): an English
    // browser on the Chinese UI would otherwise get English messages inside Chinese ones
    const headers = {
      Accept: "application/json",
      "Accept-Language": document.documentElement.lang || "zh-hans",
    };
    let payload;
    if (body instanceof FormData) {
      payload = body;
    } else if (body !== undefined) {
      headers["Content-Type"] = "application/json";
      payload = JSON.stringify(body);
    }
    if (method !== "GET" && method !== "HEAD") headers["X-CSRFToken"] = csrfToken();
    let response;
    try {
      response = await fetch(url, {
        method,
        headers,
        body: payload,
        credentials: "same-origin",
        signal: options && options.signal,
        keepalive: Boolean(options && options.keepalive), // outlives the page (pagehide)
      });
    } catch (err) {
      if (err && err.name === "AbortError") throw err;
      throw new ApiError(0, "network", "", null);
    }
    if (response.status === 204) return null;
    const text = await response.text();
    let data = null;
    if (text) {
      try {
        data = JSON.parse(text);
      } catch (_parseError) {
        data = text;
      }
    }
    if (!response.ok) throw errorFrom(response.status, data);
    return data;
  }

  const api = {
    get: (path, options) => request("GET", path, undefined, options),
    post: (path, body, options) => request("POST", path, body, options),
    put: (path, body, options) => request("PUT", path, body, options),
    patch: (path, body, options) => request("PATCH", path, body, options),
    del: (path, options) => request("DELETE", path, undefined, options),
    request,
  };

  /** Every page of a paginated DRF list, or the list itself when it is not paginated. */
  async function getAll(path) {
    let data = await api.get(path);
    if (Array.isArray(data)) return data;
    const items = [...(data.results || [])];
    while (data.next) {
      // DRF's next link is absolute (http://host/api/v1/...?page=2): ask for its path
      const next = new URL(data.next, location.href);
      data = await api.get(next.pathname + next.search);
      items.push(...(data.results || []));
    }
    return items;
  }

  /** A field as the form on screen names it (its label's words before any explanation in
   * brackets), else the API's field name. */
  function fieldName(key) {
    const input = document.getElementById(`f-${key}`) || document.getElementById(`m-${key}`);
    const label = input && (input.closest("label") || document.querySelector(`label[for="${input.id}"]`));
    const words = label && label.firstChild ? label.firstChild.textContent.trim() : "";
    return words ? words.split(/\s*[（(]/)[0] : key;
  }

  function flattenDetail(detail) {
    if (detail === null || detail === undefined) return "";
    if (typeof detail === "string") return detail;
    if (Array.isArray(detail)) return detail.map(flattenDetail).filter(Boolean).join("; ");
    if (typeof detail === "object") {
      return Object.entries(detail)
        .map(([key, value]) => {
          const text = flattenDetail(value);
          return key === "non_field_errors" || key === "detail" ? text : `${fieldName(key)}: ${text}`;
        })
        .filter(Boolean)
        .join("; ");
    }
    return String(detail);
  }

  const pgettext = window.pgettext || ((_context, s) => s);
  // A document's status and split as the page's language says them.
  const DOC_WORDS = {
    new: pgettext("document status", "new"),
    predicted: pgettext("document status", "predicted"),
    queued: pgettext("document status", "queued"),
    annotated: pgettext("document status", "annotated"),
    validated: pgettext("document status", "validated"),
    train: pgettext("split", "train"),
    eval: pgettext("split", "eval"),
  };
  const docWord = (value) => DOC_WORDS[value] || value;

  // The error catalogue (nerloop/errors.py) in the page's language; the server's own words
  // for the particular case follow.
  const CODE_TITLES = {
    E101: gettext("Invalid spans"),
    E102: gettext("This document was saved elsewhere since you loaded it (by someone else, or in another tab)"),
    E103: gettext("The documents could not be imported"),
    E104: gettext("The label is still used by annotations: it cannot be removed or renamed"),
    E105: gettext("This queue item is not assigned to you"),
    E106: gettext("Invalid label schema"),
    E107: gettext("A project must keep at least one admin"),
    E108: gettext("The project is training: delete it once the run has ended"),
    E109: gettext("This document has a validated answer: save your changes instead of a draft"),
    E201: gettext("No model is ready to serve this"),
    E203: gettext("Invalid prediction request"),
    E204: gettext("The task broker is unreachable; nothing was queued"),
    E301: gettext("Training failed"),
    E302: gettext("Not enough labelled data to train"),
    E303: gettext("The training run was cancelled"),
    E304: gettext("The training run has already ended"),
  };

  /** An error's detail in words: an import's first problem and how many more there are,
   * else every field's complaint. */
  function detailText(detail) {
    if (detail && typeof detail === "object" && typeof detail.message === "string") {
      const problems = Array.isArray(detail.problems) ? detail.problems.length : 0;
      const more = Math.max(0, problems - 1) + (detail.more || 0);
      if (!more) return detail.message;
      const text = detail.more_at_least
        ? gettext("%(first)s (and at least %(n)s more problems)")
        : gettext("%(first)s (and %(n)s more problems)");
      return interpolate(text, { first: detail.message, n: more }, true);
    }
    return flattenDetail(detail);
  }

  /** A sentence an annotator can act on, for any error fetch() or the API gave. */
  function describeError(err) {
    if (!(err instanceof ApiError)) {
      return interpolate(gettext("Something went wrong in the page: %(error)s"), {
        error: String(err && err.message ? err.message : err),
      }, true);
    }
    const detail = detailText(err.detail);
    // A catalogue code has its title, and the detail when it says more than the message; a
    // validation error without one says its detail (it names the field as the form does).
    const title = CODE_TITLES[err.code] || "";
    const reason = title ? (detail !== err.message ? detail : "") : detail || err.message;
    const said = [title, reason].filter(Boolean).join(": ");
    if (err.code === "not_authenticated" || err.status === 401) {
      return gettext("Your session has ended. Log in again (in another tab to keep this page).");
    }
    switch (err.status) {
      case 0:
        return gettext("Could not reach the server. Check the connection and try again.");
      case 400:
        return interpolate(gettext("The server refused this: %(reason)s"), { reason: said }, true);
      case 403:
        return gettext("You are not allowed to do this in this project.");
      case 404:
        return gettext("Not found: it may have been removed, or it is not in your projects.");
      case 409:
        return interpolate(
          gettext("Conflict: %(reason)s."),
          { reason: said || gettext("someone else changed this since you loaded it") },
          true,
        );
      case 503:
        return interpolate(
          gettext("The service is not available right now: %(reason)s"),
          { reason: said || gettext("try again in a moment") },
          true,
        );
      default:
        return interpolate(
          gettext("The server answered %(status)s: %(reason)s"),
          { status: err.status, reason: said || gettext("no details") },
          true,
        );
    }
  }

  let flashTimer = null;
  /** Show a message in the page's status bar (textContent only). */
  function flash(message, kind, sticky) {
    const box = document.getElementById("flash");
    if (!box) return;
    box.textContent = message;
    box.className = "flash flash-" + (kind || "info");
    box.hidden = false;
    clearTimeout(flashTimer);
    if (!sticky) flashTimer = setTimeout(() => (box.hidden = true), 6000);
  }

  // ---- code points --------------------------------------------------------------------

  const chars = (text) => Array.from(text);

  /** Code-point offset of a DOM position inside container (whose textContent is the text). */
  function cpOffsetOf(container, node, offset, roundDown) {
    const range = document.createRange();
    range.setStart(container, 0);
    range.setEnd(node, offset);
    const before = range.toString();
    let count = Array.from(before).length;
    const last = before.charCodeAt(before.length - 1);
    // A position between the two halves of a surrogate pair: round to a character edge.
    if (roundDown && last >= 0xd800 && last <= 0xdbff) count -= 1;
    return count;
  }

  /** The DOM (text node, UTF-16 offset) for a code-point offset inside container. */
  function domPointAt(container, cp) {
    const walker = document.createTreeWalker(container, NodeFilter.SHOW_TEXT);
    let seen = 0;
    let node = walker.nextNode();
    let lastNode = null;
    while (node) {
      const points = Array.from(node.data);
      if (cp <= seen + points.length) {
        return { node, offset: points.slice(0, cp - seen).join("").length };
      }
      seen += points.length;
      lastNode = node;
      node = walker.nextNode();
    }
    return lastNode ? { node: lastNode, offset: lastNode.data.length } : { node: container, offset: 0 };
  }

  // ---- colours ------------------------------------------------------------------------

  const DEFAULT_COLOURS = { PER: "#ef4444", LOC: "#22d3ee", ORG: "#facc15" };
  const PALETTE = [
    "#a78bfa", "#34d399", "#fb923c", "#f472b6", "#60a5fa", "#a3e635",
    "#e879f9", "#2dd4bf", "#f87171", "#d6d3d1", "#fde047", "#38bdf8",
  ];

  /** label -> colour: the schema's own colour, else PER/LOC/ORG defaults, else distinct ones. */
  function labelColours(labels) {
    const colours = {};
    const taken = new Set();
    for (const label of labels) {
      const name = typeof label === "string" ? label : label.name;
      const own = typeof label === "object" && label.colour ? label.colour : label.color;
      const colour = own || DEFAULT_COLOURS[name];
      if (colour) {
        colours[name] = colour;
        taken.add(colour.toLowerCase());
      }
    }
    const free = PALETTE.filter((c) => !taken.has(c));
    let next = 0;
    for (const label of labels) {
      const name = typeof label === "string" ? label : label.name;
      if (colours[name]) continue;
      colours[name] = next < free.length ? free[next] : `hsl(${(next * 137.508) % 360}, 75%, 62%)`;
      next += 1;
    }
    return colours;
  }

  /** Black or white, whichever reads better on the given #rrggbb background. */
  function inkFor(colour) {
    const m = /^#?([0-9a-f]{2})([0-9a-f]{2})([0-9a-f]{2})$/i.exec(colour || "");
    if (!m) return "#0b1020";
    // WCAG relative luminance (sRGB decoded to linear light), then the ink of the higher
    // contrast ratio: #0b1020 has luminance 0.0057, white 1
    const [r, g, b] = m.slice(1).map((h) => {
      const c = parseInt(h, 16) / 255;
      return c <= 0.04045 ? c / 12.92 : ((c + 0.055) / 1.055) ** 2.4;
    });
    const lum = 0.2126 * r + 0.7152 * g + 0.0722 * b;
    return (lum + 0.05) / (0.0057 + 0.05) >= 1.05 / (lum + 0.05) ? "#0b1020" : "#ffffff";
  }

  /**
   * Render text with its spans into container: plain runs as text, spans as <mark> carrying
   * data-start/data-end (code points) and data-label. container.textContent === text always.
   */
  function renderHighlighted(container, text, spans, colours, decorate) {
    const points = Array.from(text);
    const sorted = spans
      .map((span, index) => ({ span, index }))
      .sort((a, b) => a.span.start - b.span.start);
    const nodes = [];
    let pos = 0;
    for (const { span, index } of sorted) {
      if (span.start < pos || span.end > points.length || span.start >= span.end) continue;
      if (span.start > pos) nodes.push(document.createTextNode(points.slice(pos, span.start).join("")));
      const mark = document.createElement("mark");
      mark.className = "ent";
      mark.textContent = points.slice(span.start, span.end).join("");
      mark.dataset.start = String(span.start);
      mark.dataset.end = String(span.end);
      mark.dataset.label = span.label;
      mark.dataset.index = String(index);
      const colour = colours[span.label] || "#94a3b8";
      mark.style.setProperty("--ent", colour);
      mark.style.setProperty("--ent-ink", inkFor(colour));
      if (decorate) decorate(mark, span, index);
      nodes.push(mark);
      pos = span.end;
    }
    if (pos < points.length) nodes.push(document.createTextNode(points.slice(pos).join("")));
    container.replaceChildren(...nodes);
  }

  /** A legend: one swatch per label (textContent only). */
  function renderLegend(container, labels, colours, hotkeys) {
    container.replaceChildren();
    labels.forEach((name, i) => {
      const item = document.createElement("span");
      item.className = "legend-item";
      item.style.setProperty("--ent", colours[name]);
      item.style.setProperty("--ent-ink", inkFor(colours[name]));
      if (hotkeys) {
        const key = document.createElement("kbd");
        key.textContent = hotkeys[i] || "";
        item.append(key);
      }
      const label = document.createElement("span");
      label.textContent = name;
      item.append(label);
      container.append(item);
    });
  }

  function debounce(fn, wait) {
    let timer = null;
    return function (...args) {
      clearTimeout(timer);
      timer = setTimeout(() => fn.apply(this, args), wait);
    };
  }

  function projectId() {
    const raw = document.body.dataset.projectId;
    return raw ? Number(raw) : null;
  }

  /** Show the elements marked data-admin-only when the caller administers the project. */
  /** For a client (predict-only) member: say where to go instead, hide the project's
   * annotator pages, and answer true so the page stops there. */
  function clientOnly(project) {
    if (!project || project.role !== "client") return false;
    document.querySelectorAll(".mainnav a[href*='/projects/']").forEach((el) => (el.hidden = true));
    const main = document.querySelector("main.page");
    const note = document.createElement("section");
    note.className = "card stack";
    note.id = "client-only";
    const text = document.createElement("p");
    text.textContent = gettext(
      "Your role in this project is client: you can use its model through the prediction API and the playground. Annotating, documents and the dashboard are for annotators and admins.");
    const link = document.createElement("a");
    link.className = "btn btn-primary";
    link.href = `/playground/?project=${project.id}`;
    link.textContent = gettext("Open the playground");
    note.append(text, link);
    main.replaceChildren(note);
    return true;
  }

  function revealAdmin(isAdmin) {
    document.querySelectorAll("[data-admin-only]").forEach((el) => {
      el.hidden = !isAdmin;
    });
    document.body.classList.toggle("is-admin", Boolean(isAdmin));
  }

  /** What goes between two sentences of a message: nothing after Chinese punctuation. */
  const CHINESE = (document.documentElement.lang || "").startsWith("zh");
  const GAP = CHINESE ? "" : " ";

  /** Give each cell of ``tbody`` its column's heading as ``data-label``: a narrow screen
   *  shows a ``table.stack`` row as a block of "heading: value" lines. */
  function labelCells(tbody) {
    const headings = [...tbody.closest("table").tHead.rows[0].cells].map((th) => th.textContent.trim());
    for (const row of tbody.rows) {
      [...row.cells].forEach((cell, i) => { cell.dataset.label = headings[i] || ""; });
    }
  }

  /** Sentences as one message; one that does not end a sentence (a server's reason, say
   *  "…(absolute F1)") gets a full stop, so the next does not run on from it. */
  function sentences(...parts) {
    return parts.filter(Boolean).map((part, i, all) =>
      i < all.length - 1 && !/[。！？.!?]$/.test(part) ? part + (CHINESE ? "。" : ".") : part,
    ).join(GAP);
  }

  window.Nerloop = {
    GAP,
    sentences,
    labelCells,
    api,
    getAll,
    ApiError,
    describeError,
    docWord,
    flash,
    flattenDetail,
    chars,
    cpOffsetOf,
    domPointAt,
    labelColours,
    inkFor,
    renderHighlighted,
    renderLegend,
    debounce,
    projectId,
    revealAdmin,
    clientOnly,
    gettext,
    interpolate,
    DEFAULT_COLOURS,
  };
})();
