#!/usr/bin/env node
// Starts the pinned Azurite with its blob and queue garbage collection at an interval of our
// choosing (AZURITE_GC_INTERVAL_MS), then runs Azurite's own command line unchanged.
//
// Why: Azurite's blob GC pass walks every blob and block of its in-memory store on one
// event loop, every ten minutes. After a test session has written tens of thousands of blobs
// and appended blocks, a pass stopped Azurite answering anything for over a minute, and every
// request the app made in that minute hung (a portal test saw its page time out). Test
// sessions are short-lived and in memory: they set a long interval. Azurite exposes no
// option for it; its servers read this constant when they are built, so it is set first.
"use strict";

const interval = Number(process.env.AZURITE_GC_INTERVAL_MS || "");
if (Number.isFinite(interval) && interval > 0) {
  for (const service of ["blob", "queue"]) {
    require(`azurite/dist/src/${service}/utils/constants`).DEFAULT_GC_INTERVAL_MS = interval;
  }
}
require("azurite/dist/src/azurite");
