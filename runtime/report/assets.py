"""The page's inline CSS and script, and the content security policy that allows exactly that script (by hash)."""

from __future__ import annotations

import base64
import hashlib

CSS = """
:root{--fg:#111827;--muted:#6b7280;--line:#e5e7eb;--bg:#f6f7f9;--card:#fff;--accent:#2563eb;--pass:#15803d;
--fail:#b91c1c;--passbg:#dcfce7;--failbg:#fee2e2}
*{box-sizing:border-box}
body{margin:0;background:var(--bg);color:var(--fg);font:14px/1.5 system-ui,-apple-system,"Segoe UI",Roboto,
"Helvetica Neue",Arial,sans-serif}
header.top{background:#0f172a;color:#e5e7eb;padding:22px 0 18px}
header.top h1{margin:0 0 4px;font-size:22px;font-weight:600;color:#fff}
header.top .sub{color:#94a3b8;font-size:13px}
header.top nav{margin-top:12px;display:flex;gap:16px;flex-wrap:wrap}
header.top nav a{color:#93c5fd;text-decoration:none;font-size:13px}
header.top nav a:hover{text-decoration:underline}
main,.wrap{max-width:1200px;margin:0 auto;padding:0 24px}
main{padding-bottom:48px}
h2{font-size:18px;margin:32px 0 8px;font-weight:600}
h3{font-size:15px;margin:0;font-weight:600;display:inline}
h4{font-size:13px;margin:14px 0 6px;color:#374151;text-transform:uppercase;letter-spacing:.04em}
.muted{color:var(--muted)}.small{font-size:12px}
.warn{color:#92400e;background:#fef3c7;border-radius:6px;padding:6px 10px;margin:6px 0}
.notes{margin-top:16px}
.card{background:var(--card);border:1px solid var(--line);border-radius:10px;padding:14px 16px;margin:12px 0;
box-shadow:0 1px 2px rgba(0,0,0,.03)}
details.card>summary{cursor:pointer;display:flex;gap:12px;align-items:baseline;list-style:none}
details.card>summary::-webkit-details-marker{display:none}
details.card>summary::before{content:"▸";color:var(--muted);width:10px}
details.card[open]>summary::before{content:"▾"}
details.card[open]>summary{margin-bottom:10px}
.stats{display:grid;grid-template-columns:repeat(auto-fit,minmax(200px,1fr));gap:12px;margin-top:18px}
.stat{background:var(--card);border:1px solid var(--line);border-radius:10px;padding:12px 16px}
.stat .k{color:var(--muted);font-size:12px;text-transform:uppercase;letter-spacing:.04em}
.stat .v{font-size:22px;font-weight:600;margin-top:2px}
.stat .d{font-size:13px}
.up{color:var(--pass)}.down{color:var(--fail)}.flat{color:var(--muted)}
.scroll{overflow-x:auto}
table.data{border-collapse:collapse;width:100%;font-size:13px}
table.data th,table.data td{padding:5px 10px;border-bottom:1px solid var(--line);text-align:left;
vertical-align:top}
table.data thead th{background:#f9fafb;font-weight:600;color:#374151;white-space:nowrap}
table.data th.span{text-align:center;border-left:1px solid var(--line)}
table.data td.num,table.data th.num{text-align:right;white-space:nowrap;font-variant-numeric:tabular-nums}
.track{display:inline-block;width:36px;height:6px;border-radius:3px;background:#e5e7eb;margin-right:8px;
vertical-align:middle;overflow:hidden}
.track>span{display:block;height:100%;background:#60a5fa;border-radius:3px}
table.groups td.group{font-family:ui-monospace,SFMono-Regular,Menlo,Consolas,monospace;font-size:12px}
table.data tr.section th{background:#f3f4f6;text-transform:uppercase;font-size:11px;letter-spacing:.05em;
color:#4b5563}
table.data tbody tr:hover{background:#f9fafb}
td.delta{font-weight:600}
.kind{background:#eef2ff;color:#3730a3;border-radius:4px;padding:0 6px;font-size:12px}
.charts{display:grid;grid-template-columns:repeat(auto-fit,minmax(420px,1fr));gap:12px}
figure.chart-card{margin:0}
figure figcaption{font-weight:600;margin-bottom:6px}
svg.chart{width:100%;height:auto;display:block}
svg.chart .grid{stroke:#eef0f3;stroke-width:1}
svg.chart .axis{stroke:#9ca3af;stroke-width:1}
svg.chart .tick{fill:#6b7280;font-size:11px}
svg.chart .label{fill:#374151;font-size:12px}
svg.chart .mark{stroke:#94a3b8;stroke-width:1;stroke-dasharray:3 3}
svg.chart .mark-label{fill:#64748b;font-size:10px}
svg.chart .line{fill:none;stroke-width:2;stroke-linejoin:round;stroke-linecap:round}
.legend{display:flex;gap:14px;flex-wrap:wrap;font-size:12px;color:#374151;margin-top:4px}
.legend i{display:inline-block;width:10px;height:10px;border-radius:2px;margin-right:5px}
.round-more dl{display:grid;grid-template-columns:max-content 1fr;gap:4px 16px;margin:0 0 8px}
.round-more dt{color:#374151;font-weight:600;font-size:12px}
.round-more dd{margin:0}
details.inline>summary{cursor:pointer;color:var(--accent)}
details.inline .list{white-space:normal;text-align:left;max-width:420px;font-size:12px}
.filters{display:flex;gap:14px;flex-wrap:wrap;align-items:center;background:var(--card);border:1px solid var(--line);
border-radius:10px;padding:10px 14px;position:sticky;top:0;z-index:5}
.filters label{font-size:12px;color:#374151;display:flex;gap:6px;align-items:center}
.filters select,.filters input,.filters button{font:inherit;font-size:13px;padding:3px 6px;border:1px solid #d1d5db;
border-radius:6px;background:#fff}
.filters button{cursor:pointer}
details.episode{background:var(--card);border:1px solid var(--line);border-radius:8px;margin:8px 0}
details.episode>summary{cursor:pointer;padding:7px 12px;display:flex;gap:4px 10px;align-items:center;
flex-wrap:wrap}
details.episode[open]>summary{border-bottom:1px solid var(--line);background:#fafbfc}
details.episode .task{font-size:12px;overflow-wrap:anywhere}
details.episode .facts{flex-basis:100%;color:var(--muted);font-size:12px;padding-left:2px}
details.episode .sep{color:#d1d5db;margin:0 4px}
.stage{font-size:11px;color:#475569;background:#f1f5f9;border-radius:4px;padding:0 6px}
.badge{display:inline-block;min-width:38px;text-align:center;font-size:11px;font-weight:700;text-transform:uppercase;
border-radius:4px;padding:1px 6px}
.badge.pass{background:var(--passbg);color:var(--pass)}
.badge.fail{background:var(--failbg);color:var(--fail)}
.badge.na{background:#f3f4f6;color:var(--muted)}
.ep-body{padding:4px 14px 14px}
table.checks td.detail{color:#4b5563;font-size:12px}
.msg{border-left:3px solid #d1d5db;padding:6px 10px;margin:6px 0;border-radius:0 6px 6px 0;background:#fafafa}
.msg .role{display:block;font-size:11px;font-weight:700;text-transform:uppercase;letter-spacing:.05em;
color:#6b7280;margin-bottom:2px}
.msg.user{border-color:#60a5fa;background:#eff6ff}
.msg.assistant{border-color:#a78bfa;background:#f5f3ff}
.msg.tool{border-color:#34d399;background:#ecfdf5}
.msg.tool.error{border-color:#f87171;background:#fef2f2}
.msg.system{border-color:#cbd5e1}
.msg .role .name{text-transform:none;letter-spacing:0;font-weight:600;color:#047857;margin-left:4px}
.msg .text{white-space:pre-wrap;word-break:break-word;margin:0}
pre{font:12px/1.45 ui-monospace,SFMono-Regular,Menlo,Consolas,monospace;margin:0;white-space:pre-wrap;
word-break:break-word;max-height:360px;overflow:auto}
.call{margin-top:6px;background:#fff;border:1px solid #e9d5ff;border-radius:6px;padding:6px 8px}
.call .fn{font:600 12px ui-monospace,SFMono-Regular,Menlo,Consolas,monospace;color:#6d28d9}
table.data code{overflow-wrap:anywhere}
code{font:12px ui-monospace,SFMono-Regular,Menlo,Consolas,monospace}
[hidden]{display:none!important}
"""

