/* Project picker: the caller's projects from the API, each with its role and labels. */
(function () {
  "use strict";
  const N = window.Nerloop;
  const list = document.getElementById("project-list");
  const template = document.getElementById("project-item");
  const loading = document.getElementById("projects-loading");

  const ROLE_NAMES = {
    admin: N.gettext("admin"),
    annotator: N.gettext("annotator"),
    client: N.gettext("client (predict only)"),
  };

  async function load() {
    let projects;
    try {
      projects = await N.getAll("projects");
    } catch (err) {
      loading.textContent = N.describeError(err);
      loading.classList.add("error-box");
      return;
    }
    loading.hidden = projects.length > 0;
    if (!projects.length) loading.textContent = N.gettext("You are not a member of any project yet.");
    for (const project of projects) {
      const node = template.content.firstElementChild.cloneNode(true);
      node.dataset.projectId = String(project.id);
      node.querySelector(".project-name").textContent = project.name;
      const labels = node.querySelector(".project-labels");
      const colours = N.labelColours(project.labels || []);
      N.renderLegend(labels, (project.labels || []).map((l) => l.name), colours);
      labels.classList.add("legend");
      node.querySelector(".project-role").textContent = ROLE_NAMES[project.role] || project.role || "";
      const annotate = node.querySelector(".link-annotate");
      annotate.href = `/projects/${project.id}/annotate/`;
      annotate.hidden = project.role === "client";
      const documents = node.querySelector(".link-documents");
      documents.href = `/projects/${project.id}/documents/`;
      documents.hidden = project.role === "client";
      const dashboard = node.querySelector(".link-dashboard");
      dashboard.href = `/projects/${project.id}/dashboard/`;
      dashboard.hidden = project.role === "client";
      const playground = node.querySelector(".link-playground");
      playground.href = `/playground/?project=${project.id}`;
      playground.hidden = project.role !== "client"; // a client's way to the project's model
      list.append(node);
    }
  }

  // A new project makes its creator its admin; then its settings page (labels, members,
  // active learning) and import page are the next steps.
  // (The form is there only for those who may create projects.)
  document.getElementById("new-project-form")?.addEventListener("submit", async (event) => {
    event.preventDefault();
    const status = document.getElementById("np-status");
    const name = document.getElementById("np-name").value.trim();
    const labels = document.getElementById("np-labels").value.split(/[\s,，、]+/).filter(Boolean);
    const body = { name, labels }; // the field starts with PER, LOC, ORG: emptied, no labels
    try {
      const project = await N.api.post("projects", body);
      location.assign(`/projects/${project.id}/settings/`);
    } catch (err) {
      status.textContent = N.describeError(err);
      status.className = "status-line error";
    }
  });

  load();
})();
