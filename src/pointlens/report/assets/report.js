/* pointlens report: linked 3D views of point clouds (plotly Scatter3d), offline.
 * Every plot's promise goes to window.pointlensPlots; window.pointlensReady turns true once all have drawn, and
 * window.pointlensPending counts redraws in flight (the browser test waits on both). */
(function () {
  "use strict";
  window.pointlensPending = 0;
  function track(p) {
    window.pointlensPending += 1;
    return Promise.resolve(p).finally(function () { window.pointlensPending -= 1; });
  }
  window.pointlensTrack = track;
  var SIGNED = [[0, "#3b4cc0"], [0.25, "#8db0fe"], [0.5, "#b4b4b4"], [0.75, "#f49a7b"], [1, "#b40426"]];
  var UNSIGNED = [[0, "#440154"], [0.25, "#3b528b"], [0.5, "#21918c"], [0.75, "#5ec962"], [1, "#fde725"]];
  var PARTS = [[0, "#c8c8c8"], [1, "#e6550d"]];

  function quantile(values, q) {
    var s = values.slice().sort(function (a, b) { return a - b; });
    if (!s.length) { return 0; }
    var i = Math.min(s.length - 1, Math.max(0, Math.round(q * (s.length - 1))));
    return s[i];
  }
  /* colour value in [0, 1] and marker size per point; signed scores: 0 -> the middle colour, +-q99(|s|) -> the
   * ends; unsigned: 1st..99th percentile. Size grows with |score| / q99(|score|) so sparse maps stay visible. */
  function style(scores, signed) {
    var abs = scores.map(Math.abs);
    var q = quantile(abs, 0.99) || Math.max.apply(null, abs) || 1;
    var lo = quantile(scores, 0.01), hi = quantile(scores, 0.99);
    var t = scores.map(function (v) {
      if (signed) { return 0.5 + 0.5 * Math.max(-1, Math.min(1, v / q)); }
      return hi > lo ? Math.max(0, Math.min(1, (v - lo) / (hi - lo))) : 0.5;
    });
    var size = abs.map(function (a) { return 3.0 + 6.0 * Math.sqrt(Math.min(1, a / q)); });
    return { t: t, size: size };
  }

  function setupGrid(root) {
    var spec = JSON.parse(document.getElementById(root.getAttribute("data-spec")).textContent);
    var views = Array.prototype.slice.call(root.querySelectorAll(".pl-view"));
    var select = root.querySelector("select.pl-cloud");
    var toggle = root.querySelector("input.pl-gt");
    var state = { cloud: 0, gt: false, camera: spec.camera };
    var syncing = false;

    function trace(j) {
      var c = spec.clouds[state.cloud], m = spec.methods[j], s = m.scores[state.cloud];
      var showGt = state.gt && c.gt;
      var st = style(s, m.signed);
      return {
        type: "scatter3d", mode: "markers", x: c.x, y: c.y, z: c.z,
        customdata: showGt ? c.gt : s,
        hovertemplate: showGt ? "part %{customdata}<extra></extra>" : "score %{customdata:.4g}<extra>" + m.name + "</extra>",
        marker: showGt ? { color: c.gt, colorscale: PARTS, cmin: 0, cmax: 1, size: c.gt.map(function (g) { return g ? 4.5 : 3.0; }), line: { width: 0 } }
                       : { color: st.t, colorscale: m.signed ? SIGNED : UNSIGNED, cmin: 0, cmax: 1, size: st.size, line: { width: 0 } }
      };
    }
    function layout() {
      var axis = { visible: false, showspikes: false };
      return {
        margin: { l: 0, r: 0, t: 0, b: 0 }, showlegend: false, paper_bgcolor: "#ffffff", uirevision: "keep",
        scene: { aspectmode: "data", xaxis: axis, yaxis: axis, zaxis: axis, bgcolor: "#ffffff", camera: state.camera }
      };
    }
    function redraw() {
      return track(Promise.all(views.map(function (v, j) { return Plotly.react(v, [trace(j)], layout(), spec.config); })));
    }
    function link(src, ev) {
      var cam = ev && ev["scene.camera"];
      if (!cam || syncing) { return; }
      state.camera = cam;
      syncing = true;
      track(Promise.all(views.filter(function (v) { return v !== src; }).map(function (v) {
        return Plotly.relayout(v, { "scene.camera": cam });
      }))).finally(function () { syncing = false; });
    }
    views.forEach(function (v, j) {
      window.pointlensPlots.push(track(Plotly.newPlot(v, [trace(j)], layout(), spec.config).then(function () {
        v.on("plotly_relayout", function (ev) { link(v, ev); });
        v.on("plotly_relayouting", function (ev) { link(v, ev); });
      })));
    });
    if (select) { select.addEventListener("change", function () { state.cloud = +select.value; redraw(); }); }
    if (toggle) { toggle.addEventListener("change", function () { state.gt = toggle.checked; redraw(); }); }
  }
  document.querySelectorAll(".pl-grid").forEach(setupGrid);
})();
