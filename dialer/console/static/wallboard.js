// The supervisors' wallboard: agents by state, live campaign figures and queues, all from
// /ws/supervisor (no polling of the API).
"use strict";

(() => {
  const {stored, store, feed, showError, duration, el} = Dialer;
  const $ = (id) => document.getElementById(id);
  let agents = [];
  let subscription = null;

  $("token").value = stored("token");

  function connect() {
    store("token", $("token").value.trim());
    showError("");
    if (subscription) subscription.close();
    subscription = null;
    if (!stored("token")) { showError("enter a supervisor token"); return; }
    subscription = feed("/ws/supervisor", onMessage, (text, ok) => {
      $("feed-status").textContent = text;
      $("feed-status").className = "badge " + (ok ? "on" : "off");
    });
  }

  function onMessage(msg) {
    switch (msg.type) {
      case "agents": agents = msg.agents; showAgents(); break;
      case "campaigns": showCampaigns(msg.campaigns); break;
      case "queues": showQueues(msg.queues); break;
      default: break;
    }
  }

  function num(value) { return el("td", {className: "num"}, value); }
  function percent(rate) { return (100 * rate).toFixed(1) + " %"; }

  function showCampaigns(campaigns) {
    const body = $("campaigns").tBodies[0];
    body.replaceChildren();
    for (const c of campaigns) {
      const byState = Object.entries(c.agents).map(([s, n]) => s + " " + n).join(", ");
      const row = el("tr", {className: c.abandon_rate > c.abandon_target ? "over" : ""},
        el("td", {}, c.name + " (" + c.id + ")"), el("td", {}, c.dial_mode),
        el("td", {}, c.running ? "running" : "paused"), num(c.calls), num(c.ringing),
        num(c.waiting), num(c.talking), num(c.humans), num(c.abandoned),
        num(percent(c.abandon_rate)), num(c.dial_level.toFixed(2)), el("td", {}, byState || "–"));
      row.dataset.campaign = c.id;
      body.append(row);
    }
    $("no-campaigns").hidden = campaigns.length > 0;
  }

  function showAgents() {
    const body = $("agents").tBodies[0];
    body.replaceChildren();
    const counts = {};
    for (const a of agents) {
      counts[a.state] = (counts[a.state] || 0) + 1;
      const row = el("tr", {}, el("td", {}, a.id), el("td", {}, a.campaign),
        el("td", {className: "state"}, a.state), num(duration(a.since)),
        el("td", {}, a.pause_reason || ""), el("td", {}, a.call_id || ""));
      row.dataset.agent = a.id;
      row.querySelector(".state").dataset.state = a.state;
      body.append(row);
    }
    $("agent-counts").replaceChildren(...Object.entries(counts).map(([state, n]) =>
      el("div", {className: "stat"}, el("b", {}, n), state)));
    $("no-agents").hidden = agents.length > 0;
  }

  function showQueues(queues) {
    const body = $("queues").tBodies[0];
    body.replaceChildren();
    for (const q of queues) {
      body.append(el("tr", {}, el("td", {}, q.id), num(q.waiting),
        num(q.oldest_since === null ? "–" : duration(q.oldest_since)), num(q.agents_ready)));
    }
    $("queues-block").hidden = queues.length === 0;
  }

  setInterval(showAgents, 1000); // time in state
  $("connect").addEventListener("click", connect);
  if (stored("token")) connect();
})();
