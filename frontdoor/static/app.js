// The shoprank demo page: calls GET /api/search and shows results, facets, per-stage latency,
// the fail-open flag, and (compare mode) the first-stage / reranked / diversified orders side by side.
// Its controls start from GET /api/defaults, so what a visitor sees is what the API serves.
// Plain browser JavaScript, no build step. Every product field is set with textContent, never as HTML.
// Like a shop front-end it reports UBI events to POST /api/events: an impression per shown result,
// a click on a result's title, an add_to_cart from its button (pseudonymous ids, no personal data).
// The shopper switch acts as shopper A or B (two sessions of this tab): their events personalise their
// searches (session_id), and "side by side" shows the same query for both at once.
"use strict";

const FACETS = [["brand", "Brand"], ["category", "Category"], ["color", "Color"], ["price", "Price"]];
const STAGES = [
  ["embed_ms", "embed", "#8e24aa"],
  ["first_stage_ms", "first stage", "#1e88e5"],
  ["sidecar_queue_ms", "sidecar queue", "#90a4ae"],
  ["sidecar_tokenize_ms", "tokenize", "#43a047"],
  ["sidecar_inference_ms", "inference", "#fb8c00"],
  ["sidecar_diversify_ms", "diversify", "#e53935"],
  ["rpc_other_ms", "rpc + other", "#bdbdbd"],
];
// Diversity methods whose similarity mixes embeddings with brands / categories (attribute_weight).
const ATTRIBUTE_METHODS = new Set(["mmr", "dpp"]);
const $ = (id) => document.getElementById(id);
let answered = 0; // searches answered so far, in data-answered: lets a test wait for the next one

const state = {
  q: "", page: 1, pageSize: 10,
  brand: new Set(), category: new Set(), color: new Set(), priceMin: null, priceMax: null,
};

// UBI: a random id kept per browser (client) and per tab (session); never anything personal.
function randomId() {
  const bytes = crypto.getRandomValues(new Uint8Array(16)); // randomUUID needs a secure context; this does not
  return Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("");
}
function storedId(storage, key) {
  let value = storage.getItem(key);
  if (!value) { value = randomId(); storage.setItem(key, value); }
  return value;
}
const ubi = {
  client: storedId(localStorage, "shoprank-client-id"), session: storedId(sessionStorage, "shoprank-session-id"), sent: 0,
  shoppers: { a: storedId(sessionStorage, "shoprank-shopper-a"), b: storedId(sessionStorage, "shoprank-shopper-b") },
};
// The session a search and its events belong to: shopper A's, B's, or this tab's.
function sessionOf(shopper) { return shopper ? ubi.shoppers[shopper] : ubi.session; }

function sendEvents(actions, shopper = $("shopper").value, queryId = ubi.queryId) {
  if (!actions.length || !queryId) return;
  const now = new Date().toISOString();
  const events = actions.map(([action, id, ordinal]) => ({
    action_name: action, timestamp: now, query_id: queryId, session_id: sessionOf(shopper), client_id: ubi.client,
    user_query: state.q, application: "demo-page",
    event_attributes: { object: { object_id: id, object_id_type: "product" }, position: { ordinal } },
  }));
  fetch("/api/events", { method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify(events), keepalive: true })
    .then((response) => { if (response.ok) document.body.dataset.eventsSent = String(ubi.sent += events.length); })
    .catch(() => {}); // events are best effort: a shopper never sees them fail
}

function el(tag, props = {}, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(props)) {
    if (key === "class") node.className = value;
    else if (key === "text") node.textContent = value;
    else node.setAttribute(key, value);
  }
  node.append(...children.filter((c) => c !== null && c !== undefined));
  return node;
}

function apiParams() {
  const params = new URLSearchParams({ q: state.q, page: state.page, page_size: state.pageSize });
  for (const name of ["brand", "category", "color"]) for (const v of state[name]) params.append(name, v);
  if (state.priceMin !== null) params.set("price_min", state.priceMin);
  if (state.priceMax !== null) params.set("price_max", state.priceMax);
  params.set("mode", $("mode").value);
  params.set("rerank", $("rerank").checked);
  const method = $("diversity").value;
  if (method) {
    params.set("diversity", method);
    params.set("strength", $("strength").value);
    if (ATTRIBUTE_METHODS.has(method)) params.set("attribute_weight", $("attribute-weight").value);
  }
  if ($("compare").checked) params.set("compare", "true");
  params.set("client_id", ubi.client);
  if ($("shopper").value) params.set("shopper", $("shopper").value);
  if ($("shoppers").checked) params.set("shoppers", "true");
  return params;
}

