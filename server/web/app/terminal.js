// The web terminal: xterm.js on a WebSocket speaking Teleport's framing. After the socket
// opens, the first message is {"token": <bearer>}; the proxy answers
// {"type":"create_session_response","status":"ok"|"error"}; then every message is a binary
// protobuf Envelope {version=1 "1", type=2 "<letter>", payload=3 "<utf-8>"}: r data, w resize,
// s session metadata, c closed ({"exit_status": N}), e error.
(() => {
  const el = document.getElementById('terminal');
  const status = document.getElementById('term-status');
  const token = document.querySelector('meta[name="grv_bearer_token"]').content;
  const site = el.dataset.site, server = el.dataset.server, login = el.dataset.login;
  // Joining a running session (the Active Sessions page): its ID and the mode to join in.
  const sid = el.dataset.sid || '', mode = el.dataset.mode || '';
  const where = sid ? `session ${sid} on ${el.dataset.host} as ${mode}` : `${login}@${server}`;
  const enc = new TextEncoder();
  const dec = new TextDecoder();

  const term = new Terminal({ cursorBlink: true, fontSize: 14, scrollback: 5000, theme: { background: '#0b1021' } });
  const fit = new FitAddon.FitAddon();
  term.loadAddon(fit);
  term.open(el);
  fit.fit();
  window.tpTerminal = term;

  const varint = (n) => { const out = []; while (n >= 0x80) { out.push((n & 0x7f) | 0x80); n = Math.floor(n / 128); } out.push(n); return out; };
  const field = (tag, bytes) => [(tag << 3) | 2, ...varint(bytes.length), ...bytes];
  const envelope = (type, payload) => new Uint8Array([...field(1, enc.encode('1')), ...field(2, enc.encode(type)), ...field(3, enc.encode(payload))]);
  const parse = (buf) => {
    const out = {};
    let i = 0;
    const readVarint = () => { let v = 0, mul = 1, b; do { b = buf[i++]; v += (b & 0x7f) * mul; mul *= 128; } while (b & 0x80); return v; };
    while (i < buf.length) {
      const key = readVarint();
      if ((key & 7) !== 2) { readVarint(); continue; }
      const len = readVarint();
      const text = dec.decode(buf.subarray(i, i + len));
      i += len;
      if (key >> 3 === 2) out.type = text;
      if (key >> 3 === 3) out.payload = text;
    }
    return out;
  };

  const params = { server_id: server, login: login, term: { w: term.cols, h: term.rows } };
  if (sid) { params.sid = sid; params.mode = mode; }
  const url = `wss://${location.host}/v1/webapi/sites/${encodeURIComponent(site)}/connect/ws?params=${encodeURIComponent(JSON.stringify(params))}`;
  const ws = new WebSocket(url);
  ws.binaryType = 'arraybuffer';
  let ready = false;
  let ended = false;
  const show = (text, state) => { status.textContent = text; status.dataset.state = state; };
  const resize = () => {
    if (!ready) return;
    ws.send(envelope('w', JSON.stringify({ event: 'resize', width: term.cols, height: term.rows, size: `${term.cols}:${term.rows}` })));
  };

  ws.onopen = () => ws.send(JSON.stringify({ token }));
  ws.onmessage = (ev) => {
    if (!ready) {
      const m = JSON.parse(ev.data);
      if (m.status === 'ok') { ready = true; show(sid ? `Joined ${where}` : `Connected to ${where}`, 'connected'); resize(); term.focus(); }
      else show(m.message || 'the proxy refused the terminal', 'error');
      return;
    }
    const e = parse(new Uint8Array(ev.data));
    if (e.type === 'r') term.write(e.payload || '');
    else if (e.type === 'e') { term.write(`\r\n\x1b[31m${e.payload}\x1b[0m\r\n`); show(e.payload, 'error'); }
    else if (e.type === 's') { try { const s = JSON.parse(e.payload).session; document.title = `${s.login}@${s.server_hostname}`; } catch (_) { /* metadata is optional */ } }
    else if (e.type === 'c') {
      ended = true;
      let info = {};
      try { info = JSON.parse(e.payload || '{}'); } catch (_) { /* an empty close */ }
      // A session that ended without an exit status was told why just before: keep saying it.
      const why = status.dataset.state === 'error' ? `: ${status.textContent}` : '';
      show(info.exit_status === undefined ? `Session ended${why}` : `Session ended, exit status ${info.exit_status}`, why ? 'error' : 'ended');
    }
  };
  ws.onclose = () => { if (!ended && status.dataset.state !== 'error') show('Disconnected', 'closed'); ready = false; };
  term.onData((d) => { if (ready) ws.send(envelope('r', d)); });
  window.addEventListener('resize', () => { fit.fit(); resize(); });
})();
