// The wallboard page: opens the board's stream, draws each snapshot, counts the longest wait up by itself, and
// shows the lost-connection sign when the stream goes quiet. No framework and nothing fetched from outside:
// the TVs may have no internet. The protocol and the query parameters are in docs/wallboard.md.
"use strict";

(function () {
  const params = new URLSearchParams(location.search);
  const num = (name, fallback) => {
    const v = parseFloat(params.get(name));
    return Number.isFinite(v) ? v : fallback;
  };
  // Thresholds: ?sl_target=80&sl_margin=10&abandon_warn=5&abandon_crit=10&waiting_warn=5&waiting_crit=10
  // &asa_warn=..&asa_crit=..&wait_warn=..&wait_crit=..&scale=1. ASA and longest-wait limits default to the
  // board's own SL threshold (amber past it, red past twice it), so they follow the queue's setting.
  const T = {
    slTarget: num("sl_target", 80), slMargin: num("sl_margin", 10),
    abandonWarn: num("abandon_warn", 5), abandonCrit: num("abandon_crit", 10),
    waitingWarn: num("waiting_warn", 5), waitingCrit: num("waiting_crit", 10),
    asaWarn: params.get("asa_warn"), asaCrit: params.get("asa_crit"),
    waitWarn: params.get("wait_warn"), waitCrit: params.get("wait_crit"),
  };
  document.documentElement.style.setProperty("--scale", String(num("scale", 1)));

  const [, , kind, ident] = location.pathname.split("/");
  const streamUrl = "/stream/" + kind + "/" + ident;
  const $ = (id) => document.getElementById(id);
  // Until the board's first snapshot (a new board may have none yet), its address is its name.
  $("title").textContent = decodeURIComponent(kind + "/" + ident);

  // --- connection state -------------------------------------------------------------------------------------
  let source = null;
  let heartbeatMs = 5000;   // until the server's first heartbeat says otherwise
  let lastEventAt = 0;      // performance.now() of the last event of any kind
  let lastSeq = null;       // newest snapshot drawn, sent back when the page itself reconnects
  let skewMs = 0;           // server clock minus this TV's clock, from heartbeats
  let snapshot = null;
  let reconnectTimer = null;
  let failures = 0;

  function connect() {
    clearTimeout(reconnectTimer);
    if (source) source.close();
    // A new EventSource sends no Last-Event-ID, so the page passes what it has; the browser's own reconnects
    // (same EventSource) send the header.
    source = new EventSource(lastSeq === null ? streamUrl : streamUrl + "?last_seq=" + lastSeq);
    lastEventAt = performance.now();
    source.addEventListener("heartbeat", (e) => {
      const hb = JSON.parse(e.data);
      heartbeatMs = hb.interval_s * 1000;
      skewMs = Date.parse(hb.now) - Date.now();
      alive();
    });
    source.addEventListener("snapshot", (e) => {
      snapshot = JSON.parse(e.data);
      lastSeq = snapshot.seq;
      alive();
      draw();
    });
    source.onerror = () => {
      offline("the server closed the stream or cannot be reached");
      // CONNECTING: the browser retries by itself (after the server's retry: delay). CLOSED (an HTTP error,
      // e.g. 503 from a full instance): it gave up, so the page retries, backing off to 10 s.
      if (source.readyState === EventSource.CLOSED) {
        failures += 1;
        reconnectTimer = setTimeout(connect, Math.min(10000, 1000 * failures));
      }
    };
  }

  function alive() {
    lastEventAt = performance.now();
    failures = 0;
    document.body.classList.remove("offline", "connecting");
    document.body.classList.add("live");
    $("status").textContent = "live";
  }

  function offline(why) {
    document.body.classList.remove("live", "connecting");
    document.body.classList.add("offline");
    $("status").textContent = "offline";
    $("lost-detail").textContent = why + (snapshot ? " \u2014 figures below are from " + clock(snapshot.updated_at) : "");
  }

  // The watchdog: a stream can die without an error (a cable pulled, a proxy holding the socket open). Two
  // heartbeat intervals without any event means the link is gone: show it and open a new stream.
  setInterval(() => {
    if (performance.now() - lastEventAt > 2 * heartbeatMs) {
      offline("no data for " + Math.round((performance.now() - lastEventAt) / 1000) + " s");
      connect();
    }
  }, 250);

  // --- formatting -------------------------------------------------------------------------------------------
  const DASH = "\u2014";
  const int = (v) => (v === null || v === undefined ? DASH : String(Math.round(v)));
  const pct = (v) => (v === null || v === undefined ? DASH : Math.round(v) + "%");
  function dur(s) {
    if (s === null || s === undefined) return DASH;
    s = Math.max(0, Math.round(s));
    const h = Math.floor(s / 3600), m = Math.floor((s % 3600) / 60), sec = s % 60;
    const mm = h ? String(m).padStart(2, "0") : String(m);
    return (h ? h + ":" : "") + mm + ":" + String(sec).padStart(2, "0");
  }
  function clock(iso) {
    const options = { hour: "2-digit", minute: "2-digit", second: "2-digit", hour12: false };
    try {
      return new Date(iso).toLocaleTimeString("en-GB", { ...options, timeZone: snapshot.settings.time_zone });
    } catch (err) {  // an unknown zone on an old TV browser: its own clock is better than nothing
      return new Date(iso).toLocaleTimeString("en-GB", options);
    }
  }
  // The class for a value that is bad when high (warn <= crit) or, with `low`, bad when low.
  function level(v, warn, crit, low) {
    if (v === null || v === undefined) return "";
    if (low) return v < crit ? "bad" : v < warn ? "warn" : "good";
    return v > crit ? "bad" : v > warn ? "warn" : "good";
  }
  const limit = (raw, fallback) => (raw !== null && Number.isFinite(parseFloat(raw)) ? parseFloat(raw) : fallback);

  function setFigure(el, text, cls) {
    el.textContent = text;
    el.classList.remove("good", "warn", "bad");
    if (cls) el.classList.add(cls);
  }

  // --- drawing ----------------------------------------------------------------------------------------------
  const AGENT_STATES = [["available", "Available"], ["ringing", "Ringing"], ["on_call", "On call"],
                        ["wrap_up", "Wrap-up"], ["paused", "Paused"]];
  const POLICIES = {
    exclude: () => "abandons not counted in SL",
    count_as_failed: () => "every abandon counts as missing SL",
    exclude_within_threshold: (s) => "abandons within " + s + " s not counted, later ones miss SL",
  };
  const PERIODS = [["today", "Today"], ["60m", "60 min"], ["15m", "15 min"]];

  function draw() {
    const s = snapshot, st = s.settings, now = s.now;
    document.title = s.title;
    $("title").textContent = s.title;
    $("scope").textContent = s.scope;
    $("updated").textContent = clock(s.updated_at);

    setFigure($("waiting"), int(now.waiting), level(now.waiting, T.waitingWarn, T.waitingCrit));
    drawLongestWait();

    const agents = $("agent-states");
    agents.replaceChildren();
    const counts = { ...now.agents };
    // Reserved is the instant between the router's pick and the phone ringing: on a board it is ringing.
    counts.ringing = (counts.ringing || 0) + (counts.reserved || 0);
    delete counts.reserved;
    const known = AGENT_STATES.map(([k]) => k);
    const rows = AGENT_STATES.concat(Object.keys(counts).filter((k) => !known.includes(k)).map((k) => [k, k]));
    for (const [key, label] of rows) {
      const box = document.createElement("div");
      box.className = "agent state-" + key;
      const n = document.createElement("span");
      n.className = "n";
      n.dataset.figure = "now.agents." + key;
      n.textContent = String(counts[key] || 0);
      // No one available while calls wait: the one agent figure that needs a colour.
      if (key === "available" && !counts[key] && now.waiting > 0) n.classList.add("bad");
      const what = document.createElement("span");
      what.className = "what";
      what.textContent = label;
      box.append(n, what);
      agents.append(box);
    }
    const paused = $("paused-reasons");
    paused.replaceChildren();
    const reasons = Object.entries(now.paused_reasons).sort((a, b) => b[1] - a[1]);
    if (reasons.length) paused.append("Paused: ");
    reasons.forEach(([reason, n], i) => {
      const b = document.createElement("b");
      b.textContent = String(n);
      paused.append((i ? " \u00b7 " : "") + reason + " ", b);
    });

    const asaWarn = limit(T.asaWarn, st.sl_threshold_s), asaCrit = limit(T.asaCrit, 2 * st.sl_threshold_s);
    const body = $("period-rows");
    body.replaceChildren();
    for (const [key, label] of PERIODS) {
      const p = s.periods[key];
      if (!p) continue;
      const tr = document.createElement("tr");
      const cells = [
        ["period", label, ""],
        ["sl_pct", pct(p.sl_pct), level(p.sl_pct, T.slTarget, T.slTarget - T.slMargin, true)],
        ["asa_s", dur(p.asa_s), level(p.asa_s, asaWarn, asaCrit)],
        ["abandon_pct", pct(p.abandon_pct), level(p.abandon_pct, T.abandonWarn, T.abandonCrit)],
        ["offered", int(p.offered), ""],
        ["answered", int(p.answered), ""],
        ["abandoned", int(p.abandoned), ""],
        ["aht_s", dur(p.aht_s), ""],
        ["occupancy_pct", pct(p.occupancy_pct), ""],
      ];
      for (const [field, text, cls] of cells) {
        const td = document.createElement("td");
        if (field === "period") td.className = "period";
        else td.dataset.figure = "periods." + key + "." + field;
        setFigure(td, text, cls);
        tr.append(td);
      }
      body.append(tr);
    }
    // A whole centre's day runs to five-digit counts: shrink a figure that would spill into its neighbour.
    body.querySelectorAll("td[data-figure]").forEach(fit);

    const footer = $("settings");
    footer.replaceChildren();
    const policy = (POLICIES[st.abandon_policy] || (() => st.abandon_policy))(st.sl_threshold_s);
    const bold = (text) => { const b = document.createElement("b"); b.textContent = text; return b; };
    footer.append("SL = answered within ", bold(st.sl_threshold_s + " s"), " (target ", bold(T.slTarget + "%"),
                  ") \u00b7 ", policy, " \u00b7 short abandon < ", bold(st.short_abandon_s + " s"),
                  " \u00b7 day from 00:00 ", st.time_zone);
  }

  function fit(el) {
    el.style.fontSize = "";
    const room = el.clientWidth, need = el.scrollWidth;
    if (need > room) el.style.fontSize = (parseFloat(getComputedStyle(el).fontSize) * room / need * 0.95) + "px";
  }

  // The longest wait moves every second without any event: counted from oldest_waiting_since on the server's
  // clock (the TV's own may be off by minutes).
  function drawLongestWait() {
    if (!snapshot) return;
    const since = snapshot.now.oldest_waiting_since;
    const el = $("longest-wait");
    if (!since) {
      setFigure(el, dur(0), "good");
      return;
    }
    const waited = (Date.now() + skewMs - Date.parse(since)) / 1000;
    const st = snapshot.settings;
    setFigure(el, dur(waited), level(waited, limit(T.waitWarn, st.sl_threshold_s),
                                     limit(T.waitCrit, 2 * st.sl_threshold_s)));
  }
  setInterval(drawLongestWait, 500);

  connect();
})();
