/* Annotator workspace: the review queue, one document at a time.
 *
 * State is a list of spans in code points ({start, end, label, score, suggested}); every
 * change goes through change() so undo/redo is a stack of snapshots. The model's
 * pre-annotation arrives as "suggested" spans (dashed); Enter submits what is on screen, so
 * accepting a correct pre-annotation is one keystroke.
 *
 * Prefetch: once a document is on screen the page asks queue/next?exclude=<its id>, which
 * claims the following item for this annotator too (the server holds at most two per
 * person, each with its own expiry). Submitting or skipping then shows that item as soon as
 * the server has accepted the decision, without waiting for another queue/next.
 *
 * Document mode (?document=<id>, opened from the document list): that document, whatever its
 * split or status, with its saved annotation (or the model's suggestions when it has none).
 * Saving or skipping goes on to the next document of the list page it was opened from, then
 * back to that list. Nothing is claimed from the queue in this mode. With &back=queue (the
 * "correct it" link after a queue submission) saving returns to the queue instead.
 */
(function () {
  "use strict";
  const N = window.Nerloop;
  const gettext = N.gettext;
  const interpolate = N.interpolate;
  const projectId = N.projectId();
  const $ = (id) => document.getElementById(id);

  const view = $("doc-view");
  const labelBar = $("label-bar");
  const menu = $("span-menu");
  const tooltip = $("tooltip");
  const caretEl = $("caret");
  const statusLine = $("ws-status");
  const draftTitle = $("btn-draft").title;
  const CARRIED = "nerloop-carried-spans-"; // + document id, in sessionStorage
  const SKIP_CONFIRM_MS = 5000; // a second S within this drops the changes and skips
  const threshold = $("threshold");
  const opened = new URLSearchParams(location.search).get("document");
  const documentMode = opened !== null && /^[0-9]+$/.test(opened);
  const backToQueue = documentMode && new URLSearchParams(location.search).get("back") === "queue";
  const listKey = `nerloop:documents:${projectId}`;

  // Enter within this many ms of a document appearing is a double press, not a decision.
  const FRESH_MS = 250;
  // An item fetched ahead is shown only while its claim has at least this long left.
  const PREFETCH_MARGIN_MS = 60_000;

  const state = {
    labels: [], // [{name, color, hotkey}]
    colours: {},
    keyToLabel: {},
    item: null, // the queue item on screen
    text: "",
    length: 0,
    spans: [],
    bounds: null, // {text, at}: grapheme boundaries of the text (graphemeBounds)
    undo: [],
    redo: [],
    focus: -1, // index into spans of the focused span
    sel: null, // {start, end} selection in code points, waiting for a label
    caret: 0,
    anchor: null,
    shownAt: 0,
    untouched: false, // the document on screen came after a submission, and nothing was done yet
    submitting: false,
    isAdmin: false,
    loading: false,
    upcoming: null, // Promise of {item, usableUntil} | null: the item fetched ahead
    upcomingId: null, // its document id once it has come, until it is shown or given back
  };

  const endpoints = {
    project: () => `projects/${projectId}`,
    next: (exclude) =>
      `projects/${projectId}/queue/next` + (exclude ? `?exclude=${encodeURIComponent(exclude)}` : ""),
    document: (docId) => `projects/${projectId}/documents/${docId}`,
    submit: (docId) => `projects/${projectId}/documents/${docId}/annotation`,
    skip: (docId) => `projects/${projectId}/queue/${docId}/skip`,
    release: (docId) => `projects/${projectId}/queue/${docId}/release`,
    progress: () => `projects/${projectId}/progress`,
  };

  // ---- status ---------------------------------------------------------------------------

  // between two sentences: Chinese runs them on after its full stop, English adds a space
  const GAP = N.GAP;

  function say(message, kind) {
    statusLine.textContent = message;
    statusLine.className = "status-line" + (kind ? " " + kind : "");
  }

  function sayError(err) {
    say(N.describeError(err), "error");
  }

  /** A refused save of an item saved elsewhere (another tab, someone else) or no longer
   * held: say so, keep the annotator's spans on the page, and offer the next item. */
  function offerNext(err) {
    say(N.sentences(N.describeError(err), gettext("Your spans are still on the page.")), "error");
    if (documentMode) {
      // the saved version replaces the page's spans; undo brings them back
      const reload = document.createElement("button");
      reload.type = "button";
      reload.id = "btn-load-saved";
      reload.className = "btn btn-small";
      reload.textContent = gettext("Load the saved version");
      reload.addEventListener("click", async () => {
        const mine = snapshot();
        await openDocument((state.item.document || state.item).id);
        keepForUndo(mine);
      });
      statusLine.append(" ", reload);
      return;
    }
    // The saved version opens on the document's own page, where Ctrl+Z brings these spans
    // back to save over it (they travel in this tab's sessionStorage).
    const doc = state.item.document || state.item;
    const open = document.createElement("button");
    open.type = "button";
    open.id = "btn-open-saved";
    open.className = "btn btn-small";
    open.textContent = gettext("Load the saved version");
    open.addEventListener("click", () => {
      sessionStorage.setItem(CARRIED + doc.id, JSON.stringify(snapshot()));
      state.undo = []; // carried along: leaving loses nothing
      location.assign(`/projects/${projectId}/annotate/?document=${doc.id}&back=queue`);
    });
    statusLine.append(" ", open);
    const next = document.createElement("button");
    next.type = "button";
    next.id = "btn-next-item";
    next.className = "btn btn-small";
    next.textContent = gettext("Next document");
    next.addEventListener("click", () => advance());
    statusLine.append(" ", next);
  }

  // ---- rendering ------------------------------------------------------------------------

  function renderLabelBar() {
    labelBar.replaceChildren();
    if (!state.labels.length) {
      labelBar.textContent = gettext("This project has no labels yet: an admin adds them in Settings.");
    }
    state.labels.forEach((label) => {
      const button = document.createElement("button");
      button.type = "button";
      button.className = "label-btn";
      button.dataset.label = label.name;
      button.style.setProperty("--ent", state.colours[label.name]);
      button.style.setProperty("--ent-ink", N.inkFor(state.colours[label.name]));
      if (label.hotkey) {
        const key = document.createElement("kbd");
        key.textContent = label.hotkey;
        button.append(key);
      }
      const name = document.createElement("span");
      name.textContent = label.name;
      button.append(name);
      button.addEventListener("mousedown", (event) => event.preventDefault());
      button.addEventListener("click", () => applyLabel(label.name));
      labelBar.append(button);
    });
  }

  let drawn = null; // what the text and span list show now

  function render() {
    const t = Number(threshold.value);
    // Moving the caret or the selection changes neither: a long text with thousands of spans
    // is redrawn only when its spans, focus or threshold change.
    const showing = JSON.stringify([state.text, state.spans, state.focus, t, state.colours]);
    if (showing !== drawn) {
      N.renderHighlighted(view, state.text, state.spans, state.colours, (mark, span, index) => {
        if (span.suggested) mark.classList.add("suggested");
        if (span.suggested && span.score !== null && span.score < t) mark.classList.add("low");
        if (index === state.focus) mark.classList.add("focused");
        mark.setAttribute("role", "button");
        const whose = span.suggested ? ` (${gettext("model suggestion")})` : "";
        mark.setAttribute("aria-label", `${span.label}: ${mark.textContent}${whose}`);
        if (index === state.focus) mark.setAttribute("aria-current", "true");
      });
      renderSpanList();
      drawn = showing;
    }
    labelBar.querySelectorAll(".label-btn").forEach((button) => {
      button.classList.toggle("armed", Boolean(state.sel) || state.focus >= 0);
    });
    $("btn-undo").disabled = state.undo.length === 0;
    $("btn-redo").disabled = state.redo.length === 0;
    // a button that just went (the list redrawn) or was disabled (Undo with nothing left)
    // leaves focus on the page, where the next Enter would submit: the text takes it
    const active = document.activeElement;
    if (active && active.disabled && (active.id === "btn-undo" || active.id === "btn-redo")) {
      const other = $(active.id === "btn-undo" ? "btn-redo" : "btn-undo");
      (other.disabled ? view : other).focus({ preventScroll: true });
    } else if (state.item && (!active || active === document.body || active.disabled)) {
      view.focus({ preventScroll: true });
    }
    restoreSelection();
  }

  /** Where the span ``index`` sits in the span list (text order). */
  function listRowOf(index) {
    return state.spans
      .map((span, i) => ({ start: span.start, i }))
      .sort((a, b) => a.start - b.start)
      .findIndex((entry) => entry.i === index);
  }

  function renderSpanList() {
    const list = $("span-list");
    list.replaceChildren();
    const order = state.spans.map((span, index) => ({ span, index }));
    order.sort((a, b) => a.span.start - b.span.start);
    const points = Array.from(state.text); // once: a long text has thousands of spans
    for (const { span, index } of order) {
      const li = document.createElement("li");
      li.style.setProperty("--ent", state.colours[span.label] || "#94a3b8");
      const text = document.createElement("span");
      text.textContent = points.slice(span.start, span.end).join("");
      const info = document.createElement("span");
      info.className = "muted";
      const score = span.score === null || span.score === undefined ? "" : ` ${span.score.toFixed(2)}`;
      info.textContent = `${span.label}${score}${span.suggested ? " ·" + gettext("suggested") : ""}`;
      const del = document.createElement("button");
      del.type = "button";
      del.className = "btn btn-ghost btn-small";
      del.textContent = "×";
      del.title = gettext("Delete");
      del.setAttribute(
        "aria-label", interpolate(gettext("Delete %(span)s"), { span: spanName(span) }, true),
      );
      del.addEventListener("click", () => deleteSpan(index, { fromList: true }));
      li.append(text, info, del);
      list.append(li);
    }
    $("span-list-empty").hidden = state.spans.length > 0;
  }

  /** Keep the pending selection visible after a re-render replaced the text nodes. */
  function restoreSelection() {
    const selection = window.getSelection();
    if (!state.sel) {
      if (selection.rangeCount && view.contains(selection.anchorNode)) selection.removeAllRanges();
      placeCaret();
      return;
    }
    const a = N.domPointAt(view, state.sel.start);
    const b = N.domPointAt(view, state.sel.end);
    const range = document.createRange();
    range.setStart(a.node, a.offset);
    range.setEnd(b.node, b.offset);
    selection.removeAllRanges();
    selection.addRange(range);
    caretEl.hidden = true;
  }

  /** Draw the keyboard cursor between characters (a thin bar, not part of the text). */
  function placeCaret() {
    if (state.sel || state.anchor === null || !state.item) {
      caretEl.hidden = true;
      return;
    }
    const point = N.domPointAt(view, state.caret);
    const range = document.createRange();
    range.setStart(point.node, point.offset);
    range.collapse(true);
    let rect = range.getClientRects()[0];
    if (!rect && state.caret < state.length) {
      const next = N.domPointAt(view, state.caret + 1);
      range.setEnd(next.node, next.offset);
      rect = range.getClientRects()[0];
    }
    if (!rect) {
      caretEl.hidden = true;
      return;
    }
    const host = caretEl.parentElement.getBoundingClientRect();
    caretEl.style.left = `${rect.left - host.left}px`;
    caretEl.style.top = `${rect.top - host.top}px`;
    caretEl.style.height = `${rect.height}px`;
    caretEl.hidden = false;
  }

  // ---- changes (all undoable) -------------------------------------------------------------

  /** Spans a refused save in the queue carried over to this page: one Ctrl+Z away. */
  function takeCarriedSpans(id) {
    const carried = sessionStorage.getItem(CARRIED + id);
    if (carried === null) return;
    sessionStorage.removeItem(CARRIED + id);
    if (state.item) keepForUndo(JSON.parse(carried));
  }

  /** The saved version is on the page: the annotator's own spans (``mine``) are one Ctrl+Z
   *  away, to save over it. */
  function keepForUndo(mine) {
    if (JSON.stringify(mine) !== JSON.stringify(state.spans)) state.undo.push(mine);
    render();
    say(gettext("Loaded the saved version; Ctrl+Z brings your spans back to save over it."));
  }

  function snapshot() {
    return state.spans.map((span) => ({ ...span }));
  }

  function change(mutate) {
    state.undo.push(snapshot());
    state.redo = [];
    mutate();
    render();
  }

  function undo() {
    if (!state.undo.length) {
      say(gettext("Nothing to undo."));
      return;
    }
    state.redo.push(snapshot());
    state.spans = state.undo.pop();
    state.focus = -1;
    render();
    say(gettext("Undone."));
  }

  function redo() {
    if (!state.redo.length) {
      say(gettext("Nothing to redo."));
      return;
    }
    state.undo.push(snapshot());
    state.spans = state.redo.pop();
    state.focus = -1;
    render();
    say(gettext("Redone."));
  }

  /** "PER 张三": a span as a screen reader or a status line names it. */
  function spanName(span) {
    return `${span.label} ${Array.from(state.text).slice(span.start, span.end).join("")}`;
  }

  function applyLabel(label) {
    closeMenu();
    if (state.sel) {
      // whitespace at the edges is not part of a mention (the mouse trims it too)
      const points = Array.from(state.text);
      let { start, end } = state.sel;
      while (start < end && /\s/u.test(points[start])) start += 1;
      while (end > start && /\s/u.test(points[end - 1])) end -= 1;
      if (start === end) {
        say(gettext("Only spaces are selected: select the mention's characters."));
        return;
      }
      const replaced = state.spans.filter((s) => s.end > start && s.start < end);
      change(() => {
        state.spans = state.spans.filter((s) => s.end <= start || s.start >= end);
        state.spans.push({ start, end, label, score: null, suggested: false });
        state.sel = null;
        state.focus = state.spans.length - 1;
        state.caret = end;
      });
      const added = interpolate(gettext("Added %(label)s."), { label }, true);
      const gone = replaced.length
        ? GAP + interpolate(gettext("It replaces %(spans)s (Ctrl+Z undoes it)."),
          { spans: replaced.map(spanName).join(", ") }, true)
        : "";
      say(added + gone, "ok");
      return;
    }
    if (state.focus >= 0) {
      const index = state.focus;
      const before = spanName(state.spans[index]);
      if (state.spans[index].label === label && !state.spans[index].suggested) {
        say(interpolate(gettext("%(span)s is already %(label)s."), { span: before, label }, true));
        return;
      }
      change(() => {
        state.spans[index] = { ...state.spans[index], label, score: null, suggested: false };
      });
      say(interpolate(gettext("%(span)s is now %(label)s."), { span: before, label }, true), "ok");
      return;
    }
    if (!state.item) {
      say(gettext("No document is open."));
      return;
    }
    say(gettext("Select some text first (mouse, or Shift+arrows), then pick a label."));
  }

  function deleteSpan(index, { fromList = false } = {}) {
    closeMenu();
    if (index < 0 || index >= state.spans.length) return;
    const name = spanName(state.spans[index]);
    const row = fromList ? listRowOf(index) : -1;
    change(() => {
      state.spans.splice(index, 1);
      state.focus = -1;
    });
    if (row >= 0) {
      // the list was drawn anew: go on from the row that took the deleted one's place, so a
      // second Enter deletes the next span rather than landing on the page and submitting
      const buttons = $("span-list").querySelectorAll("button");
      const next = buttons[Math.min(row, buttons.length - 1)];
      if (next) next.focus();
      else view.focus({ preventScroll: true });
    }
    say(interpolate(gettext("Deleted %(span)s (Ctrl+Z undoes it)."), { span: name }, true), "ok");
  }

  function keepAboveThreshold() {
    const t = Number(threshold.value);
    const suggested = state.spans.filter((s) => s.suggested);
    if (!suggested.length) {
      say(gettext("No suggestions left to accept."));
      return;
    }
    const kept = suggested.filter((s) => s.score === null || s.score >= t).length;
    change(() => {
      state.spans = state.spans
        .filter((s) => !s.suggested || s.score === null || s.score >= t)
        .map((s) => ({ ...s, suggested: false }));
      state.focus = -1;
    });
    say(
      interpolate(
        gettext("Kept %(kept)s suggestion(s) at or above %(t)s, removed %(removed)s."),
        { kept, t: t.toFixed(2), removed: suggested.length - kept },
        true,
      ),
      "ok",
    );
  }

  // ---- the span menu and tooltip ------------------------------------------------------------

  function openMenu(index, anchor) {
    menu.replaceChildren();
    state.labels.forEach((label) => {
      const button = document.createElement("button");
      button.type = "button";
      button.className = "label-btn";
      button.setAttribute("role", "menuitem");
      button.style.setProperty("--ent", state.colours[label.name]);
      button.style.setProperty("--ent-ink", N.inkFor(state.colours[label.name]));
      button.textContent = label.name;
      button.addEventListener("click", () => {
        state.focus = index;
        applyLabel(label.name);
      });
      menu.append(button);
    });
    const del = document.createElement("button");
    del.type = "button";
    del.className = "btn btn-danger btn-small";
    del.id = "menu-delete";
    del.setAttribute("role", "menuitem");
    del.textContent = gettext("Delete");
    del.addEventListener("click", () => deleteSpan(index));
    menu.append(del);
    const host = menu.parentElement.getBoundingClientRect();
    const rect = anchor.getBoundingClientRect();
    menu.hidden = false; // measured once shown: it stays inside the card on a narrow screen
    const room = Math.max(0, host.width - menu.offsetWidth);
    menu.style.left = `${Math.min(room, Math.max(0, rect.left - host.left))}px`;
    menu.style.top = `${rect.bottom - host.top + 6}px`;
  }

  menu.addEventListener("focusout", (event) => {
    if (!menu.contains(event.relatedTarget)) menu.hidden = true; // Tab out of it closes it
  });

  function closeMenu() {
    const hadFocus = menu.contains(document.activeElement);
    menu.hidden = true;
    if (hadFocus) view.focus({ preventScroll: true }); // back to the text, not to the page
  }

  function showTooltip(mark) {
    const span = state.spans[Number(mark.dataset.index)];
    if (!span) return;
    const who = span.suggested ? gettext("model suggestion") : gettext("your span");
    const confidence =
      span.score === null || span.score === undefined
        ? gettext("no model confidence")
        : interpolate(gettext("confidence %(score)s"), { score: span.score.toFixed(3) }, true);
    tooltip.textContent = `${span.label} · ${confidence} · ${who}`;
    const rect = mark.getBoundingClientRect();
    tooltip.style.left = `${rect.left}px`;
    tooltip.style.top = `${rect.top - 34}px`;
    tooltip.hidden = false;
  }

  // ---- mouse --------------------------------------------------------------------------------

  /** The DOM selection inside the text as code-point offsets snapped to whole characters,
   *  untrimmed; null when there is none. */
  function rawSelection() {
    const selection = window.getSelection();
    if (!selection.rangeCount || selection.isCollapsed) return null;
    const range = selection.getRangeAt(0);
    if (!view.contains(range.startContainer) || !view.contains(range.endContainer)) return null;
    const start = snap(N.cpOffsetOf(view, range.startContainer, range.startOffset, true), false);
    const end = snap(N.cpOffsetOf(view, range.endContainer, range.endOffset, false), true);
    return start < end ? { start, end } : null;
  }

  function selectionFromDom() {
    const raw = rawSelection();
    if (!raw) return null;
    let { start, end } = raw;
    const points = Array.from(state.text);
    while (start < end && /\s/u.test(points[start])) start += 1;
    while (end > start && /\s/u.test(points[end - 1])) end -= 1;
    return start < end ? { start, end } : null;
  }

  // A selection made without a mouse (a long press and its handles on a touch screen, a
  // screen reader) arrives only as selectionchange. A mouse drag is left to mouseup, which
  // also says what to do next; a selection this page drew itself (the keyboard's) is known.
  let mouseDown = false;
  view.addEventListener("pointerdown", (event) => {
    if (event.pointerType === "mouse") mouseDown = true;
  });
  document.addEventListener("pointerup", () => {
    mouseDown = false;
  });
  document.addEventListener("selectionchange", () => {
    if (!state.item || mouseDown) return;
    const raw = rawSelection();
    if (!raw || (state.sel && raw.start === state.sel.start && raw.end === state.sel.end)) return;
    const sel = selectionFromDom();
    if (!sel || (state.sel && sel.start === state.sel.start && sel.end === state.sel.end)) return;
    state.sel = sel;
    state.anchor = sel.start;
    state.caret = sel.end;
    tooltip.hidden = true;
    if (state.focus >= 0 || !menu.hidden) {
      state.focus = -1; // a label now applies to the selection, not to a span picked before
      closeMenu();
      render();
    }
    labelBar.querySelectorAll(".label-btn").forEach((b) => b.classList.add("armed"));
  });

  view.addEventListener("mouseup", (event) => {
    state.untouched = false;
    if (!state.item) return;
    const sel = selectionFromDom();
    if (sel) {
      state.sel = sel;
      state.anchor = sel.start;
      state.caret = sel.end;
      state.focus = -1;
      closeMenu();
      labelBar.querySelectorAll(".label-btn").forEach((b) => b.classList.add("armed"));
      say(gettext("Now press a label's number key or click the label."));
      return;
    }
    const mark = event.target.closest("mark.ent");
    if (mark) {
      state.sel = null;
      state.focus = Number(mark.dataset.index);
      render();
      openMenu(state.focus, view.querySelector(`mark.ent[data-index="${state.focus}"]`));
    } else {
      state.sel = null;
      state.focus = -1;
      closeMenu();
      render();
    }
  });

  // hover is a mouse's: a tap would leave the tooltip standing (it is position: fixed)
  view.addEventListener("pointerover", (event) => {
    const mark = event.target.closest("mark.ent");
    if (mark && event.pointerType === "mouse") showTooltip(mark);
  });
  view.addEventListener("pointerout", (event) => {
    if (event.target.closest("mark.ent")) tooltip.hidden = true;
  });
  window.addEventListener("scroll", () => {
    tooltip.hidden = true;
  }, { passive: true });

  // ---- keyboard -----------------------------------------------------------------------------

  /** Code-point offsets where a user-perceived character starts, and the text's length: the
   * caret and selections stop only there, so 👨‍👩‍👧 or a letter with its accent is one step and
   * is never cut in two. */
  function graphemeBounds() {
    if (state.bounds && state.bounds.text === state.text) return state.bounds.at;
    const at = [];
    let offset = 0;
    if (typeof Intl !== "undefined" && Intl.Segmenter) {
      const segmenter = new Intl.Segmenter(undefined, { granularity: "grapheme" });
      for (const { segment } of segmenter.segment(state.text)) {
        at.push(offset);
        offset += Array.from(segment).length;
      }
    } else {
      for (offset = 0; offset < state.length; offset += 1) at.push(offset);
    }
    at.push(state.length);
    state.bounds = { text: state.text, at };
    return at;
  }

  /** The grapheme boundary at or before (``up`` false) or at or after (``up``) ``offset``. */
  function snap(offset, up) {
    const at = graphemeBounds();
    let lo = 0;
    let hi = at.length - 1;
    while (lo < hi) {
      const mid = (lo + hi + 1) >> 1;
      if (at[mid] <= offset) lo = mid;
      else hi = mid - 1;
    }
    if (at[lo] === offset || !up) return at[lo];
    return at[Math.min(lo + 1, at.length - 1)];
  }

  /** Scroll the page so that the character at ``offset`` is on screen. */
  function reveal(offset) {
    const point = N.domPointAt(view, offset);
    const range = document.createRange();
    range.setStart(point.node, point.offset);
    range.collapse(true);
    const rect = range.getClientRects()[0] || view.getBoundingClientRect();
    if (rect.top < 0 || rect.bottom > window.innerHeight) {
      window.scrollBy({ top: rect.top - window.innerHeight / 2 });
    }
  }

  function moveCaret(delta, extend) {
    if (!state.item) return;
    closeMenu();
    if (state.anchor === null) state.anchor = state.caret;
    let caret = Math.min(state.length, Math.max(0, state.caret + delta));
    if (delta === 1 || delta === -1) caret = snap(delta > 0 ? state.caret + 1 : state.caret - 1, delta > 0);
    if (extend) {
      if (!state.sel) state.anchor = state.caret;
      state.caret = caret;
      const start = Math.min(state.anchor, caret);
      const end = Math.max(state.anchor, caret);
      state.sel = start < end ? { start, end } : null;
    } else {
      state.caret = caret;
      state.anchor = caret;
      state.sel = null;
    }
    state.focus = -1;
    render();
    reveal(caret);
  }

  /** Focus the next/previous span in text order; false past the last one, so Tab can leave
   * the document for the buttons instead of trapping keyboard users. */
  function cycleFocus(step) {
    if (!state.spans.length) return false;
    const order = state.spans
      .map((span, index) => ({ span, index }))
      .sort((a, b) => a.span.start - b.span.start)
      .map((entry) => entry.index);
    const at = order.indexOf(state.focus);
    const next = at < 0 ? (step > 0 ? 0 : order.length - 1) : at + step;
    if (next < 0 || next >= order.length) {
      state.focus = -1;
      render();
      return false;
    }
    state.focus = order[next];
    state.sel = null;
    state.caret = state.spans[state.focus].start;
    state.anchor = null;
    closeMenu();
    render();
    const mark = view.querySelector(`mark.ent[data-index="${state.focus}"]`);
    if (mark) mark.scrollIntoView({ block: "nearest" });
    if (mark) say(mark.getAttribute("aria-label")); // screen readers hear where focus went
    return true;
  }

  function typing(target) {
    // a slider or a checkbox takes no letters: the workspace keys still work there
    const field = "input:not([type=range]):not([type=checkbox]), textarea, select, [contenteditable]";
    return target.closest(field) !== null;
  }

  /** The open span menu's own keys (ARIA menu): arrows, Home and End move between its items,
   *  Escape closes it (Tab still walks its buttons). True when the key was the menu's. */
  function menuKey(event) {
    if (menu.hidden || !menu.contains(event.target)) return false;
    const items = Array.from(menu.querySelectorAll("[role=menuitem]"));
    const at = items.indexOf(event.target);
    const moves = { ArrowDown: 1, ArrowRight: 1, ArrowUp: -1, ArrowLeft: -1 };
    let next = null;
    if (event.key in moves) next = (at + moves[event.key] + items.length) % items.length;
    else if (event.key === "Home") next = 0;
    else if (event.key === "End") next = items.length - 1;
    else if (event.key === "Escape") {
      event.preventDefault();
      closeMenu();
      return true;
    } else return false;
    event.preventDefault();
    items[next].focus();
    return true;
  }

  document.addEventListener("keydown", (event) => {
    if (typing(event.target)) return;
    if (menuKey(event)) return;
    const key = event.key;
    if (event.target.matches("input[type=range]") && /^(Arrow|Page|Home|End)/.test(key)) return;
    if (key !== "Enter") state.untouched = false;
    const mod = event.ctrlKey || event.metaKey;
    if (mod && (key === "z" || key === "Z")) {
      event.preventDefault();
      if (event.shiftKey) redo();
      else undo();
      return;
    }
    if (mod && (key === "y" || key === "Y")) {
      event.preventDefault();
      redo();
      return;
    }
    if (mod || event.altKey) return;
    if (key === "Enter") {
      if (event.target.closest("button, a")) return; // the focused control handles it
      event.preventDefault();
      if (event.repeat) return; // a held-down Enter must not accept documents unseen
      if (state.untouched && performance.now() - state.shownAt < FRESH_MS) {
        N.flash(gettext("Ignored a second Enter: this document has only just appeared."), "error");
        return;
      }
      submit();
    } else if (key === "s" || key === "S") {
      event.preventDefault();
      skip();
    } else if (key === "a" || key === "A") {
      event.preventDefault();
      keepAboveThreshold();
    } else if (state.keyToLabel[key]) {
      event.preventDefault();
      applyLabel(state.keyToLabel[key]);
    } else if (key === "ArrowRight" || key === "ArrowLeft") {
      event.preventDefault();
      moveCaret(key === "ArrowRight" ? 1 : -1, event.shiftKey);
    } else if (key === "Home" || key === "End") {
      event.preventDefault();
      moveCaret(key === "End" ? state.length : -state.length, event.shiftKey);
    } else if (key === "Tab" && state.item && document.activeElement === view) {
      if (cycleFocus(event.shiftKey ? -1 : 1)) event.preventDefault();
    } else if ((key === "ContextMenu" || (key === "F10" && event.shiftKey)) && state.focus >= 0) {
      event.preventDefault(); // the focused span's menu, its first label focused
      openMenu(state.focus, view.querySelector(`mark.ent[data-index="${state.focus}"]`));
      menu.querySelector("button").focus();
    } else if ((key === "Delete" || key === "Backspace") && state.focus >= 0) {
      event.preventDefault();
      deleteSpan(state.focus);
    } else if (key === "Escape") {
      state.sel = null;
      state.focus = -1;
      closeMenu();
      render();
    }
  });

  // ---- queue ------------------------------------------------------------------------------

  function spansFromItem(item) {
    const prediction = item.prediction || {};
    const annotation = item.annotation;
    // A validated annotation is a human answer, "no entity" included: it is shown as it is.
    const answered = annotation && Array.isArray(annotation.spans);
    if (answered && (annotation.validated || annotation.spans.length)) {
      return annotation.spans.map((s) => ({
        start: s.start, end: s.end, label: s.label, score: null, suggested: false,
      }));
    }
    // A model may know a label the project has since removed: such a suggestion could not be
    // submitted, so it is not offered.
    const known = new Set(state.labels.map((l) => l.name));
    return (prediction.spans || [])
      .filter((s) => known.has(s.label))
      .map((s) => ({
        start: s.start,
        end: s.end,
        label: s.label,
        score: typeof s.score === "number" ? s.score : null,
        suggested: true,
      }));
  }

  function itemRevision(item) {
    return item.annotation ? item.annotation.revision : item.revision || 0;
  }

  function showItem(item) {
    closeMenu();
    tooltip.hidden = true;
    state.item = item;
    if (!item) {
      state.text = "";
      state.length = 0;
      state.spans = [];
      view.replaceChildren();
      view.hidden = true;
      view.dataset.docId = "";
      $("doc-empty").hidden = false;
      $("doc-empty").textContent = gettext("The queue is empty: nothing left to review right now.");
      $("stat-doc").textContent = "–";
      $("stat-uncertainty").textContent = "–";
      renderSpanList();
      enableActions();
      explainEmpty();
      return;
    }
    const doc = item.document || item;
    state.text = doc.text;
    state.length = Array.from(doc.text).length;
    state.spans = spansFromItem(item);
    state.undo = [];
    state.redo = [];
    state.focus = -1;
    state.sel = null;
    state.caret = 0;
    state.anchor = null;
    view.hidden = false;
    $("doc-empty").hidden = true;
    render();
    view.dataset.docId = String(doc.id);
    state.shownAt = performance.now();
    state.untouched = true;
    $("stat-doc").textContent = `#${doc.id}`;
    const saved = item.annotation;
    if (saved && saved.validated === false) { // someone's draft: its spans are not checked yet
      $("stat-doc").textContent += " · " + (saved.annotator
        ? interpolate(gettext("draft by %(user)s"), { user: saved.annotator }, true)
        : gettext("draft"));
    }
    const uncertainty = item.uncertainty ?? doc.uncertainty ?? (item.prediction || {}).uncertainty;
    $("stat-uncertainty").textContent =
      typeof uncertainty === "number" ? uncertainty.toFixed(3) : "–";
    enableActions();
    view.focus({ preventScroll: true });
  }

  /** The buttons that act on a document do nothing without one: say so by disabling them. */
  function enableActions() {
    for (const id of ["btn-submit", "btn-skip", "btn-draft", "btn-accept-above"]) {
      $(id).disabled = !state.item || (id === "btn-submit" && state.submitting);
    }
    // a validated answer is corrected by saving it: a draft would take it out of training
    const validated = Boolean(state.item && state.item.annotation && state.item.annotation.validated);
    const draft = $("btn-draft");
    if (validated) draft.disabled = true;
    draft.title = validated
      ? gettext("This document has a validated answer: correct it and save it (Enter)")
      : draftTitle;
  }

  /** Why the queue has nothing for this annotator, and what to do about it. */
  async function explainEmpty() {
    let data;
    try {
      data = await N.api.get(endpoints.progress());
    } catch (err) {
      return; // the plain message stands
    }
    if (state.item) return; // a document came meanwhile
    const box = $("doc-empty");
    if (data.documents === 0) {
      box.textContent = gettext("This project has no documents yet.");
      if (state.isAdmin) {
        const link = document.createElement("a");
        link.href = `/projects/${projectId}/import/`;
        link.id = "empty-import";
        link.textContent = gettext("Import some");
        box.append(" ", link);
      }
    } else if (data.unlabelled_pool > 0 && data.left_for_you === 0) {
      box.textContent = gettext(
        "Nothing left for you: the other open documents are ones you skipped (a skipped document does not come back to you) or ones someone else is reviewing now.",
      );
    }
  }

  function fetchNext(exclude) {
    return N.api.get(endpoints.next(exclude)).then(
      (data) => (data && (data.document || data.id) ? data : null),
    );
  }

  /** Claim and fetch the item after the one on screen, in the background. */
  function prefetch() {
    if (documentMode) return;
    const current = state.item && (state.item.document || state.item);
    if (!current) {
      state.upcoming = null;
      return;
    }
    const asked = performance.now();
    state.upcomingId = null;
    state.upcoming = fetchNext(current.id).then(
      (item) => {
        if (!item) return null;
        state.upcomingId = (item.document || item).id;
        const left = typeof item.expires_in === "number" ? item.expires_in * 1000 : 0;
        return { item, usableUntil: asked + left - PREFETCH_MARGIN_MS };
      },
      () => null, // a failed prefetch only costs the fast path: advance() asks again
    );
  }

  /** The item fetched ahead, if it came, is another document and its claim is still good. */
  async function takeUpcoming(previousId) {
    const pending = state.upcoming;
    state.upcoming = null;
    state.upcomingId = null;
    if (!pending) return null;
    const got = await pending;
    if (!got || performance.now() > got.usableUntil) return null;
    const doc = got.item.document || got.item;
    return doc.id === previousId ? null : got.item;
  }

  async function refreshProgress() {
    try {
      const data = await N.api.get(endpoints.progress());
      if (typeof data.done_today === "number") {
        $("stat-done-today").textContent = String(data.done_today);
      }
      // What the queue can still hand this annotator (not what they skipped or others hold).
      $("stat-left").textContent = String(data.left_for_you ?? "–");
    } catch (err) {
      // Progress is informative only; the annotator can keep working without it.
      $("stat-left").textContent = "?";
    }
  }

  // ---- document mode ------------------------------------------------------------------------

  /** The list page the document was opened from: {ids, back}, or null. */
  function openedFrom() {
    if (backToQueue) return null;
    try {
      const list = JSON.parse(sessionStorage.getItem(listKey) || "null");
      return list && Array.isArray(list.ids) ? list : null;
    } catch (err) {
      return null;
    }
  }

  /** Where document mode goes when done: the queue (&back=queue) or the list it came from. */
  function returnPage() {
    if (backToQueue) return `/projects/${projectId}/annotate/`;
    const list = openedFrom();
    return list && typeof list.back === "string" && list.back.startsWith("/")
      ? list.back
      : `/projects/${projectId}/documents/`;
  }

  async function openDocument(id) {
    let doc;
    try {
      doc = await N.api.get(endpoints.document(id));
    } catch (err) {
      sayError(err);
      return;
    }
    const back = backToQueue ? "&back=queue" : "";
    history.replaceState(null, "", `${location.pathname}?document=${doc.id}${back}`);
    showItem(doc);
    $("ws-title").textContent = interpolate(
      gettext("Document #%(id)s (%(split)s, %(status)s)"),
      { id: doc.id, split: N.docWord(doc.split), status: N.docWord(doc.status) },
      true,
    );
  }

  /** The document after this one on the list it came from; back to that list after the last. */
  async function openNextInList(currentId) {
    const list = openedFrom();
    const at = list ? list.ids.indexOf(currentId) : -1;
    if (at >= 0 && at + 1 < list.ids.length) {
      await openDocument(list.ids[at + 1]);
    } else {
      location.assign(returnPage());
    }
  }

  /** Show the next item: the one fetched ahead when it is good, else ask the queue. */
  async function advance() {
    if (documentMode) {
      const current = state.item && (state.item.document || state.item).id;
      await openNextInList(current);
      refreshProgress();
      return;
    }
    const previous = state.item && (state.item.document || state.item).id;
    let item = await takeUpcoming(previous);
    if (!item) {
      try {
        item = await fetchNext();
      } catch (err) {
        sayError(err);
        return;
      }
    }
    showItem(item);
    prefetch();
    refreshProgress();
  }

  /** Save what is on screen as a draft (not validated: it trains nothing), then go on. The
   *  document goes back to the queue for the others, where it opens with these spans; its
   *  author finds it on the Documents page. */
  function saveDraft() {
    return submit({ draft: true });
  }

  async function submit({ draft = false } = {}) {
    if (!state.item) return;
    if (state.submitting) {
      N.flash(gettext("Already submitting this document: wait for the answer."), "error");
      return;
    }
    state.submitting = true;
    $("btn-submit").disabled = true;
    const item = state.item;
    const doc = item.document || item;
    const spans = state.spans
      .map((s) => ({ start: s.start, end: s.end, label: s.label }))
      .sort((a, b) => a.start - b.start);
    try {
      // set aside for this annotator first, or the queue would hand the draft straight back
      if (draft && !documentMode) await N.api.post(endpoints.skip(doc.id), {});
      await N.api.post(endpoints.submit(doc.id), { spans, revision: itemRevision(item), draft });
      state.undo = []; // saved: leaving the page now loses nothing
      const saved = draft
        ? gettext("Saved a draft of document #%(id)s: not validated. Others get it from the queue; you find it on the Documents page.")
        : gettext("Saved document #%(id)s.");
      say(interpolate(saved, { id: doc.id }, true), "ok");
      if (!documentMode && !draft) {
        // A slip noticed just after Enter: one click reopens the saved document.
        const fix = document.createElement("a");
        fix.id = "correct-last";
        fix.href = `/projects/${projectId}/annotate/?document=${doc.id}&back=queue`;
        fix.textContent = gettext("Correct it");
        statusLine.append(GAP, fix);
      }
      await advance();
    } catch (err) {
      if (err instanceof N.ApiError && err.status === 409) offerNext(err);
      else sayError(err);
    } finally {
      state.submitting = false;
      enableActions();
    }
  }

  async function skip() {
    if (!state.item || state.submitting) return;
    const doc = state.item.document || state.item;
    // Changes on the page are dropped by a skip: one key press must not lose them unasked.
    const armed = state.skipArmed;
    if (state.undo.length > 0 && !(armed && armed.id === doc.id && performance.now() - armed.at < SKIP_CONFIRM_MS)) {
      state.skipArmed = { id: doc.id, at: performance.now() };
      say(gettext("You changed this document: press S (or the button) again to drop your changes and go on, or Enter to save them."), "error");
      return;
    }
    state.skipArmed = null;
    state.submitting = true;
    try {
      if (!documentMode) await N.api.post(endpoints.skip(doc.id), {});
      state.undo = []; // skipping sets this document's changes aside on purpose
      const said = documentMode
        ? gettext("Left document #%(id)s as it was.")
        : gettext("Skipped document #%(id)s.");
      say(interpolate(said, { id: doc.id }, true));
      await advance();
    } catch (err) {
      if (err instanceof N.ApiError && err.code === "E105") {
        // not ours any more: skipping it is moot, so go on to the next one
        say(gettext("That document is no longer yours to review (saved elsewhere, or its time ran out): here is the next one."));
        await advance();
      } else {
        sayError(err);
      }
    } finally {
      state.submitting = false;
    }
  }

  // ---- start --------------------------------------------------------------------------------

  $("btn-submit").addEventListener("click", () => submit());
  $("btn-skip").addEventListener("click", skip);
  $("btn-draft").addEventListener("click", saveDraft);
  $("btn-undo").addEventListener("click", undo);
  $("btn-redo").addEventListener("click", redo);
  $("btn-accept-above").addEventListener("click", keepAboveThreshold);
  threshold.addEventListener("input", () => {
    $("threshold-value").textContent = Number(threshold.value).toFixed(2);
    render();
  });
  document.addEventListener("mousedown", (event) => {
    if (!menu.hidden && !menu.contains(event.target) && !event.target.closest("mark.ent")) {
      closeMenu();
    }
    // A button clicked with the mouse does not take the focus: it would keep Enter, which
    // here means "submit", and press itself again (Undo twice). Tab still reaches buttons.
    if (event.target.closest("button")) event.preventDefault();
  });

  // Spans changed and not saved: the browser asks before a reload, Back or a link loses them.
  window.addEventListener("beforeunload", (event) => {
    if (state.item && state.undo.length > 0) {
      event.preventDefault();
      event.returnValue = "";
    }
  });

  // Leaving the page gives the item fetched ahead back to the queue at once, so no one waits
  // for its claim to expire. The item on screen stays claimed: coming back resumes it.
  window.addEventListener("pagehide", () => {
    const id = state.upcomingId;
    state.upcoming = null;
    state.upcomingId = null;
    if (id !== null) N.api.post(endpoints.release(id), {}, { keepalive: true }).catch(() => null);
  });

  async function start() {
    try {
      const project = await N.api.get(endpoints.project());
      document.getElementById("nav-project-name").textContent = project.name;
      document.getElementById("nav-project-name").title = project.name; // the whole name, when the bar cuts it short
      if (N.clientOnly(project)) return; // before anything is claimed
      $("guidelines-text").textContent = project.description || "";
      $("ws-guidelines").hidden = !(project.description || "").trim();
      N.revealAdmin(project.role === "admin");
      state.isAdmin = project.role === "admin";
      state.labels = project.labels.map((label, i) => ({
        name: label.name,
        color: label.color,
        hotkey: label.hotkey || (i < 9 ? String(i + 1) : i === 9 ? "0" : ""),
      }));
      state.colours = N.labelColours(state.labels);
      state.keyToLabel = {};
      for (const label of state.labels) if (label.hotkey) state.keyToLabel[label.hotkey] = label.name;
      renderLabelBar();
      $("help-label-keys").textContent =
        state.labels.map((label) => label.hotkey).filter(Boolean).join(" ") || "–";
    } catch (err) {
      sayError(err);
      return;
    }
    if (opened !== null && !documentMode) {
      // a mangled link (?document=abc): say so rather than start claiming queue items
      say(interpolate(gettext("There is no document %(id)s: open one from the documents page."),
        { id: JSON.stringify(opened) }, true), "error");
      return;
    }
    if (documentMode) {
      // nothing is skipped here: the key only moves on, leaving this document as it was
      $("btn-skip").firstChild.textContent = gettext("Next without saving") + " ";
      $("help-skip").textContent = gettext("Next without saving");
      $("back-to-list").href = returnPage();
      if (backToQueue) $("back-to-list").textContent = gettext("Back to the queue");
      $("back-to-list").hidden = false;
      await openDocument(Number(opened));
      takeCarriedSpans(Number(opened));
      refreshProgress();
    } else {
      await advance();
    }
  }

  start();
})();
