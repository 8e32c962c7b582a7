// The run page, live: progress, counts, rate and time left from the run's Server-Sent
// Events; the chart of results over time drawn as SVG; the recipients table filtered,
// paged and refreshed in place. On the runs list, the rows of active runs follow along.
// Everything the page shows works without this file; it only keeps it current.

const lang = document.documentElement.lang || "en";
const whole = new Intl.NumberFormat(lang);
const tenths = new Intl.NumberFormat(lang, { minimumFractionDigits: 1, maximumFractionDigits: 1 });
const STATUSES = ["delivered", "sent", "undelivered", "failed", "error"];
const SVG = "http://www.w3.org/2000/svg";

function stateLabels() {
  const labels = {};
  const template = document.getElementById("state-labels");
  if (template) {
    for (const span of template.content.querySelectorAll("[data-state]")) {
      labels[span.dataset.state] = span.textContent;
    }
  }
  return labels;
}

function setState(badge, state, labels) {
  if (!badge || badge.dataset.state === state) return;
  badge.dataset.state = state;
  badge.classList.forEach((name) => name.startsWith("state-") && badge.classList.remove(name));
  badge.classList.add(`state-${state}`);
  if (labels[state]) badge.textContent = labels[state];
}

// -- the run page ---------------------------------------------------------------------------

function runPage(root) {
  const labels = stateLabels();
  const say = (key, n) => (root.dataset[key] || "{n}").replace("{n}", n);
  const all = (name) => root.querySelectorAll(`[data-bind="${name}"]`);
  const put = (name, value) => all(name).forEach((el) => { el.textContent = value; });
  const show = (name, visible) => {
    root.querySelectorAll(`[data-show="${name}"]`).forEach((el) => { el.hidden = !visible; });
  };
  const chart = new Chart(root.querySelector("[data-chart]"));
  const table = new Table(root);
  let active = root.dataset.active === "true";

  function duration(seconds) {
    if (seconds < 90) return say("tSeconds", whole.format(Math.max(1, Math.round(seconds))));
    if (seconds < 90 * 60) return say("tMinutes", whole.format(Math.round(seconds / 60)));
    return say("tHours", tenths.format(seconds / 3600));
  }

  function apply(p, ended) {
    active = p.active && !ended;
    root.dataset.active = String(active);
    setState(root.querySelector('[data-bind="state"]'), p.state, labels);
    root.dataset.state = p.state;
    all("bar").forEach((bar) => { bar.max = Math.max(p.records, 1); bar.value = p.final; });
    put("final", whole.format(p.final));
    put("records", whole.format(p.records));
    put("percent", tenths.format(p.percent));
    put("sent", whole.format(p.sent));
    put("unfinished", whole.format(Math.max(0, p.records - p.final)));
    for (const status of STATUSES) {
      root.querySelectorAll(`[data-count="${status}"]`).forEach((el) => {
        el.textContent = whole.format(p.by_status[status] || 0);
      });
    }
    if (p.rate !== null) put("rate", say("tPerSecond", tenths.format(p.rate)));
    if (p.eta_s !== null) put("eta", duration(p.eta_s));
    if (!active) {
      put("rate", "–");
      put("eta", p.state === "completed" ? say("tDone") : "–");
    }
    if (p.error) put("error", p.error);
    show("error", Boolean(p.error) && p.state !== "completed");
    show("stop", active);
    show("resume", !active && ["created", "stopped", "interrupted"].includes(p.state));
    show("again", p.state === "completed" && p.retryable > 0);
    show("elsewhere", active && !p.here);
    if (!active) show("stopping", false);
    chart.live(p);
  }

  function follow() {
    const events = new EventSource(root.dataset.events);
    events.addEventListener("progress", (event) => apply(JSON.parse(event.data), false));
    events.addEventListener("end", (event) => {
      events.close();
      apply(JSON.parse(event.data), true);
      table.refresh();
      chart.load(root.dataset.timeline);
    });
  }

  chart.load(root.dataset.timeline);
  if (active) {
    follow();
    const refresh = setInterval(() => {
      if (!active) clearInterval(refresh);
      else table.refresh();
    }, 3000);
  }
}

