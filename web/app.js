// The monitoring page: a form to submit orders, and a live table of every order fed by the whole-log
// WebSocket (/api/orders/stream). Plain ES module, no framework, no build step.

const TOKENS = {
  SOL: { max: 10_000 },
  USDC: { max: 1_000_000 },
  USDT: { max: 1_000_000 },
  BONK: { max: 50_000_000_000 },
  JUP: { max: 1_000_000 },
};
const STATUSES = ["pending", "routing", "building", "submitted", "confirmed", "failed"];
const TERMINAL = new Set(["confirmed", "failed"]);
const MAX_ROWS = 200; // rows drawn; every order stays in memory and in the counters
const EVENT_LABELS = {
  OrderSubmitted: "Order received",
  RoutingStarted: "Routing started",
  VenueSelected: "Venue selected",
  TransactionBuilt: "Transaction built",
  TransactionSubmitted: "Transaction sent",
  OrderConfirmed: "Confirmed",
  ExecutionAttemptFailed: "Attempt failed",
  ExecutionCrashed: "Run crashed",
  OrderFailed: "Order failed",
};
const COLUMNS = ["Status", "Pair", "Amount", "Venue", "Exec. price", "Attempts", "Tx hash"];

// "Fire 5 orders": varied pairs, amounts drawn in a range per pair, varied slippage.
const FIVE_ORDERS = [
  { tokenIn: "SOL", tokenOut: "USDC", range: [0.1, 3], slippageBps: 50 },
  { tokenIn: "USDC", tokenOut: "BONK", range: [10, 250], slippageBps: 100 },
  { tokenIn: "JUP", tokenOut: "SOL", range: [50, 800], slippageBps: 75 },
  { tokenIn: "BONK", tokenOut: "USDT", range: [1_000_000, 40_000_000], slippageBps: 100 },
  { tokenIn: "USDT", tokenOut: "JUP", range: [20, 400], slippageBps: 30 },
];

// Reconnection backoff: 0.5 s, 1 s, 2 s, 4 s, then every 5 s, each ±20%.
const BACKOFF_BASE_MS = 500;
const BACKOFF_MAX_MS = 5_000;
const CLOSE_BAD_REQUEST = 4400;
const CLOSE_NOT_FOUND = 4404;

// ---------------------------------------------------------------------------------------------------------
// State: every order seen on the stream, folded from its events.

/** @type {Map<string, Order>} */
const orders = new Map();
const seen = new Set(); // `${orderId}:${version}`: a safety net against a duplicate event
let lastToken = null; // the `resumeToken` of the last message received, to resume after a drop
let selectedId = null;
let arrivals = 0;

class Order {
  constructor(id) {
    this.id = id;
    this.arrival = arrivals++;
    this.events = []; // sorted by version
    this.status = "pending";
  }

  add(event) {
    const events = this.events;
    let i = events.length;
    while (i > 0 && events[i - 1].version > event.version) i--;
    events.splice(i, 0, event);
    this.summarize();
  }

  summarize() {
    const s = {
      status: "pending",
      createdAt: this.events[0]?.timestamp ?? "",
      updatedAt: this.events.at(-1)?.timestamp ?? "",
      attempts: 0,
      venue: null,
      failures: [],
      routings: [],
      built: null,
      submitted: null,
      confirmed: null,
      failed: null,
    };
    for (const e of this.events) {
      s.status = e.status ?? s.status;
      switch (e.type) {
        case "OrderSubmitted":
          Object.assign(s, {
            orderType: e.orderType,
            tokenIn: e.tokenIn,
            tokenOut: e.tokenOut,
            amountIn: e.amountIn,
            slippageBps: e.slippageBps,
            pair: e.pair,
            createdAt: e.timestamp,
          });
          break;
        case "RoutingStarted":
          s.attempts = Math.max(s.attempts, e.attempt ?? 0);
          break;
        case "VenueSelected":
          s.routings.push({ attempt: s.attempts, ...e });
          s.venue = e.selectedVenue;
          break;
        case "TransactionBuilt":
          s.built = e;
          s.venue = e.venue ?? s.venue;
          break;
        case "TransactionSubmitted":
          s.submitted = e;
          s.venue = e.venue ?? s.venue;
          break;
        case "OrderConfirmed":
          s.confirmed = e;
          s.venue = e.venue ?? s.venue;
          break;
        case "ExecutionAttemptFailed":
        case "ExecutionCrashed": // an error of the engine's own; retried like a failed attempt
          s.failures.push(e);
          s.attempts = Math.max(s.attempts, e.attempt ?? 0);
          break;
        case "OrderFailed":
          s.failed = e;
          s.attempts = Math.max(s.attempts, e.attempts ?? 0);
          break;
      }
    }
    Object.assign(this, s);
  }
}

