// Small behaviours of the web UI pages (the pages work without it): the cluster selector
// navigates on change, and buttons marked data-confirm ask before they submit.
document.addEventListener('change', (e) => {
  if (e.target.matches('select[data-autosubmit]')) e.target.form.submit();
});
document.addEventListener('submit', (e) => {
  const msg = e.target.getAttribute('data-confirm');
  if (msg && !window.confirm(msg)) e.preventDefault();
});
