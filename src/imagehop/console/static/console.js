// imagehop console: the little JavaScript it has. Everything works without it; live updates come
// from htmx (hx-get ... every 1s). This file only turns the Create Server page's tab buttons (which
// without JavaScript submit the form to show the other tab) into ARIA tabs, keyboard included.
"use strict";
document.addEventListener("DOMContentLoaded", function () {
  document.querySelectorAll("[data-tabs]").forEach(function (list) {
    var tabs = Array.prototype.slice.call(list.querySelectorAll("button[aria-controls]"));
    var form = list.closest("form");
    var field = form ? form.querySelector("input[name=tab]") : null;
    list.setAttribute("role", "tablist");
    function select(tab, focus) {
      tabs.forEach(function (other) {
        var on = other === tab;
        other.setAttribute("aria-selected", on ? "true" : "false");
        other.tabIndex = on ? 0 : -1;
        document.getElementById(other.getAttribute("aria-controls")).hidden = !on;
      });
      if (field) field.value = tab.value;
      if (focus) tab.focus();
    }
    tabs.forEach(function (tab, index) {
      tab.setAttribute("role", "tab");
      tab.type = "button";
      document.getElementById(tab.getAttribute("aria-controls")).setAttribute("role", "tabpanel");
      tab.addEventListener("click", function () { select(tab, false); });
      tab.addEventListener("keydown", function (event) {
        var next = null;
        if (event.key === "ArrowRight") next = tabs[(index + 1) % tabs.length];
        if (event.key === "ArrowLeft") next = tabs[(index - 1 + tabs.length) % tabs.length];
        if (event.key === "Home") next = tabs[0];
        if (event.key === "End") next = tabs[tabs.length - 1];
        if (next) { event.preventDefault(); select(next, true); }
      });
    });
    var current = tabs.filter(function (t) { return t.getAttribute("aria-selected") === "true"; })[0] || tabs[0];
    if (current) select(current, false);
  });
});
