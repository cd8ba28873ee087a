// Frontdesk inspector: keeps the sessions list current while calls run (polls /api/sessions).
// Everything from the server is put in the page with textContent, never as HTML.
"use strict";

(function () {
  const table = document.getElementById("sessions");
  if (!table) {
    const live = document.querySelector("h1 .state-live");
    if (live) setTimeout(() => window.location.reload(), 3000);
    return;
  }
  const tbody = table.querySelector("tbody");
  const search = document.getElementById("search");
  const stateFilter = document.getElementById("state-filter");
  const auto = document.getElementById("auto-refresh");
  const count = document.getElementById("count");
  const stateCounts = document.getElementById("state-counts");
  const STATES = ["live", "dropped", "resumable", "ended", "quarantined"];
  const MEANING = {
    live: "a worker holds the call's lease now",
    dropped: "the last connection ended by a drop (or its worker died); a call back within the resume window resumes it",
    resumable: "not on a call now; a call back within the resume window resumes it",
    ended: "ended for good, or last active longer ago than the resume window",
    quarantined: "moved aside as corrupt; kept for inspection, never resumed",
  };

  function ago(seconds) {
    if (seconds === null || seconds === undefined) return "?";
    seconds = Math.max(seconds, 0);
    if (seconds < 90) return Math.round(seconds) + " s";
    if (seconds < 5400) return Math.round(seconds / 60) + " min";
    if (seconds < 172800) return (seconds / 3600).toFixed(1) + " h";
    return (seconds / 86400).toFixed(1) + " d";
  }

  function cell(text, className) {
    const td = document.createElement("td");
    if (className) td.className = className;
    td.textContent = text;
    return td;
  }

  function row(session) {
    const tr = document.createElement("tr");
    tr.dataset.sid = session.session_id;
    tr.dataset.state = session.state;
    const sid = cell("", "sid");
    const link = document.createElement("a");
    link.href = "/sessions/" + encodeURIComponent(session.session_id);
    link.textContent = session.session_id.slice(0, 12);
    sid.appendChild(link);
    tr.appendChild(sid);
    const stateCell = cell("");
    const badge = document.createElement("span");
    badge.className = "state state-" + (STATES.includes(session.state) ? session.state : "other");
    badge.title = MEANING[session.state] || "";
    badge.textContent = session.state;
    stateCell.appendChild(badge);
    tr.appendChild(stateCell);
    tr.appendChild(cell(session.agent, "agent-cell"));
    const wf = cell(session.workflow);
    const hash = document.createElement("span");
    hash.className = "dim";
    hash.textContent = "@" + (session.workflow_hash || "");
    wf.appendChild(hash);
    tr.appendChild(wf);
    tr.appendChild(cell((session.caller_hash || "-").slice(0, 12), "mono"));
    tr.appendChild(cell(String(session.turns), "num"));
    tr.appendChild(cell(ago(session.age_seconds), "num"));
    tr.appendChild(cell(ago(session.idle_seconds), "num"));
    return tr;
  }

  let pending = false;
  async function refresh() {
    if (pending) return;
    pending = true;
    try {
      const params = new URLSearchParams();
      if (search.value) params.set("q", search.value);
      if (stateFilter.value) params.set("state", stateFilter.value);
      const response = await fetch("/api/sessions?" + params.toString(), { credentials: "same-origin" });
      if (!response.ok) return;
      const data = await response.json();
      const rows = data.sessions.map(row);
      tbody.replaceChildren(...rows);
      count.textContent = data.total + (data.total === 1 ? " session" : " sessions");
      stateCounts.textContent = STATES.filter((s) => data.states[s])
        .map((s) => data.states[s] + " " + s)
        .join(" · ");
      const empty = document.getElementById("empty");
      if (empty) empty.hidden = data.total > 0;
      document.body.dataset.refreshed = String(data.generated_at);
    } catch (error) {
      // the next tick retries
    } finally {
      pending = false;
    }
  }

  let timer = null;
  search.addEventListener("input", () => {
    clearTimeout(timer);
    timer = setTimeout(refresh, 200);
  });
  stateFilter.addEventListener("change", refresh);
  setInterval(() => {
    if (auto.checked) refresh();
  }, 2000);
})();