/** Apply one stream message; false when it was a duplicate. */
function applyEvent(event) {
  if (event.resumeToken !== undefined) lastToken = event.resumeToken;
  if (typeof event.orderId !== "string" || event.version === undefined) return false;
  const key = `${event.orderId}:${event.version}`;
  if (seen.has(key)) return false;
  seen.add(key);
  let order = orders.get(event.orderId);
  if (!order) {
    order = new Order(event.orderId);
    orders.set(order.id, order);
    structureChanged = true;
  }
  order.add(event);
  markDirty(order.id);
  return true;
}

function resetState() {
  orders.clear();
  seen.clear();
  lastPosition = null;
  selectedId = null;
  rows.clear();
  ui.ordersBody.replaceChildren();
  structureChanged = true;
  scheduleRender();
}

// ---------------------------------------------------------------------------------------------------------
// Formatting.

const numberFormats = {
  big: new Intl.NumberFormat(undefined, { maximumFractionDigits: 2 }),
  mid: new Intl.NumberFormat(undefined, { maximumFractionDigits: 4 }),
  small: new Intl.NumberFormat(undefined, { maximumSignificantDigits: 4 }),
  compact: new Intl.NumberFormat(undefined, { notation: "compact", maximumFractionDigits: 2 }),
};
const timeFormat = new Intl.DateTimeFormat(undefined, {
  hour: "2-digit",
  minute: "2-digit",
  second: "2-digit",
  hour12: false,
});
const preciseTimeFormat = new Intl.DateTimeFormat(undefined, {
  hour: "2-digit",
  minute: "2-digit",
  second: "2-digit",
  fractionalSecondDigits: 3,
  hour12: false,
});

function fmt(value) {
  if (typeof value !== "number" || !Number.isFinite(value)) return "—";
  const size = Math.abs(value);
  if (size === 0) return "0";
  if (size >= 1000) return numberFormats.big.format(value);
  if (size >= 1) return numberFormats.mid.format(value);
  return numberFormats.small.format(value);
}

/**
 * A price of the order as its pair reads it: events give prices as tokenOut per tokenIn (the swap's
 * direction); the OrderSubmitted message's `pair` says which token is the base, so that SOL → USDC and
 * USDC → SOL both show USDC per SOL.
 */
function pairPrice(order, outPerIn) {
  if (!order.pair || typeof outPerIn !== "number" || !(outPerIn > 0)) return undefined;
  return order.tokenIn === order.pair.base ? outPerIn : 1 / outPerIn;
}
const priceUnit = (order) => order.pair?.unit ?? "";
const showPrice = (order, outPerIn) => `${fmt(pairPrice(order, outPerIn))} ${priceUnit(order)}`.trim();

/** Like `fmt`, but millions and more as 26.48M: for the table's narrow columns. */
const fmtCompact = (value) => (Math.abs(value) >= 1e6 ? numberFormats.compact.format(value) : fmt(value));
const time = (iso) => (iso ? timeFormat.format(new Date(iso)) : "—");
const preciseTime = (iso) => (iso ? preciseTimeFormat.format(new Date(iso)) : "—");
const capitalize = (text) => text.charAt(0).toUpperCase() + text.slice(1);
const venueName = (venue) => (venue ? capitalize(venue) : "—");
const shortId = (id) => id.slice(0, 8);
const plural = (n, word) => `${n} ${word}${n === 1 ? "" : "s"}`;

function elapsed(fromIso, toIso) {
  const ms = new Date(toIso) - new Date(fromIso);
  if (!Number.isFinite(ms)) return "";
  return ms < 1000 ? `+${ms} ms` : `+${(ms / 1000).toFixed(2)} s`;
}

