// koppel console: live progress of the runs on a tenant's status page. It polls the runs in
// progress every 2 s and updates their bars; when a run ends or a new one starts it reloads the
// page, which then shows the finished run with its counts.
"use strict";
(function () {
  const section = document.getElementById("running");
  if (!section) {
    return;
  }
  const url = section.dataset.progress;
  const shown = new Set(Array.from(section.querySelectorAll("[data-run-id]"), (el) => el.dataset.runId));
  let failures = 0;

  function set(el, field, value) {
    const f = el.querySelector('[data-field="' + field + '"]');
    if (f) {
      f.textContent = value;
    }
  }

  async function poll() {
    let answer;
    try {
      const resp = await fetch(url, { credentials: "same-origin", headers: { Accept: "application/json" } });
      if (resp.status === 401) {
        window.location.assign("/console/signin");
        return;
      }
      if (!resp.ok) {
        throw new Error("HTTP " + resp.status);
      }
      answer = await resp.json();
      failures = 0;
    } catch (e) {
      failures++;
      window.setTimeout(poll, Math.min(30000, 2000 * 2 ** failures));
      return;
    }
    const running = new Set(answer.runs.map((r) => r.id));
    const changed = answer.runs.some((r) => !shown.has(r.id)) || Array.from(shown).some((id) => !running.has(id));
    for (const r of answer.runs) {
      const el = section.querySelector('[data-run-id="' + CSS.escape(r.id) + '"]');
      if (!el) {
        continue;
      }
      const bar = el.querySelector("progress");
      bar.value = r.percent;
      bar.textContent = r.percent + "%";
      set(el, "percent", r.percent);
      set(el, "done", r.done);
      set(el, "total", r.total > 0 ? r.total : "?");
      set(el, "rate", r.rate.toFixed(1));
      set(el, "left", r.left || "—");
    }
    if (changed) {
      // Let the bar show where the run got to before the page shows it finished.
      window.setTimeout(() => window.location.reload(), 500);
      return;
    }
    window.setTimeout(poll, 2000);
  }
  window.setTimeout(poll, 2000);
})();
