// Mycel explorer: plain JavaScript, no frameworks. Reads /explorer/api/*,
// listens to /explorer/api/events (server-sent events) and falls back to
// polling when the stream fails.
"use strict";

(function () {
  const API = "/explorer/api/";
  const $ = (id) => document.getElementById(id);
  const state = {
    height: 0,
    providers: [],
    traffic: [], // {t, requests, tokens} history for rates
    pollTimer: null,
    refreshTimer: null,
    lastRefresh: 0,
    refreshing: false,
    names: {},
  };

  // ---------- formatting ----------
  function esc(s) {
    return String(s == null ? "" : s).replace(/[&<>"']/g, (c) => ({ "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;" }[c]));
  }
  function num(n) {
    if (n == null || isNaN(n)) return "–";
    return Number(n).toLocaleString("en-US");
  }
  function compact(n) {
    n = Number(n || 0);
    if (n >= 1e9) return (n / 1e9).toFixed(2) + "B";
    if (n >= 1e6) return (n / 1e6).toFixed(2) + "M";
    if (n >= 1e4) return (n / 1e3).toFixed(1) + "k";
    return num(Math.round(n * 100) / 100);
  }
  // umyc → "1,234.5 MYC"
  function myc(u) {
    if (u == null) return "–";
    const v = Number(u) / 1e6;
    const digits = v !== 0 && Math.abs(v) < 1 ? 6 : v % 1 === 0 ? 0 : 2;
    return v.toLocaleString("en-US", { minimumFractionDigits: digits, maximumFractionDigits: digits }) + " MYC";
  }
  function pct(bps) {
    if (bps == null) return "–";
    return (Number(bps) / 100).toFixed(Number(bps) % 100 === 0 ? 0 : 1) + "%";
  }
  function short(a) {
    if (!a) return "–";
    a = String(a);
    return a.length > 20 ? a.slice(0, 10) + "…" + a.slice(-6) : a;
  }
  function addrLink(a, brief) {
    if (!a) return "–";
    const name = state.names[a];
    const label = name ? "<b>" + esc(name) + "</b>" + (brief ? "" : ' <span class="muted">' + esc(short(a)) + "</span>") : esc(short(a));
    return '<a class="addr" href="#" data-q="' + esc(a) + '" title="' + esc(a) + '">' + label + "</a>";
  }
  function hashLink(h) {
    return '<a class="mono" href="#" data-q="' + esc(h) + '" title="' + esc(h) + '">' + esc(String(h).slice(0, 10)) + "…</a>";
  }
  function age(t) {
    const s = Math.max(0, (Date.now() - new Date(t).getTime()) / 1000);
    if (s < 60) return Math.floor(s) + "s ago";
    if (s < 3600) return Math.floor(s / 60) + "m ago";
    if (s < 86400) return Math.floor(s / 3600) + "h ago";
    return Math.floor(s / 86400) + "d ago";
  }
  function bar(frac, cls) {
    const w = Math.max(0, Math.min(1, frac || 0)) * 100;
    return '<span class="bar ' + (cls || "") + '"><span style="width:' + w.toFixed(1) + '%"></span></span>';
  }
  function setText(id, v) {
    const el = $(id);
    if (!el) return;
    const s = String(v);
    if (el.textContent !== s) {
      el.textContent = s;
      el.classList.remove("flash");
      void el.offsetWidth;
      el.classList.add("flash");
    }
  }
  function emptyRow(tbody, cols, msg) {
    tbody.innerHTML = '<tr><td class="empty-row" colspan="' + cols + '">' + esc(msg) + "</td></tr>";
  }

  async function api(path) {
    const r = await fetch(API + path, { headers: { Accept: "application/json" } });
    let body = null;
    try {
      body = await r.json();
    } catch (e) {
      body = null;
    }
    if (!r.ok) throw new Error((body && body.error) || r.status + " " + r.statusText);
    return body;
  }

  // ---------- rendering: chain ----------
  function renderOverview(o) {
    state.height = o.height;
    setText("s-height", num(o.height));
    $("s-chain").textContent = o.chain_id + " · " + age(o.block_time);
    const ep = o.epoch || {};
    setText("s-epoch", ep.number != null ? "#" + num(ep.number) : "–");
    if (ep.next_epoch_height) {
      $("s-epoch-sub").textContent = "next at block " + num(ep.next_epoch_height) + " · pool " + myc(ep.reward_pool);
    }
    const sup = o.supply || {};
    setText("s-supply", sup.total != null ? compact(sup.total / 1e6) + " MYC" : "–");
    $("s-supply-sub").textContent = "minted " + myc(sup.minted) + " · slashed " + myc(sup.slashed);
    setText("m-minted", myc(sup.minted));
    setText("m-slashed", myc(sup.slashed));
    $("foot-gw").textContent = o.gateway ? " · gateway attached" : "";
  }

  function renderBlocks(bs) {
    const tb = $("blocks-table").tBodies[0];
    if (!bs.length) return emptyRow(tb, 4, "no blocks yet");
    tb.innerHTML = bs
      .map((b) => "<tr><td><a href=\"#\" data-q=\"" + b.height + "\">" + num(b.height) + "</a></td><td class=\"muted\">" + age(b.time) + "</td><td class=\"num\">" + (b.num_txs ? "<b>" + b.num_txs + "</b>" : '<span class="muted">0</span>') + "</td><td class=\"mono muted\">" + esc(b.hash.slice(0, 16)) + "…</td></tr>")
      .join("");
  }

  function typeChips(types) {
    return (types || []).map((t) => '<span class="chip">' + esc(t) + "</span>").join("");
  }

  function renderTxs(txs) {
    const tb = $("txs-table").tBodies[0];
    if (!txs.length) return emptyRow(tb, 5, "no transactions yet");
    tb.innerHTML = txs
      .map((t) => "<tr><td>" + hashLink(t.hash) + "</td><td>" + num(t.height) + "</td><td>" + addrLink(t.sender) + "</td><td>" + typeChips(t.types) + "</td><td>" + (t.code === 0 ? '<span class="badge b-ok">ok</span>' : '<span class="badge b-bad" title="' + esc(t.log) + '">code ' + t.code + "</span>") + "</td></tr>")
      .join("");
  }

  // ---------- rendering: providers and verifiers ----------
  function capacityOf(p) {
    const c = p.proven_capacity;
    if (!c || !c.models || !c.models.length) return null;
    return c.models.reduce((s, m) => s + Number(m.tokens_per_sec_milli || 0), 0) / 1000;
  }

  function renderProviders(ps) {
    state.providers = ps;
    const tb = $("providers-table").tBodies[0];
    const active = ps.filter((p) => p.active).length;
    setText("s-providers", num(ps.length));
    $("s-providers-sub").textContent = active + " active · " + ps.filter((p) => p.jailed).length + " jailed";
    if (!ps.length) return emptyRow(tb, 8, "no providers registered yet");
    tb.innerHTML = ps
      .map((p) => {
        const models = (p.models || [])
          .map((m) => '<span class="chip"><b>' + esc(m.model_id) + '</b> <span class="muted">' + compact(m.price_in_per_mtok / 1e6) + " / " + compact(m.price_out_per_mtok / 1e6) + " MYC</span></span>")
          .join("");
        const cap = capacityOf(p);
        const rep = p.reputation;
        const pass = p.audit_pass_rate_bps;
        let status = '<span class="badge b-dim">inactive</span>';
        if (p.jailed) status = '<span class="badge b-bad" title="jailed until epoch ' + esc(p.jailed_until_epoch) + '">jailed</span>';
        else if (p.active) status = '<span class="badge b-ok">active</span>';
        const hw = p.hardware || {};
        const hwText = hw.gpus && hw.gpus.length ? hw.gpus.join(", ") : hw.cpu ? hw.cpu + (hw.cores ? " · " + hw.cores + " cores" : "") : "";
        return (
          "<tr><td>" + addrLink(p.address) + '<div class="muted sub" title="' + esc(p.endpoint || "") + '">' + esc(p.endpoint || "") + (hwText ? " · " + esc(hwText) : "") + "</div></td>" +
          "<td>" + (models || '<span class="muted">–</span>') + "</td>" +
          '<td class="num">' + (cap != null ? compact(cap) + " tok/s" : '<span class="muted">not proven</span>') + "</td>" +
          '<td class="num">' + (rep ? pct(rep.audit_bps) + '<div class="muted">' + num(rep.clean_epochs) + " clean epochs</div>" : '<span class="muted">–</span>') + "</td>" +
          "<td>" + (pass != null ? bar(pass / 10000) + pct(pass) + '<div class="muted">' + num(rep ? rep.audits_passed : 0) + " passed · " + num(rep ? rep.audits_failed : 0) + " failed</div>" : '<span class="muted">no audits yet</span>') + "</td>" +
          '<td class="num">' + myc(p.stake) + "</td>" +
          '<td class="num">' + myc(p.earnings || 0) + "</td>" +
          "<td>" + status + "</td></tr>"
        );
      })
      .join("");
  }

  function renderVerifiers(vs) {
    const tb = $("verifiers-table").tBodies[0];
    setText("s-verifiers", num(vs.length));
    $("s-verifiers-sub").textContent = vs.filter((v) => v.active).length + " active · stake " + myc(vs.reduce((s, v) => s + Number(v.stake || 0), 0));
    if (!vs.length) return emptyRow(tb, 8, "no verifiers registered yet");
    tb.innerHTML = vs
      .map((v) => {
        const s = v.stats || {};
        let status = '<span class="badge b-dim">inactive</span>';
        if (v.jailed) status = '<span class="badge b-bad">jailed</span>';
        else if (v.active) status = '<span class="badge b-ok">active</span>';
        return (
          "<tr><td>" + addrLink(v.address) + "</td>" +
          '<td class="num">' + myc(v.stake) + "</td>" +
          '<td class="num">' + num(s.audits || 0) + "</td>" +
          '<td class="num">' + num(s.audits_failed || 0) + "</td>" +
          '<td class="num">' + num(s.evidence_filed || 0) + "</td>" +
          '<td class="num">' + num(s.evidence_upheld || 0) + "</td>" +
          '<td class="num">' + myc(Number(s.dividends || 0) + Number(s.evidence_rewards || 0)) + "</td>" +
          "<td>" + status + "</td></tr>"
        );
      })
      .join("");
  }

  // ---------- rendering: money ----------
  function renderChannels(cs) {
    const tb = $("channels-table").tBodies[0];
    const open = cs.filter((c) => !c.closed);
    setText("m-open", num(open.length));
    setText("m-deposits", myc(open.reduce((s, c) => s + Number(c.deposit || 0) - Number(c.redeemed || 0), 0)));
    setText("m-redeemed", myc(cs.reduce((s, c) => s + Number(c.redeemed || 0), 0)));
    if (!cs.length) return emptyRow(tb, 6, "no payment channels yet");
    const rows = cs.slice().sort((a, b) => b.id - a.id).slice(0, 12);
    tb.innerHTML = rows
      .map((c) => {
        const st = c.closed ? '<span class="badge b-dim">closed</span>' : c.close_at ? '<span class="badge b-warn">closing @' + num(c.close_at) + "</span>" : '<span class="badge b-ok">open</span>';
        return "<tr><td><a href=\"#\" data-q=\"" + c.id + "\">" + c.id + "</a></td><td>" + addrLink(c.consumer, true) + "</td><td>" + addrLink(c.provider, true) + '</td><td class="num">' + myc(c.deposit) + "</td><td class=\"nowrap\">" + bar(c.deposit ? c.redeemed / c.deposit : 0, "blue") + myc(c.redeemed) + "</td><td>" + st + "</td></tr>";
      })
      .join("");
  }

  function renderRewards(rs) {
    const tb = $("rewards-table").tBodies[0];
    drawStacked($("c-rewards"), rs.slice().reverse());
    if (!rs.length) return emptyRow(tb, 5, "no epoch has paid rewards yet");
    tb.innerHTML = rs
      .map((r) => "<tr><td>#" + num(r.epoch) + '</td><td class="num">' + myc(r.pool) + '</td><td class="num">' + myc(r.to_providers) + '</td><td class="num">' + myc(r.to_verifiers) + '</td><td class="num">' + myc(r.carried) + "</td></tr>")
      .join("");
  }

  function renderSlashes(ss, evs) {
    const tb = $("slashes-table").tBodies[0];
    const byProvider = {};
    (evs || []).forEach((e) => {
      (byProvider[e.provider] = byProvider[e.provider] || []).push(e);
    });
    if (!ss.length) emptyRow(tb, 6, "no slashes: nobody has been caught cheating");
    else
      tb.innerHTML = ss
        .slice()
        .reverse()
        .map((s) => {
          const ev = (byProvider[s.address] || []).filter((e) => e.status !== "pending" && e.status !== "rejected");
          const evLinks = ev.map((e) => '<span class="chip">#' + e.id + " " + esc((e.summary && e.summary.verdict) || "") + "</span>").join("") || '<span class="muted">–</span>';
          return "<tr><td>" + num(s.height) + "</td><td>" + addrLink(s.address) + "</td><td>" + esc(s.role) + '</td><td class="num">' + myc(s.amount) + "</td><td>" + esc(s.reason) + "</td><td>" + evLinks + "</td></tr>";
        })
        .join("");
    const etb = $("evidence-table").tBodies[0];
    if (!evs || !evs.length) return emptyRow(etb, 9, "no evidence filed");
    etb.innerHTML = evs
      .slice()
      .reverse()
      .map((e) => {
        const sm = e.summary || {};
        const guilty = (e.votes || []).filter((v) => v.guilty).length;
        const cls = e.status === "upheld" ? "b-bad" : e.status === "pending" ? "b-warn" : "b-dim";
        return (
          "<tr><td>#" + e.id + "</td><td>" + addrLink(e.provider) + "</td><td>" + addrLink(e.submitter) + "</td><td>" + esc((e.receipt && e.receipt.model_id) || "–") + "</td><td>" + esc(sm.verdict || "–") +
          '</td><td class="num">' + num(sm.mismatches || 0) + " / " + num(sm.positions_checked || 0) + "</td><td>" + guilty + " guilty · " + ((e.votes || []).length - guilty) + " not</td><td><span class=\"badge " + cls + "\">" + esc(e.status || "–") + '</span></td><td class="num">' + myc(e.slashed || 0) + "</td></tr>"
        );
      })
      .join("");
  }

  // ---------- charts (SVG, drawn here) ----------
  const NS = "http://www.w3.org/2000/svg";
  function svgEl(tag, attrs) {
    const e = document.createElementNS(NS, tag);
    for (const k in attrs) e.setAttribute(k, attrs[k]);
    return e;
  }
  function clear(svg) {
    while (svg.firstChild) svg.removeChild(svg.firstChild);
  }
  // vb returns the chart's drawing size; the viewBox's width follows the
  // element's, so that text and bars are not stretched.
  function vb(svg) {
    const v = svg.viewBox.baseVal;
    const cw = Math.round(svg.clientWidth);
    if (cw > 0 && cw !== v.width) svg.setAttribute("viewBox", "0 0 " + cw + " " + v.height);
    return { w: svg.viewBox.baseVal.width, h: v.height };
  }
  function gridLines(svg, w, h, maxV) {
    for (let i = 1; i <= 3; i++) {
      const y = h - 14 - ((h - 24) * i) / 3;
      svg.appendChild(svgEl("line", { x1: 0, x2: w, y1: y, y2: y, stroke: "#233040", "stroke-width": 1, "vector-effect": "non-scaling-stroke" }));
    }
    const t = svgEl("text", { x: 4, y: 12, fill: "#8b9bb0", "font-size": 10 });
    t.textContent = compact(maxV);
    svg.appendChild(t);
  }
  function drawLine(svg, values, color) {
    clear(svg);
    const { w, h } = vb(svg);
    const maxV = Math.max(1e-9, ...values, 0);
    gridLines(svg, w, h, maxV);
    if (values.length < 2) {
      const t = svgEl("text", { x: w / 2, y: h / 2, fill: "#8b9bb0", "font-size": 11, "text-anchor": "middle" });
      t.textContent = "collecting…";
      svg.appendChild(t);
      return;
    }
    const step = w / (values.length - 1);
    const pts = values.map((v, i) => [i * step, h - 14 - ((h - 24) * v) / maxV]);
    const d = pts.map((p, i) => (i ? "L" : "M") + p[0].toFixed(1) + " " + p[1].toFixed(1)).join(" ");
    svg.appendChild(svgEl("path", { d: d + " L" + w + " " + (h - 14) + " L0 " + (h - 14) + " Z", fill: color, "fill-opacity": 0.12 }));
    svg.appendChild(svgEl("path", { d: d, fill: "none", stroke: color, "stroke-width": 2, "vector-effect": "non-scaling-stroke" }));
  }
  // drawBars draws one bar per sample: the events counted in that interval.
  function drawBars(svg, values, color, none) {
    clear(svg);
    const { w, h } = vb(svg);
    const maxV = Math.max(1, ...values);
    gridLines(svg, w, h, maxV);
    svg.appendChild(svgEl("line", { x1: 0, x2: w, y1: h - 14, y2: h - 14, stroke: "#34465c", "stroke-width": 1, "vector-effect": "non-scaling-stroke" }));
    if (values.length < 2 || !values.some((v) => v > 0)) {
      const t = svgEl("text", { x: w / 2, y: h / 2 + 2, fill: "#8b9bb0", "font-size": 11, "text-anchor": "middle" });
      t.textContent = values.length < 2 ? "collecting…" : none;
      svg.appendChild(t);
    }
    const slots = Math.max(values.length, 60);
    const bw = w / slots;
    const x0 = w - values.length * bw; // newest on the right, as the line charts
    values.forEach((v, i) => {
      if (v <= 0) return;
      const bh = Math.max(2, ((h - 24) * v) / maxV);
      svg.appendChild(svgEl("rect", { x: x0 + i * bw + 0.5, y: h - 14 - bh, width: Math.max(1.5, bw - 1), height: bh, fill: color, rx: 1 }));
    });
  }
  function drawHist(svg, hist, color, unit) {
    clear(svg);
    const { w, h } = vb(svg);
    const counts = (hist && hist.counts) || [];
    const bounds = (hist && hist.bounds) || [];
    const total = counts.reduce((a, b) => a + b, 0);
    if (!total) {
      const t = svgEl("text", { x: w / 2, y: h / 2, fill: "#8b9bb0", "font-size": 11, "text-anchor": "middle" });
      t.textContent = "no samples yet";
      svg.appendChild(t);
      return;
    }
    // Trim empty buckets at both ends.
    const labelled = h > 60;
    let lo = 0;
    let hi = counts.length - 1;
    if (labelled) {
      lo = Math.max(0, counts.findIndex((c) => c > 0) - 1);
      hi = Math.min(counts.length - 1, counts.length - counts.slice().reverse().findIndex((c) => c > 0));
    }
    const shown = counts.slice(lo, hi + 1);
    const maxC = Math.max(...shown);
    const bw = w / shown.length;
    const base = labelled ? h - 14 : h;
    shown.forEach((c, i) => {
      const bh = ((base - (labelled ? 10 : 2)) * c) / maxC;
      if (!labelled) svg.appendChild(svgEl("rect", { x: i * bw + 1, y: 0, width: Math.max(1, bw - 2), height: base, fill: "#233040", rx: 1.5 }));
      svg.appendChild(svgEl("rect", { x: i * bw + 1, y: base - bh, width: Math.max(1, bw - 2), height: bh, fill: color, rx: 1.5 }));
    });
    if (labelled) {
      [0, Math.floor(shown.length / 2), shown.length - 1].forEach((i) => {
        const b = lo + i < bounds.length ? bounds[lo + i] : null;
        const t = svgEl("text", { x: Math.min(w - 2, Math.max(2, i * bw + bw / 2)), y: h - 2, fill: "#8b9bb0", "font-size": 9.5, "text-anchor": i === 0 ? "start" : i === shown.length - 1 ? "end" : "middle" });
        t.textContent = b == null ? ">" + compact(bounds[bounds.length - 1] || 0) + unit : "≤" + compact(b) + unit;
        svg.appendChild(t);
      });
    }
  }
  function drawStacked(svg, rs) {
    clear(svg);
    const { w, h } = vb(svg);
    if (!rs.length) {
      const t = svgEl("text", { x: w / 2, y: h / 2, fill: "#8b9bb0", "font-size": 11, "text-anchor": "middle" });
      t.textContent = "no rewards yet";
      svg.appendChild(t);
      return;
    }
    const maxV = Math.max(1, ...rs.map((r) => Number(r.to_providers || 0) + Number(r.to_verifiers || 0)));
    const bw = w / Math.max(rs.length, 6);
    rs.forEach((r, i) => {
      const a = ((h - 20) * Number(r.to_providers || 0)) / maxV;
      const b = ((h - 20) * Number(r.to_verifiers || 0)) / maxV;
      svg.appendChild(svgEl("rect", { x: i * bw + 3, y: h - 14 - a, width: bw - 6, height: a, fill: "#3ddc97", rx: 2 }));
      svg.appendChild(svgEl("rect", { x: i * bw + 3, y: h - 14 - a - b, width: bw - 6, height: b, fill: "#5aa9ff", rx: 2 }));
      const t = svgEl("text", { x: i * bw + bw / 2, y: h - 2, fill: "#8b9bb0", "font-size": 9.5, "text-anchor": "middle" });
      t.textContent = "#" + r.epoch;
      svg.appendChild(t);
    });
  }
  function quantile(hist, q) {
    const counts = (hist && hist.counts) || [];
    const bounds = (hist && hist.bounds) || [];
    const total = counts.reduce((a, b) => a + b, 0);
    if (!total) return null;
    let acc = 0;
    for (let i = 0; i < counts.length; i++) {
      acc += counts[i];
      if (acc >= q * total) return i < bounds.length ? bounds[i] : Infinity;
    }
    return Infinity;
  }
  function fmtQ(v, unit) {
    if (v == null) return "–";
    if (v === Infinity) return "high";
    return "≤" + compact(v) + unit;
  }

  // ---------- traffic ----------
  function renderTraffic(t) {
    if (!t || !t.attached) {
      $("traffic-none").hidden = false;
      $("traffic-body").hidden = true;
      return;
    }
    $("traffic-none").hidden = true;
    $("traffic-body").hidden = false;
    const now = t.time_ms || Date.now();
    const hist = state.traffic;
    if (!hist.length || hist[hist.length - 1].t < now)
      hist.push({ t: now, requests: t.requests, tokens: t.tokens_out, failovers: t.failovers || 0, hedges: t.hedges || 0, errors: t.errors || 0 });
    while (hist.length > 120) hist.shift();
    const rps = [], tps = [], fos = [], hedges = [], errs = [];
    for (let i = 1; i < hist.length; i++) {
      const dt = Math.max(0.001, (hist[i].t - hist[i - 1].t) / 1000);
      const d = (k) => Math.max(0, hist[i][k] - hist[i - 1][k]) / dt;
      rps.push(d("requests"));
      tps.push(d("tokens"));
      fos.push(d("failovers"));
      hedges.push(d("hedges"));
      errs.push(d("errors"));
    }
    drawLine($("c-rps"), rps, "#3ddc97");
    drawLine($("c-tps"), tps, "#5aa9ff");
    drawBars($("c-failovers"), fos, "#ff7a6b", "no failovers in this window");
    drawBars($("c-hedges"), hedges, "#b78cff", "no hedges in this window");
    drawBars($("c-errors"), errs, "#ffb547", "no errors in this window");
    const span = hist.length > 1 ? Math.round((hist[hist.length - 1].t - hist[0].t) / 1000) : 0;
    const inWindow = (k) => (hist.length > 1 ? hist[hist.length - 1][k] - hist[0][k] : 0);
    $("t-fo-now").textContent = num(inWindow("failovers")) + " in " + span + " s · " + num(t.failovers) + " total";
    $("t-hedge-now").textContent = num(inWindow("hedges")) + " in " + span + " s · " + num(t.hedges) + " total";
    $("t-err-now").textContent = num(inWindow("errors")) + " in " + span + " s · " + num(t.errors) + " total";
    drawHist($("c-ttft"), t.ttft_ms, "#ffb547", "ms");
    $("t-rps").textContent = rps.length ? compact(rps[rps.length - 1]) : "–";
    $("t-tps").textContent = tps.length ? compact(tps[tps.length - 1]) : "–";
    $("t-ttft").textContent = "p50 " + fmtQ(quantile(t.ttft_ms, 0.5), "ms") + " · p90 " + fmtQ(quantile(t.ttft_ms, 0.9), "ms");
    setText("t-requests", num(t.requests));
    setText("t-tokens", num(t.tokens_out));
    setText("t-failovers", num(t.failovers));
    setText("t-hedges", num(t.hedges));
    setText("t-errors", num(t.errors));
    setText("t-spend", myc(t.spend_umyc || 0));
    setText("s-requests", num(t.requests));
    $("s-requests-sub").textContent = compact(t.tokens_out) + " tokens · " + num(t.failovers) + " failovers";
    const tb = $("traffic-table").tBodies[0];
    const ps = t.providers || [];
    if (!ps.length) return emptyRow(tb, 8, "no requests routed yet");
    const totalReq = ps.reduce((s, p) => s + Number(p.requests || 0), 0) || 1;
    tb.innerHTML = ps
      .map((p, i) => "<tr><td>" + addrLink(p.address) + '</td><td class="num">' + num(p.requests) + '</td><td class="num">' + compact(p.tokens_out) + "</td><td>" + bar(p.requests / totalReq) + pct(Math.round((p.requests / totalReq) * 10000)) + '</td><td><svg class="mini" id="h-ttft-' + i + '" viewBox="0 0 120 26" preserveAspectRatio="none"></svg></td><td class="num">' + fmtQ(quantile(p.ttft_ms, 0.5), "ms") + " / " + fmtQ(quantile(p.ttft_ms, 0.9), "ms") + '</td><td><svg class="mini" id="h-tps-' + i + '" viewBox="0 0 120 26" preserveAspectRatio="none"></svg></td><td class="num">' + fmtQ(quantile(p.tokens_per_sec, 0.5), "") + "</td></tr>")
      .join("");
    ps.forEach((p, i) => {
      drawHist($("h-ttft-" + i), p.ttft_ms, "#ffb547", "ms");
      drawHist($("h-tps-" + i), p.tokens_per_sec, "#5aa9ff", "");
    });
  }

  // ---------- refresh ----------
  async function refresh() {
    if (state.refreshing) return;
    state.refreshing = true;
    state.lastRefresh = Date.now();
    const jobs = {
      overview: api("overview"),
      providers: api("providers"),
      verifiers: api("verifiers"),
      channels: api("channels"),
      slashes: api("slashes"),
      evidence: api("evidence"),
      rewards: api("rewards"),
      blocks: api("blocks"),
      txs: api("txs"),
    };
    const keys = Object.keys(jobs);
    const res = await Promise.allSettled(keys.map((k) => jobs[k]));
    state.refreshing = false;
    const got = {};
    const failed = [];
    res.forEach((r, i) => {
      if (r.status === "fulfilled") got[keys[i]] = r.value;
      else failed.push(keys[i] + ": " + r.reason.message);
    });
    const renders = [
      ["overview", () => renderOverview(got.overview)],
      ["providers", () => renderProviders(got.providers || [])],
      ["verifiers", () => renderVerifiers(got.verifiers || [])],
      ["channels", () => renderChannels(got.channels || [])],
      ["rewards", () => renderRewards(got.rewards || [])],
      ["slashes", () => renderSlashes(got.slashes || [], got.evidence || [])],
      ["blocks", () => renderBlocks(got.blocks || [])],
      ["txs", () => renderTxs(got.txs || [])],
    ];
    renders.forEach(([k, f]) => {
      if (got[k] !== undefined) f();
    });
    $("chain-note").textContent = failed.length ? "some data unavailable: " + failed.join("; ") : "";
    $("chain-note").className = failed.length ? "err" : "muted";
  }
  function scheduleRefresh() {
    if (state.refreshTimer) return;
    const wait = Math.max(0, 1000 - (Date.now() - state.lastRefresh));
    state.refreshTimer = setTimeout(() => {
      state.refreshTimer = null;
      refresh();
    }, wait);
  }
  async function refreshTraffic() {
    try {
      renderTraffic(await api("traffic"));
    } catch (e) {
      $("traffic-note").textContent = e.message;
    }
  }

  // ---------- live updates ----------
  function setLive(mode) {
    const el = $("live");
    el.className = "live " + (mode === "live" ? "on" : mode === "polling" ? "poll" : "");
    $("live-text").textContent = mode;
    document.body.dataset.live = mode;
  }
  function startPolling() {
    if (state.pollTimer) return;
    setLive("polling");
    state.pollTimer = setInterval(() => {
      refresh();
      refreshTraffic();
    }, 2000);
  }
  function stopPolling() {
    if (state.pollTimer) clearInterval(state.pollTimer);
    state.pollTimer = null;
  }
  function connect() {
    if (!window.EventSource) return startPolling();
    const es = new EventSource(API + "events");
    es.addEventListener("open", () => {
      stopPolling();
      setLive("live");
    });
    es.addEventListener("block", (ev) => {
      try {
        const b = JSON.parse(ev.data);
        if (b.height !== state.height) {
          setText("s-height", num(b.height));
          scheduleRefresh();
        }
      } catch (e) {
        /* a bad event is ignored; the next one refreshes */
      }
    });
    es.addEventListener("traffic", (ev) => {
      try {
        renderTraffic(Object.assign({ attached: true }, JSON.parse(ev.data)));
      } catch (e) {
        /* ignored */
      }
    });
    es.addEventListener("error", () => {
      // EventSource retries by itself; poll meanwhile.
      startPolling();
    });
  }

  // ---------- search ----------
  function kv(pairs) {
    return '<dl class="kv">' + pairs.map(([k, v]) => "<dt>" + esc(k) + "</dt><dd>" + v + "</dd>").join("") + "</dl>";
  }
  function pre(v) {
    return '<pre class="json">' + esc(JSON.stringify(v, null, 2)) + "</pre>";
  }
  function txTable(txs) {
    if (!txs || !txs.length) return '<p class="muted">No transactions.</p>';
    return '<div class="table-wrap"><table class="tbl"><thead><tr><th>Hash</th><th>Height</th><th>From</th><th>Messages</th><th>Result</th></tr></thead><tbody>' +
      txs.map((t) => "<tr><td>" + hashLink(t.hash) + "</td><td>" + num(t.height) + "</td><td>" + addrLink(t.sender) + "</td><td>" + typeChips(t.types) + "</td><td>" + (t.code === 0 ? '<span class="badge b-ok">ok</span>' : '<span class="badge b-bad">code ' + t.code + "</span>") + "</td></tr>").join("") +
      "</tbody></table></div>";
  }
  async function search(q) {
    q = String(q || "").trim();
    if (!q) return;
    const box = $("result");
    box.hidden = false;
    $("result-title").textContent = "Searching " + q + "…";
    $("result-body").innerHTML = "";
    try {
      const r = await api("search?q=" + encodeURIComponent(q));
      let html = "";
      if (r.kind === "address") {
        $("result-title").textContent = "Address " + q;
        const a = r.account || {};
        html += kv([["balance", myc(a.balance)], ["nonce", num(a.nonce)], ["provider", r.provider ? "yes, stake " + myc(r.provider.stake) : "no"], ["verifier", r.verifier ? "yes, stake " + myc(r.verifier.stake) : "no"], ["channels", num((r.channels || []).length)]]);
        html += "<h3>Transactions</h3>" + txTable(r.txs);
        if (r.provider) html += "<h3>Provider record</h3>" + pre(r.provider);
        if (r.verifier) html += "<h3>Verifier record</h3>" + pre(r.verifier);
        if (r.channels && r.channels.length) html += "<h3>Channels</h3>" + pre(r.channels);
      } else if (r.kind === "tx") {
        const t = r.tx;
        $("result-title").textContent = "Transaction " + t.hash.slice(0, 16) + "…";
        html += kv([["hash", '<span class="mono">' + esc(t.hash) + "</span>"], ["height", num(t.height)], ["sender", addrLink(t.sender)], ["nonce", num(t.nonce)], ["fee", myc(t.fee)], ["messages", typeChips(t.types)], ["result", t.code === 0 ? '<span class="badge b-ok">ok</span>' : '<span class="badge b-bad">code ' + t.code + "</span> " + esc(t.log)]]);
        html += "<h3>Messages</h3>" + pre(t.msgs) + "<h3>Events</h3>" + pre(t.events);
      } else {
        $("result-title").textContent = (r.channel ? "Channel " : "Block ") + q;
        if (r.channel) {
          const c = r.channel;
          html += kv([["consumer", addrLink(c.consumer)], ["provider", addrLink(c.provider)], ["deposit", myc(c.deposit)], ["redeemed", myc(c.redeemed)], ["opened at", num(c.opened_height)], ["state", c.closed ? "closed" : c.close_at ? "closing at " + num(c.close_at) : "open"]]);
        }
        if (r.block) {
          html += "<h3>Block " + num(r.block.height) + "</h3>" + kv([["time", esc(r.block.time) + " (" + age(r.block.time) + ")"], ["hash", '<span class="mono">' + esc(r.block.hash) + "</span>"], ["transactions", num(r.block.num_txs)], ["app hash", '<span class="mono">' + esc(r.block.app_hash) + "</span>"]]);
        }
      }
      $("result-body").innerHTML = html;
    } catch (e) {
      $("result-title").textContent = "Nothing found for " + q;
      $("result-body").innerHTML = '<p class="err">' + esc(e.message) + "</p>";
    }
    box.scrollIntoView({ behavior: "smooth", block: "start" });
  }

  document.addEventListener("click", (ev) => {
    const a = ev.target.closest("[data-q]");
    if (a) {
      ev.preventDefault();
      $("q").value = a.dataset.q;
      search(a.dataset.q);
    }
  });
  $("search").addEventListener("submit", (ev) => {
    ev.preventDefault();
    search($("q").value);
  });
  $("result-close").addEventListener("click", () => {
    $("result").hidden = true;
  });

  async function loadNames() {
    // Optional: a devnet serves names for its demo accounts.
    try {
      state.names = (await api("names")) || {};
    } catch (e) {
      state.names = {};
    }
  }

  setLive("connecting");
  loadNames().then(() => {
    refresh();
    refreshTraffic();
    connect();
  });
  setInterval(() => {
    // Ages and a slow safety refresh even when events flow.
    if (Date.now() - state.lastRefresh > 10000) refresh();
  }, 5000);
})();
