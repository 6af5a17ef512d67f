// OTPHub customer console: live prices on /buy, live SMS on /activations/{id}. Plain
// JavaScript, no framework; each page works without it (forms post, a reload shows all).
"use strict";

// ---------------------------------------------------------------- /buy: live prices

function setUpBuying() {
  const form = document.getElementById("buy-form");
  if (!form) return;
  const service = document.getElementById("service");
  const country = document.getElementById("country");
  const operator = document.getElementById("operator");
  const wrap = document.getElementById("offers-wrap");
  const showPrices = document.getElementById("show-prices");
  if (showPrices) showPrices.hidden = true; // the prices follow the pickers by themselves
  let asked = 0;

  async function fragment(url) {
    const response = await fetch(url, { credentials: "same-origin", headers: { Accept: "text/html" } });
    if (response.redirected || !(response.headers.get("content-type") || "").startsWith("text/html")) {
      throw new Error("signed out");
    }
    return response.text();
  }

  async function refreshOffers() {
    const mine = ++asked;
    const query = new URLSearchParams({
      service: service.value, country: country.value, operator: operator.value,
    });
    wrap.setAttribute("aria-busy", "true");
    try {
      const html = await fragment("/buy/offers?" + query.toString());
      if (mine === asked) wrap.innerHTML = html; // only the latest answer counts
    } catch (_) {
      if (mine === asked) wrap.innerHTML = '<p class="error" role="alert">The prices could not be loaded: reload the page.</p>';
    } finally {
      if (mine === asked) wrap.removeAttribute("aria-busy");
    }
  }

  async function refreshOperators() {
    const query = new URLSearchParams({ country: country.value, operator: operator.value });
    try {
      operator.innerHTML = await fragment("/buy/operators?" + query.toString());
    } catch (_) {
      operator.innerHTML = '<option value="">any</option>';
    }
  }

  service.addEventListener("change", refreshOffers);
  operator.addEventListener("change", refreshOffers);
  country.addEventListener("change", async () => {
    await refreshOperators();
    await refreshOffers();
  });
  // Prices move: refreshed every 20 s while the page is shown.
  setInterval(() => { if (!document.hidden) refreshOffers(); }, 20000);
  // One purchase per click: the button is disabled once the form is on its way.
  form.addEventListener("submit", (event) => {
    if (event.defaultPrevented) return;
    const buy = document.getElementById("buy");
    setTimeout(() => { buy.disabled = true; }, 0);
  });
}

// ---------------------------------------------------------------- /activations/{id}: live

function setUpActivation() {
  const card = document.getElementById("activation");
  if (!card || card.dataset.live !== "yes" || !window.EventSource) return;
  const stateBox = document.getElementById("state");
  const list = document.getElementById("sms-list");
  const empty = document.getElementById("sms-empty");
  const deadline = document.getElementById("deadline");

  // Times as the server writes them (YYYY-MM-DD HH:MM:SS in the deployment's zone).
  function when(iso) {
    if (!iso) return "";
    try {
      return new Intl.DateTimeFormat("sv-SE", {
        timeZone: card.dataset.timeZone || "UTC", year: "numeric", month: "2-digit",
        day: "2-digit", hour: "2-digit", minute: "2-digit", second: "2-digit",
      }).format(new Date(iso));
    } catch (_) {
      return iso.replace("T", " ").replace("Z", " UTC");
    }
  }

  function label(state) {
    return card.dataset["label" + state.charAt(0).toUpperCase() + state.slice(1)] || state;
  }

  function shownState(act) {
    // Cancelled at its deadline (no code came in time): expired, as the page says it.
    if (act.state === "cancelled" && act.ended_at && act.expires_at && act.ended_at >= act.expires_at) {
      return "expired";
    }
    return act.state;
  }

  function showButtons(state) {
    for (const form of document.querySelectorAll("#actions form[data-when]")) {
      const allowed = form.dataset.when.split(" ").includes(state);
      form.querySelector("button").disabled = !allowed;
    }
  }

  function addSms(sms) {
    if (list.querySelector(`li[data-sms-id="${CSS.escape(String(sms.id))}"]`)) return;
    const item = document.createElement("li");
    item.dataset.smsId = sms.id;
    const top = document.createElement("p");
    const code = document.createElement("code");
    code.className = "code";
    code.id = "code-" + sms.id;
    code.textContent = sms.code;
    const copy = document.createElement("button");
    copy.type = "button";
    copy.className = "copy secondary";
    copy.dataset.copy = "#code-" + sms.id;
    copy.textContent = "Copy the code";
    top.append(code, " ", copy);
    const text = document.createElement("p");
    text.className = "sms-text";
    text.textContent = sms.text;
    const received = document.createElement("p");
    received.className = "muted";
    received.textContent = "Received " + when(sms.received_at);
    item.append(top, text, received);
    list.append(item);
    if (empty) empty.hidden = true;
  }

  const source = new EventSource(`/activations/${encodeURIComponent(card.dataset.id)}/events`);
  source.addEventListener("sms", (event) => addSms(JSON.parse(event.data)));
  source.addEventListener("state", (event) => {
    const act = JSON.parse(event.data);
    const state = shownState(act);
    stateBox.dataset.state = state;
    stateBox.textContent = label(state);
    showButtons(act.state);
    if (!["waiting", "code", "retry"].includes(act.state)) {
      // Ended: the server closes the stream; not reopening it is up to us.
      source.close();
      card.dataset.live = "no";
      if (deadline) deadline.textContent = "Ended" + (act.ended_at ? " at " + when(act.ended_at) : "") + ".";
    }
  });
}

document.addEventListener("DOMContentLoaded", () => {
  setUpBuying();
  setUpActivation();
});