// -- the chart: final results over time, stacked by status -----------------------------------

class Chart {
  constructor(figure) {
    this.figure = figure;
    this.svg = figure && figure.querySelector("[data-chart-svg]");
    this.caption = figure && figure.querySelector("[data-chart-caption]");
    this.start = null;
    this.points = [];
    this.samples = [];
    this.records = 0;
    let waiting;
    window.addEventListener("resize", () => {
      clearTimeout(waiting);
      waiting = setTimeout(() => this.draw(), 150);
    });
  }

  async load(url) {
    if (!this.svg) return;
    try {
      const answer = await fetch(url, { headers: { Accept: "application/json" } });
      if (!answer.ok) return;
      const timeline = await answer.json();
      this.start = timeline.start;
      this.points = [{ t: 0 }, ...timeline.points];
      const last = this.points[this.points.length - 1];
      this.samples = this.samples.filter((s) => s.t > last.t);
      this.draw();
    } catch (error) {
      // The chart is a convenience: the numbers above it are what counts.
    }
  }

  live(p) {
    this.records = p.records;
    if (this.start === null) return;
    const t = Math.max(0, p.at - this.start);
    const last = this.samples.length ? this.samples[this.samples.length - 1] : this.points[this.points.length - 1];
    if (last && t <= last.t) return; // time only moves forward on the chart
    this.samples.push({ t, ...p.by_status });
    this.draw();
  }

  draw() {
    const all = [...this.points, ...this.samples];
    if (all.length < 2 || !this.svg) return;
    const width = Math.round(this.svg.clientWidth) || 800;
    const height = Math.round(this.svg.clientHeight) || 220;
    this.svg.setAttribute("viewBox", `0 0 ${width} ${height}`);
    const pad = { left: 56, right: 8, top: 10, bottom: 24 };
    const end = Math.max(1, all[all.length - 1].t);
    const total = all.reduce((top, point) => Math.max(top, sum(point, STATUSES)), this.records);
    const top = Math.max(1, total);
    const x = (t) => pad.left + (t / end) * (width - pad.left - pad.right);
    const y = (n) => height - pad.bottom - (n / top) * (height - pad.top - pad.bottom);
    const svg = this.svg;
    svg.replaceChildren();
    for (const fraction of [0, 0.5, 1]) {
      const line = element("line", { x1: pad.left, x2: width - pad.right, y1: y(top * fraction), y2: y(top * fraction), class: "grid" });
      svg.append(line, text(pad.left - 6, y(top * fraction) + 4, whole.format(Math.round(top * fraction)), "axis end"));
    }
    let below = all.map(() => 0);
    STATUSES.forEach((status) => {
      const above = all.map((point, i) => below[i] + (point[status] || 0));
      if (above.some((value, i) => value !== below[i])) {
        const upper = all.map((point, i) => `${x(point.t).toFixed(1)},${y(above[i]).toFixed(1)}`);
        const lower = all.map((point, i) => `${x(point.t).toFixed(1)},${y(below[i]).toFixed(1)}`).reverse();
        svg.append(element("polygon", { points: [...upper, ...lower].join(" "), class: `area status-${status}` }));
      }
      below = above;
    });
    svg.append(text(pad.left, height - 6, "0:00", "axis"));
    svg.append(text(width - pad.right, height - 6, clock(end), "axis end"));
    if (this.caption) this.caption.hidden = true;
  }
}

function sum(point, keys) {
  return keys.reduce((total, key) => total + (point[key] || 0), 0);
}

