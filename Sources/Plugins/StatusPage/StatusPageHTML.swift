import Crypto
import Foundation

/// The status page: one HTML document with its style and script inline, no other request than
/// its own JSON, and a Content-Security-Policy that allows exactly this style and this script
/// (by their SHA-256) and nothing else: no other origin, no inline handler, no `eval`.
enum StatusPageHTML {
    /// The page for figures at `source`, asked for every `refreshMilliseconds`.
    static func page(source: String, refreshMilliseconds: Int) -> String {
        """
        <!doctype html>
        <html lang="en">
        <head>
        <meta charset="utf-8">
        <meta name="viewport" content="width=device-width, initial-scale=1">
        <meta name="referrer" content="no-referrer">
        <title>Sluice status</title>
        <link rel="icon" href="data:,">
        <style>\(style)</style>
        </head>
        <body data-source="\(attribute(source))" data-refresh-ms="\(refreshMilliseconds)">
        <header>
          <h1>Sluice</h1>
          <span id="generation" class="muted">loading…</span>
          <span id="updated" class="muted"></span>
          <span id="connection" class="muted"></span>
        </header>
        <main>
        <section>
          <h2>Providers</h2>
          <table id="providers"><thead><tr><th>provider</th><th>probe</th><th>breaker</th><th>probe time</th><th>checked</th><th>detail</th></tr></thead><tbody></tbody></table>
        </section>
        <section>
          <h2>Traffic <span class="muted">open streams <b id="open-streams">–</b> · in flight <b id="in-flight">–</b></span></h2>
          <nav id="windows" aria-label="chart window"><span class="muted">charts over the last</span>
            <button type="button" data-window="5m">5 min</button><button type="button" data-window="15m">15 min</button><button type="button" data-window="60m">60 min</button>
          </nav>
          <div id="models"></div>
        </section>
        <section class="pair">
          <div><h2>Top keys by requests <span class="muted">60 min</span></h2><table id="keys-by-requests"><thead><tr><th>key</th><th>requests</th><th>spend</th></tr></thead><tbody></tbody></table></div>
          <div><h2>Top keys by spend <span class="muted">60 min</span></h2><table id="keys-by-spend"><thead><tr><th>key</th><th>requests</th><th>spend</th></tr></thead><tbody></tbody></table></div>
        </section>
        <section>
          <h2>Recent errors</h2>
          <table id="errors"><thead><tr><th>time</th><th>status</th><th>model</th><th>provider</th><th>message</th></tr></thead><tbody></tbody></table>
        </section>
        </main>
        <script>\(script)</script>
        </body>
        </html>

        """
    }

    static let contentSecurityPolicy =
        "default-src 'none'; script-src '\(hash(script))'; style-src '\(hash(style))'; connect-src 'self'; img-src data:; "
        + "base-uri 'none'; form-action 'none'; frame-ancestors 'none'"

    private static func hash(_ text: String) -> String {
        "sha256-" + Data(SHA256.hash(data: Array(text.utf8))).base64EncodedString()
    }

    private static func attribute(_ text: String) -> String {
        text.replacingOccurrences(of: "&", with: "&amp;").replacingOccurrences(of: "\"", with: "&quot;").replacingOccurrences(of: "<", with: "&lt;")
    }

    static let style = """

        :root { color-scheme: light; --ok: #1f8a3b; --bad: #c62828; --unknown: #8a8a8a; --line: #2b6cb0; --grid: #e3e6ea; }
        * { box-sizing: border-box; }
        body { margin: 0; font: 13px/1.4 system-ui, sans-serif; color: #1d2329; background: #f6f7f9; }
        header { display: flex; gap: 16px; align-items: baseline; padding: 10px 20px; background: #1d2329; color: #fff; }
        header h1 { margin: 0; font-size: 18px; }
        header .muted { color: #b8c0c8; }
        main { padding: 8px 20px 24px; }
        h2 { font-size: 15px; margin: 18px 0 6px; }
        h3 { font-size: 14px; margin: 0 0 4px; }
        .muted { color: #6b7580; font-weight: normal; }
        table { border-collapse: collapse; background: #fff; width: 100%; }
        th, td { text-align: left; padding: 3px 8px; border-bottom: 1px solid var(--grid); vertical-align: middle; }
        th { font-weight: 600; color: #4a535c; }
        td.num { text-align: right; font-variant-numeric: tabular-nums; }
        tr.state-ok td:first-child { border-left: 5px solid var(--ok); }
        tr.state-unknown td:first-child { border-left: 5px solid var(--unknown); }
        tr.state-down { background: #fdecea; }
        tr.state-down td:first-child { border-left: 5px solid var(--bad); color: var(--bad); font-weight: 600; }
        .badge { display: inline-block; padding: 0 6px; border-radius: 8px; color: #fff; background: var(--unknown); }
        .badge.ok { background: var(--ok); } .badge.down { background: var(--bad); }
        #connection.stale { color: #ffb4a9; }
        nav button { font: inherit; border: 1px solid #c5ccd3; background: #fff; padding: 1px 8px; cursor: pointer; }
        nav button.on { background: #1d2329; color: #fff; }
        .model { background: #fff; margin: 10px 0; padding: 8px 10px; border: 1px solid var(--grid); }
        .model table { width: auto; }
        svg.chart { display: block; background: #fafbfc; }
        svg.chart .line { fill: none; stroke: var(--line); stroke-width: 1.5; stroke-linecap: round; stroke-linejoin: round; }
        svg.chart .axis { stroke: var(--grid); stroke-width: 1; }
        .pair { display: grid; grid-template-columns: 1fr 1fr; gap: 20px; }
        td.message { max-width: 60ch; overflow-wrap: anywhere; }

        """

