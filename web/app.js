// The monitoring page: a form to submit orders, and a live table of every order fed by the whole-log
// WebSocket (/api/orders/stream). Plain ES module, no framework, no build step.

// The tokens as domain/tokens.py lists them: base units per token (10^decimals) and the largest amountIn.
const TOKENS = {
  SOL: { decimals: 9, max: "10000" },
  USDC: { decimals: 6, max: "1000000" },
  USDT: { decimals: 6, max: "1000000" },
  BONK: { decimals: 5, max: "50000000000" },
  JUP: { decimals: 6, max: "1000000" },
};
// Tokens launched after that list (a sniper order's tokenOut): their decimals, as each order's TriggerArmed
// gives them (tokenOutDecimals). `decimalsOf` reads both, as domain.tokens.token_of does.
const LAUNCHED_DECIMALS = new Map();
const STATUSES = [
  "waiting",
  "pending",
  "routing",
  "building",
  "submitted",
  "confirmed",
  "failed",
  "cancelled",
  "expired",
];
const TERMINAL = new Set(["confirmed", "failed", "cancelled", "expired"]);
const MAX_ROWS = 200; // rows drawn; every order stays in memory and in the counters
const EVENT_LABELS = {
  OrderSubmitted: "Order received",
  TriggerArmed: "Waiting for trigger",
  TriggerFired: "Trigger fired",
  OrderCancelled: "Cancelled",
  OrderExpired: "Expired",
  RoutingStarted: "Routing started",
  VenueSelected: "Venue selected",
  TransactionBuilt: "Transaction built",
  TransactionSubmitted: "Transaction sent",
  OrderConfirmed: "Confirmed",
  ExecutionAttemptFailed: "Attempt failed",
  ExecutionCrashed: "Run crashed",
  OrderFailed: "Order failed",
};
const COLUMNS = ["Status", "Pair", "Amount", "Venue", "Price", "Attempts", "Tx hash"];
// Prices and tokens are read from the engine (GET /api/prices, /api/tokens) every MARKET_POLL_MS while the
// page is visible: the chain's prices have no stream. Prices only while something on the page shows them.
const MARKET_POLL_MS = 2_000;

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
      armed: null, // TriggerArmed: the limit (or the launch) the order waits for
      fired: null,
      cancelled: null,
      expired: null,
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
            amountInRaw: e.amountInRaw,
            slippageBps: e.slippageBps,
            pair: e.pair,
            createdAt: e.timestamp,
          });
          break;
        case "TriggerArmed":
          s.armed = e;
          if (Number.isInteger(e.tokenOutDecimals) && s.tokenOut) LAUNCHED_DECIMALS.set(s.tokenOut, e.tokenOutDecimals);
          break;
        case "TriggerFired":
          s.fired = e;
          break;
        case "OrderCancelled":
          s.cancelled = e;
          break;
        case "OrderExpired":
          s.expired = e;
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

// Amounts are exact: shown from their base units (the messages' `...Raw` strings of digits) and the token's
// decimals, as decimal strings, which Intl formats digit for digit. The JSON numbers next to them
// (`amountIn`, ...) become doubles once parsed, so they are only a fallback for a message without its raw.
const exactFormat = new Intl.NumberFormat(undefined, { maximumFractionDigits: 20 });

/** `raw` base units (a string of digits) as the exact decimal string of whole tokens: "1", 9 → "0.000000001". */
function decimalOf(raw, decimals) {
  const digits = String(raw).replace(/^0+(?=\d)/, "").padStart(decimals + 1, "0");
  const cut = digits.length - decimals;
  const fraction = digits.slice(cut).replace(/0+$/, "");
  return fraction ? `${digits.slice(0, cut)}.${fraction}` : digits.slice(0, cut);
}

/** Base units per whole `token` as a power of ten: one of the engine's tokens or a launched one; undefined if unknown. */
function decimalsOf(token) {
  return TOKENS[token]?.decimals ?? LAUNCHED_DECIMALS.get(token);
}