/** `h("div", {class: "x", "data-testid": "y"}, child, "text", ...)`: a DOM element, text never parsed. */
function h(tag, props = {}, ...children) {
  const el = document.createElement(tag);
  for (const [key, value] of Object.entries(props)) {
    if (value === null || value === undefined || value === false) continue;
    if (key === "class") el.className = value;
    else if (key.startsWith("on")) el.addEventListener(key.slice(2), value);
    else el.setAttribute(key, value === true ? "" : String(value));
  }
  for (const child of children.flat()) {
    if (child === null || child === undefined || child === false) continue;
    el.append(child instanceof Node ? child : String(child));
  }
  return el;
}

const badge = (status) =>
  h("span", { class: `badge badge-${status}`, "data-testid": "status-badge" }, status ?? "?");

// ---------------------------------------------------------------------------------------------------------
// Rendering: changes are collected and drawn once per animation frame.

const ui = {};
const rows = new Map(); // orderId -> <tr>
const dirty = new Set();
let structureChanged = true;
let renderQueued = false;

function markDirty(id) {
  dirty.add(id);
  scheduleRender();
}

function scheduleRender() {
  if (renderQueued) return;
  renderQueued = true;
  requestAnimationFrame(render);
}

function newestFirst(a, b) {
  if (a.createdAt !== b.createdAt) return a.createdAt < b.createdAt ? 1 : -1;
  return b.arrival - a.arrival;
}

function render() {
  renderQueued = false;
  const all = [...orders.values()];
  if (structureChanged || dirty.size) {
    const shown = all.sort(newestFirst).slice(0, MAX_ROWS);
    const shownIds = new Set(shown.map((o) => o.id));
    for (const [id, row] of rows) {
      if (!shownIds.has(id)) {
        row.remove();
        rows.delete(id);
      }
    }
    let cursor = ui.ordersBody.firstChild;
    for (const order of shown) {
      let row = rows.get(order.id);
      if (!row) {
        row = h("tr", {
          "data-testid": "order-row",
          "data-order-id": order.id,
          tabindex: 0,
          class: "order-row",
        });
        rows.set(order.id, row);
        dirty.add(order.id);
      }
      if (dirty.has(order.id)) drawRow(row, order);
      if (cursor !== row) ui.ordersBody.insertBefore(row, cursor);
      cursor = row.nextSibling;
      if (order.id === selectedId) {
        if (cursor !== ui.detailRow) ui.ordersBody.insertBefore(ui.detailRow, cursor);
        if (dirty.has(order.id) || ui.detailRow.dataset.orderId !== order.id) drawDetail(order);
        cursor = ui.detailRow.nextSibling;
      }
    }
    if (!selectedId || !shownIds.has(selectedId)) ui.detailRow.remove();
    ui.empty.hidden = orders.size > 0;
    ui.more.hidden = orders.size <= MAX_ROWS;
    ui.more.textContent = `Showing the newest ${MAX_ROWS} of ${orders.size} orders.`;
    drawCounters(all);
  }
  dirty.clear();
  structureChanged = false;
}