// What the API gets: the page's parameters with the shopper's session instead of the page-only switches.
function searchParams(shopper) {
  const params = apiParams();
  params.delete("shopper");
  params.delete("shoppers");
  params.set("session_id", sessionOf(shopper));
  return params;
}

function restoreFromUrl() {
  const params = new URLSearchParams(location.search);
  state.q = params.get("q") || "";
  state.page = Number(params.get("page") || 1);
  for (const name of ["brand", "category", "color"]) state[name] = new Set(params.getAll(name));
  state.priceMin = params.has("price_min") ? Number(params.get("price_min")) : null;
  state.priceMax = params.has("price_max") ? Number(params.get("price_max")) : null;
  if (params.has("mode")) $("mode").value = params.get("mode");
  if (params.has("rerank")) $("rerank").checked = params.get("rerank") !== "false";
  if (params.has("diversity")) $("diversity").value = params.get("diversity");
  if (params.has("strength")) $("strength").value = params.get("strength");
  if (params.has("attribute_weight")) $("attribute-weight").value = params.get("attribute_weight");
  $("compare").checked = params.get("compare") === "true";
  $("shopper").value = params.get("shopper") || "";
  $("shoppers").checked = params.get("shoppers") === "true";
  $("q").value = state.q;
  showStrength();
}

function showStrength() {
  $("strength-value").textContent = Number($("strength").value).toFixed(2);
  $("attribute-weight-value").textContent = Number($("attribute-weight").value).toFixed(2);
}

// Start every control from the server's defaults; without them, leave diversity to the sidecar.
async function loadDefaults() {
  try {
    const response = await fetch("/api/defaults");
    if (!response.ok) throw new Error(response.statusText);
    const d = await response.json();
    $("mode").value = d.mode;
    $("rerank").checked = d.rerank;
    $("diversity").value = d.diversity;
    $("strength").value = d.strength;
    $("attribute-weight").value = d.attribute_weight;
    state.pageSize = d.page_size;
    document.body.dataset.defaults = "loaded";
  } catch (error) {
    $("diversity").value = "";
    document.body.dataset.defaults = "unavailable";
  }
  showStrength();
}

async function search() {
  if (!state.q.trim()) return;
  const params = apiParams();
  history.replaceState(null, "", "/?" + params.toString());
  $("status").replaceChildren(el("span", { text: "searching…" }));
  document.body.dataset.state = "loading";
  if ($("shoppers").checked) { await searchShoppers(); return; }
  let response, data;
  try {
    response = await fetch("/api/search?" + searchParams($("shopper").value).toString());
    data = await response.json();
  } catch (error) {
    showError("the front door did not answer: " + error);
    return;
  }
  if (!response.ok) { showError(data.error || response.statusText); return; }
  render(data);
  finished("done");
}

// The same query for shoppers A and B, one column each; each column's clicks and carts are that shopper's.
async function searchShoppers() {
  let answers;
  try {
    answers = await Promise.all(["a", "b"].map(async (shopper) => {
      const response = await fetch("/api/search?" + searchParams(shopper).toString());
      return [shopper, response, await response.json()];
    }));
  } catch (error) {
    showError("the front door did not answer: " + error);
    return;
  }
  const failed = answers.find(([, response]) => !response.ok);
  if (failed) { showError(failed[2].error || failed[1].statusText); return; }
  const first = answers[0][2];
  renderStatus(first);
  renderLatency(first);
  renderFacets(first.facets);
  $("results").hidden = true;
  const view = $("compare-view");
  view.hidden = false;
  view.replaceChildren();
  for (const [shopper, , data] of answers) {
    const list = el("ol");
    renderList(list, data.results, data, true, true, shopper, data.query_id);
    const offset = (data.page - 1) * data.page_size;
    sendEvents(data.results.map((r, i) => ["impression", r.id, offset + i]), shopper, data.query_id);
    const detail = data.personalised ? `personalised on ${data.personal_interactions} interactions` : "not personalised (no history yet)";
    view.append(el("div", { class: "column", "data-column": "shopper-" + shopper, "data-personalised": String(data.personalised) },
      el("h2", { text: `Shopper ${shopper.toUpperCase()} ` }, el("small", { text: detail })), list));
  }
  $("page-info").textContent = first.pages ? `page ${first.page} of ${first.pages}` : "";
  $("prev").disabled = first.page <= 1;
  $("next").disabled = first.page >= first.pages;
  finished("done");
}

