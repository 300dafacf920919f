// The submit page: the form, one job's live state, its result, and this browser's recent jobs.
"use strict";

(() => {
  const { apiJson, PortalError, duration, clockTime, dateTime, element, announce, sentence } = Portal;

  const RECENT_STORAGE = "portal.recentJobs";
  const RECENT_LIMIT = 20;
  const POLL_MS = 1500;
  const FINAL = new Set(["succeeded", "failed"]);

  // What a failed job's error code means, as a headline; the reason (from the app) follows it.
  const ERROR_HEADLINES = {
    empty: "The document is empty",
    not_text: "The file is not plain text",
    unsupported_type: "This kind of file is not accepted",
    too_large: "The document is too large",
    too_many_chunks: "The document is too long to process",
    input_missing: "The document was removed before it was processed",
    insufficient_quota: "Azure has no quota left for this model",
    deployment_limit: "The Azure OpenAI account has no room for another deployment",
    waiting_for_room: "The Azure OpenAI account had no room for the deployment in time",
    not_authorized: "The app is not allowed to use the model",
    create_refused: "Azure refused to create the model's deployment",
    provisioning_failed: "The model's deployment could not be started",
    provisioning_timeout: "The model's deployment took too long to start",
    readiness_timeout: "The model's deployment did not start answering in time",
    model_refused: "The model refused to answer",
    invalid_model_answer: "The model's answer was not in the expected form",
    answer_truncated: "The model's answer was cut off",
    profile_config: "The profile is misconfigured",
    inference_unavailable: "The model could not be reached",
    resume_failed: "The job could not be resumed",
    store_failed: "The document could not be stored",
  };

  const $ = (id) => document.getElementById(id);
  const form = $("submit-form");
  const profileSelect = $("profile");
  const fileInput = $("file");
  const formError = $("form-error");
  const submitButton = $("submit-button");

  let profiles = [];
  let limits = { extensions: [".txt", ".md", ".json", ".csv"], max_submit_bytes: null };
  let watching = null; // { id, timer, tick, view, fetchedAt }

  // --- the form -------------------------------------------------------------------------

  function sourceKind() {
    return form.querySelector('input[name="source"]:checked').value;
  }

  function showSource() {
    const kind = sourceKind();
    $("file-field").hidden = kind !== "file";
    $("text-field").hidden = kind !== "text";
  }

  function showFormError(message, headline = "The document was not submitted") {
    formError.textContent = "";
    formError.append(element("p", { className: "headline", text: headline }), element("p", { text: message }));
    formError.hidden = false;
    formError.focus();
  }

  function clearFormError() {
    formError.hidden = true;
    formError.textContent = "";
  }

  async function loadProfiles() {
    try {
      const listed = await apiJson("profiles");
      profiles = listed.profiles || [];
      limits = listed.limits || limits;
      profileSelect.textContent = "";
      if (!listed.default_profile) {
        profileSelect.append(element("option", { value: "", text: "Choose a profile" }));
      }
      for (const profile of profiles) {
        const label = `${profile.name} (model ${profile.model})`;
        profileSelect.append(element("option", { value: profile.name, text: label }));
      }
      if (listed.default_profile) profileSelect.value = listed.default_profile;
      profileSelect.disabled = profiles.length === 0;
      fileInput.setAttribute("accept", limits.extensions.join(","));
      const size = limits.max_document_bytes ? `, up to ${bytes(limits.max_document_bytes)}` : "";
      $("file-hint").textContent = `Plain text files: ${limits.extensions.join(", ")}${size}.`;
      describeProfile();
    } catch (error) {
      profileSelect.textContent = "";
      profileSelect.append(element("option", { value: "", text: "Profiles unavailable" }));
      showFormError(error.message, "The profiles could not be loaded");
    }
  }

  function describeProfile() {
    const profile = profiles.find((p) => p.name === profileSelect.value);
    const hint = $("profile-hint");
    if (!profile) {
      hint.textContent = profiles.length ? "Choose the kind of processing for this document." : "";
      return;
    }
    const asked = profile.questions.length
      ? ` It asks: ${profile.questions.map((q) => `“${q}”`).join(" ")}`
      : "";
    hint.textContent = `Runs on model ${profile.model} (deployment ${profile.deployment}).${asked}`;
  }

  function bytes(size) {
    if (size < 1024) return `${size} bytes`;
    if (size < 1024 * 1024) return `${(size / 1024).toFixed(1)} KiB`;
    return `${(size / (1024 * 1024)).toFixed(1)} MiB`;
  }

  function questions() {
    return $("questions")
      .value.split("\n")
      .map((q) => q.trim())
      .filter(Boolean);
  }

  async function submit(event) {
    event.preventDefault();
    clearFormError();
    const profile = profileSelect.value;
    if (profiles.length && !profile) {
      showFormError("Choose a profile: it says how the document is processed.");
      profileSelect.focus();
      return;
    }
    let request;
    let name;
    if (sourceKind() === "file") {
      const file = fileInput.files && fileInput.files[0];
      if (!file) {
        showFormError("Choose a file to submit, or switch to “Paste text”.");
        return;
      }
      if (limits.max_submit_bytes && file.size > limits.max_submit_bytes) {
        showFormError(
          `“${file.name}” is ${bytes(file.size)}; the app accepts at most ${bytes(limits.max_submit_bytes)} per submission. Split it into smaller documents.`,
        );
        return;
      }
      const body = new FormData();
      body.append("file", file, file.name);
      if (profile) body.append("profile", profile);
      body.append("questions", JSON.stringify(questions()));
      request = { method: "POST", body };
      name = file.name;
    } else {
      const text = $("text").value;
      if (!text.trim()) {
        showFormError("Paste the document's text first.");
        return;
      }
      name = $("filename").value.trim() || "pasted.txt";
      request = {
        method: "POST",
        headers: { "content-type": "application/json" },
        body: JSON.stringify({ text, filename: name, profile: profile || undefined, questions: questions() }),
      };
    }
    submitButton.disabled = true;
    submitButton.textContent = "Submitting…";
    try {
      const accepted = await apiJson("jobs", request);
      remember({ id: accepted.job_id, name, profile: profile || "(default)", submitted: new Date().toISOString(), status: accepted.status });
      announce(`Submitted ${name}. Job ${accepted.job_id} is queued.`);
      watch(accepted.job_id, name, true);
    } catch (error) {
      showFormError(error instanceof PortalError ? error.message : `Submitting failed: ${error}`);
    } finally {
      submitButton.disabled = false;
      submitButton.textContent = "Submit";
    }
  }

  // --- one job --------------------------------------------------------------------------

  function stopWatching() {
    if (watching) {
      window.clearTimeout(watching.timer);
      window.clearInterval(watching.tick);
    }
    watching = null;
  }

  function watch(jobId, name, focus) {
    stopWatching();
    const current = { id: jobId, name, timer: null, tick: null, view: null, fetchedAt: 0, lastStatus: null };
    watching = current;
    const panel = $("job");
    panel.hidden = false;
    $("job-id").textContent = jobId;
    $("job-name").textContent = name ? `“${name}”` : "";
    $("job-result").hidden = true;
    $("job-error").hidden = true;
    $("job-wait").hidden = true;
    $("raw-result").hidden = true;
    $("toggle-raw").setAttribute("aria-expanded", "false");
    $("toggle-raw").textContent = "Show the raw JSON";
    $("job-status").textContent = "Reading the job…";
    renderSteps(null);
    if (focus) $("job-heading").focus();
    current.tick = window.setInterval(() => renderWait(current), 1000);
    poll(current);
  }

  async function poll(current) {
    if (watching !== current) return;
    let view;
    try {
      view = await apiJson(`jobs/${encodeURIComponent(current.id)}`);
    } catch (error) {
      if (watching !== current) return;
      $("job-status").textContent = `The job's state could not be read: ${error.message} Trying again…`;
      current.timer = window.setTimeout(() => poll(current), POLL_MS * 2);
      return;
    }
    if (watching !== current) return;
    current.view = view;
    current.fetchedAt = Date.now();
    render(current);
    update(current.id, view);
    if (!FINAL.has(view.status)) current.timer = window.setTimeout(() => poll(current), POLL_MS);
    else window.clearInterval(current.tick);
  }

  function waitedForDeployment(view) {
    return (view.history || []).some((change) => change.status === "waiting_for_deployment");
  }

  function renderSteps(view) {
    const order = ["queued", "waiting_for_deployment", "running", "final"];
    const status = view ? view.status : null;
    const at = status === null ? -1 : FINAL.has(status) ? 3 : order.indexOf(status);
    const waited = view ? waitedForDeployment(view) : false;
    for (const item of $("steps").querySelectorAll("li")) {
      const index = order.indexOf(item.dataset.step);
      item.classList.remove("done", "current", "skipped", "failed");
      item.removeAttribute("aria-current");
      const skipped = item.dataset.step === "waiting_for_deployment" && at > index && !waited;
      if (skipped) item.classList.add("skipped");
      else if (index < at || (index === 3 && status === "succeeded")) item.classList.add("done");
      else if (index === at) {
        item.classList.add(status === "failed" ? "failed" : "current");
        item.setAttribute("aria-current", "step");
      }
      const note = item.querySelector(".note");
      if (note) note.remove();
      if (skipped) item.append(element("span", { className: "note", text: " (not needed: the deployment was serving)" }));
    }
    $("final-label").textContent = status === "failed" ? "Failed" : "Done";
  }

  function render(current) {
    const view = current.view;
    renderSteps(view);
    const status = $("job-status");
    const changed = current.lastStatus !== view.status;
    current.lastStatus = view.status;
    if (view.status === "queued") {
      status.textContent = view.waiting_reason && view.attempts > 0
        ? `Queued for another try: ${sentence(view.waiting_reason)}`
        : "Queued: the document is stored; the app picks it up within seconds.";
    } else if (view.status === "waiting_for_deployment") {
      status.textContent = "Waiting for the model's deployment to start.";
    } else if (view.status === "running") {
      status.textContent = "Running: the model is reading the document.";
    } else if (view.status === "succeeded") {
      status.textContent = "Done: the result is below.";
    } else if (view.status === "failed") {
      status.textContent = "Failed: see why below.";
    }
    renderWait(current);
    if (view.status === "succeeded") renderResult(current, changed);
    if (view.status === "failed") renderError(view, changed);
  }

  // The wait for the deployment, counted from the server's clock and ticking every second.
  function renderWait(current) {
    const view = current.view;
    const box = $("job-wait");
    if (!view || view.status !== "waiting_for_deployment") {
      box.hidden = true;
      return;
    }
    box.hidden = false;
    const serverNow = new Date(view.checked_at).getTime() + (Date.now() - current.fetchedAt);
    $("wait-reason").textContent = view.waiting_reason ? `Why: ${sentence(view.waiting_reason)}` : "";
    const since = view.waiting_since ? new Date(view.waiting_since).getTime() : null;
    $("wait-elapsed").textContent = since ? duration((serverNow - since) / 1000) : "unknown";
    $("wait-expected").textContent = expectation(view.deployment, serverNow);
  }

  function expectation(deployment, serverNow) {
    if (!deployment) return "";
    const parts = [];
    if (deployment.basis === "observed") {
      parts.push(`Starting this deployment took ${duration(deployment.expected_seconds)} the last time.`);
    } else {
      parts.push(
        `No start of this deployment has been observed yet; the app expects about ${duration(deployment.expected_seconds)}.`,
      );
    }
    if (deployment.waiting_for) {
      parts.push(`It cannot be created yet: ${sentence(deployment.waiting_for)}`);
    } else if (deployment.ledger_state === "ready") {
      parts.push("The deployment now serves; the job goes on within moments.");
    } else if (deployment.ledger_state === "deleting") {
      parts.push("Its previous deployment is being deleted; it is created again as soon as Azure has finished.");
    } else if (deployment.expected_ready_at) {
      const ready = new Date(deployment.expected_ready_at).getTime();
      if (ready >= serverNow) {
        parts.push(`Expected to be ready at about ${clockTime(deployment.expected_ready_at)} (in ${duration((ready - serverNow) / 1000)}).`);
      } else {
        parts.push(
          `It is taking ${duration((serverNow - ready) / 1000)} longer than that. Azure decides how long a start takes; the job goes on by itself as soon as the deployment serves.`,
        );
      }
    } else {
      parts.push("The request to create it goes to Azure within seconds.");
    }
    if (deployment.last_error && deployment.ledger_state === "failed") {
      parts.push(`The last attempt failed: ${sentence(deployment.last_error)} It is tried again.`);
    }
    return parts.join(" ");
  }

  function renderError(view, changed) {
    const box = $("job-error");
    const code = view.error ? view.error.code : "";
    $("job-error-headline").textContent = ERROR_HEADLINES[code] || "The job failed";
    const reason = view.error ? sentence(view.error.reason) : "The app recorded no reason.";
    $("job-error-reason").textContent = reason;
    box.hidden = false;
    if (changed) box.focus();
  }

  function renderResult(current, changed) {
    const view = current.view;
    const result = view.result;
    const box = $("job-result");
    const body = $("result-body");
    body.textContent = "";
    box.hidden = false;
    if (!result) {
      body.append(element("p", { text: "The job succeeded but its result could not be read (it may have been removed from storage)." }));
      return;
    }
    renderAnswer(body, result.answer);
    $("raw-result").textContent = JSON.stringify(result, null, 2);
    const facts = $("provenance");
    facts.textContent = "";
    const provenance = result.provenance || {};
    const usage = provenance.usage || {};
    const asked = view.questions && view.questions.length ? view.questions.join(" · ") : null;
    const rows = [
      ["Profile", view.profile || "default"],
      ["Your questions", asked],
      ["Model", provenance.hosted_model],
      ["Deployment", provenance.deployment],
      ["Waited for the deployment", provenance.wait_for_deployment_seconds !== undefined ? duration(provenance.wait_for_deployment_seconds) : null],
      ["Model time", provenance.inference_seconds !== undefined ? duration(provenance.inference_seconds) : null],
      ["Requests", provenance.requests],
      ["Tokens", usage.total_tokens !== undefined ? `${usage.total_tokens} (${usage.prompt_tokens} in, ${usage.completion_tokens} out)` : null],
      ["Finished", provenance.completed_at ? dateTime(provenance.completed_at) : null],
    ];
    for (const [label, value] of rows) {
      if (value === null || value === undefined || value === "") continue;
      facts.append(element("dt", { text: label }), element("dd", { text: String(value) }));
    }
    if (changed) {
      announce("The result is ready.");
      $("result-heading").focus();
    }
  }

  function renderAnswer(container, answer) {
    if (typeof answer === "string") {
      container.append(element("p", { className: "answer-text", text: answer }));
      return;
    }
    if (answer && Array.isArray(answer.answers)) {
      const list = element("dl", { className: "answers" });
      for (const item of answer.answers) {
        list.append(element("dt", { text: item.question || "Answer" }));
        list.append(element("dd", { text: typeof item.answer === "string" ? item.answer : JSON.stringify(item.answer) }));
      }
      container.append(list);
      const extra = Object.keys(answer).filter((key) => key !== "answers");
      if (extra.length) container.append(fieldList(answer, extra));
      return;
    }
    if (answer && typeof answer === "object") {
      container.append(fieldList(answer, Object.keys(answer)));
      return;
    }
    container.append(element("p", { text: JSON.stringify(answer) }));
  }

  function fieldList(object, keys) {
    const list = element("dl", { className: "facts" });
    for (const key of keys) {
      const value = object[key];
      const shown = typeof value === "string" ? value : JSON.stringify(value, null, 1);
      list.append(element("dt", { text: key.replaceAll("_", " ") }), element("dd", { text: shown }));
    }
    return list;
  }

  function download() {
    if (!watching || !watching.view || !watching.view.result) return;
    const text = JSON.stringify(watching.view.result, null, 2);
    const blob = new Blob([text], { type: "application/json" });
    const url = URL.createObjectURL(blob);
    const link = element("a", { href: url, download: `${(watching.name || watching.id).replace(/[^A-Za-z0-9._-]+/g, "_")}.result.json` });
    document.body.append(link);
    link.click();
    link.remove();
    window.setTimeout(() => URL.revokeObjectURL(url), 10000);
  }

  function toggleRaw() {
    const raw = $("raw-result");
    const button = $("toggle-raw");
    raw.hidden = !raw.hidden;
    button.setAttribute("aria-expanded", String(!raw.hidden));
    button.textContent = raw.hidden ? "Show the raw JSON" : "Hide the raw JSON";
  }

  // --- recent jobs (this browser's) -----------------------------------------------------

  function recent() {
    try {
      const stored = JSON.parse(window.localStorage.getItem(RECENT_STORAGE) || "[]");
      return Array.isArray(stored) ? stored : [];
    } catch (error) {
      return [];
    }
  }

  function saveRecent(jobs) {
    try {
      window.localStorage.setItem(RECENT_STORAGE, JSON.stringify(jobs.slice(0, RECENT_LIMIT)));
    } catch (error) {
      // Storage full or disabled: the list lives as long as the page.
    }
    renderRecent(jobs);
  }

  function remember(job) {
    saveRecent([job, ...recent().filter((j) => j.id !== job.id)]);
  }

  function update(jobId, view) {
    const jobs = recent();
    const known = jobs.find((j) => j.id === jobId);
    if (known && known.status !== view.status) {
      known.status = view.status;
      saveRecent(jobs);
    }
  }

  const STATUS_WORDS = {
    queued: "Queued",
    waiting_for_deployment: "Waiting for the deployment",
    running: "Running",
    succeeded: "Done",
    failed: "Failed",
  };

  function renderRecent(jobs = recent()) {
    const table = $("recent");
    const rows = table.querySelector("tbody");
    rows.textContent = "";
    table.hidden = jobs.length === 0;
    $("recent-empty").hidden = jobs.length > 0;
    $("clear-recent").hidden = jobs.length === 0;
    for (const job of jobs) {
      const open = element("button", { type: "button", className: "small", text: "Open", "aria-label": `Open job ${job.name}` });
      open.addEventListener("click", () => watch(job.id, job.name, true));
      rows.append(
        element(
          "tr",
          {},
          element("td", { text: job.name }),
          element("td", { text: job.profile }),
          element("td", {}, element("time", { datetime: job.submitted, text: dateTime(job.submitted) })),
          element("td", {}, element("span", { className: `badge ${job.status}`, text: STATUS_WORDS[job.status] || job.status })),
          element("td", {}, open),
        ),
      );
    }
  }

  async function refreshRecent() {
    const jobs = recent();
    let changed = false;
    for (const job of jobs.filter((j) => !FINAL.has(j.status))) {
      try {
        const view = await apiJson(`jobs/${encodeURIComponent(job.id)}`);
        if (view.status !== job.status) {
          job.status = view.status;
          changed = true;
        }
      } catch (error) {
        if (error.status === 404) {
          job.status = "gone";
          changed = true;
        }
      }
    }
    if (changed) saveRecent(jobs);
  }

  // --- wiring ---------------------------------------------------------------------------

  for (const radio of form.querySelectorAll('input[name="source"]')) radio.addEventListener("change", showSource);
  profileSelect.addEventListener("change", describeProfile);
  form.addEventListener("submit", submit);
  $("download-result").addEventListener("click", download);
  $("toggle-raw").addEventListener("click", toggleRaw);
  $("clear-recent").addEventListener("click", () => {
    saveRecent([]);
    announce("The list of recent jobs is cleared.");
  });
  showSource();
  renderRecent();
  loadProfiles().then(refreshRecent);
})();