/** The exact decimal string of an amount of `token`, from `raw` (else the message's number); null if neither. */
function amountValue(raw, value, token) {
  const decimals = decimalsOf(token);
  if (typeof raw === "string" && /^\d+$/.test(raw) && decimals !== undefined) return decimalOf(raw, decimals);
  if (typeof value !== "number" || !Number.isFinite(value)) return null;
  if (decimals === undefined) return String(value);
  const text = value.toFixed(decimals);
  return text.includes(".") ? text.replace(/\.?0+$/, "") : text;
}

/** `1,234.5 USDC`, every digit of the amount kept; `—` when there is none. */
function amount(raw, value, token) {
  const exact = amountValue(raw, value, token);
  return exact === null ? "—" : `${exactFormat.format(exact)} ${token ?? ""}`.trim();
}

/** Like `amount`, but millions and more as 26.48M: for the table's narrow columns. */
function amountCompact(raw, value, token) {
  const exact = amountValue(raw, value, token);
  if (exact === null) return "—";
  const big = exact.split(".")[0].length > 6;
  return `${(big ? numberFormats.compact : exactFormat).format(exact)} ${token ?? ""}`.trim();
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
  const legs = order.routings.at(-1)?.routePlan?.length ?? 0;
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
      { class: "num", "data-testid": "order-amount", title: order.tokenIn ? amount(order.amountInRaw, order.amountIn, order.tokenIn) : null },
      order.tokenIn ? amountCompact(order.amountInRaw, order.amountIn, order.tokenIn) : "—",
    ),
    h(
      "td",
      { "data-testid": "venue" },
      venueName(order.venue),
      legs > 1
        ? h("small", { class: "split", "data-testid": "route-split", title: "the route is split" }, `${legs} pools`)
        : "",
    ),
    priceCell(order),
    h("td", { class: "num", "data-testid": "attempts" }, attempts),
    h("td", { class: "hash", "data-testid": "tx-hash", title: txHash || null }, txHash),
  ];
  cells.forEach((cell, i) => cell.setAttribute("data-label", COLUMNS[i]));
  if (order.failed || order.cancelled || order.expired) cells[6].replaceChildren(h("span", { class: "muted" }, "—"));
  if (order.status === "waiting") cells[6].replaceChildren(cancelButton(order));
  row.replaceChildren(...cells);
  row.dataset.status = order.status;
  row.classList.toggle("selected", order.id === selectedId);
  row.classList.toggle("live", !TERMINAL.has(order.status));
  row.setAttribute("aria-expanded", String(order.id === selectedId));
  row.setAttribute("aria-label", `Order ${shortId(order.id)}, ${pair}, ${order.status}`);
}

/** The Price column: the execution price once confirmed; while a limit order waits, its limit beside the
 * price that would fire it now (the pair's best bid when it sells the base, best ask when it buys it). */
function priceCell(order) {
  const props = { class: "num", "data-testid": "execution-price" };
  if (order.confirmed || order.status !== "waiting") {
    return h(
      "td",
      props,
      fmt(pairPrice(order, order.confirmed?.executionPrice)),
      order.confirmed ? h("small", { "data-testid": "price-unit" }, priceUnit(order)) : "",
    );
  }
  const watch = limitWatch(order);
  if (!watch) {
    const launch = order.armed?.maxDelayMs !== undefined || order.orderType === "sniper";
    return h("td", props, h("small", { "data-testid": "awaiting" }, launch ? "awaiting launch" : "waiting"));
  }
  return h(
    "td",
    { ...props, title: watch.title },
    h("span", { class: "limit" }, `${watch.sign} `, h("span", { "data-testid": "limit-price" }, fmt(watch.limit))),
    h(
      "small",
      {},
      "now ",
      h("span", { "data-testid": "current-price" }, watch.now === null ? "…" : fmt(Number(watch.now))),
    ),
    h("small", { "data-testid": "price-unit" }, priceUnit(order)),
  );
}

/**
 * A waiting limit order against the market, in its pair's unit: `limit` (the order's limit price turned
 * to the pair's orientation), `now` (the best price on that side, a decimal string, or null before the
 * first read) and `sign`: ≥ when the order sells the base (it fires once the bid reaches the limit), ≤ when
 * it buys it (once the ask comes down to it).
 */