function finished(outcome) {
  document.body.dataset.state = outcome;
  document.body.dataset.answered = String(++answered);
}

function showError(message) {
  $("status").replaceChildren(el("span", { class: "error", text: message }));
  $("latency").replaceChildren();
  finished("error");
}

function render(data) {
  renderStatus(data);
  renderLatency(data);
  renderFacets(data.facets);
  const compare = data.compare !== undefined;
  $("results").hidden = compare;
  $("compare-view").hidden = !compare;
  ubi.queryId = data.query_id;
  if (compare) renderCompare(data); else {
    renderList($("results"), data.results, data, true, true);
    const offset = (data.page - 1) * data.page_size;
    sendEvents(data.results.map((r, i) => ["impression", r.id, offset + i]));
  }
  $("page-info").textContent = data.pages ? `page ${data.page} of ${data.pages}` : "";
  $("prev").disabled = data.page <= 1;
  $("next").disabled = data.page >= data.pages;
}

function renderStatus(data) {
  const parts = [el("span", { text: `${data.window} results · ` })];
  if (data.reranked) {
    const method = data.diversity_method && data.diversity_method !== "none" ? `, diversified by ${data.diversity_method}` : "";
    parts.push(el("span", { class: "ok", id: "reranked-state", text: `reranked by ${data.model_version}${method}` }));
  } else if (data.fail_open) {
    parts.push(el("span", { class: "flag", id: "fail-open", text: "FAIL-OPEN" }));
    parts.push(el("span", { text: ` sidecar unavailable: first-stage order (${data.fail_open_reason || "no reason"})` }));
  } else {
    parts.push(el("span", { text: "first-stage order (reranking off)" }));
  }
  if (data.personalised) parts.push(el("span", { id: "personalised", text: ` · personalised on ${data.personal_interactions} interactions` }));
  if (data.cached) parts.push(el("span", { text: " · page cut from the cached ranked window" }));
  $("status").replaceChildren(...parts);
}

function renderLatency(data) {
  // A page cut from the cached window did no retrieval or rerank: show what ranking that window took.
  const t = { ...(data.cached ? data.window_timings : data.timings) };
  const total = t.total_ms || 0;
  t.rpc_other_ms = Math.max(0, (t.rerank_ms || 0) - (t.sidecar_total_ms || 0) - (t.sidecar_queue_ms || 0));
  const bar = el("div", { class: "bar" });
  const legend = el("div", { class: "legend" });
  for (const [key, label, color] of STAGES) {
    const ms = t[key];
    if (ms === undefined) continue;
    if (total > 0 && ms > 0) bar.append(el("span", { style: `width:${(100 * ms) / total}%;background:${color}`, title: `${label} ${ms.toFixed(1)} ms` }));
    legend.append(el("span", { "data-stage": key }, el("span", { class: "swatch", style: `background:${color}` }), `${label} ${ms.toFixed(1)} ms`));
  }
  legend.append(el("strong", { "data-stage": "total_ms", text: `total ${total.toFixed(1)} ms` }));
  const caption = data.cached
    ? el("div", { id: "cached-note", text: `this page: ${data.timings.total_ms.toFixed(1)} ms from the cached ranked window, which took:` })
    : null;
  $("latency").replaceChildren(...[caption, bar, legend].filter(Boolean));
}

function renderFacets(facets) {
  const aside = $("facets");
  aside.replaceChildren();
  for (const [name, title] of FACETS) {
    const buckets = (facets || {})[name] || [];
    if (!buckets.length) continue;
    aside.append(el("h3", { text: title }));
    for (const bucket of buckets) {
      const box = el("input", { type: "checkbox", "data-facet": name, "data-value": bucket.value });
      box.checked = bucket.selected;
      box.addEventListener("change", () => toggleFacet(name, bucket, box.checked));
      const label = name === "price" ? "$" + bucket.value : bucket.value;
      aside.append(el("label", {}, box, el("span", { text: label }), el("span", { class: "count", text: bucket.count })));
    }
  }
  if (state.brand.size || state.category.size || state.color.size || state.priceMin !== null || state.priceMax !== null) {
    const clear = el("button", { type: "button", class: "clear", text: "clear filters" });
    clear.addEventListener("click", () => {
      for (const name of ["brand", "category", "color"]) state[name].clear();
      state.priceMin = state.priceMax = null;
      state.page = 1;
      search();
    });
    aside.append(clear);
  }
}