function drawRow(row, order) {
  const pair = order.tokenIn ? `${order.tokenIn} → ${order.tokenOut}` : "…";
  const retries = order.failures.length;
  const attempts = [
    String(order.attempts || "—"),
    retries ? h("small", { class: "retried" }, retries === 1 ? " (1 retry)" : ` (${retries} retries)`) : "",
  ];
  const txHash = order.confirmed?.txHash ?? "";
  const cells = [
    h("td", { class: "status-cell" }, badge(order.status)),
    h(
      "td",
      { class: "pair" },
      pair,
      h("small", { title: `submitted ${order.createdAt}` }, time(order.createdAt)),
    ),
    h(
      "td",
      { class: "num", title: order.amountIn === undefined ? null : `${order.amountIn} ${order.tokenIn}` },
      order.amountIn === undefined ? "—" : `${fmtCompact(order.amountIn)} ${order.tokenIn}`,
    ),
    h("td", { "data-testid": "venue" }, venueName(order.venue)),
    h(
      "td",
      { class: "num", "data-testid": "execution-price" },
      fmt(pairPrice(order, order.confirmed?.executionPrice)),
      order.confirmed ? h("small", { "data-testid": "price-unit" }, priceUnit(order)) : "",
    ),
    h("td", { class: "num", "data-testid": "attempts" }, attempts),
    h("td", { class: "hash", "data-testid": "tx-hash", title: txHash || null }, txHash),
  ];
  cells.forEach((cell, i) => cell.setAttribute("data-label", COLUMNS[i]));
  if (order.failed) cells[6].replaceChildren(h("span", { class: "muted" }, "—"));
  row.replaceChildren(...cells);
  row.dataset.status = order.status;
  row.classList.toggle("selected", order.id === selectedId);
  row.classList.toggle("live", !TERMINAL.has(order.status));
  row.setAttribute("aria-expanded", String(order.id === selectedId));
  row.setAttribute("aria-label", `Order ${shortId(order.id)}, ${pair}, ${order.status}`);
}

function drawCounters(all) {
  const counts = Object.fromEntries(STATUSES.map((s) => [s, 0]));
  for (const order of all) counts[order.status] = (counts[order.status] ?? 0) + 1;
  const items = [h("li", { class: "counter total" }, h("b", {}, all.length), " orders")];
  for (const status of STATUSES) {
    if (!counts[status]) continue;
    items.push(
      h(
        "li",
        { class: `counter counter-${status}`, "data-testid": `count-${status}` },
        h("b", {}, counts[status]),
        ` ${status}`,
      ),
    );
  }
  ui.counters.replaceChildren(...items);
}

// ---------------------------------------------------------------------------------------------------------
// The detail of one order, drawn in a row under its own.

function select(id) {
  const previous = selectedId;
  selectedId = previous === id ? null : id;
  for (const changed of [previous, selectedId]) if (changed) dirty.add(changed);
  structureChanged = true;
  render();
  if (selectedId) ui.detailRow.scrollIntoView({ block: "nearest", behavior: "smooth" });
}

function drawDetail(order) {
  ui.detailRow.dataset.orderId = order.id;
  ui.detailRow.dataset.status = order.status;
  const done = TERMINAL.has(order.status);
  const header = h(
    "div",
    { class: "detail-head" },
    h(
      "div",
      {},
      h("h3", {}, order.tokenIn ? `${fmt(order.amountIn)} ${order.tokenIn} → ${order.tokenOut}` : "Order"),
      h(
        "p",
        { class: "muted" },
        h("code", { class: "order-id", "data-testid": "detail-order-id" }, order.id),
        order.orderType ? ` · ${order.orderType} · slippage ${order.slippageBps} bps` : "",
        done ? ` · ${order.status} ${elapsed(order.createdAt, order.updatedAt).slice(1)} after submission` : "",
      ),
    ),
    h(
      "button",
      {
        type: "button",
        class: "close",
        "data-testid": "detail-close",
        "aria-label": "Close detail",
        onclick: (e) => {
          e.stopPropagation();
          select(order.id);
        },
      },
      "×",
    ),
  );
  const cards = [timelineCard(order), resultCard(order), routingCard(order)];
  if (order.failures.length) cards.push(retriesCard(order));
  const cell = h(
    "td",
    { colspan: COLUMNS.length },
    h("div", { class: "detail" }, header, failureBanner(order), h("div", { class: "cards" }, cards)),
  );
  ui.detailRow.replaceChildren(cell);
}

function card(title, testid, ...children) {
  return h("section", { class: `card ${testid}`, "data-testid": testid }, h("h4", {}, title), ...children);
}

