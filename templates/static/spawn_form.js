// The spawn form's script (templates/spawn_form.html). It applies no rule of its own: why a
// choice cannot be chosen comes from the server, per project and partition, in the JSON block
// #hpchub-form-data (spawners/slurm/form.py, choice_reasons); this only looks it up, keeps the
// selections on allowed values, and asks POST /hub/api/hpchub/v1/preview what a choice costs.
// The server validates every post again; without this script the form still works.
(function () {
  "use strict";
  var root = document.getElementById("hpchub-spawn-form");
  var block = document.getElementById("hpchub-form-data");
  if (!root || !block || !window.fetch) { return; }
  var data = JSON.parse(block.textContent);
  var field = function (name) { return document.getElementById("hpchub-" + name); };
  var xsrf = (window.jhdata && window.jhdata.xsrf_token) || "";
  var url = root.getAttribute("data-preview-url");
  var pending = null, sequence = 0;
  var NOT_ALLOWED = "not allowed";  // a value the server's list does not hold (e.g. one as sent)

  function setOption(option, reason) {
    var label = option.getAttribute("data-label");
    option.disabled = !!reason;
    option.textContent = reason ? label + " (" + reason + ")" : label;
  }

  function firstEnabled(select) {
    for (var i = 0; i < select.options.length; i++) { if (!select.options[i].disabled) { return select.options[i]; } }
    return null;
  }

  function keepValid(select, prefer) {
    var current = select.options[select.selectedIndex];
    if (current && !current.disabled) { return; }
    var choice = prefer ? prefer(select) : null;
    choice = choice || firstEnabled(select);
    if (choice) { choice.selected = true; }
  }

  // The largest allowed value not above the current one, else the smallest allowed (as the server does).
  function nearestBelow(select) {
    var current = parseFloat(select.value), best = null;
    Array.prototype.forEach.call(select.options, function (o) {
      var value = parseFloat(o.value);
      if (!o.disabled && !isNaN(value) && (isNaN(current) || value <= current)) { best = o; }
    });
    return best;
  }

  function applyReasons(select, reasons) {
    Array.prototype.forEach.call(select.options, function (option) {
      var reason = Object.prototype.hasOwnProperty.call(reasons, option.value) ? reasons[option.value] : NOT_ALLOWED;
      setOption(option, reason);
    });
  }

  function applyLimits() {
    var project = (data.reasons || {})[field("project").value] || null;
    var partition = project ? project[field("partition").value] : null;
    if (!partition) { return; }
    applyReasons(field("gpu_type"), partition.gpu_type);
    keepValid(field("gpu_type"));
    applyReasons(field("gpus"), partition.gpus[field("gpu_type").value] || {});
    keepValid(field("gpus"), nearestBelow);
    applyReasons(field("hours"), partition.hours);
    keepValid(field("hours"), nearestBelow);
  }

  function options() {
    var result = {};
    data.keys.forEach(function (key) {
      var value = field(key).value;
      if (value === "") { return; }
      result[key] = key === "gpus" ? parseInt(value, 10) : value;
    });
    return result;
  }

  function show(answer, error) {
    var box = document.getElementById("hpchub-preview");
    var part = function (name, text) { document.getElementById("hpchub-preview-" + name).textContent = text || ""; };
    var buttons = document.getElementById("hpchub-preview-offer-buttons");
    buttons.textContent = "";
    if (error) {
      part("summary", ""); part("refusal", error); part("offers", ""); part("left-now", "");
    } else {
      part("summary", answer.allowed ? answer.summary : "");
      part("refusal", answer.allowed ? "" : answer.message);
      part("offers", answer.allowed ? "" : answer.offer_text);
      part("left-now", answer.left_now);
      (answer.allowed ? [] : answer.offers || []).forEach(function (offer) {
        var button = document.createElement("button");
        button.type = "button";
        button.className = "btn btn-outline-primary btn-sm me-2 mb-1 hpchub-offer";
        button.setAttribute("data-gpu-type", offer.gpu_type);
        button.setAttribute("data-gpus", String(offer.gpus));
        button.setAttribute("data-hours", String(offer.hours));
        button.textContent = "Use " + offer.text;
        buttons.appendChild(button);
      });
    }
    box.hidden = false;
    root.setAttribute("data-preview-state", error ? "error" : (answer.allowed ? "allowed" : "refused"));
  }

  function preview() {
    var mine = ++sequence;
    root.setAttribute("data-preview-state", "asking");
    fetch(url, {
      method: "POST",
      credentials: "same-origin",
      headers: {"Content-Type": "application/json", "X-XSRFToken": xsrf},
      body: JSON.stringify({user_options: options()})
    }).then(function (response) {
      return response.json().then(function (body) { return {ok: response.ok, body: body}; });
    }).then(function (result) {
      if (mine !== sequence) { return; }
      if (result.ok) { show(result.body, ""); } else { show(null, result.body.message || "The preview failed."); }
    }).catch(function () {
      if (mine === sequence) { show(null, "The preview is not available right now; the server checks again at Start."); }
    });
  }

  function changed() {
    root.setAttribute("data-preview-state", "changed");
    applyLimits();
    if (pending) { clearTimeout(pending); }
    if (url) { pending = setTimeout(preview, 250); }  // no ledger: no preview
  }

  root.addEventListener("change", changed);
  root.addEventListener("click", function (event) {
    var button = event.target.closest ? event.target.closest(".hpchub-offer") : null;
    if (!button) { return; }
    field("gpu_type").value = button.getAttribute("data-gpu-type");
    applyLimits();
    field("gpus").value = button.getAttribute("data-gpus");
    field("hours").value = button.getAttribute("data-hours");
    changed();
    field("gpus").focus();
  });
  applyLimits();
  if (url) { preview(); }
})();
