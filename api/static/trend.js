// The search page's chart: the current query and filters counted per month (GET /api/trend), drawn
// with uPlot. Exact counts for filters and "phrases"; a ranked query counts the ads among its top hits,
// and the caption says so. Loaded again with each swapped #view: it draws the figure it finds.
(() => {
  const COUNT_STEPS = [1, 2, 5, 10, 20, 50, 100, 200, 500, 1000, 2000, 5000, 10000, 20000, 50000, 100000];
  const box = document.getElementById("trend");
  if (!box || box.dataset.drawn || typeof uPlot === "undefined") return;
  box.dataset.drawn = "1";
  const caption = box.querySelector("figcaption");
  const note = box.querySelector(".trend-note");
  const params = new URLSearchParams({ q: box.dataset.q || "", by: box.dataset.by || "month" });
  for (const clause of JSON.parse(box.dataset.where || "[]")) params.append("where", clause);
  const fail = (reason) => {
    note.textContent = `No chart: ${typeof reason === "string" ? reason : "the trend could not be counted"}`;
  };
  fetch(`/api/trend?${params}`)
    .then((r) => r.json().then((body) => (r.ok ? body : Promise.reject(body.detail))))
    .then((answer) => {
      const series = answer.series[0];
      const what = series.kind === "ranked" ? `ads among the top ${series.top} hits` : "ads (exact count)";
      caption.textContent = `${what} per ${answer.by} of ${answer.field}`;
      box.querySelector(".trend-plot").setAttribute("aria-label", caption.textContent);
      if (!answer.buckets.length) { note.textContent = answer.notes.join(" "); return; }
      const xs = answer.buckets.map((b) => Date.parse(b.start) / 1000);
      const ys = answer.buckets.map((b) => b.counts[series.label]);
      const n = answer.buckets.length;
      note.textContent = `${series.total} in ${n} ${answer.by}${n === 1 ? "" : "s"}`;
      const plot = box.querySelector(".trend-plot");
      const half = (Date.parse(answer.buckets[0].end) / 1000 - xs[0]) / 2;  // bars sit on their period's start
      new uPlot({
        width: Math.max(plot.clientWidth, 280), height: 160, legend: { show: false },
        scales: { x: { time: true, range: () => [xs[0] - half, xs[xs.length - 1] + half] },
                  y: { range: (u, min, max) => [0, Math.max(1, max)] } },
        axes: [{}, { size: 40, incrs: COUNT_STEPS }],
        series: [{}, { label: series.label, stroke: "#2563eb", fill: "rgba(37,99,235,0.25)", width: 1,
                       paths: uPlot.paths.bars({ size: [0.8, 40] }) }],
      }, [xs, ys], plot);
    })
    .catch(fail);
})();