    static let script = #"""

        "use strict";
        (() => {
          const body = document.body;
          const source = new URL(body.dataset.source, location.origin).toString();
          const refreshMs = Number(body.dataset.refreshMs) || 2000;
          const windowNames = ["5m", "15m", "60m"];
          const metrics = [
            ["request_rate", "requests / s", (v) => num(v, 3)],
            ["error_rate", "error rate", (v) => v === null ? "–" : num(v * 100, 2) + " %"],
            ["p50_ms", "p50 latency", ms],
            ["p99_ms", "p99 latency", ms],
            ["ttft_p50_ms", "p50 time to first token", ms],
            ["tokens_per_minute", "tokens / min", (v) => num(v, 1)],
            ["spend_usd", "spend", usd],
          ];
          let chartWindow = "60m";
          let latest = null;

          function num(v, digits) {
            if (v === null || v === undefined) return "–";
            return Number(v).toLocaleString("en-US", { maximumFractionDigits: digits });
          }
          function ms(v) { return v === null ? "–" : v >= 1000 ? num(v / 1000, 2) + " s" : num(v, 1) + " ms"; }
          function usd(v) { return v === null ? "–" : "$" + (v > 0 && v < 0.01 ? Number(v).toPrecision(3) : num(v, 2)); }
          function when(iso) { return iso ? new Date(iso).toLocaleTimeString("en-GB") : "–"; }
          function el(tag, attributes, text) {
            const node = document.createElement(tag);
            for (const [name, value] of Object.entries(attributes || {})) node.setAttribute(name, value);
            if (text !== undefined) node.textContent = text;
            return node;
          }
          function svg(tag, attributes) {
            const node = document.createElementNS("http://www.w3.org/2000/svg", tag);
            for (const [name, value] of Object.entries(attributes || {})) node.setAttribute(name, String(value));
            return node;
          }

          // A line over the window's 10-second points, scaled to its own maximum; a gap where
          // nothing was measured. The values travel in data-values for whoever checks the page.
          function chart(values, label, start) {
            const width = 180, height = 34;
            const shown = values.filter((v) => v !== null);
            const max = shown.length ? Math.max(...shown) : 0;
            const step = values.length > 1 ? width / (values.length - 1) : width;
            let path = "", drawing = false;
            values.forEach((v, i) => {
              if (v === null) { drawing = false; return; }
              const x = (i * step).toFixed(1);
              const y = (height - 3 - (max > 0 ? v / max : 0) * (height - 6)).toFixed(1);
              path += drawing ? `L${x} ${y}` : `M${x} ${y}l0.01 0`;
              drawing = true;
            });
            const node = svg("svg", { class: "chart", width, height, viewBox: `0 0 ${width} ${height}`, role: "img",
                                      "aria-label": label, "data-start": start,
                                      "data-values": values.map((v) => v === null ? "" : String(v)).join(",") });
            const title = svg("title");
            title.textContent = `${label}, highest ${num(max, 4)}`;
            node.append(title, svg("line", { class: "axis", x1: 0, y1: height - 2, x2: width, y2: height - 2 }));
            if (path) node.append(svg("path", { class: "line", d: path }));
            return node;
          }

          function providerRow(p) {
            const row = el("tr", { class: `state-${p.state}`, "data-provider": p.name, "data-state": p.state });
            const badge = p.probe.status === "up" ? "ok" : p.probe.status === "unknown" ? "" : "down";
            const probe = el("td");
            probe.append(el("span", { class: `badge ${badge}` }, p.probe.status));
            const breaker = el("td");
            breaker.append(el("span", { class: `badge ${p.breaker === "open" ? "down" : "ok"}` }, p.breaker));
            if (p.open_targets.length) breaker.append(" " + p.open_targets.join(", "));
            row.append(el("td", {}, p.name), probe, breaker,
                       el("td", { class: "num" }, p.probe.latency_ms === null ? "–" : ms(p.probe.latency_ms)),
                       el("td", {}, when(p.probe.checked_at)), el("td", {}, p.probe.detail));
            return row;
          }

          function modelCard(m, report) {
            const card = el("div", { class: "model", "data-model": m.name });
            card.append(el("h3", {}, m.name));
            const table = el("table", { class: "figures" });
            const head = el("tr");
            head.append(el("th"), el("th", {}, "5 min"), el("th", {}, "15 min"), el("th", {}, "60 min"), el("th", {}, `last ${chartWindow.replace("m", " min")}`));
            table.append(head);
            const count = report.windows.find((w) => w.name === chartWindow).buckets;
            const seriesLength = m.series.request_rate.length;
            const start = report.series_start + (seriesLength - count) * report.bucket_seconds;
            for (const [key, label, format] of metrics) {
              const row = el("tr", { "data-metric": key });
              row.append(el("th", {}, label));
              for (const name of windowNames) {
                const value = m.windows[name][key];
                row.append(el("td", { class: "num", "data-figure": "", "data-model": m.name, "data-window": name, "data-metric": key,
                                      "data-value": JSON.stringify(value) }, format(value)));
              }
              const cell = el("td");
              cell.append(chart(m.series[key].slice(-count), `${m.name} ${label}`, start));
              row.append(cell);
              table.append(row);
            }
            card.append(table);
            return card;
          }

          function keyRows(keys) {
            if (!keys.length) return [emptyRow(3, "no requests in the last hour")];
            return keys.map((k) => {
              const row = el("tr", { "data-key": k.name });
              row.append(el("td", {}, k.name), el("td", { class: "num" }, num(k.requests, 0)), el("td", { class: "num" }, usd(k.spend_usd)));
              return row;
            });
          }
          function emptyRow(columns, text) {
            const row = el("tr");
            row.append(el("td", { colspan: columns, class: "muted" }, text));
            return row;
          }

          function render(report) {
            latest = report;
            const generation = report.generation;
            document.getElementById("generation").textContent =
              `manifest #${generation.number} (${generation.file}) loaded ${when(generation.loaded_at)}`;
            document.getElementById("updated").textContent = `updated ${when(report.generated_at)}`;
            body.dataset.generatedAt = report.generated_at;
            document.getElementById("open-streams").textContent = num(report.open_streams, 0);
            document.getElementById("in-flight").textContent = num(report.in_flight, 0);
            document.querySelector("#providers tbody").replaceChildren(...report.providers.map(providerRow));
            document.getElementById("models").replaceChildren(...report.models.map((m) => modelCard(m, report)));
            document.querySelector("#keys-by-requests tbody").replaceChildren(...keyRows(report.top_keys.by_requests));
            document.querySelector("#keys-by-spend tbody").replaceChildren(...keyRows(report.top_keys.by_spend));
            const errors = report.recent_errors.map((e) => {
              const row = el("tr", { "data-status": e.status });
              row.append(el("td", {}, when(e.at)), el("td", { class: "num" }, String(e.status)), el("td", {}, e.model),
                         el("td", {}, e.provider), el("td", { class: "message" }, e.message));
              return row;
            });
            document.querySelector("#errors tbody").replaceChildren(...(errors.length ? errors : [emptyRow(5, "none")]));
            for (const button of document.querySelectorAll("#windows button")) button.classList.toggle("on", button.dataset.window === chartWindow);
          }

          async function refresh() {
            const connection = document.getElementById("connection");
            try {
              const answer = await fetch(source, { cache: "no-store", credentials: "same-origin", headers: { accept: "application/json" } });
              if (!answer.ok) throw new Error(`HTTP ${answer.status}`);
              render(await answer.json());
              connection.textContent = "";
              connection.classList.remove("stale");
            } catch (error) {
              connection.textContent = `stale: ${error.message}`;
              connection.classList.add("stale");
            } finally {
              setTimeout(refresh, refreshMs);
            }
          }

          for (const button of document.querySelectorAll("#windows button")) {
            button.addEventListener("click", () => {
              chartWindow = button.dataset.window;
              if (latest) render(latest);
            });
          }
          refresh();
        })();

        """#
}
