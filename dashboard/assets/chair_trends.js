/* The chair page's trend figure (dashboard/pages/chair.py, dashboard/trend_data.py): two
   clientside callbacks (dash_clientside.chairTrends). The server appends new readings with
   dcc.Graph's extendData; these keep the time window live and report the nurse's zoom. */
(function () {
  'use strict';

  function plot() {
    return document.querySelector('#chair-trends .js-plotly-plot');
  }

  var chairTrends = {
    /* relayoutData -> chair-trend-view: a zoom or pan on the time axis (xaxis*.range[0] and
       [1], as plotly reports the nurse's drag) gives [from, to]; a double-click autoscale
       gives null (back to the live window); anything else (autosize, a y-only zoom, the
       window shifts below, which set xaxis*.range whole) changes nothing. */
    view: function (relayout, current) {
      var nothing = window.dash_clientside.no_update;
      if (!relayout) return nothing;
      var x0, x1, auto = false;
      Object.keys(relayout).forEach(function (key) {
        var m = /^xaxis\d*\.range\[([01])\]$/.exec(key);
        if (m) {
          if (m[1] === '0') x0 = relayout[key]; else x1 = relayout[key];
        } else if (/^xaxis\d*\.autorange$/.test(key) && relayout[key]) {
          auto = true;
        }
      });
      if (x0 !== undefined && x1 !== undefined) return [x0, x1];
      if (auto) return current ? null : nothing;
      return nothing;
    },

    /* chair-trend-state -> the live time window: after a patch the server sends the window
       up to now (x_range); the axes follow it, so time runs on even when no reading comes. */
    shift: function (state) {
      var nothing = window.dash_clientside.no_update;
      var gd = plot();
      if (!state || state.mode !== 'tail' || !state.live || !state.x_range || !gd ||
          !gd._fullLayout || !window.Plotly) {
        return nothing;
      }
      var r = state.x_range;
      window.Plotly.relayout(gd, {'xaxis.range': r, 'xaxis2.range': r, 'xaxis3.range': r});
      return nothing;
    }
  };

  window.dash_clientside = Object.assign({}, window.dash_clientside, {chairTrends: chairTrends});
})();