function clock(seconds) {
  const s = Math.round(seconds);
  const h = Math.floor(s / 3600);
  const m = Math.floor((s % 3600) / 60);
  const rest = String(s % 60).padStart(2, "0");
  return h ? `${h}:${String(m).padStart(2, "0")}:${rest}` : `${m}:${rest}`;
}

function element(name, attributes) {
  const node = document.createElementNS(SVG, name);
  for (const [key, value] of Object.entries(attributes)) node.setAttribute(key, value);
  return node;
}

function text(x, y, content, className) {
  const node = element("text", { x, y, class: className });
  node.textContent = content;
  return node;
}

// -- the recipients table: filter, pages and refresh without reloading ------------------------

class Table {
  constructor(root) {
    this.url = root.dataset.table;
    this.base = `/runs/${root.dataset.run}`;
    this.target = root.querySelector("[data-table-root]");
    this.form = root.querySelector("form[data-filter]");
    this.query = new URLSearchParams(window.location.search);
    this.busy = false;
    if (!this.target || !this.form) return;
    this.form.addEventListener("submit", (event) => {
      event.preventDefault();
      this.filter();
    });
    this.form.elements.status.addEventListener("change", () => this.filter());
    let typing;
    this.form.elements.q.addEventListener("input", () => {
      clearTimeout(typing);
      typing = setTimeout(() => this.filter(), 350);
    });
    root.addEventListener("click", (event) => {
      const link = event.target.closest("a[data-page-link], a[data-clear], a[data-filter-link]");
      if (!link) return;
      event.preventDefault();
      const query = new URL(link.href, window.location.href).searchParams;
      this.form.elements.status.value = query.get("status") || "";
      this.form.elements.q.value = query.get("q") || "";
      this.go(query, link.hasAttribute("data-filter-link"));
    });
  }

  filter() {
    const query = new URLSearchParams();
    const status = this.form.elements.status.value;
    const q = this.form.elements.q.value.trim();
    if (status) query.set("status", status);
    if (q) query.set("q", q);
    this.go(query, false);
  }

  async go(query, scroll) {
    this.query = query;
    const search = query.toString();
    window.history.replaceState(null, "", `${this.base}${search ? `?${search}` : ""}#recipients`);
    await this.load();
    if (scroll) this.target.scrollIntoView({ block: "start", behavior: "smooth" });
  }

  refresh() {
    if (this.target && !this.busy) this.load();
  }

  async load() {
    this.busy = true;
    try {
      const search = this.query.toString();
      const answer = await fetch(`${this.url}${search ? `?${search}` : ""}`);
      if (answer.ok) this.target.innerHTML = await answer.text();
    } catch (error) {
      // Keep what is shown; the next refresh tries again.
    } finally {
      this.busy = false;
    }
  }
}

// -- the runs list: active rows follow their run ---------------------------------------------

function listPage() {
  const labels = stateLabels();
  const rows = [...document.querySelectorAll("tr[data-live-run]")].slice(0, 10);
  for (const row of rows) {
    const events = new EventSource(`/api/runs/${row.dataset.liveRun}/events`);
    const cell = (name) => row.querySelector(`[data-live="${name}"]`);
    const update = (event) => {
      const p = JSON.parse(event.data);
      setState(cell("state"), p.state, labels);
      const bar = cell("bar");
      bar.max = Math.max(p.records, 1);
      bar.value = p.final;
      cell("percent").textContent = `${tenths.format(p.percent)} %`;
      cell("records").textContent = whole.format(p.records);
      cell("delivered").textContent = whole.format(p.by_status.delivered || 0);
      const problems = cell("problems");
      const link = problems.querySelector("a");
      if (link) link.textContent = whole.format(p.problems);
      else problems.textContent = whole.format(p.problems);
    };
    events.addEventListener("progress", update);
    events.addEventListener("end", (event) => {
      events.close();
      update(event);
    });
  }
}

const root = document.getElementById("run");
if (root) runPage(root);
else listPage();
