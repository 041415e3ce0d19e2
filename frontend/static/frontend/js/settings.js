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
    const remove = row.querySelector(".l-remove");
    remove.addEventListener("click", () => row.remove());
    const name = row.querySelector(".l-name");
    const named = () => remove.setAttribute("aria-label",
      N.interpolate(N.gettext("Remove label %(name)s"), { name: name.value.trim() || "–" }, true));
    name.addEventListener("input", named);
    named();
    rows.append(row);
  }

  function fill(project) {
    $("nav-project-name").textContent = project.name;
    $("nav-project-name").title = project.name; // the whole name, when the bar cuts it short
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
    document.querySelectorAll("#settings-form :is(input, select, textarea, button)")
      .forEach((el) => (el.disabled = !editable));
    if (!editable) say(N.gettext("Only the project's admins can change its settings."), "error");
  }

  function collect() {
    const body = {};
    for (const field of FIELDS) {
      const raw = $("f-" + field).value;
      // an empty number field is sent as null (refused in words), not as 0
      body[field] = NUMBERS.has(field) ? (raw.trim() === "" ? null : Number(raw)) : raw;
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
    const free = "1234567890".split("").find((k) => !used.has(k)) || "";
    // a colour no label has yet (the page's own choice for the next label)
    const names = [...rows.querySelectorAll(".label-row")].map((row, i) => ({
      name: `#${i}`, color: row.querySelector(".l-color").value,
    }));
    const colour = N.labelColours([...names, { name: "#new" }])["#new"];
    addRow({ name: "", color: colour.startsWith("#") ? colour : "#a78bfa", hotkey: free });
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
      // the form keeps the changes to fix them; it must not look as if they were made
      say(N.sentences(N.describeError(err), N.gettext("Nothing was saved: the form shows your changes, the project is as it was (reload the page to see it).")), "error");
    } finally {
      $("btn-save").disabled = false;
    }
  });

  // ---- members: each change is saved at once ------------------------------------------------

  function sayMembers(message, kind) {
    $("members-status").textContent = message;
    $("members-status").className = "status-line" + (kind ? " " + kind : "");
  }

  function memberRow(member) {
    const tr = document.createElement("tr");
    tr.dataset.username = member.username;
    const name = document.createElement("td");
    name.textContent = member.username;
    const roleCell = document.createElement("td");
    const role = $("m-role").cloneNode(true);
    role.removeAttribute("id");
    role.className = "member-role";
    role.value = member.role;
    role.setAttribute("aria-label", N.interpolate(N.gettext("Role of %(user)s"), { user: member.username }, true));
    // Arrow keys change a closed select's value at once: a keyboard choice is saved on Enter
    // or when the select loses focus, not at every step through the roles (each one a POST
    // that could demote the user on the way)
    let keyed = false;
    const commit = () => {
      keyed = false;
      if (role.value !== member.role) saveMember(member.username, role.value);
    };
    role.addEventListener("keydown", (event) => {
      if (event.key === "Enter") {
        event.preventDefault();
        commit();
      } else if (event.key !== "Tab") {
        keyed = true;
      }
    });
    role.addEventListener("pointerdown", () => {
      keyed = false;
    });
    role.addEventListener("change", () => {
      if (!keyed) commit();
    });
    role.addEventListener("blur", () => {
      if (keyed) commit();
    });
    roleCell.append(role);
    const actions = document.createElement("td");
    const remove = document.createElement("button");
    remove.type = "button";
    remove.className = "btn btn-ghost btn-small member-remove";
    remove.textContent = N.gettext("Remove");
    remove.setAttribute("aria-label",
      N.interpolate(N.gettext("Remove %(user)s from the project"), { user: member.username }, true));
    remove.addEventListener("click", () => removeMember(member.username));
    actions.append(remove);
    tr.append(name, roleCell, actions);
    return tr;
  }

  async function loadMembers() {
    try {
      const members = await N.api.get(`projects/${projectId}/members`);
      $("member-rows").replaceChildren(...members.map(memberRow));
    } catch (err) {
      sayMembers(N.describeError(err), "error");
    }
  }

  async function saveMember(username, role) {
    try {
      await N.api.post(`projects/${projectId}/members`, { username, role });
      const option = [...$("m-role").options].find((o) => o.value === role);
      const roleName = option ? option.textContent : role;
      sayMembers(N.interpolate(N.gettext("%(user)s is now %(role)s."), { user: username, role: roleName }, true), "ok");
      return true;
    } catch (err) {
      sayMembers(N.describeError(err), "error");
      return false;
    } finally {
      await loadMembers(); // a refused change shows the role that stands
    }
  }

  async function removeMember(username) {
    const question = N.interpolate(
      N.gettext("Take %(user)s off the project? The documents they hold go back to the queue."),
      { user: username }, true);
    if (!window.confirm(question)) return;
    try {
      await N.api.del(`projects/${projectId}/members/${encodeURIComponent(username)}`);
      sayMembers(N.interpolate(N.gettext("Removed %(user)s."), { user: username }, true), "ok");
    } catch (err) {
      sayMembers(N.describeError(err), "error");
    }
    await loadMembers();
  }

  $("member-form").addEventListener("submit", async (event) => {
    event.preventDefault();
    const username = $("m-username").value.trim();
    if (!username) return;
    if (await saveMember(username, $("m-role").value)) $("m-username").value = "";
  });

  $("delete-form").addEventListener("submit", async (event) => {
    event.preventDefault();
    const line = $("delete-status");
    const shown = $("nav-project-name").textContent;
    if ($("d-name").value.trim() !== shown) {
      line.textContent = N.gettext("The name does not match: the project stays.");
      line.className = "status-line error";
      return;
    }
    try {
      await N.api.del(`projects/${projectId}`);
      location.assign("/");
    } catch (err) {
      line.textContent = N.describeError(err);
      line.className = "status-line error";
    }
  });

  N.api.get(`projects/${projectId}`).then(
    (project) => {
      fill(project);
      if (project.role === "admin") loadMembers();
    },
    (err) => say(N.describeError(err), "error"),
  );
})();