function describe(event, order) {
  const tokenOut = order.tokenOut ?? "";
  switch (event.type) {
    case "OrderSubmitted":
      return `${capitalize(event.orderType ?? "")} order: ${fmt(event.amountIn)} ${event.tokenIn} for ${event.tokenOut}, slippage ${event.slippageBps} bps`;
    case "RoutingStarted":
      return `Attempt ${event.attempt}: quoting Raydium and Meteora`;
    case "VenueSelected": {
      const verdict = routingVerdict(event);
      return `${venueName(event.selectedVenue)} selected${verdict ? ` (${verdict.short})` : ""}`;
    }
    case "TransactionBuilt":
      return `Built for ${venueName(event.venue)}: ${plural(event.instructions?.length ?? 0, "instruction")}, minimum out ${fmt(event.minAmountOut)} ${tokenOut}`;
    case "TransactionSubmitted":
      return `Sent to ${venueName(event.venue)}`;
    case "OrderConfirmed":
      return `Executed at ${showPrice(order, event.executionPrice)}, received ${fmt(event.amountOut)} ${tokenOut}`;
    case "ExecutionAttemptFailed":
      return `Attempt ${event.attempt} failed: ${event.reason}; retry in ${event.retryInMs} ms`;
    case "ExecutionCrashed":
      return `Run crashed (attempt ${event.attempt}): ${event.reason}; retry in ${event.retryInMs} ms`;
    case "OrderFailed":
      return `Failed after ${plural(event.attempts, "attempt")}: ${event.reason}`;
    default:
      return event.type;
  }
}

function timelineCard(order) {
  const items = order.events.map((event) =>
    h(
      "li",
      { "data-testid": "timeline-entry", "data-type": event.type, class: `tl tl-${event.status}` },
      h("span", { class: "tl-dot", "aria-hidden": "true" }),
      h(
        "div",
        { class: "tl-body" },
        h(
          "div",
          { class: "tl-top" },
          badge(event.status),
          h("span", { class: "tl-type", title: event.type }, EVENT_LABELS[event.type] ?? event.type),
          h(
            "time",
            { datetime: event.timestamp, title: event.timestamp },
            preciseTime(event.timestamp),
            event.version > 1 ? h("small", {}, ` ${elapsed(order.createdAt, event.timestamp)}`) : "",
          ),
        ),
        h("p", { class: "tl-text" }, describe(event, order)),
      ),
    ),
  );
  return card("Timeline", "timeline-panel", h("ol", { class: "timeline" }, items));
}

/** Which venue won the routing and by how much, in % of the runner-up's amountOut. */
function routingVerdict(routing) {
  const quotes = routing.quotes ?? [];
  const winner = quotes.find((q) => q.venue === routing.selectedVenue);
  const others = quotes.filter((q) => q !== winner);
  if (!winner || !others.length) return null;
  const runnerUp = others.reduce((a, b) => (b.amountOut > a.amountOut ? b : a));
  const diff = winner.amountOut - runnerUp.amountOut;
  const pct = runnerUp.amountOut ? (diff / runnerUp.amountOut) * 100 : 0;
  const pctText = `${Math.abs(pct) < 0.001 ? pct.toFixed(4) : pct.toFixed(3)}%`;
  return {
    winner,
    runnerUp,
    diff,
    pct,
    short: `${pct >= 0 ? "+" : ""}${pctText} vs ${venueName(runnerUp.venue)}`,
    long:
      diff >= 0
        ? `${venueName(winner.venue)} won by ${pctText} of amountOut (+${fmt(diff)}) over ${venueName(runnerUp.venue)}`
        : `${venueName(winner.venue)} was selected although ${venueName(runnerUp.venue)} offered ${(-pct).toFixed(3)}% more`,
  };
}

function quotesTable(routing, order) {
  const rows = (routing.quotes ?? []).map((q) => {
    const won = q.venue === routing.selectedVenue;
    return h(
      "tr",
      { class: won ? "winner" : null, "data-testid": "quote-row", "data-venue": q.venue },
      h(
        "th",
        { scope: "row" },
        venueName(q.venue),
        won ? h("span", { class: "won", title: "selected" }, "✓ selected") : "",
      ),
      h("td", { class: "num" }, fmt(pairPrice(order, q.price))),
      h("td", { class: "num" }, q.feeBps),
      h("td", { class: "num" }, fmt(pairPrice(order, q.effectivePrice))),
      h("td", { class: "num" }, fmt(q.amountOut)),
    );
  });
  const unit = priceUnit(order) ? ` (${priceUnit(order)})` : "";
  const head = [`Price${unit}`, "Fee (bps)", `Effective price${unit}`, `Out (${order.tokenOut ?? ""})`];
  const verdict = routingVerdict(routing);
  return [
    h(
      "div",
      { class: "table-scroll" },
      h(
        "table",
        { class: "quotes" },
        h(
          "thead",
          {},
          h("tr", {}, h("th", { scope: "col" }, "Venue"), head.map((t) => h("th", { scope: "col", class: "num" }, t))),
        ),
        h("tbody", {}, rows),
      ),
    ),
    verdict ? h("p", { class: "verdict", "data-testid": "routing-verdict" }, verdict.long) : "",
  ];
}

