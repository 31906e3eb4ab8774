// Script of the diagnostics page. Plain browser JavaScript, kept as a string so the build ships it
// with the server. It renders server data with textContent only (never innerHTML), keeps the caller
// key in a variable for the request at hand (never in storage), and talks only to this origin.
export const PAGE_JS = String.raw`'use strict';
(function () {
  var $ = function (id) { return document.getElementById(id); };

  function el(tag, className, text) {
    var node = document.createElement(tag);
    if (className) node.className = className;
    if (text !== undefined && text !== null) node.textContent = String(text);
    return node;
  }

  function setStatus(text, failed) {
    var status = $('status');
    status.textContent = text || '';
    status.className = failed ? 'status failed' : 'status';
  }

  function clearResult() {
    var result = $('result');
    while (result.firstChild) result.removeChild(result.firstChild);
    return result;
  }

  function selectTab(which) {
    var assertion = which === 'assertion';
    $('tab-assertion').setAttribute('aria-selected', String(assertion));
    $('tab-error').setAttribute('aria-selected', String(!assertion));
    $('assertion-form').hidden = !assertion;
    $('error-form').hidden = assertion;
    clearResult();
    setStatus('');
  }

  function callApi(path, body) {
    var key = $('api-key').value.trim();
    if (!key) return Promise.reject(new Error('enter the caller key first'));
    return fetch(path, {
      method: 'POST',
      headers: { 'Authorization': 'Bearer ' + key, 'Content-Type': 'application/json', 'Accept': 'application/json' },
      body: JSON.stringify(body),
      credentials: 'omit',
      cache: 'no-store',
      referrerPolicy: 'no-referrer'
    }).then(function (res) {
      return res.json().catch(function () { return {}; }).then(function (data) {
        if (!res.ok) {
          var message = (data && (data.detail || data.title)) || ('HTTP ' + res.status);
          if (data && Array.isArray(data.errors)) message += ' (' + data.errors.map(function (e) { return e.field + ': ' + e.message; }).join('; ') + ')';
          throw new Error(message);
        }
        return data;
      });
    });
  }

  function addRow(dl, label, value) {
    if (value === undefined || value === null || value === '') return;
    dl.appendChild(el('dt', '', label));
    dl.appendChild(el('dd', '', value));
  }

  function renderFinding(f) {
    var card = el('article', 'card finding ' + f.severity);
    card.setAttribute('data-finding-id', f.id);
    var title = el('h3');
    title.appendChild(el('span', 'badge ' + f.severity, f.severity));
    title.appendChild(el('span', 'id', f.id));
    if (f.idp_error) title.appendChild(el('span', 'idp-error', f.idp_error));
    card.appendChild(title);
    card.appendChild(el('p', 'message', f.message));
    var dl = el('dl');
    addRow(dl, 'claim', f.claim);
    addRow(dl, 'expected', f.expected);
    addRow(dl, 'actual', f.actual);
    addRow(dl, 'fix', f.fix);
    if (dl.firstChild) card.appendChild(dl);
    return card;
  }

  function renderJson(parent, heading, value) {
    parent.appendChild(el('h2', '', heading));
    var box = el('div', 'card');
    box.appendChild(el('pre', '', JSON.stringify(value, null, 2)));
    parent.appendChild(box);
  }

  function renderAssertion(data) {
    var result = clearResult();
    var counts = { error: 0, warning: 0, info: 0 };
    (data.findings || []).forEach(function (f) { counts[f.severity] = (counts[f.severity] || 0) + 1; });
    var verdict = el('div', 'verdict ' + data.verdict, data.verdict === 'ok'
      ? 'Verdict: ok — nothing here makes the IdP refuse it'
      : 'Verdict: will fail — ' + counts.error + ' error' + (counts.error === 1 ? '' : 's'));
    verdict.id = 'verdict';
    result.appendChild(verdict);
    var sig = data.signature || {};
    result.appendChild(el('p', 'hint', sig.checked
      ? (sig.valid ? 'Signature verified with the credential\'s certificate.' : 'Signature does NOT verify with the credential\'s certificate.')
      : 'Signature not checked (name a configured credential to check it).'));
    result.appendChild(el('h2', '', 'Findings (' + counts.error + ' errors, ' + counts.warning + ' warnings, ' + counts.info + ' notes)'));
    var list = el('div');
    list.id = 'findings';
    (data.findings || []).forEach(function (f) { list.appendChild(renderFinding(f)); });
    result.appendChild(list);
    renderJson(result, 'Header', data.header);
    renderJson(result, 'Claims', data.claims);
  }

  function renderExplain(data) {
    var result = clearResult();
    var head = el('div', 'verdict ' + (data.recognized ? 'ok' : 'will_fail'), data.recognized ? 'Recognised' : 'Not recognised: paste the whole error body (JSON) or the AADSTS line');
    head.id = 'verdict';
    result.appendChild(head);
    var list = el('div');
    list.id = 'explanations';
    (data.explanations || []).forEach(function (x) {
      var card = el('article', 'card finding error');
      card.setAttribute('data-code', x.code);
      var title = el('h3');
      title.appendChild(el('span', 'idp-error', x.code));
      title.appendChild(el('span', '', x.title));
      card.appendChild(title);
      var dl = el('dl');
      addRow(dl, 'from', x.source);
      addRow(dl, 'cause', x.cause);
      addRow(dl, 'fix', x.fix);
      addRow(dl, 'claim', x.claim);
      addRow(dl, 'lint rules', (x.rules || []).join(', '));
      card.appendChild(dl);
      list.appendChild(card);
    });
    result.appendChild(list);
    if (data.parsed && Object.keys(data.parsed).length) renderJson(result, 'Parsed', data.parsed);
  }

  function run(button, promise, render) {
    button.disabled = true;
    setStatus('Checking…');
    promise.then(function (data) { setStatus(''); render(data); })
      .catch(function (err) { clearResult(); setStatus(err.message || String(err), true); })
      .then(function () { button.disabled = false; });
  }

  document.addEventListener('DOMContentLoaded', function () {
    $('tab-assertion').addEventListener('click', function () { selectTab('assertion'); });
    $('tab-error').addEventListener('click', function () { selectTab('error'); });

    $('assertion-form').addEventListener('submit', function (event) {
      event.preventDefault();
      var body = { assertion: $('assertion').value.trim() };
      var optional = { token_endpoint: 'token-endpoint', provider: 'provider', client_id: 'client-id', credential: 'credential' };
      Object.keys(optional).forEach(function (field) {
        var value = $(optional[field]).value.trim();
        if (value) body[field] = value;
      });
      run($('check-assertion'), callApi('/v1/diagnostics/assertion', body), renderAssertion);
    });

    $('error-form').addEventListener('submit', function (event) {
      event.preventDefault();
      run($('explain-error'), callApi('/v1/diagnostics/explain', { error: $('error-text').value }), renderExplain);
    });
  });
})();
`;
