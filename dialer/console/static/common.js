// Shared by the agent console and the wallboard: settings, the token, API calls, the feed.
// No framework and no build step: plain ES2020 that Chromium and Firefox run as served.
"use strict";

const Dialer = (() => {
  const config = JSON.parse(document.getElementById("dialer-config").textContent);
  let clockSkew = 0; // server time - local time, from the feed's `now`

  function stored(name, fallback = "") {
    return sessionStorage.getItem("dialer." + name) ?? fallback;
  }
  function store(name, value) {
    if (value) sessionStorage.setItem("dialer." + name, value);
    else sessionStorage.removeItem("dialer." + name);
  }

  function showError(text) {
    const line = document.getElementById("error");
    line.textContent = text || "";
    line.hidden = !text;
  }
  function showNotice(text) {
    const line = document.getElementById("notice");
    line.textContent = text || "";
    line.hidden = !text;
  }

  // An API call with the token; resolves to the JSON body, or rejects with "401 code: message".
  async function api(method, path, body) {
    const token = stored("token");
    if (!token) throw new Error("enter your access token first");
    const init = {method, headers: {"Authorization": "Bearer " + token}};
    if (body !== undefined) {
      init.headers["Content-Type"] = "application/json";
      init.body = JSON.stringify(body);
    }
    let response;
    try {
      response = await fetch(path, init);
    } catch (err) {
      throw new Error("the server cannot be reached (" + err.message + ")");
    }
    let data = null;
    try { data = await response.json(); } catch (err) { data = null; }
    if (!response.ok) {
      const e = data && data.error ? data.error : {code: "http_" + response.status,
                                                   message: response.statusText};
      throw new Error(response.status + " " + e.code + ": " + e.message);
    }
    return data;
  }

  // A feed: opens the socket, sends the token first, calls onMessage(msg) per message and
  // onStatus(text, ok) on changes; reconnects with backoff unless the server refused the
  // token (close codes 4400-4499), which is shown as an error instead.
  function feed(path, onMessage, onStatus) {
    let socket = null, retry = 1000, timer = null, stopped = false;
    function open() {
      const token = stored("token");
      if (!token) { onStatus("no token", false); return; }
      const scheme = location.protocol === "https:" ? "wss:" : "ws:";
      socket = new WebSocket(scheme + "//" + location.host + path);
      onStatus("connecting", false);
      socket.onopen = () => socket.send(JSON.stringify({token}));
      socket.onmessage = (event) => {
        const msg = JSON.parse(event.data);
        if (typeof msg.now === "number") clockSkew = msg.now * 1000 - Date.now();
        if (msg.type === "welcome") { retry = 1000; showError(""); onStatus("live", true); }
        onMessage(msg);
      };
      socket.onclose = (event) => {
        socket = null;
        if (stopped) return;
        if (event.code >= 4400 && event.code < 4500) {
          onStatus("refused", false);
          showError("feed refused (" + event.code + "): " + (event.reason || "no reason"));
          return;
        }
        onStatus("reconnecting", false);
        timer = setTimeout(open, retry);
        retry = Math.min(retry * 2, 15000);
      };
    }
    function close() {
      stopped = true;
      clearTimeout(timer);
      if (socket) socket.close(1000, "page closed the feed");
    }
    open();
    return {close};
  }

  function serverNow() { return Date.now() + clockSkew; }

  function duration(sinceSeconds) {
    if (typeof sinceSeconds !== "number") return "";
    const s = Math.max(0, Math.floor(serverNow() / 1000 - sinceSeconds));
    const h = Math.floor(s / 3600), m = Math.floor((s % 3600) / 60), r = s % 60;
    const mm = String(m).padStart(2, "0"), ss = String(r).padStart(2, "0");
    return h ? h + ":" + mm + ":" + ss : m + ":" + ss;
  }

  // Element builder: el("td", {className: "x"}, "text", child...)
  function el(tag, props, ...children) {
    const node = document.createElement(tag);
    Object.assign(node, props || {});
    for (const child of children) {
      node.append(child instanceof Node ? child : String(child ?? ""));
    }
    return node;
  }

  return {config, stored, store, api, feed, showError, showNotice, duration, serverNow, el};
})();