const earlierAttemptsOpen = new Set(); // orders whose earlier routings the user unfolded

function routingCard(order) {
  if (!order.routings.length) {
    return card("Routing", "routing-panel", h("p", { class: "muted" }, "Waiting for quotes…"));
  }
  const [latest, ...earlier] = [...order.routings].reverse();
  const title = order.routings.length > 1 ? `Routing · attempt ${latest.attempt}` : "Routing";
  const parts = [h("div", { class: "routing", "data-testid": "routing-latest" }, quotesTable(latest, order))];
  if (earlier.length) {
    const folded = h(
      "details",
      { class: "earlier", open: earlierAttemptsOpen.has(order.id) },
      h("summary", {}, `Earlier ${earlier.length === 1 ? "attempt" : `attempts (${earlier.length})`}`),
      earlier.map((routing) =>
        h("div", { class: "routing" }, h("h5", {}, `Attempt ${routing.attempt}`), quotesTable(routing, order)),
      ),
    );
    folded.addEventListener("toggle", () => {
      if (folded.open) earlierAttemptsOpen.add(order.id);
      else earlierAttemptsOpen.delete(order.id);
    });
    parts.push(folded);
  }
  return card(title, "routing-panel", parts);
}

function resultCard(order) {
  const c = order.confirmed;
  const field = (label, value, props = {}) =>
    h("div", { class: "field" }, h("dt", {}, label), h("dd", props, value));
  const fields = [field("Status", badge(order.status)), field("Venue", venueName(order.venue))];
  if (order.built) {
    fields.push(
      field("Minimum out", `${fmt(order.built.minAmountOut)} ${order.tokenOut ?? ""}`),
      field(
        "Instructions",
        h("ol", { class: "instructions" }, (order.built.instructions ?? []).map((i) => h("li", {}, i))),
      ),
    );
  }
  if (c) {
    fields.push(
      field("Execution price", showPrice(order, c.executionPrice), { "data-testid": "detail-execution-price" }),
      field("Received", `${fmt(c.amountOut)} ${order.tokenOut ?? ""}`),
      field("Tx hash", c.txHash, { class: "hash-full", "data-testid": "detail-tx-hash" }),
    );
  } else if (order.submitted && !order.failed) {
    fields.push(field("Client tx id", order.submitted.clientTxId ?? "—", { class: "hash-full" }));
  }
  return card("Execution", "execution-panel", h("dl", { class: "fields" }, fields));
}

function retriesCard(order) {
  const items = order.failures.map((f) =>
    h(
      "li",
      { "data-testid": "retry-entry" },
      h("b", {}, `Attempt ${f.attempt}`),
      h("span", { class: "reason" }, f.reason),
      h("span", { class: "muted" }, `retry in ${f.retryInMs} ms · ${preciseTime(f.timestamp)}`),
    ),
  );
  return card(`Retries (${order.failures.length})`, "retries-panel", h("ul", { class: "retries" }, items));
}

function failureBanner(order) {
  if (!order.failed) return "";
  return h(
    "p",
    { class: "failure", role: "note", "data-testid": "failure-reason" },
    h("b", {}, `Failed after ${plural(order.failed.attempts, "attempt")}: `),
    order.failed.reason,
  );
}

// ---------------------------------------------------------------------------------------------------------
// The live stream, with reconnection and resume.

const conn = { socket: null, failures: 0, timer: null, state: "connecting" };

function streamUrl() {
  const url = new URL("/api/orders/stream", window.location.href);
  url.protocol = url.protocol === "https:" ? "wss:" : "ws:";
  if (lastToken !== null) url.searchParams.set("afterToken", lastToken);
  return url;
}

