// Confirm before destructive actions; copy one-time secrets. No framework, nothing external.
document.addEventListener("submit", (e) => {
  const msg = e.target.getAttribute("data-confirm");
  if (msg && !window.confirm(msg)) e.preventDefault();
});
document.addEventListener("click", (e) => {
  const id = e.target.getAttribute && e.target.getAttribute("data-copy");
  if (!id) return;
  const el = document.getElementById(id);
  if (el && navigator.clipboard) navigator.clipboard.writeText(el.textContent.trim());
});
