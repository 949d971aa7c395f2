// The agent console: log in, ready / pause, the screen pop of the current call, disposition
// and callbacks. Actions go to the HTTP API; what happens comes back on /ws/agent/{aid}.
"use strict";

(() => {
  const {config, stored, store, api, feed, showError, showNotice, duration, el} = Dialer;
  const $ = (id) => document.getElementById(id);
  const params = new URLSearchParams(location.search);
  const WRAPPING = "WRAP_UP";
  let current = {state: "LOGGED_OUT", since: null, call_id: null};
  let pop = null;
  let subscription = null;

  // ------------------------------------------------------------------ identity fields
  $("token").value = stored("token");
  $("agent").value = params.get("agent") || stored("agent");
  $("campaign").value = params.get("campaign") || stored("campaign");
  for (const reason of config.pause_reasons) {
    $("pause-reason").append(el("option", {value: reason}, reason));
  }
  for (const d of config.dispositions) {
    const label = d.key ? d.label + " (" + d.key + ")" : d.label;
    $("dispositions").append(el("button", {type: "button", className: "disposition",
                                           value: d.code, title: d.code}, label));
  }
  $("callback-form").hidden = !config.callback;

  function agentId() { return $("agent").value.trim(); }
  function remember() {
    store("token", $("token").value.trim());
    store("agent", agentId());
    store("campaign", $("campaign").value.trim());
  }
  function agentPath(action) {
    const aid = agentId();
    if (!aid) throw new Error("enter your agent id first");
    return "/agents/" + encodeURIComponent(aid) + (action ? "/" + action : "");
  }

  // Run an API action: clear the error line, show the result or the error.
  async function act(what, run) {
    showError("");
    showNotice("");
    try {
      remember();
      await run();
      showNotice(what);
    } catch (err) {
      showError(err.message);
    }
  }

  // ------------------------------------------------------------------------ the feed
  function connect() {
    remember();
    if (!stored("token") || !agentId()) return;
    if (subscription && subscription.agent === agentId()) return;
    if (subscription) subscription.feed.close();
    const aid = agentId();
    subscription = {agent: aid, feed: feed("/ws/agent/" + encodeURIComponent(aid), onMessage,
                                            onStatus)};
  }
  function onStatus(text, ok) {
    $("feed-status").textContent = text;
    $("feed-status").className = "badge " + (ok ? "on" : "off");
  }
  function onMessage(msg) {
    switch (msg.type) {
      case "state": showState(msg); break;
      case "screen_pop": showPop(msg.call); break;
      case "call_ended":
        if (pop && pop.id === msg.call_id) { pop.ended = true; showPop(pop); }
        break;
      default: break; // welcome, and types a later server may add
    }
  }

  function showState(msg) {
    current = msg;
    $("state").textContent = msg.state;
    $("state").dataset.state = msg.state;
    $("state-campaign").textContent = msg.campaign || "–";
    $("pause-shown").textContent = msg.pause_reason ||
      (msg.pause_requested ? "after this call: " + msg.pause_requested : "–");
    if (msg.campaign && !$("campaign").value) $("campaign").value = msg.campaign;
    if (!msg.call_id || (pop && pop.id !== msg.call_id)) showPop(null);
    tick();
    updateButtons();
  }

  function showPop(call) {
    pop = call;
    $("call").hidden = !call;
    if (call) {
      $("call-name").textContent = call.name || "Customer";
      $("call-stage").textContent = call.ended ? "ended" : call.stage;
      $("call-phone").textContent = call.phone;
      $("call-campaign").textContent = call.campaign; // not the lead id: it holds the number
      $("call-ended").hidden = !call.ended;
      fillTable($("call-attrs"), call.attributes);
      fillTable($("call-ivr"), call.ivr);
      $("call-ivr-block").hidden = Object.keys(call.ivr || {}).length === 0;
    }
    updateButtons();
  }

  function fillTable(table, data) {
    const body = table.tBodies[0];
    body.replaceChildren();
    for (const [key, value] of Object.entries(data || {})) {
      body.append(el("tr", {}, el("th", {scope: "row"}, key), el("td", {}, value)));
    }
  }

  function updateButtons() {
    const s = current.state;
    $("login").disabled = s !== "LOGGED_OUT";
    $("ready").disabled = s !== "PAUSED";
    $("pause").disabled = s === "LOGGED_OUT" || s === "CONNECTING";
    $("logout").disabled = s === "LOGGED_OUT";
    // A disposition is set in wrap-up, once the customer is gone (see the README).
    const wrapping = s === WRAPPING && current.call_id;
    for (const b of document.querySelectorAll("button.disposition")) b.disabled = !wrapping;
    $("callback").disabled = !wrapping;
  }

  function tick() { $("since").textContent = current.since ? duration(current.since) : ""; }
  setInterval(tick, 1000);

  // --------------------------------------------------------------------- the actions
  $("token").addEventListener("change", () => {
    if (subscription && $("token").value.trim() === stored("token")) return; // same token
    remember();
    if (subscription) { subscription.feed.close(); subscription = null; }
    connect();
  });
  $("agent").addEventListener("change", connect);

  $("login").addEventListener("click", () => act("logging in: your phone rings", async () => {
    const campaign = $("campaign").value.trim();
    if (!campaign) throw new Error("enter the campaign to log in to");
    connect();
    await api("POST", agentPath("login"), {campaign});
  }));
  $("ready").addEventListener("click", () => act("ready for calls", async () => {
    await api("POST", agentPath("ready"));
  }));
  $("pause").addEventListener("click", () => act("paused", async () => {
    await api("POST", agentPath("pause"), {reason: $("pause-reason").value});
  }));
  $("logout").addEventListener("click", () => act("logged out", async () => {
    await api("POST", agentPath("logout"));
  }));
  $("dispositions").addEventListener("click", (event) => {
    const button = event.target.closest("button.disposition");
    if (!button) return;
    act("disposition '" + button.value + "' saved", async () => {
      await api("POST", agentPath("disposition"), {disposition: button.value});
    });
  });
  $("callback").addEventListener("click", () => act("callback scheduled", async () => {
    const value = $("callback-at").value;
    if (!value) throw new Error("choose when to call back");
    const when = new Date(value).getTime() / 1000; // the browser's local time zone
    if (!Number.isFinite(when)) throw new Error("not a date and time: " + value);
    await api("POST", agentPath("disposition"), {disposition: "callback", callback_at: when});
  }));

  updateButtons();
  connect();
})();
