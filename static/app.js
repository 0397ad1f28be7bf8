// Progressive enhancements only: every page works without this file.
"use strict";

document.addEventListener("DOMContentLoaded", () => {
  // Copy buttons: <button data-copy-target="ID">. Without JavaScript the field is selectable.
  for (const button of document.querySelectorAll("[data-copy-target]")) {
    button.hidden = false;
    button.addEventListener("click", async () => {
      const field = document.getElementById(button.dataset.copyTarget);
      if (!field) return;
      field.focus();
      field.select();
      let copied = false;
      try {
        await navigator.clipboard.writeText(field.value);
        copied = true;
      } catch (_) {
        copied = document.execCommand && document.execCommand("copy");
      }
      const status = document.getElementById(button.dataset.copyStatus || "");
      if (status) status.textContent = copied ? "Copied to the clipboard." : "Press Ctrl+C to copy.";
    });
  }

  // Scope helpers: <button data-scope-select="read|none">.
  for (const button of document.querySelectorAll("[data-scope-select]")) {
    button.hidden = false;
    button.addEventListener("click", () => {
      const mode = button.dataset.scopeSelect;
      for (const box of document.querySelectorAll("input[name=scopes]:not(:disabled)")) {
        box.checked = mode === "read" ? box.value.endsWith(":read") || box.checked : false;
      }
    });
  }

  // Show the custom date field only when "Custom date" is chosen, and say where the chosen
  // expiry leads (each option carries its own text in data-preview).
  const expiry = document.getElementById("expires_in");
  const custom = document.getElementById("custom-date-field");
  const preview = document.getElementById("expiry-preview");
  if (expiry && custom) {
    const sync = () => {
      custom.hidden = expiry.value !== "custom";
      const option = expiry.selectedOptions[0];
      if (preview && option) {
        preview.textContent = option.dataset.preview || "";
        const warning = option.hasAttribute("data-warning");
        preview.className = "expiry-preview " + (warning ? "alert alert-warning" : "help");
      }
    };
    expiry.addEventListener("change", sync);
    sync();
  }

  // Times marked data-local read in the viewer's time zone; the UTC time stays in the title.
  const local = new Intl.DateTimeFormat(undefined, { dateStyle: "medium", timeStyle: "medium" });
  for (const time of document.querySelectorAll("time[data-local][datetime]")) {
    const at = new Date(time.getAttribute("datetime"));
    if (!Number.isNaN(at.getTime())) time.textContent = local.format(at);
  }

  // Parts of a form shown only for one choice: data-shown-by="name=value" (a radio group).
  for (const part of document.querySelectorAll("[data-shown-by]")) {
    const [name, value] = part.dataset.shownBy.split("=");
    const radios = document.querySelectorAll(`input[type=radio][name="${name}"]`);
    const sync = () => { part.hidden = !document.querySelector(`input[name="${name}"][value="${value}"]:checked`); };
    for (const radio of radios) radio.addEventListener("change", sync);
    sync();
  }

  // On a phone the list filters fold away unless one is in use.
  if (window.matchMedia("(max-width: 720px)").matches) {
    for (const fold of document.querySelectorAll(".filters-fold:not([data-in-use])")) fold.open = false;
  }

  // After a refused form, take keyboard and screen-reader users to the list of what is wrong.
  const summary = document.querySelector("[data-focus-on-load]");
  if (summary) summary.focus();

  // On a narrow screen the navigation folds behind the Menu button (see app.css).
  const toggle = document.querySelector(".nav-toggle");
  const nav = document.getElementById("sidenav");
  if (toggle && nav) {
    document.documentElement.classList.add("js-nav");
    toggle.addEventListener("click", () => {
      const open = nav.classList.toggle("open");
      toggle.setAttribute("aria-expanded", String(open));
    });
  }

  // Close the account menu when clicking elsewhere or pressing Escape.
  const menu = document.querySelector(".account-menu");
  if (menu) {
    document.addEventListener("click", (event) => {
      if (!menu.contains(event.target)) menu.open = false;
    });
    document.addEventListener("keydown", (event) => {
      if (event.key === "Escape" && menu.open) {
        menu.open = false;
        menu.querySelector("summary").focus();
      }
    });
  }
});
