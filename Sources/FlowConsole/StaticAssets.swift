/// The console's one style sheet and one script, served from the console itself: nothing
/// comes from a CDN, so it works air-gapped, and the content security policy allows only
/// the console's own origin.
enum StaticAssets {
    static let stylesheet = """
        :root { --ink: #1b1f24; --muted: #4a5360; --line: #c9d1d9; --paper: #ffffff; --accent: #0b5cad; --danger: #a4161a; --ok: #1a6b33; --warn: #8a5300; }
        * { box-sizing: border-box; }
        body { margin: 0; font: 15px/1.5 system-ui, -apple-system, "Segoe UI", sans-serif; color: var(--ink); background: var(--paper); }
        .skip { position: absolute; left: -999px; } .skip:focus { left: 8px; top: 8px; background: var(--paper); padding: 4px 8px; z-index: 2; }
        header { display: flex; gap: 24px; align-items: center; padding: 8px 24px; border-bottom: 1px solid var(--line); background: #f4f6f8; }
        .brand { font-weight: 700; margin: 0; }
        nav ul { list-style: none; display: flex; flex-wrap: wrap; gap: 16px; margin: 0; padding: 0; }
        a { color: var(--accent); } a[aria-current="page"] { font-weight: 700; text-decoration: none; border-bottom: 2px solid var(--accent); }
        a:focus-visible, button:focus-visible, input:focus-visible, select:focus-visible, summary:focus-visible { outline: 3px solid #f0a000; outline-offset: 2px; }
        main { padding: 16px 24px 48px; max-width: 1280px; }
        h1 { font-size: 1.5rem; margin: 8px 0 16px; } h2 { font-size: 1.2rem; margin-top: 32px; }
        table.list { border-collapse: collapse; width: 100%; } table.list th, table.list td { text-align: left; padding: 6px 8px; border-bottom: 1px solid var(--line); vertical-align: top; }
        table.list thead th { background: #f4f6f8; } td.number { text-align: right; font-variant-numeric: tabular-nums; }
        .filters { display: flex; flex-wrap: wrap; gap: 8px; align-items: center; margin-bottom: 12px; }
        input, select, button { font: inherit; padding: 4px 8px; border: 1px solid #6b7480; border-radius: 4px; background: var(--paper); color: var(--ink); }
        button { background: var(--accent); color: #fff; border-color: var(--accent); cursor: pointer; } button.danger { background: var(--danger); border-color: var(--danger); }
        .actions { display: flex; gap: 12px; margin: 12px 0; } .actions form { margin: 0; }
        .badge { display: inline-block; padding: 0 8px; border-radius: 10px; font-size: 0.85rem; border: 1px solid currentColor; }
        .badge.completed, .badge.healthy { color: var(--ok); } .badge.failed, .badge.cancelled, .badge.down { color: var(--danger); }
        .badge.parked, .badge.checkpointed, .badge.queued { color: var(--warn); } .badge.running, .badge.scheduled { color: var(--accent); }
        .notice { background: #e7f3ff; border-left: 4px solid var(--accent); padding: 8px 12px; }
        .problem { background: #fdecec; border-left: 4px solid var(--danger); padding: 8px 12px; }
        .parked { color: var(--warn); font-weight: 600; }
        dl.facts { display: grid; grid-template-columns: max-content 1fr; gap: 4px 16px; } dl.facts dt { color: var(--muted); } dl.facts dd { margin: 0; }
        pre.json { background: #f4f6f8; padding: 8px 12px; overflow: auto; max-height: 24rem; }
        ol.timeline { list-style: none; padding: 0; } ol.timeline > li { display: flex; gap: 12px; align-items: flex-start; border-left: 2px solid var(--line); padding: 4px 0 4px 12px; }
        ol.timeline .when { color: var(--muted); min-width: 6rem; font-variant-numeric: tabular-nums; }
        ol.branch { list-style: none; display: flex; flex-wrap: wrap; gap: 8px; padding: 0; margin: 0; } ol.branch li { border: 1px solid var(--line); border-radius: 4px; padding: 2px 8px; }
        ol.branch li + li::before { content: "→ "; color: var(--muted); }
        .step-detail { border-top: 1px solid var(--line); margin-top: 12px; } .count { color: var(--muted); }
        .pages { margin-top: 12px; display: flex; gap: 16px; }
        svg.loss-curve { max-width: 100%; height: auto; background: #fbfcfd; border: 1px solid var(--line); }
        svg.loss-curve .axis { stroke: #6b7480; } svg.loss-curve .line { stroke: var(--accent); stroke-width: 1.5; } svg.loss-curve .point { fill: var(--accent); } svg.loss-curve .label { font-size: 11px; fill: var(--muted); }
        .visually-hidden { position: absolute; width: 1px; height: 1px; overflow: hidden; clip: rect(0 0 0 0); white-space: nowrap; }
        .login { display: flex; gap: 8px; align-items: center; }
        """

    /// Live updates for the pages that ask for them (`data-live`): the list's rows are
    /// fetched again every few seconds. Without script the pages work the same, only still.
    static let script = """
        "use strict";
        (function () {
          var table = document.querySelector("[data-live]");
          if (!table) { return; }
          var rows = table.querySelector("tbody");
          function refresh() {
            fetch(table.getAttribute("data-live"), { credentials: "same-origin", headers: { "Accept": "text/html" } })
              .then(function (response) { return response.ok ? response.text() : null; })
              .then(function (html) { if (html !== null && !document.hidden) { rows.innerHTML = html; } })
              .catch(function () {})
              .finally(function () { window.setTimeout(refresh, 3000); });
          }
          window.setTimeout(refresh, 3000);
        })();
        """
}