function setConnection(state, text, detail = "") {
  conn.state = state;
  ui.connection.dataset.state = state;
  ui.connectionLabel.textContent = text;
  ui.connection.title = detail;
}

function connect() {
  clearTimeout(conn.timer);
  conn.timer = null;
  let socket;
  try {
    socket = new WebSocket(streamUrl());
  } catch (error) {
    scheduleReconnect(String(error));
    return;
  }
  conn.socket = socket;
  socket.addEventListener("open", () => {
    if (conn.socket !== socket) return;
    conn.failures = 0;
    setConnection("open", "Live", `Streaming every order event from ${socket.url}`);
  });
  socket.addEventListener("message", (message) => {
    if (conn.socket !== socket) return;
    let event;
    try {
      event = JSON.parse(message.data);
    } catch {
      return;
    }
    applyEvent(event);
  });
  socket.addEventListener("close", (close) => {
    if (conn.socket !== socket) return;
    conn.socket = null;
    if (close.code === CLOSE_NOT_FOUND || close.code === CLOSE_BAD_REQUEST) {
      // The server does not know our resume point (a new database?): start over from the beginning.
      resetState();
    }
    scheduleReconnect(`closed (${close.code}${close.reason ? `: ${close.reason}` : ""})`);
  });
}

function scheduleReconnect(why) {
  clearTimeout(conn.timer);
  const delay = Math.min(BACKOFF_MAX_MS, BACKOFF_BASE_MS * 2 ** conn.failures) * (0.8 + Math.random() * 0.4);
  conn.failures += 1;
  const seconds = delay < 1000 ? "<1" : Math.round(delay / 1000);
  setConnection(
    "reconnecting",
    `Reconnecting… (try ${conn.failures}, in ${seconds} s)`,
    `Stream ${why}; resuming after ${lastToken ?? "the start"}`,
  );
  conn.timer = setTimeout(connect, delay);
}

/** Drop the current socket ourselves (browser went offline) and come back through the reconnect path. */
function recycle(why) {
  const socket = conn.socket;
  conn.socket = null;
  if (socket) socket.close(4000, why);
  conn.failures = 0;
  scheduleReconnect(why);
}

// ---------------------------------------------------------------------------------------------------------
// Submitting orders.

async function postOrder(body) {
  let response;
  try {
    response = await fetch("/api/orders/execute", {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify(body),
    });
  } catch (error) {
    return { ok: false, message: `Could not reach the engine (${error.message})` };
  }
  let data = null;
  try {
    data = await response.json();
  } catch {
    // not JSON: fall back on the status line
  }
  if (response.ok && data?.orderId) return { ok: true, orderId: data.orderId };
  return {
    ok: false,
    status: response.status,
    message: data?.message ?? `${response.status} ${response.statusText}`,
    field: data?.field ?? null,
  };
}

function showFormResult({ error = "", status = "" }) {
  ui.formError.textContent = error;
  ui.formError.hidden = !error;
  ui.formStatus.textContent = status;
  ui.formStatus.hidden = !status;
}

function markInvalid(field) {
  for (const el of ui.form.elements) el.removeAttribute("aria-invalid");
  const el = field && ui.form.elements.namedItem(field);
  if (el && el instanceof HTMLElement) el.setAttribute("aria-invalid", "true");
}

function formBody() {
  const f = ui.form.elements;
  const number = (raw) => (raw.trim() === "" ? null : Number(raw));
  return {
    orderType: f.orderType.value,
    tokenIn: f.tokenIn.value,
    tokenOut: f.tokenOut.value,
    amountIn: number(f.amountIn.value),
    slippageBps: number(f.slippageBps.value),
  };
}

async function onSubmit(event) {
  event.preventDefault();
  ui.submit.disabled = true;
  showFormResult({});
  const result = await postOrder(formBody());
  ui.submit.disabled = false;
  if (result.ok) {
    markInvalid(null);
    showFormResult({ status: `Order ${shortId(result.orderId)}… submitted` });
  } else {
    markInvalid(result.field);
    showFormResult({ error: result.status ? `${result.status}: ${result.message}` : result.message });
  }
}

