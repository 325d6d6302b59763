// Upload and download on the terminal page, over the same endpoint Teleport's UI uses:
// POST/GET /v1/webapi/sites/<site>/nodes/<server>/<login>/scp?location=&filename=, with the
// session's bearer token. The node decides (ssh_file_copy) and writes as the login; its answer,
// a refusal included, is shown as it came.
(() => {
  const el = document.getElementById('terminal');
  const bar = document.getElementById('file-bar');
  if (!el || !bar) return;
  const token = document.querySelector('meta[name="grv_bearer_token"]').content;
  const base = `/v1/webapi/sites/${encodeURIComponent(el.dataset.site)}/nodes/${encodeURIComponent(el.dataset.server)}/${encodeURIComponent(el.dataset.login)}/scp`;
  const status = document.getElementById('file-status');
  const show = (text, state, extra) => {
    status.textContent = text;
    status.dataset.state = state;
    for (const [k, v] of Object.entries(extra || {})) status.dataset[k] = v;
  };
  const failure = async (resp) => {
    try { const j = await resp.json(); return j.error?.message || j.message || `${resp.status}`; } catch (_) { return `${resp.status} ${resp.statusText}`; }
  };
  const hex = async (buf) => Array.from(new Uint8Array(await crypto.subtle.digest('SHA-256', buf))).map((b) => b.toString(16).padStart(2, '0')).join('');

  document.getElementById('upload-form').addEventListener('submit', async (e) => {
    e.preventDefault();
    const file = document.getElementById('upload-file').files[0];
    const dir = document.getElementById('upload-dir').value.trim();
    if (!file) { show('Choose a file to upload first.', 'error'); return; }
    show(`Uploading ${file.name}…`, 'busy');
    const q = new URLSearchParams({ location: dir || '.', filename: file.name });
    const resp = await fetch(`${base}?${q}`, { method: 'POST', headers: { Authorization: `Bearer ${token}` }, body: file });
    if (!resp.ok) { show(`Upload failed: ${await failure(resp)}`, 'error'); return; }
    const j = await resp.json();
    show(`Uploaded ${file.name} to ${j.path} (${j.size} bytes)`, 'done');
  });

  document.getElementById('download-form').addEventListener('submit', async (e) => {
    e.preventDefault();
    const path = document.getElementById('download-path').value.trim();
    if (!path) { show('Give the path of the file to download.', 'error'); return; }
    const name = path.split('/').pop() || 'download';
    show(`Downloading ${path}…`, 'busy');
    const resp = await fetch(`${base}?${new URLSearchParams({ location: path, filename: name })}`, { headers: { Authorization: `Bearer ${token}` } });
    if (!resp.ok) { show(`Download failed: ${await failure(resp)}`, 'error'); return; }
    const blob = await resp.blob();
    const a = document.createElement('a');
    a.href = URL.createObjectURL(blob);
    a.download = name;
    document.body.appendChild(a);
    a.click();
    a.remove();
    setTimeout(() => URL.revokeObjectURL(a.href), 60000);
    show(`Downloaded ${name} (${blob.size} bytes)`, 'done', { size: String(blob.size), sha256: await hex(await blob.arrayBuffer()) });
  });
})();
