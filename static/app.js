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

  // Show the custom date field only when "Custom date" is chosen.
  const expiry = document.getElementById("expires_in");
  const custom = document.getElementById("custom-date-field");
  if (expiry && custom) {
    const sync = () => { custom.hidden = expiry.value !== "custom"; };
    expiry.addEventListener("change", sync);
    sync();
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
