// The dashboard's one script: actions sent as JSON with the session's CSRF token, and live updates
// (server-sent events from /api/events, then the page's data again from the JSON API). Every value
// goes into the page as text (textContent), never as markup.
(function () {
  "use strict";

  var csrfMeta = document.querySelector('meta[name="csrf-token"]');
  var csrf = csrfMeta ? csrfMeta.getAttribute("content") : "";
  var flashBox = document.getElementById("flash");

  function flash(text, ok) {
    if (!flashBox) { return; }
    flashBox.textContent = text;
    flashBox.className = "flash " + (ok ? "ok" : "bad");
    flashBox.hidden = false;
  }

  function el(tag, text, cls) {
    var node = document.createElement(tag);
    if (text !== undefined && text !== null) { node.textContent = String(text); }
    if (cls) { node.className = cls; }
    return node;
  }

  function when(value) { return value ? String(value).replace("T", " ").slice(0, 19) : "\u2013"; }
  function duration(ms) { return typeof ms === "number" ? (ms < 1000 ? ms + " ms" : (ms / 1000).toFixed(1) + " s") : "\u2013"; }
  function compact(value) {
    if (value === null || value === undefined) { return ""; }
    var text = JSON.stringify(value);
    return text.length <= 120 ? text : text.slice(0, 119) + "\u2026";
  }
  function statusBadge(value) { var b = el("span", value, "status s-" + value); b.setAttribute("data-field", "status"); return b; }
  function execLink(id) { var a = el("a", id, "mono"); a.href = "/executions/" + encodeURI(id); return a; }

  // ------------------------------------------------------------------ actions
  function formBody(form) {
    var body = {};
    var fields = form.querySelectorAll("input[name], textarea[name], select[name]");
    for (var i = 0; i < fields.length; i++) {
      var f = fields[i];
      if (f.name === "csrf") { continue; }
      if (f.type === "checkbox") { body[f.name] = f.checked; continue; }
      if (f.hasAttribute("data-json")) {
        var raw = f.value.trim();
        if (raw === "") { body[f.name] = null; continue; }
        try { body[f.name] = JSON.parse(raw); } catch (e) { throw new Error(f.name + " is not valid JSON: " + e.message); }
        continue;
      }
      body[f.name] = f.value;
    }
    return body;
  }

  function send(form) {
    var body;
    try { body = formBody(form); } catch (e) { flash(e.message, false); return; }
    var question = form.getAttribute("data-confirm");
    if (question && !window.confirm(question)) { return; }
    var button = form.querySelector("button");
    if (button) { button.disabled = true; }
    fetch(form.getAttribute("data-endpoint"), {
      method: "POST",
      credentials: "same-origin",
      headers: { "Content-Type": "application/json", "X-CSRF-Token": csrf },
      body: JSON.stringify(body)
    }).then(function (response) {
      return response.json().catch(function () { return {}; }).then(function (data) {
        if (response.ok) {
          flash("Done: " + (data.message || "ok") + (data.actor ? " (as " + data.actor + ")" : ""), true);
          refresh();
          if (form.getAttribute("data-endpoint").indexOf("/api/schedules/") === 0) { window.setTimeout(function () { window.location.reload(); }, 600); }
        } else {
          flash("Refused (" + response.status + "): " + (data.error || response.statusText), false);
        }
      });
    }).catch(function (e) {
      flash("Request failed: " + e.message, false);
    }).then(function () { if (button) { button.disabled = false; } });
  }

  document.addEventListener("submit", function (event) {
    var form = event.target;
    if (form && form.classList && form.classList.contains("action")) {
      event.preventDefault();
      send(form);
    }
  });

  // ------------------------------------------------------------------ live updates
  var live = document.querySelector("[data-live]");
  var pending = null;

  // At most one refresh a second on a list (a busy system changes status all the time), sooner on one execution.
  function refresh() {
    if (!live) { return; }
    if (pending) { return; }
    var delay = live.getAttribute("data-live") === "list" ? 1000 : 150;
    pending = window.setTimeout(function () {
      pending = null;
      fetch(live.getAttribute("data-api"), { credentials: "same-origin", headers: { "Accept": "application/json" } })
        .then(function (r) { return r.ok ? r.json() : null; })
        .then(function (data) {
          if (!data) { return; }
          if (live.getAttribute("data-live") === "list") { renderList(data); } else { renderExecution(data); }
        }).catch(function () {});
    }, delay);
  }

  function replaceRows(tbody, rows, columns, emptyText) {
    while (tbody.firstChild) { tbody.removeChild(tbody.firstChild); }
    if (!rows.length) {
      var tr = el("tr", null, "empty"); var td = el("td", emptyText); td.colSpan = columns; tr.appendChild(td); tbody.appendChild(tr);
    }
    rows.forEach(function (cells) {
      var tr = document.createElement("tr");
      cells.forEach(function (cell) {
        var td = document.createElement("td");
        if (cell instanceof Node) { td.appendChild(cell); } else { td.textContent = cell === null || cell === undefined ? "" : String(cell); }
        tr.appendChild(td);
      });
      tbody.appendChild(tr);
    });
  }

  function renderList(data) {
    var tbody = live.querySelector("tbody");
    replaceRows(tbody, data.executions.map(function (e) {
      return [execLink(e.execution_id), e.workflow_id, statusBadge(e.status), e.current_step || "", when(e.created_at), when(e.updated_at)];
    }), 6, "No executions match.");
    data.executions.forEach(function (e, i) { if (tbody.rows[i]) { tbody.rows[i].setAttribute("data-id", e.execution_id); } });
    Object.keys(data.counts || {}).forEach(function (s) {
      var c = document.querySelector('[data-count="' + s + '"]');
      if (c) { c.textContent = String(data.counts[s]); }
    });
  }

  function setField(name, value) {
    var node = live.querySelector('[data-field="' + name + '"]');
    if (node) { node.textContent = value; }
  }

  function waitText(w) {
    if (!w) { return "\u2013"; }
    if (w.kind === "signal") { return "for signal " + w.signal + " (step " + w.step_id + ")" + (w.until ? " until " + when(w.until) : ""); }
    if (w.kind === "sleep") { return "sleeping until " + when(w.until) + " (step " + w.step_id + ")"; }
    return "retry of " + w.step_id + " due " + when(w.until);
  }

  function renderExecution(data) {
    var e = data.execution;
    var badge = live.querySelector("h1 .status");
    if (badge) { badge.textContent = e.status; badge.className = "status s-" + e.status; }
    setField("current_step", e.current_step || "\u2013");
    setField("attempt", String(e.attempt));
    setField("started_at", when(e.started_at));
    setField("finished_at", when(e.finished_at));
    var wait = document.getElementById("wait");
    if (wait) { wait.textContent = waitText(data.wait); }
    var result = document.getElementById("result");
    if (result && !e.error) { result.textContent = JSON.stringify(e.result, null, 2); }
    if (e.error && !document.getElementById("error")) { window.location.reload(); return; }
    replaceRows(document.querySelector("#timeline tbody"), data.steps.map(function (s) {
      var err = s.error ? (s.error.message || JSON.stringify(s.error)) : compact(s.result);
      return [s.seq, s.step_id, s.kind, statusBadge(s.status), s.attempt, when(s.at), duration(s.duration_ms), err];
    }), 8, "No steps yet.");
    replaceRows(document.querySelector("#audit tbody"), data.audit.map(function (a) {
      return [when(a.at), a.kind, a.step_id || "", a.actor || "", a.message];
    }), 5, "");
    var flow = document.getElementById("flow");
    if (flow) { flow.src = flow.src.split("?")[0] + "?v=" + Date.now(); }
  }

  if (live && window.EventSource) {
    var url = "/api/events";
    if (live.getAttribute("data-execution")) { url += "?execution=" + encodeURIComponent(live.getAttribute("data-execution")); }
    var source = new EventSource(url);
    source.addEventListener("status", refresh);
    source.addEventListener("open", function () { document.body.setAttribute("data-live-connected", "1"); });
  }
})();