function limitWatch(order) {
  const limitPrice = order.armed?.limitPrice;
  if (!order.pair || typeof limitPrice !== "number") return null;
  const sellsBase = order.tokenIn === order.pair.base;
  const quoted = market.prices.get(`${order.pair.base}/${order.pair.quote}`);
  const now = quoted ? (sellsBase ? quoted.bid : quoted.ask) : null;
  return {
    limit: pairPrice(order, limitPrice),
    now,
    sign: sellsBase ? "≥" : "≤",
    title: sellsBase
      ? "fires once the best bid reaches the limit (fees and price impact then checked on the route)"
      : "fires once the best ask comes down to the limit (fees and price impact then checked on the route)",
  };
}

function cancelButton(order) {
  return h(
    "button",
    {
      type: "button",
      class: "cancel",
      "data-testid": "cancel-order",
      "aria-label": `Cancel order ${shortId(order.id)}`,
      onclick: (e) => {
        e.stopPropagation(); // not a click on the row
        cancelOrder(order.id, e.currentTarget);
      },
    },
    "Cancel",
  );
}

/** POST the cancel; the order's row turns `cancelled` from the stream. A 409 (it fired or ended first) is
 * shown as the API words it. */
async function cancelOrder(id, button) {
  if (button) button.disabled = true;
  let response;
  try {
    response = await fetch(`/api/orders/${id}/cancel`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: "{}",
    });
  } catch (error) {
    showFormResult({ error: `Could not reach the engine (${error.message})` });
    if (button) button.disabled = false;
    return;
  }
  let data = null;
  try {
    data = await response.json();
  } catch {
    // not JSON: fall back on the status line
  }
  if (response.ok) {
    showFormResult({ status: `Order ${shortId(id)}… cancelled` });
  } else {
    showFormResult({ error: `${response.status}: ${data?.message ?? response.statusText}` });
    if (button) button.disabled = false;
  }
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
      h("h3", {}, order.tokenIn ? `${amount(order.amountInRaw, order.amountIn, order.tokenIn)} → ${order.tokenOut}` : "Order"),
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
  if (order.status === "waiting") header.firstChild.append(cancelButton(order));
  const cards = [timelineCard(order), resultCard(order)];
  if (order.armed) cards.push(triggerCard(order));
  // A waiting order has no route yet; once it fired (or for a market order) the routing shows.
  if (order.routings.length || !order.armed || order.fired) cards.push(routingCard(order));
  if (order.failures.length) cards.push(retriesCard(order));
  const cell = h(
    "td",
    { colspan: COLUMNS.length },
    h("div", { class: "detail" }, header, failureBanner(order), h("div", { class: "cards" }, cards)),
  );
  ui.detailRow.replaceChildren(cell);
}

function triggerCard(order) {
  const a = order.armed;
  const field = (label, value, props = {}) =>
    h("div", { class: "field" }, h("dt", {}, label), h("dd", props, value));
  const fields = [];
  if (typeof a.limitPrice === "number") {
    const watch = limitWatch(order);
    fields.push(
      field("Limit", `${watch?.sign ?? ""} ${showPrice(order, a.limitPrice)}`.trim(), { "data-testid": "detail-limit-price" }),
      field("At least", amount(a.takingAmountRaw, a.takingAmount, order.tokenOut), { "data-testid": "detail-taking-amount" }),
    );
    if (order.status === "waiting") {
      const now = watch?.now;
      fields.push(
        field("Price now", now ? `${fmt(Number(now))} ${priceUnit(order)}` : "…", { "data-testid": "detail-current-price" }),
      );
    }
  } else {
    fields.push(field("Waits for", `${order.tokenOut}'s first pool`));
    if (a.maxDelayMs) fields.push(field("Within", `${a.maxDelayMs} ms of the launch`));
    if (a.minLiquidity) fields.push(field("Pools holding", `at least ${a.minLiquidity} ${order.tokenIn}`));
  }
  fields.push(field("Expires", a.expiresAt ? `${time(a.expiresAt)} (${a.expiresAt})` : "never"));
  if (order.fired) fields.push(field("Fired at", showPrice(order, order.fired.price), { "data-testid": "detail-fired-price" }));
  return card("Trigger", "trigger-panel", h("dl", { class: "fields" }, fields));
}