SCRIPT = """
(function () {
  var list = document.getElementById("episode-list");
  var bar = document.getElementById("filters");
  if (list && bar) {
    var items = Array.prototype.slice.call(list.querySelectorAll("details.episode"));
    var get = function (id) { return document.getElementById(id); };
    var keys = ["stage", "workflow", "outcome", "search"];
    if (location.hash.indexOf("=") >= 0) {  // filters in the address: #outcome=fail&workflow=...
      location.hash.slice(1).split("&").forEach(function (pair) {
        var i = pair.indexOf("=");
        try {
          var key = decodeURIComponent(pair.slice(0, i)), value = decodeURIComponent(pair.slice(i + 1));
          if (keys.indexOf(key) >= 0) { get("f-" + key).value = value; }
        } catch (err) { /* a malformed pair: ignored */ }
      });
    }
    var remember = function () {
      var parts = [];
      keys.forEach(function (key) {
        var value = get("f-" + key).value.trim();
        if (value) { parts.push(key + "=" + encodeURIComponent(value)); }
      });
      if (!parts.length && location.hash.indexOf("=") < 0) { return; }
      try {
        history.replaceState(null, "", parts.length ? "#" + parts.join("&") : location.pathname + location.search);
      } catch (err) { /* some browsers refuse it for local files */ }
    };
    var apply = function () {
      var stage = get("f-stage").value, workflow = get("f-workflow").value, outcome = get("f-outcome").value;
      var text = get("f-search").value.trim().toLowerCase(), shown = 0;
      items.forEach(function (el) {
        var ok = (!stage || el.dataset.stage === stage) && (!workflow || el.dataset.workflow === workflow) &&
          (!outcome || el.dataset.outcome === outcome) && (!text || el.dataset.search.indexOf(text) >= 0);
        el.hidden = !ok;
        if (ok) { shown += 1; }
      });
      get("f-count").textContent = shown + " of " + items.length + " episodes";
    };
    var update = function () { apply(); remember(); };
    ["f-stage", "f-workflow", "f-outcome"].forEach(function (id) { get(id).addEventListener("change", update); });
    get("f-search").addEventListener("input", update);
    get("f-open").addEventListener("click", function () {
      items.forEach(function (el) { if (!el.hidden) { el.open = true; } });
    });
    get("f-close").addEventListener("click", function () { items.forEach(function (el) { el.open = false; }); });
    bar.hidden = false;
    apply();
  }
  document.documentElement.setAttribute("data-ready", "1");
})();
"""


def content_security_policy() -> str:
    """Nothing loaded from elsewhere; inline styles; the one inline script, allowed by its SHA-256."""
    script_hash = base64.b64encode(hashlib.sha256(SCRIPT.encode()).digest()).decode()
    return (f"default-src 'none'; style-src 'unsafe-inline'; script-src 'sha256-{script_hash}'; img-src data:; "
            "base-uri 'none'; form-action 'none'")