function roundAmount(value) {
  const digits = Math.max(0, 3 - Math.floor(Math.log10(value)));
  return Number(value.toFixed(Math.min(digits, 6)));
}

async function fireFive() {
  ui.fire.disabled = true;
  showFormResult({});
  const bodies = FIVE_ORDERS.map(({ range: [lo, hi], ...pair }) => ({
    orderType: "market",
    ...pair,
    amountIn: roundAmount(lo + Math.random() * (hi - lo)),
  }));
  const results = await Promise.all(bodies.map(postOrder));
  ui.fire.disabled = false;
  const refused = results.filter((r) => !r.ok);
  if (!refused.length) {
    showFormResult({ status: "5 orders submitted at once" });
  } else {
    showFormResult({
      error: `${refused.length} of 5 refused: ${refused[0].status ?? ""} ${refused[0].message}`.trim(),
      status: refused.length < 5 ? `${5 - refused.length} submitted` : "",
    });
  }
}

function updateAmountHint() {
  const token = ui.form.elements.tokenIn.value;
  ui.amountHint.textContent = `${token}, max ${fmt(TOKENS[token].max)}`;
}

function setUpForm() {
  const { tokenIn, tokenOut } = ui.form.elements;
  for (const select of [tokenIn, tokenOut]) {
    select.replaceChildren(...Object.keys(TOKENS).map((t) => h("option", { value: t }, t)));
  }
  tokenIn.value = "SOL";
  tokenOut.value = "USDC";
  let previous = { tokenIn: tokenIn.value, tokenOut: tokenOut.value };
  const keepDistinct = (changed, other) => {
    if (changed.value === other.value) other.value = previous[changed.name];
    previous = { tokenIn: tokenIn.value, tokenOut: tokenOut.value };
    updateAmountHint();
  };
  tokenIn.addEventListener("change", () => keepDistinct(tokenIn, tokenOut));
  tokenOut.addEventListener("change", () => keepDistinct(tokenOut, tokenIn));
  ui.swap.addEventListener("click", () => {
    [tokenIn.value, tokenOut.value] = [tokenOut.value, tokenIn.value];
    previous = { tokenIn: tokenIn.value, tokenOut: tokenOut.value };
    updateAmountHint();
  });
  ui.form.addEventListener("input", (e) => e.target.removeAttribute?.("aria-invalid"));
  ui.form.addEventListener("submit", onSubmit);
  ui.fire.addEventListener("click", fireFive);
  updateAmountHint();
}

// ---------------------------------------------------------------------------------------------------------

function start() {
  const $ = (testid) => document.querySelector(`[data-testid="${testid}"]`);
  Object.assign(ui, {
    connection: $("connection"),
    connectionLabel: $("connection-label"),
    form: $("order-form"),
    submit: $("submit-order"),
    fire: $("fire-five"),
    swap: $("swap-tokens"),
    amountHint: $("amount-hint"),
    formError: $("form-error"),
    formStatus: $("form-status"),
    ordersBody: $("orders-body"),
    counters: $("counters"),
    empty: $("orders-empty"),
    more: $("orders-more"),
    detailRow: h("tr", { class: "detail-row", "data-testid": "order-detail" }),
  });
  setUpForm();

  const toggle = (target) => {
    const row = target.closest?.('tr[data-testid="order-row"]');
    if (row) select(row.dataset.orderId);
  };
  ui.ordersBody.addEventListener("click", (e) => {
    if (window.getSelection()?.toString()) return; // selecting text is not a click on the row
    toggle(e.target);
  });
  ui.ordersBody.addEventListener("keydown", (e) => {
    if ((e.key === "Enter" || e.key === " ") && e.target.matches?.('tr[data-testid="order-row"]')) {
      e.preventDefault();
      toggle(e.target);
    }
  });

  // A socket may survive a network change half-open, and nothing on it would tell us: when the browser
  // reports the network gone, resume through a fresh socket; when it is back, do not wait for the backoff.
  window.addEventListener("offline", () => recycle("browser offline"));
  window.addEventListener("online", () => {
    if (!conn.socket) connect();
  });

  setConnection("connecting", "Connecting…");
  connect();
  scheduleRender();
}

start();
