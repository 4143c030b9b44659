// Small enhancements over server-rendered pages; every page works without them.
// They read the DRF API with the page's session (same origin, CSRF-safe GETs only).
"use strict";

async function getJson(url) {
  const response = await fetch(url, { credentials: "same-origin", headers: { Accept: "application/json" } });
  const body = await response.json().catch(() => ({}));
  if (!response.ok) throw new Error(body.detail || `The server answered ${response.status}.`);
  return body;
}

// Charts: <canvas data-chart="config-id"> with its Chart.js config in <script type="application/json" id="config-id">.
function drawCharts() {
  if (!window.Chart) return;
  document.querySelectorAll("canvas[data-chart]").forEach((canvas) => {
    const config = JSON.parse(document.getElementById(canvas.dataset.chart).textContent);
    new window.Chart(canvas, config);
  });
}

// A bill number field that fills in what the bill says: <input data-bill-lookup="/api/invoices/">;
// elements with data-bill-field="amountPayable" receive that field of the API's answer. On a page shown
// with the bill already chosen (a refused form, ?bill=) a field that holds a value keeps it: it is what
// the clerk typed, or the server's own figure.
function billLookups() {
  document.querySelectorAll("input[data-bill-lookup]").forEach((input) => {
    const form = input.form;
    const status = form.querySelector("[data-bill-status]");
    const fill = async (keepTyped) => {
      const id = input.value.trim();
      if (!/^\d+$/.test(id)) return;
      try {
        const bill = await getJson(input.dataset.billLookup + id);
        form.querySelectorAll("[data-bill-field]").forEach((target) => {
          const value = bill[target.dataset.billField] ?? "";
          if ("value" in target && target.tagName !== "OUTPUT") {
            if (!(keepTyped && target.value)) target.value = value;
          }
          else target.textContent = value;
        });
        if (status) status.textContent = `Bill ${bill.invoiceNumber}: ${bill.paymentStatus.replace("_", " ")}.`;
      } catch (error) {
        if (status) status.textContent = error.message;
      }
    };
    input.addEventListener("change", () => fill(false));
    if (input.value) fill(true);
  });
}

// Live progress: <section data-poll="/api/billing-runs/7" data-poll-until="finished">; children with
// data-field="done" show that field; <progress data-field="percent">. At the end the page reloads.
function polls() {
  document.querySelectorAll("[data-poll]").forEach((box) => {
    const until = (box.dataset.pollUntil || "").split(",");
    const tick = async () => {
      try {
        const state = await getJson(box.dataset.poll);
        box.querySelectorAll("[data-field]").forEach((target) => {
          const value = state[target.dataset.field];
          if (target.tagName === "PROGRESS") target.value = value;
          else target.textContent = value;
        });
        if (until.includes(state.status)) { window.location.reload(); return; }
      } catch (error) {
        const status = box.querySelector("[data-poll-error]");
        if (status) status.textContent = error.message;
      }
      window.setTimeout(tick, 700);
    };
    tick();
  });
}

// A submit button says it is working and cannot be pressed twice (a payment must not be sent twice).
function singleSubmit() {
  document.querySelectorAll("form[data-single-submit]").forEach((form) => {
    form.addEventListener("submit", () => {
      form.querySelectorAll("button[type=submit]").forEach((button) => {
        button.disabled = true;
        button.textContent = button.dataset.busy || "Working…";
      });
    });
  });
}

// On a phone a <table class="stack"> shows each row as a card; every cell is labelled with its column.
function stackTables() {
  document.querySelectorAll("table.stack").forEach((table) => {
    const headings = [...table.querySelectorAll("thead th")].map((th) => th.textContent.trim());
    table.querySelectorAll("tbody tr").forEach((row) => {
      [...row.children].forEach((cell, index) => {
        if (headings[index] && !cell.hasAttribute("colspan")) cell.dataset.label = headings[index];
      });
    });
  });
}

document.addEventListener("DOMContentLoaded", () => {
  drawCharts(); billLookups(); polls(); singleSubmit(); stackTables();
});