function card(title, testid, ...children) {
  return h("section", { class: `card ${testid}`, "data-testid": testid }, h("h4", {}, title), ...children);
}

function describe(event, order) {
  const tokenOut = order.tokenOut ?? "";
  switch (event.type) {
    case "OrderSubmitted":
      return `${capitalize(event.orderType ?? "")} order: ${amount(event.amountInRaw, event.amountIn, event.tokenIn)} for ${event.tokenOut}, slippage ${event.slippageBps} bps`;
    case "TriggerArmed":
      if (typeof event.limitPrice === "number") {
        return `Waiting until a route pays at least ${amount(event.takingAmountRaw, event.takingAmount, tokenOut)} (limit ${showPrice(order, event.limitPrice)})${event.expiresAt ? `, until ${time(event.expiresAt)}` : ""}`;
      }
      return `Waiting for ${tokenOut}'s first pool${event.maxDelayMs ? `, to buy within ${event.maxDelayMs} ms of it` : ""}${event.expiresAt ? `, until ${time(event.expiresAt)}` : ""}`;
    case "TriggerFired":
      return `Fired at ${showPrice(order, event.price)}: the route pays ${amount(event.amountOutRaw, event.amountOut, tokenOut)}; now executed as a market order`;
    case "OrderCancelled":
      return `Cancelled while waiting${event.reason ? ` (${event.reason})` : ""}`;
    case "OrderExpired":
      return `Expired at ${time(event.expiresAt)} without firing`;
    case "RoutingStarted":
      return `Attempt ${event.attempt}: quoting every pool`;
    case "VenueSelected": {
      const verdict = routingVerdict(event, order);
      return `${routeText(event)}${verdict ? ` (${verdict.short})` : ""}`;
    }
    case "TransactionBuilt": {
      const swaps = (event.instructions ?? []).filter((i) => i.startsWith("swap:")).length;
      return `Built: ${plural(event.instructions?.length ?? 0, "instruction")} (${plural(swaps, "swap")}), minimum out ${amount(event.minAmountOutRaw, event.minAmountOut, tokenOut)}`;
    }
    case "TransactionSubmitted":
      return `Sent to the chain as ${event.clientTxId}`;
    case "OrderConfirmed":
      return `Executed at ${showPrice(order, event.executionPrice)}, received ${amount(event.amountOutRaw, event.amountOut, tokenOut)}`;
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

/** `Meteora 71% + Raydium 29%`, or `One pool: meteora-dlmm-SOL-USDC-1`. */
function routeText(routing) {
  const legs = routing.routePlan ?? [];
  if (legs.length === 1) return `One pool: ${venueName(legs[0].venue)} ${legs[0].pool}`;
  if (!legs.length) return `${venueName(routing.selectedVenue)} selected`;
  return `Split over ${legs.length} pools: ${legs.map((leg) => `${venueName(leg.venue)} ${leg.percent}%`).join(" + ")}`;
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

// Amounts out are compared as integers of base units (BigInt), never as the messages' doubles.
const bigRaw = (raw) => (typeof raw === "string" && /^\d+$/.test(raw) ? BigInt(raw) : null);

/** `part / whole` in percent, to 3 decimals, truncated towards zero: exact, from integers. */
function percentOf(part, whole) {
  const thousandths = (part * 100_000n) / whole;
  const sign = thousandths < 0n ? "-" : "";
  const digits = String(thousandths < 0n ? -thousandths : thousandths).padStart(4, "0");
  return `${sign}${digits.slice(0, -3)}.${digits.slice(-3)}%`;
}

/** The pool of the route's largest leg (its venue is `selectedVenue`). */
function largestLeg(routing) {
  const legs = routing.routePlan ?? [];
  return legs.reduce((a, b) => ((bigRaw(b.amountInRaw) ?? 0n) > (bigRaw(a.amountInRaw) ?? 0n) ? b : a), legs[0]);
}

/**
 * What the route won, in % of the runner-up's amountOut: the route (all its legs) against the best quote of
 * another venue for the whole order, as the read model's priceImprovementBps; and, for a split, against
 * the best single pool.
 */
function routingVerdict(routing, order) {
  const quotes = (routing.quotes ?? []).filter((q) => bigRaw(q.amountOutRaw) !== null);
  const routeOut = bigRaw(routing.amountOutRaw);
  const best = (candidates) =>
    candidates.reduce((a, b) => (a && bigRaw(a.amountOutRaw) >= bigRaw(b.amountOutRaw) ? a : b), null);
  const runnerUp = best(quotes.filter((q) => q.venue !== routing.selectedVenue));
  if (routeOut === null || !runnerUp || bigRaw(runnerUp.amountOutRaw) === 0n) return null;
  const tokenOut = order.tokenOut;
  const diff = routeOut - bigRaw(runnerUp.amountOutRaw);
  const pct = percentOf(diff, bigRaw(runnerUp.amountOutRaw));
  const won = venueName(routing.selectedVenue);
  const other = `${venueName(runnerUp.venue)} (${runnerUp.pool})`;
  const size = amount(String(diff < 0n ? -diff : diff), undefined, tokenOut);
  let long =
    diff >= 0n
      ? `${won} won by ${pct} of amountOut (+${size}) over ${other}`
      : `${won} was selected although ${other} offered ${pct.slice(1)} more (${size})`;
  const single = best(quotes);
  if ((routing.routePlan?.length ?? 0) > 1 && single && bigRaw(single.amountOutRaw) > 0n) {
    const gain = routeOut - bigRaw(single.amountOutRaw);
    long += `; the split pays ${percentOf(gain, bigRaw(single.amountOutRaw))} more than the best single pool (${single.pool})`;
  }
  return { short: `${diff >= 0n ? "+" : ""}${pct} vs ${venueName(runnerUp.venue)}`, long };
}

const impact = (bps) => (typeof bps === "number" ? fmt(bps) : "—");

function quotesTable(routing, order) {
  const shares = new Map((routing.routePlan ?? []).map((leg) => [leg.pool, leg.percent]));
  const largest = largestLeg(routing);
  const rows = (routing.quotes ?? []).map((q) => {
    const share = shares.get(q.pool);
    const classes = [q.pool === largest?.pool ? "winner" : "", share ? "in-route" : ""].filter(Boolean);
    return h(
      "tr",
      {
        class: classes.join(" ") || null,
        "data-testid": "quote-row",
        "data-venue": q.venue,
        "data-pool": q.pool,
      },
      h(
        "th",
        { scope: "row" },
        venueName(q.venue),
        h("small", { class: "pool-id" }, q.pool),
      ),
      h("td", { class: "num" }, fmt(pairPrice(order, q.price))),
      h("td", { class: "num" }, fmt(q.feeBps)),
      h("td", { class: "num", "data-testid": "price-impact" }, impact(q.priceImpactBps)),
      h("td", { class: "num" }, fmt(pairPrice(order, q.effectivePrice))),
      h("td", { class: "num" }, amount(q.amountOutRaw, q.amountOut, order.tokenOut)),
      h("td", { class: "num share", "data-testid": "route-share" }, share ? `${share}%` : "—"),
    );
  });
  const unit = priceUnit(order) ? ` (${priceUnit(order)})` : "";
  const head = [`Price${unit}`, "Fee bps", "Impact bps", `Effective price${unit}`, `Out (${order.tokenOut ?? ""})`, "Route"];
  return h(
    "div",
    { class: "table-scroll" },
    h(
      "table",
      { class: "quotes" },
      h(
        "thead",
        {},
        h("tr", {}, h("th", { scope: "col" }, "Pool"), head.map((t) => h("th", { scope: "col", class: "num" }, t))),
      ),
      h("tbody", {}, rows),
    ),
  );
}

/** The route taken: a bar of the legs' percents, then each leg with its pool and amounts in and out. */
function routeView(routing, order) {
  const legs = routing.routePlan ?? [];
  if (!legs.length) return "";
  const bar = h(
    "div",
    { class: "route-bar", "aria-hidden": "true" },
    legs.map((leg) =>
      h("span", { class: `seg seg-${leg.venue}`, style: `flex-grow: ${leg.percent}`, title: `${leg.pool} ${leg.percent}%` }),
    ),
  );
  const items = legs.map((leg) =>
    h(
      "li",
      { "data-testid": "route-leg", "data-venue": leg.venue, "data-pool": leg.pool, "data-percent": leg.percent },
      h("b", { class: "percent" }, `${leg.percent}%`),
      h("span", {}, venueName(leg.venue), " ", h("code", {}, leg.pool)),
      h(
        "span",
        { class: "num" },
        `${amount(leg.amountInRaw, leg.amountIn, order.tokenIn)} → ${amount(leg.amountOutRaw, leg.amountOut, order.tokenOut)}`,
      ),
    ),
  );
  const title = legs.length === 1 ? "Route: one pool" : `Route: split over ${legs.length} pools`;
  return h(
    "div",
    { class: "route", "data-testid": "route", "data-legs": legs.length },
    h("h5", {}, title, h("span", { class: "muted" }, ` · out ${amount(routing.amountOutRaw, routing.amountOut, order.tokenOut)}`)),
    bar,
    h("ol", { class: "route-legs" }, items),
  );
}

function leftOutView(routing) {
  const left = routing.leftOut ?? [];
  if (!left.length) return "";
  return h(
    "p",
    { class: "left-out", "data-testid": "left-out" },
    "Left out: ",
    left.map((l) => `${venueName(l.venue)} (${l.reason})`).join(", "),
  );
}

function routingView(routing, order) {
  const verdict = routingVerdict(routing, order);
  return [
    routeView(routing, order),
    quotesTable(routing, order),
    leftOutView(routing),
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
  const parts = [h("div", { class: "routing", "data-testid": "routing-latest" }, routingView(latest, order))];
  if (earlier.length) {
    const folded = h(
      "details",
      { class: "earlier", open: earlierAttemptsOpen.has(order.id) },
      h("summary", {}, `Earlier ${earlier.length === 1 ? "attempt" : `attempts (${earlier.length})`}`),
      earlier.map((routing) =>
        h("div", { class: "routing" }, h("h5", {}, `Attempt ${routing.attempt}`), routingView(routing, order)),
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
      field("Minimum out", amount(order.built.minAmountOutRaw, order.built.minAmountOut, order.tokenOut), {
        "data-testid": "detail-min-amount-out",
      }),
      field(
        "Instructions",
        h("ol", { class: "instructions" }, (order.built.instructions ?? []).map((i) => h("li", {}, i))),
      ),
    );
  }
  if (c) {
    fields.push(
      field("Execution price", showPrice(order, c.executionPrice), { "data-testid": "detail-execution-price" }),
      field("Received", amount(c.amountOutRaw, c.amountOut, order.tokenOut), { "data-testid": "detail-amount-out" }),
      field("Tx hash", c.txHash, { class: "hash-full", "data-testid": "detail-tx-hash" }),
    );
    if (c.fills?.length) {
      const fills = c.fills.map((fill) =>
        h(
          "li",
          { "data-testid": "fill", "data-pool": fill.pool },
          h("code", {}, fill.pool),
          `: ${amount(fill.amountInRaw, fill.amountIn, order.tokenIn)} → ${amount(fill.amountOutRaw, fill.amountOut, order.tokenOut)}`,
        ),
      );
      fields.push(field("Fills", h("ul", { class: "fills" }, fills)));
    }
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
// The market as the engine relays it: each pair's best prices (for waiting limit orders and the limit
// field), and the tokens the market announces and launches (the launch feed, the sniper field's choices).

const market = {
  prices: new Map(), // "SOL/USDC" -> {base, quote, unit, bid, ask, pools}; bid and ask as decimal strings
  tokens: [], // the market's token records, as GET /api/tokens gives them
  timer: null,
};

const needsPrices = () =>
  ui.form.elements.orderType.value === "limit" ||
  [...orders.values()].some((o) => o.status === "waiting" && typeof o.armed?.limitPrice === "number");

async function getJson(path) {
  try {
    const response = await fetch(path);
    return response.ok ? await response.json() : null;
  } catch {
    return null; // the engine or the market is away: keep what was shown, try again next round
  }
}

async function refreshMarket() {
  clearTimeout(market.timer);
  const [tokens, prices] = await Promise.all([getJson("/api/tokens"), needsPrices() ? getJson("/api/prices") : null]);
  if (Array.isArray(tokens)) {
    market.tokens = tokens;
    drawLaunches();
  }
  if (prices?.pairs) {
    market.prices = new Map(prices.pairs.map((p) => [`${p.base}/${p.quote}`, p]));
    for (const order of orders.values()) if (order.status === "waiting") dirty.add(order.id);
    scheduleRender();
    updateLimitHint();
  }
  clearTimeout(market.timer); // another round may have started meanwhile: one timer at a time
  if (!document.hidden) market.timer = setTimeout(refreshMarket, MARKET_POLL_MS);
}

/** The tokens the market announced after it started (the five it started with launched with it), newest
 * first: announced ones wait for their first pool, launched ones show it. */
function drawLaunches() {
  const fresh = market.tokens
    .filter((t) => !(t.symbol in TOKENS))
    .sort((a, b) => b.announcedAt - a.announcedAt || (a.symbol < b.symbol ? -1 : 1));
  const stamp = (ms) => (typeof ms === "number" ? time(new Date(ms).toISOString()) : "—");
  const items = fresh.map((t) => {
    const launched = t.firstPool !== null && t.firstPool !== undefined;
    const checks = [
      h("span", { class: t.mintAuthority ? "check bad" : "check ok" }, t.mintAuthority ? "can still be minted" : "mint renounced"),
      h("span", { class: t.freezeAuthority ? "check bad" : "check ok" }, t.freezeAuthority ? "can be frozen" : "no freeze"),
    ];
    return h(
      "li",
      { class: `launch ${launched ? "launched" : "announced"}`, "data-testid": "launch-item", "data-symbol": t.symbol, "data-state": launched ? "launched" : "announced" },
      h(
        "div",
        { class: "launch-top" },
        h("b", {}, t.symbol),
        h("span", { class: `badge badge-${launched ? "confirmed" : "waiting"}`, "data-testid": "launch-state" }, launched ? "launched" : "announced"),
        launched
          ? ""
          : h(
              "button",
              { type: "button", class: "snipe", "data-testid": "snipe-token", onclick: () => snipe(t.symbol) },
              "Snipe",
            ),
      ),
      h(
        "small",
        { class: "muted" },
        `${t.decimals} decimals · announced ${stamp(t.announcedAt)}`,
        launched ? ` · first pool ${stamp(t.launchedAt)}` : " · no pool yet",
      ),
      launched ? h("code", { class: "pool", "data-testid": "launch-pool" }, t.firstPool) : "",
      h("div", { class: "checks" }, checks),
    );
  });
  ui.launches.replaceChildren(...items);
  ui.launchesEmpty.hidden = fresh.length > 0;
  ui.announced.replaceChildren(
    ...fresh.filter((t) => !t.firstPool).map((t) => h("option", { value: t.symbol })),
  );
}

/** "Snipe" on an announced token: the form, set for a sniper order on it. */
function snipe(symbol) {
  const f = ui.form.elements;
  f.orderType.value = "sniper";
  if (!["SOL", "USDC"].includes(f.tokenIn.value)) f.tokenIn.value = "SOL";
  f.sniperToken.value = symbol;
  updateOrderType();
  f.amountIn.focus();
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
  const orderType = f.orderType.value;
  const body = {
    orderType,
    tokenIn: f.tokenIn.value,
    tokenOut: orderType === "sniper" ? f.sniperToken.value.trim().toUpperCase() : f.tokenOut.value,
    amountIn: f.amountIn.value.trim() || null, // a decimal string, sent as typed: the API reads it exactly
    slippageBps: number(f.slippageBps.value),
  };
  // Each type's own fields only (the API refuses another type's); decimals as typed, strings.
  if (orderType === "limit") body.limitPrice = f.limitPrice.value.trim() || null;
  if (orderType === "sniper") {
    if (f.maxDelayMs.value.trim()) body.maxDelayMs = number(f.maxDelayMs.value);
    if (f.minLiquidity.value.trim()) body.minLiquidity = f.minLiquidity.value.trim();
  }
  return body;
}

/** The form's fields for its order type: a limit price for a limit order, the new token and the sniper's
 * options for a sniper order. */
function updateOrderType() {
  const type = ui.form.elements.orderType.value;
  ui.limitField.hidden = type !== "limit";
  ui.sniperFields.hidden = type !== "sniper";
  ui.sniperTokenField.hidden = type !== "sniper";
  ui.tokenOutField.hidden = type === "sniper";
  ui.swap.hidden = type === "sniper";
  ui.minLiquidityUnit.textContent = ui.form.elements.tokenIn.value;
  updateLimitHint();
  if (type === "limit" && !market.prices.size) refreshMarket();
}

/** The limit's unit (tokenOut per tokenIn, as the API takes it) and the best price in that direction now. */
function updateLimitHint() {
  const f = ui.form.elements;
  const [tokenIn, tokenOut] = [f.tokenIn.value, f.tokenOut.value];
  ui.limitUnit.textContent = `${tokenOut} per ${tokenIn}`;
  const quoted = [...market.prices.values()].find(
    (p) => (p.base === tokenIn && p.quote === tokenOut) || (p.base === tokenOut && p.quote === tokenIn),
  );
  if (!quoted) {
    ui.limitNow.textContent = "";
    return;
  }
  // Selling the base: the bid, as it is; selling the quote: base per quote is 1 / the ask (shown rounded).
  const now = quoted.base === tokenIn ? Number(quoted.bid) : 1 / Number(quoted.ask);
  ui.limitNow.textContent = `now ${fmt(now)} ${tokenOut} per ${tokenIn}`;
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
    if (formBody().orderType === "limit") refreshMarket(); // its current price, without waiting a round
  } else {
    markInvalid(result.field);
    showFormResult({ error: result.status ? `${result.status}: ${result.message}` : result.message });
  }
}

/** A random amount between `lo` and `hi`, to about 4 significant digits, as a decimal string of `token`. */
function randomAmount(lo, hi, token) {
  const value = lo + Math.random() * (hi - lo);
  const digits = Math.max(0, 3 - Math.floor(Math.log10(value)));
  return value.toFixed(Math.min(digits, TOKENS[token].decimals));
}

async function fireFive() {
  ui.fire.disabled = true;
  showFormResult({});
  const bodies = FIVE_ORDERS.map(({ range: [lo, hi], ...pair }) => ({
    orderType: "market",
    ...pair,
    amountIn: randomAmount(lo, hi, pair.tokenIn),
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
  const { decimals, max } = TOKENS[token];
  ui.amountHint.textContent = `${token}, up to ${decimals} decimals, max ${exactFormat.format(max)}`;
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
    updateOrderType();
  };
  tokenIn.addEventListener("change", () => keepDistinct(tokenIn, tokenOut));
  tokenOut.addEventListener("change", () => keepDistinct(tokenOut, tokenIn));
  ui.swap.addEventListener("click", () => {
    [tokenIn.value, tokenOut.value] = [tokenOut.value, tokenIn.value];
    previous = { tokenIn: tokenIn.value, tokenOut: tokenOut.value };
    updateAmountHint();
    updateOrderType();
  });
  ui.form.elements.orderType.addEventListener("change", updateOrderType);
  ui.form.addEventListener("input", (e) => e.target.removeAttribute?.("aria-invalid"));
  ui.form.addEventListener("submit", onSubmit);
  ui.fire.addEventListener("click", fireFive);
  updateAmountHint();
  updateOrderType();
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
    limitField: $("limit-field"),
    limitUnit: $("limit-unit"),
    limitNow: $("limit-now"),
    sniperFields: $("sniper-fields"),
    sniperTokenField: $("sniper-token-field"),
    tokenOutField: $("token-out-field"),
    minLiquidityUnit: $("min-liquidity-unit"),
    launches: $("launch-list"),
    launchesEmpty: $("launches-empty"),
    announced: $("announced-tokens"),
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
  refreshMarket();
  // A hidden tab reads nothing; back in view, it reads at once.
  document.addEventListener("visibilitychange", () => {
    if (document.hidden) clearTimeout(market.timer);
    else refreshMarket();
  });
}

start();
