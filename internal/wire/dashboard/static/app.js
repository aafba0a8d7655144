// Cano dashboard: live updates from /events (server-sent events) and
// actions posted with fetch. Values from events are inserted with
// textContent only, never as HTML. No polling: the page changes when an
// event arrives.
(function () {
  "use strict";
  var main = document.querySelector("main");
  var live = main ? main.getAttribute("data-live") : "";
  var msg = document.getElementById("msg");
  var dot = document.getElementById("live");

  function say(text, bad) {
    if (!msg) return;
    msg.textContent = text;
    msg.className = bad ? "msg bad" : "msg";
  }

  // refresh re-reads this page and swaps its <main>, at most every 250 ms.
  var pending = null;
  function refresh() {
    if (pending) return;
    pending = setTimeout(function () {
      fetch(location.href, { headers: { Accept: "text/html" } })
        .then(function (r) { return r.text(); })
        .then(function (html) {
          pending = null;
          var doc = new DOMParser().parseFromString(html, "text/html");
          var m = doc.querySelector("main");
          if (m) { main.replaceChildren.apply(main, Array.from(m.childNodes)); bind(main); }
        })
        .catch(function () { pending = null; });
    }, 250);
  }

  // Actions: forms marked data-fetch post without leaving the page.
  function bind(root) {
    root.querySelectorAll("form[data-fetch]").forEach(function (f) {
      f.addEventListener("submit", function (e) {
        e.preventDefault();
        var btn = e.submitter || f.querySelector("button"); // a <button> in a form submits unless typed otherwise
        if (btn) btn.disabled = true; // until the answer: one click, one action
        // A button may post elsewhere (its formaction attribute; the
        // formAction property gives the page's URL when there is none).
        var url = e.submitter && e.submitter.hasAttribute("formaction") ? e.submitter.formAction : f.action;
        fetch(url, { method: "POST", body: new URLSearchParams(new FormData(f)), headers: { Accept: "application/json" } })
          .then(function (r) { return r.json().then(function (j) { return { ok: r.ok, j: j }; }); })
          .then(function (res) {
            if (btn) btn.disabled = false;
            if (!res.ok) { say(res.j.error || "failed", true); return; }
            if (res.j.run_id && f.action.endsWith("/rerun")) {
              location.href = "/runs/" + encodeURIComponent(res.j.run_id); // the new run's page
              return;
            }
            if (res.j.message) {
              say(res.j.message);
              if (live) refresh();
              return;
            }
            var bulk = res.j.cancel_requested ? "cancel" : res.j.start_requested ? "start" : "";
            if (bulk) {
              var n = res.j[bulk + "_requested"];
              say(bulk + " requested for " + n + (n === "1" ? " run" : " runs"));
              document.querySelectorAll('input[form="bulk"]:checked').forEach(function (c) { c.checked = false; });
              return;
            }
            if (res.j.run_id && f.action.endsWith("/trigger")) {
              say(res.j.start_at ? "scheduled run " + res.j.run_id + " to start at " + new Date(res.j.start_at).toLocaleString() : "started run " + res.j.run_id);
              document.body.setAttribute("data-last-run", res.j.run_id);
            } else {
              say("done");
            }
            if (live) refresh();
          })
          .catch(function (err) {
            if (btn) btn.disabled = false;
            say("No answer came back (" + String(err) + "): the action may not have been done; check the connection and try again.", true);
          });
      });
    });
  }
  bind(document);

  // Runs page: rows and counts follow the events.
  var table = document.querySelector("table.runs");
  function count(name, delta) {
    var el = document.querySelector('[data-count="' + name + '"]');
    if (el) el.textContent = String(Number(el.textContent) + delta);
  }
  function onRunEvent(ev) {
    var wf = table.getAttribute("data-workflow"), st = table.getAttribute("data-status");
    var row = document.getElementById("run-" + ev.run_id);
    // A run triggered to start later appears with its "scheduled" event;
    // its "started" event (detail "as scheduled for ...") is then a change
    // of status, not a new run.
    var later = ev.type === "started" && (ev.detail || "").indexOf("as scheduled") === 0;
    if (later && !row) {
      if (!wf || wf === ev.workflow) { count("scheduled", -1); count("running", 1); }
      return;
    }
    if ((ev.type === "started" && !later) || ev.type === "scheduled") {
      var status = ev.type === "scheduled" ? "scheduled" : "running";
      if (row || (wf && wf !== ev.workflow)) return;
      count("total", 1); count(status, 1);
      if (st && st !== status) return;
      count("matching", 1);
      if (table.getAttribute("data-page") !== "1") return;
      var body = document.getElementById("runs-body");
      var empty = body.querySelector("tr.empty");
      if (empty) empty.remove();
      row = document.createElement("tr");
      row.id = "run-" + ev.run_id;
      row.className = "status-" + status + " fresh";
      var a = document.createElement("a");
      a.href = "/runs/" + encodeURIComponent(ev.run_id);
      a.textContent = ev.run_id;
      // A scheduled event's detail says when: "starts at <RFC 3339 time>".
      var starts = ev.type === "scheduled" && /^starts at /.test(ev.detail || "") ? new Date(ev.detail.slice(10)).toLocaleString() : "";
      var pick = document.createElement("input");
      pick.type = "checkbox"; pick.name = "id"; pick.value = ev.run_id;
      pick.setAttribute("form", "bulk"); pick.setAttribute("aria-label", "select run " + ev.run_id);
      var cells = [pick, a, ev.workflow, ev.status || status, ev.state, new Date(ev.time).toLocaleString(), starts, new Date(ev.time).toLocaleString()];
      var classes = ["pick", "", "", "status", "state", "", "starts", "updated"];
      cells.forEach(function (c, i) {
        var td = document.createElement("td");
        if (classes[i]) td.className = classes[i];
        if (typeof c === "string") td.textContent = c; else td.appendChild(c);
        row.appendChild(td);
      });
      body.insertBefore(row, body.firstChild);
      var size = Number(table.getAttribute("data-size")) || 50;
      while (body.rows.length > size) body.deleteRow(body.rows.length - 1);
      return;
    }
    if (!row) {
      // An ended run not on the page: it was running, or scheduled when it
      // was cancelled before its start (its event says so).
      var was = ev.detail === "before its start" ? "scheduled" : "running";
      if (ev.status && ev.status !== was && isTerminal(ev.type) && (!wf || wf === ev.workflow)) { count(was, -1); count(ev.status, 1); }
      return;
    }
    var prev = row.className.replace(/.*status-(\w+).*/, "$1");
    if (ev.state) row.querySelector(".state").textContent = ev.state;
    row.querySelector(".updated").textContent = new Date(ev.time).toLocaleString();
    if (ev.status && ev.status !== prev) {
      row.className = "status-" + ev.status + " fresh";
      row.querySelector(".status").textContent = ev.status;
      if (isTerminal(ev.type)) row.querySelector(".pick").textContent = ""; // nothing left to cancel
      count(prev, -1); count(ev.status, 1);
    }
  }
  function isTerminal(t) { return t === "completed" || t === "failed" || t === "cancelled"; }

  if (!window.EventSource) return;
  var es = new EventSource("/events");
  es.onopen = function () { if (dot) dot.className = "live on"; document.body.setAttribute("data-live-ready", "1"); };
  es.onerror = function () { if (dot) dot.className = "live"; };
  es.onmessage = function (m) {
    var ev;
    try { ev = JSON.parse(m.data); } catch (e) { return; }
    if (table && ev.workflow !== "_breaker") onRunEvent(ev);
    if (!live) return;
    if (live === "run:" + ev.run_id) refresh();
    else if (live === "breaker" && ev.type === "breaker") refresh();
    else if (live === "rejected" && ev.type === "rejected") refresh();
    else if (live === "terminal" && isTerminal(ev.type)) refresh();
  };
})();