function toggleFacet(name, bucket, on) {
  if (name === "price") {
    state.priceMin = on ? bucket.price_min : null;
    state.priceMax = on ? bucket.price_max : null;
  } else if (on) state[name].add(bucket.value);
  else state[name].delete(bucket.value);
  state.page = 1;
  search();
}

function movement(fromRank, toRank) {
  const delta = fromRank - toRank;
  if (delta > 0) return el("span", { class: "move up", text: `▲${delta} (was #${fromRank + 1})` });
  if (delta < 0) return el("span", { class: "move down", text: `▼${-delta} (was #${fromRank + 1})` });
  return el("span", { class: "move same", text: "=" });
}

function card(r, rank, showMove, shop = false, shopper = $("shopper").value, queryId = ubi.queryId) {
  const thumb = el("div", { class: "thumb" });
  if (r.image) {
    const img = el("img", { alt: "", loading: "lazy", referrerpolicy: "no-referrer" });
    img.addEventListener("error", () => thumb.replaceChildren(el("span", { text: "no image" })));
    img.src = r.image;
    thumb.append(img);
  } else thumb.append(el("span", { text: "no image" }));
  const price = r.price !== null && r.price !== undefined ? el("span", { class: "price", text: "$" + r.price.toFixed(2) }) : null;
  const sub = el("div", { class: "sub" }, el("span", { class: "brand", text: r.brand || "no brand" }), price ? " · " : null, price);
  const title = el("div", { class: "title", text: r.title });
  if (showMove) title.append(movement(r.first_stage_rank, rank));
  const body = el("div", {}, title, sub);
  if (shop) {
    title.classList.add("clickable");
    title.addEventListener("click", () => sendEvents([["click", r.id, rank]], shopper, queryId));
    const cart = el("button", { type: "button", class: "cart", text: "Add to cart" });
    cart.addEventListener("click", () => sendEvents([["add_to_cart", r.id, rank]], shopper, queryId));
    body.append(cart);
  }
  return el("li", { class: "card", "data-id": r.id }, thumb, body);
}

function renderList(list, results, data, showMove = true, shop = false, shopper = $("shopper").value, queryId = ubi.queryId) {
  list.replaceChildren();
  if (!results.length) { list.append(el("li", { class: "empty", text: "No products match; try fewer words or filters." })); return; }
  const offset = (data.page - 1) * data.page_size;
  results.forEach((r, i) => list.append(card(r, offset + i, showMove && data.reranked, shop, shopper, queryId)));
}

function renderCompare(data) {
  const columns = [
    ["first_stage", "First stage", $("mode").value],
    ["reranked", "Reranked", data.reranked ? data.model_version : "not reranked"],
    ["diversified", "Diversified", data.reranked ? data.diversity_method : "not reranked"],
  ];
  const view = $("compare-view");
  view.replaceChildren();
  for (const [key, title, detail] of columns) {
    const list = el("ol");
    renderList(list, data.compare[key], data, key !== "first_stage");
    view.append(el("div", { class: "column", "data-column": key }, el("h2", { text: title + " " }, el("small", { text: detail })), list));
  }
}

$("search").addEventListener("submit", (event) => {
  event.preventDefault();
  state.q = $("q").value;
  state.page = 1;
  search();
});
for (const id of ["mode", "rerank", "diversity", "compare", "shopper", "shoppers"]) $(id).addEventListener("change", () => { state.page = 1; search(); });
for (const id of ["strength", "attribute-weight"]) {
  $(id).addEventListener("input", showStrength);
  $(id).addEventListener("change", () => { state.page = 1; search(); });
}
$("prev").addEventListener("click", () => { state.page -= 1; search(); });
$("next").addEventListener("click", () => { state.page += 1; search(); });
loadDefaults().then(() => {
  restoreFromUrl();
  search();
});
