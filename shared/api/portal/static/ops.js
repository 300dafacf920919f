// The operations view: each hosted model's deployment, holds and schedule (GET /api/ops), the
// batch runs under way, and this week's savings (GET /api/report, when the app serves it).
"use strict";

(() => {
  const { api, apiJson, PortalError, duration, clockTime, dateTime, relative, element, sentence } = Portal;
  const REFRESH_MS = 15000;
  const $ = (id) => document.getElementById(id);
  let timer = null;

  const KIND_WORDS = { window: "Window", batch: "Batch", job: "Job", operator: "Operator" };

  function whyUp(model, now) {
    if (model.why_up === null) {
      if (model.ledger_state === "provisioning") return "Being created: not serving yet.";
      return "Not deployed: it bills nothing until work arrives.";
    }
    if (model.why_up === "held") {
      const kinds = [...new Set(model.holds.map((hold) => (KIND_WORDS[hold.kind] || hold.kind).toLowerCase()))];
      const held = `held by ${listWords(kinds)} (${model.holds.length} live hold${model.holds.length === 1 ? "" : "s"})`;
      if (model.azure_state !== "Succeeded") return `Starting (Azure: ${model.azure_state}), ${held}.`;
      return `Up because it is ${held}.`;
    }
    if (model.why_up === "operation") {
      const operation = model.lease ? model.lease.operation : "an operation";
      return `Up while a ${operation} runs.`;
    }
    if (model.why_up === "idle_grace") {
      return `Idle, kept for its idle grace until ${clockTime(model.idle_until)} (${relative(model.idle_until, now)}), then deleted.`;
    }
    return "Nothing needs it: the reaper deletes it on its next pass.";
  }

  function listWords(words) {
    if (words.length <= 1) return words.join("");
    return `${words.slice(0, -1).join(", ")} and ${words[words.length - 1]}`;
  }

  function azureBadge(model) {
    const state = model.azure_state;
    if (state === null) return element("span", { className: "badge absent", text: "Not deployed" });
    const kind = state === "Succeeded" ? "ok" : state === "Failed" ? "bad" : "warn";
    return element("span", { className: `badge ${kind}`, text: `Azure: ${state}` });
  }

  function holdsList(model, now) {
    if (!model.holds.length) return element("p", { className: "meta", text: "No live holds." });
    const items = model.holds.map((hold) =>
      element(
        "li",
        {},
        element("span", { className: "badge", text: KIND_WORDS[hold.kind] || hold.kind }),
        " ",
        element("code", { text: hold.id }),
        element(
          "div",
          { className: "meta" },
          `by ${hold.owner}, until `,
          element("time", { datetime: hold.expires, text: `${clockTime(hold.expires)} (${relative(hold.expires, now)})` }),
        ),
      ),
    );
    return element("ul", { className: "holds", "aria-label": `Live holds on ${model.model}` }, ...items);
  }

  function occurrence(shown, now, kind) {
    if (!shown) return null;
    const starts = shown.opens_utc || shown.starts_utc;
    const ends = shown.closes_utc || shown.deadline_utc;
    const zone = shown.time_zone;
    const local = (iso) => new Date(iso).toLocaleString([], { timeZone: zone, weekday: "short", hour: "2-digit", minute: "2-digit" });
    if (kind === "window") {
      const text = shown.under_way
        ? `${shown.name}: open now, until ${local(ends)} ${zone} (${relative(ends, now)}).`
        : `${shown.name}: opens ${local(starts)} ${zone} (${relative(starts, now)}); provisioning starts ${relative(shown.provision_from_utc, now)}.`;
      return text;
    }
    return shown.under_way
      ? `${shown.name}: due now, until ${local(ends)} ${zone}; run ${shown.run_id}.`
      : `${shown.name}: starts ${local(starts)} ${zone} (${relative(starts, now)}); run ${shown.run_id}.`;
  }

  function modelCard(model, now) {
    const facts = element("dl", { className: "facts" });
    const add = (label, value) => {
      if (value === null || value === undefined || value === "") return;
      facts.append(element("dt", { text: label }), element("dd", { text: String(value) }));
    };
    add("Deployment", `${model.deployment} (${model.deployment_type}, capacity ${model.capacity})`);
    add("Ledger", model.ledger_state);
    if (model.ready_since) add("Serving since", `${dateTime(model.ready_since)} (${relative(model.ready_since, now)})`);
    add("Idle grace", duration(model.idle_grace_seconds));
    const provisioning = model.provisioning;
    add(
      "A start takes",
      provisioning.basis === "observed"
        ? `${duration(provisioning.expected_seconds)} (the last one observed)`
        : `about ${duration(provisioning.expected_seconds)} (none observed yet; the app's estimate)`,
    );
    if (provisioning.provisioning_started) {
      add("Start under way since", `${clockTime(provisioning.provisioning_started)} (${relative(provisioning.provisioning_started, now)})`);
    }
    if (model.lease) add("Operation", `${model.lease.operation} by ${model.lease.owner}, lease until ${clockTime(model.lease.expires)}`);
    add("Next window", model.windows ? occurrence(model.next_window, now, "window") : "none declared");
    add("Next batch run", model.batch_schedules ? occurrence(model.next_batch, now, "batch") : "none declared");

    const card = element(
      "article",
      { className: "card", "aria-labelledby": `model-${model.model}` },
      element(
        "div",
        { className: "model-head" },
        element("h3", { id: `model-${model.model}`, text: model.model }),
        azureBadge(model),
      ),
      element("p", { className: "why", text: whyUp(model, now) }),
    );
    if (model.waiting_for) card.append(element("div", { className: "message warn", text: sentence(model.waiting_for) }));
    if (model.last_error) card.append(element("div", { className: "message error", text: `Last error: ${sentence(model.last_error)}` }));
    card.append(element("h4", { text: "Live holds" }), holdsList(model, now), facts);
    if (model.reconciler_now && model.reconciler_now.length) {
      card.append(
        element("h4", { text: "The schedule reconciler, now" }),
        element("ul", {}, ...model.reconciler_now.map((said) => element("li", { text: said }))),
      );
    }
    return card;
  }

  function renderBatches(batches, now) {
    const table = $("batches");
    const rows = table.querySelector("tbody");
    rows.textContent = "";
    table.hidden = batches.length === 0;
    $("batches-empty").hidden = batches.length > 0;
    for (const run of batches) {
      const counters = run.counters || {};
      const done = (counters.succeeded || 0) + (counters.failed || 0) + (counters.skipped || 0);
      const listed = counters.listed || 0;
      const progress = element("progress", { max: String(Math.max(listed, 1)), value: String(done), "aria-label": `Run ${run.run_id} progress` });
      const pages = `${run.pages_done} page${run.pages_done === 1 ? "" : "s"} finished`;
      const words = listed
        ? `${done} of ${listed} listed so far done (${counters.failed || 0} failed), ${pages}`
        : "No document listed yet: the run starts once the deployment serves";
      const status = element("span", { className: `badge ${run.status === "running" ? "running" : "warn"}`, text: run.status.replaceAll("_", " ") });
      rows.append(
        element(
          "tr",
          {},
          element("td", {}, element("code", { text: run.run_id })),
          element("td", { text: run.model }),
          element("td", {}, status, run.waiting_reason ? element("div", { className: "meta", text: sentence(run.waiting_reason) }) : null),
          element("td", {}, progress, element("div", { className: "meta", text: words })),
          element("td", { text: run.deadline ? `${dateTime(run.deadline)} (${relative(run.deadline, now)})` : "none" }),
        ),
      );
    }
  }

  async function loadOps() {
    window.clearTimeout(timer);
    const errorBox = $("ops-error");
    try {
      const view = await apiJson("ops");
      errorBox.hidden = true;
      const now = new Date(view.checked_at).getTime();
      const zone = Intl.DateTimeFormat().resolvedOptions().timeZone || "your time zone";
      $("checked").textContent = `As of ${clockTime(view.checked_at)}; times are in ${zone} unless a window's zone is named.`;
      const azure = $("azure-error");
      azure.hidden = !view.azure_error;
      azure.textContent = view.azure_error ? `${sentence(view.azure_error)} The states below are the app's ledger's.` : "";
      const models = $("models");
      models.textContent = "";
      if (!view.models.length) models.append(element("p", { text: "No hosted models are declared." }));
      for (const model of view.models) models.append(modelCard(model, now));
      renderBatches(view.batches, now);
    } catch (error) {
      errorBox.textContent = `The operations data could not be read. ${error instanceof PortalError ? error.message : error}`;
      errorBox.hidden = false;
    }
    timer = window.setTimeout(loadOps, REFRESH_MS);
  }

  // --- the savings report -------------------------------------------------------------------

  function startOfWeek() {
    const now = new Date();
    const day = (now.getUTCDay() + 6) % 7; // Monday is 0
    const monday = new Date(Date.UTC(now.getUTCFullYear(), now.getUTCMonth(), now.getUTCDate() - day));
    return monday.toISOString().slice(0, 10);
  }

  function savingsQuery() {
    return `by=week&since=${startOfWeek()}`;
  }

  async function loadSavings() {
    const box = $("savings");
    let response;
    try {
      response = await api(`report?${savingsQuery()}`);
    } catch (error) {
      box.textContent = "";
      box.append(element("p", { text: `The savings report could not be read. ${error.message}` }));
      return;
    }
    box.textContent = "";
    if (response.status === 404) {
      box.append(
        element("p", {
          className: "message info",
          id: "report-unavailable",
          text: "The savings report is not available: this version of the app does not serve it (GET /api/report answered 404). It shows here once the app has it.",
        }),
      );
      return;
    }
    let report = null;
    try {
      report = await response.json();
    } catch (error) {
      report = null;
    }
    if (!response.ok || !report) {
      const said = report && report.error ? ` ${sentence(report.error)}` : "";
      box.append(element("p", { className: "message error", text: `The savings report failed (HTTP ${response.status}).${said}` }));
      return;
    }
    if (Array.isArray(report.totals)) renderSavings(box, report);
    else renderReport(box, report);
    showChart(box);
  }

  function money(value, currency) {
    if (typeof value !== "number") return "";
    try {
      return value.toLocaleString([], { style: "currency", currency: currency || "USD" });
    } catch (error) {
      return `${value.toFixed(2)} ${currency || ""}`.trim();
    }
  }

  // Both readings of Azure's hourly fee: prorated per minute, or each started hour.
  function billed(pair, currency) {
    if (!pair || typeof pair !== "object") return "";
    return `${money(pair.per_minute, currency)} per minute, ${money(pair.per_started_hour, currency)} per started hour`;
  }

  function percent(saving) {
    if (!saving) return "";
    const words = [];
    if (typeof saving.percent_per_minute === "number") words.push(`${saving.percent_per_minute.toFixed(0)}%`);
    if (typeof saving.percent_per_started_hour === "number") words.push(`${saving.percent_per_started_hour.toFixed(0)}%`);
    return words.length ? ` (${words.join(" / ")})` : "";
  }

  // The report of GET /api/report (`hosting report --json`): this week's totals per model.
  function renderSavings(box, report) {
    const currency = report.currency;
    box.append(element("p", { className: "meta", text: `From ${dateTime(report.since)} to ${dateTime(report.until)}. Hosting is billed per hour; whether Azure prorates it per minute or bills each started hour is not documented, so both are shown.` }));
    if (!report.totals.length) {
      box.append(element("p", { text: "No deployment was hosted in this period." }));
    } else {
      const headings = ["Model", "Hosted", "On demand", "Always on", "Per document", "Saved against always on", "Documents"];
      const rows = report.totals.map((row) =>
        element(
          "tr",
          {},
          element("th", { scope: "row", text: row.model }),
          element("td", { text: row.on_demand ? `${row.on_demand.hosted_hours.toFixed(2)} h in ${row.on_demand.deploy_cycles} start${row.on_demand.deploy_cycles === 1 ? "" : "s"}` : "" }),
          element("td", { text: row.on_demand ? billed(row.on_demand.total_cost, currency) : "" }),
          element("td", { text: row.always_on ? billed(row.always_on.total_cost, currency) : "" }),
          element("td", { text: row.per_document ? billed(row.per_document.total_cost, currency) : "" }),
          element("td", { text: row.saving_vs_always_on ? `${billed(row.saving_vs_always_on.amount, currency)}${percent(row.saving_vs_always_on)}` : "" }),
          element("td", { text: String(row.documents ?? "") }),
        ),
      );
      box.append(
        element(
          "div",
          { className: "table-wrap" },
          element(
            "table",
            { id: "savings-table" },
            element("caption", { className: "visually-hidden", text: "This week's hosting cost per model, by strategy" }),
            element("thead", {}, element("tr", {}, ...headings.map((h) => element("th", { scope: "col", text: h })))),
            element("tbody", {}, ...rows),
          ),
        ),
      );
    }
    const caveats = [...(report.gaps || []), ...(report.notes || [])];
    if (report.complete === false || caveats.length) {
      box.append(element("div", { className: "message warn" }, element("p", { className: "headline", text: report.complete === false ? "The hosting log may have gaps" : "Notes" }), ...caveats.map((c) => element("p", { text: sentence(String(c)) }))));
    }
  }

  // A report of another shape: its figures and tables as they come.
  function renderReport(box, report) {
    const facts = element("dl", { className: "facts" });
    const tables = [];
    for (const [key, value] of Object.entries(report)) {
      if (Array.isArray(value) && value.length && typeof value[0] === "object") tables.push([key, value]);
      else if (value === null || typeof value !== "object") facts.append(element("dt", { text: key.replaceAll("_", " ") }), element("dd", { text: String(value) }));
      else facts.append(element("dt", { text: key.replaceAll("_", " ") }), element("dd", { text: JSON.stringify(value) }));
    }
    box.append(facts);
    for (const [key, rows] of tables) {
      const columns = Object.keys(rows[0]).filter((c) => rows.every((r) => r[c] === null || typeof r[c] !== "object"));
      box.append(
        element("h3", { text: key.replaceAll("_", " ") }),
        element(
          "div",
          { className: "table-wrap" },
          element(
            "table",
            {},
            element("thead", {}, element("tr", {}, ...columns.map((c) => element("th", { scope: "col", text: c.replaceAll("_", " ") })))),
            element("tbody", {}, ...rows.map((row) => element("tr", {}, ...columns.map((c) => element("td", { text: row[c] === null ? "" : String(row[c]) }))))),
          ),
        ),
      );
    }
  }

  // The report's chart (format=svg), fetched with the key: an <img src> could not send it.
  async function showChart(box) {
    try {
      const response = await api(`report?${savingsQuery()}&format=svg`);
      const type = response.headers.get("content-type") || "";
      if (!response.ok || !type.startsWith("image/")) return;
      const image = element("img", { alt: "Hosted hours per day against always-on, and the cost of each strategy." });
      image.src = URL.createObjectURL(await response.blob());
      box.append(element("figure", { className: "chart" }, image));
    } catch (error) {
      // The figures above stand without the chart.
    }
  }

  $("refresh").addEventListener("click", () => {
    loadOps();
    loadSavings();
  });
  loadOps().then(loadSavings);
})();
