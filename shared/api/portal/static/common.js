// Shared by the portal's pages: the function key, calls to the app's API, and how times and
// durations are written. Plain browser JavaScript, no build step, nothing from the internet.
//
// The key is asked for once per tab, kept in sessionStorage (gone when the tab closes) and
// sent only in the x-functions-key header: never in a URL, where proxies and logs keep it.
"use strict";

const Portal = (() => {
  const KEY_STORAGE = "portal.functionKey";
  // The pages live at <prefix>/portal/; the API routes at <prefix>/<route>.
  const API_BASE = new URL("../", window.location.href);
  // A call the app has not answered by then is given up (and, for a page that polls, tried
  // again): a connection that hangs must not freeze a job's status for good. Uploads get longer.
  const READ_TIMEOUT_MS = 30000;
  const WRITE_TIMEOUT_MS = 120000;

  function storedKey() {
    try {
      return window.sessionStorage.getItem(KEY_STORAGE) || "";
    } catch (error) {
      return ""; // storage disabled: the key is asked for on every call that needs it
    }
  }

  function storeKey(key) {
    try {
      window.sessionStorage.setItem(KEY_STORAGE, key);
    } catch (error) {
      // Storage is disabled: keep it for this page only.
    }
    memoryKey = key;
  }

  function forgetKey() {
    try {
      window.sessionStorage.removeItem(KEY_STORAGE);
    } catch (error) {
      // nothing to forget
    }
    memoryKey = "";
    keyNeeded = null;
    showKeyStatus();
  }

  let memoryKey = storedKey();
  // null: not known yet; true: the API refused a call without a key; false: it accepted one.
  let keyNeeded = null;
  let pendingKey = null;

  function currentKey() {
    return storedKey() || memoryKey;
  }

  function showKeyStatus() {
    const status = document.getElementById("key-status");
    if (!status) return;
    status.textContent = "";
    if (currentKey()) {
      const text = document.createElement("span");
      text.textContent = "Function key kept for this tab. ";
      const forget = document.createElement("button");
      forget.type = "button";
      forget.className = "link";
      forget.textContent = "Forget key";
      forget.addEventListener("click", () => {
        forgetKey();
        announce("The function key is forgotten; you will be asked for it again.");
      });
      status.append(text, forget);
    } else if (keyNeeded === false) {
      status.textContent = "No key needed: this app accepts calls without one.";
    }
  }

  // Ask for the key in the page's dialog; resolves with it, or rejects when cancelled.
  function askForKey(message) {
    if (pendingKey) return pendingKey;
    const dialog = document.getElementById("key-dialog");
    const form = document.getElementById("key-form");
    const input = document.getElementById("key-input");
    const note = document.getElementById("key-message");
    const cancel = document.getElementById("key-cancel");
    const opener = document.activeElement;
    note.textContent = message;
    input.value = "";
    pendingKey = new Promise((resolve, reject) => {
      function finish(key) {
        form.removeEventListener("submit", onSubmit);
        cancel.removeEventListener("click", onCancel);
        dialog.removeEventListener("cancel", onCancel);
        if (dialog.open) dialog.close();
        pendingKey = null;
        if (opener && typeof opener.focus === "function") opener.focus();
        if (key) resolve(key);
        else reject(new PortalError("no-key", "No function key was given, so the API cannot be called. Reload the page to enter one."));
      }
      function onSubmit(event) {
        event.preventDefault();
        const key = input.value.trim();
        if (!key) {
          input.setAttribute("aria-invalid", "true");
          note.textContent = "Enter the function key (the portal's administrator can give it to you).";
          input.focus();
          return;
        }
        input.removeAttribute("aria-invalid");
        storeKey(key);
        finish(key);
      }
      function onCancel(event) {
        event.preventDefault();
        finish("");
      }
      form.addEventListener("submit", onSubmit);
      cancel.addEventListener("click", onCancel);
      dialog.addEventListener("cancel", onCancel);
    });
    dialog.showModal();
    input.focus();
    return pendingKey;
  }

  class PortalError extends Error {
    constructor(kind, message, status) {
      super(message);
      this.kind = kind;
      this.status = status;
    }
  }

  // Call an API route (relative to the API's base); the key goes in the header. A 401 asks
  // for the key (again) and repeats the call once per key entered.
  async function api(route, options = {}) {
    for (let attempt = 0; ; attempt += 1) {
      const headers = new Headers(options.headers || {});
      const key = currentKey();
      if (key) headers.set("x-functions-key", key);
      const method = (options.method || "GET").toUpperCase();
      const limit = method === "GET" ? READ_TIMEOUT_MS : WRITE_TIMEOUT_MS;
      let response;
      try {
        response = await fetch(new URL(route, API_BASE), {
          ...options,
          headers,
          cache: "no-store",
          credentials: "same-origin",
          referrerPolicy: "no-referrer",
          signal: options.signal || AbortSignal.timeout(limit),
        });
      } catch (error) {
        if (error && error.name === "TimeoutError") {
          throw new PortalError(
            "network",
            `The app did not answer within ${limit / 1000} seconds. It may be busy; try again.`,
          );
        }
        throw new PortalError(
          "network",
          "The app could not be reached. Check your connection, then try again.",
        );
      }
      if (response.status !== 401) {
        if (keyNeeded === null) keyNeeded = Boolean(key);
        showKeyStatus();
        return response;
      }
      const message = key
        ? "The function key was refused. Enter the current key for this app."
        : "This app needs its function key to accept documents and show jobs.";
      if (key) forgetKey();
      keyNeeded = true;
      if (attempt >= 5) throw new PortalError("no-key", message, 401);
      await askForKey(message);
    }
  }

  // The API's JSON, or a PortalError carrying its "error" message in words.
  async function apiJson(route, options = {}) {
    const response = await api(route, options);
    let body = null;
    try {
      body = await response.json();
    } catch (error) {
      body = null;
    }
    if (!response.ok) {
      const said = body && typeof body.error === "string" ? body.error : "";
      throw new PortalError("http", describeHttpError(response.status, said), response.status);
    }
    return body;
  }

  function describeHttpError(status, said) {
    if (status === 400) return said ? sentence(said) : "The request was not accepted.";
    if (status === 404) return said ? sentence(said) : "Not found.";
    if (status === 413) return said ? sentence(said) : "The document is too large.";
    if (status === 503) return (said ? sentence(said) + " " : "") + "The app is busy or storage is unavailable; try again in a minute.";
    if (status >= 500) return `The app failed to answer (HTTP ${status}). Try again in a minute; if it keeps failing, tell the app's operator.`;
    return said ? sentence(said) : `The app answered HTTP ${status}.`;
  }

  function sentence(text) {
    const trimmed = text.trim();
    if (!trimmed) return trimmed;
    const first = trimmed.charAt(0).toUpperCase() + trimmed.slice(1);
    return /[.!?)]$/.test(first) ? first : `${first}.`;
  }

  // --- time and duration words ----------------------------------------------------------

  // Whole seconds from 10 s on; tenths below, where a rounded "0 s" or "1 s" would mislead.
  function duration(seconds) {
    if (seconds === null || seconds === undefined || Number.isNaN(seconds)) return "unknown";
    if (seconds <= 0) return "0 s";
    if (seconds < 9.95) return `${seconds.toFixed(1)} s`;
    const total = Math.round(seconds);
    if (total < 60) return `${total} s`;
    const minutes = Math.floor(total / 60);
    const rest = total % 60;
    if (minutes < 60) return rest ? `${minutes} min ${rest} s` : `${minutes} min`;
    const hours = Math.floor(minutes / 60);
    const mins = minutes % 60;
    return mins ? `${hours} h ${mins} min` : `${hours} h`;
  }

  function clockTime(iso) {
    if (!iso) return "";
    const moment = new Date(iso);
    if (Number.isNaN(moment.getTime())) return iso;
    return moment.toLocaleTimeString([], { hour: "2-digit", minute: "2-digit", second: "2-digit" });
  }

  function dateTime(iso) {
    if (!iso) return "";
    const moment = new Date(iso);
    if (Number.isNaN(moment.getTime())) return iso;
    return moment.toLocaleString([], {
      weekday: "short",
      month: "short",
      day: "numeric",
      hour: "2-digit",
      minute: "2-digit",
    });
  }

  // "in 3 min" / "5 s ago", against the server's clock where the page has it.
  function relative(iso, nowMs) {
    const moment = new Date(iso).getTime();
    if (Number.isNaN(moment)) return "";
    const delta = (moment - nowMs) / 1000;
    return delta >= 0 ? `in ${duration(delta)}` : `${duration(-delta)} ago`;
  }

  // Announce a short message to screen readers (and show it) in the page's live region.
  function announce(message) {
    const region = document.getElementById("announcer");
    if (!region) return;
    region.textContent = "";
    window.setTimeout(() => {
      region.textContent = message;
    }, 50);
  }

  function element(tag, attributes = {}, ...children) {
    const node = document.createElement(tag);
    for (const [name, value] of Object.entries(attributes)) {
      if (value === null || value === undefined || value === false) continue;
      if (name === "text") node.textContent = value;
      else if (name === "className") node.className = value;
      else node.setAttribute(name, value === true ? "" : value);
    }
    for (const child of children) {
      if (child === null || child === undefined) continue;
      node.append(child instanceof Node ? child : document.createTextNode(String(child)));
    }
    return node;
  }

  document.addEventListener("DOMContentLoaded", showKeyStatus);

  return {
    api,
    apiJson,
    askForKey,
    forgetKey,
    PortalError,
    duration,
    clockTime,
    dateTime,
    relative,
    announce,
    element,
    sentence,
  };
})();
