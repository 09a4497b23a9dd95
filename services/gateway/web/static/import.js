// 导入: a roster or a project list uploaded to POST /api/import/<kind> as multipart (file, dry_run); the per-row
// results shown in a table, and the file with its 导入结果 column offered for download (from the reply's base64).
import { ApiError, card, fill, flag, goLogin, h, header, loadMe, start, table } from '/static/app.js';

const STATUS_TEXT = { recorded: '成功', already: '已导入', refused: '未导入', valid: '校验通过', skipped: '已跳过' };
const STATUS_FLAG = { recorded: 'ok', already: 'info', refused: 'gap', valid: 'ok', skipped: 'done' };
const NAME_HEADER = { members: '姓名', sites: '项目名称' };

let resultUrl = null;

function kind() { return document.getElementById('import-kind').value; }

function setTemplates() {
  const k = encodeURIComponent(kind());
  document.getElementById('template-xlsx').href = `/api/import/${k}/template`;
  document.getElementById('template-csv').href = `/api/import/${k}/template?format=csv`;
}

function setButton() {
  const dry = document.getElementById('import-dry-run').checked;
  document.getElementById('import-submit').textContent = dry ? '开始校验' : '开始导入';
}

function showError(message) {
  fill('import-errors', message ? h('div', { class: 'field-error', id: 'import-error' }, message) : null);
}

// The reply's result file as a download link (a Blob URL, released when the next result replaces it).
function offerFile(file) {
  const bytes = Uint8Array.from(atob(file.base64), (c) => c.charCodeAt(0));
  if (resultUrl) URL.revokeObjectURL(resultUrl);
  resultUrl = URL.createObjectURL(new Blob([bytes], { type: file.media_type }));
  const link = document.getElementById('result-file');
  link.href = resultUrl;
  link.download = file.name;
  link.textContent = `下载结果文件（${file.name}）`;
}

function render(data) {
  const c = data.counts;
  const cards = data.dry_run
    ? [card('valid', '校验通过', c.valid, { unit: '行', accent: true }), card('refused', '未通过', c.refused, { unit: '行' }),
      ...(c.already ? [card('already', '重复行', c.already, { unit: '行' })] : [])]
    : [card('recorded', '成功', c.recorded, { unit: '行', accent: true }), card('already', '已导入', c.already, { unit: '行' }),
      card('refused', '未导入', c.refused, { unit: '行' })];
  if (c.skipped) cards.push(card('skipped', '跳过示例行', c.skipped, { unit: '行' }));
  fill('import-counts', cards);
  fill('import-summary', data.summary);
  const rows = data.rows.map((r) => h('tr', { dataset: { row: r.row, status: r.status, code: r.code } },
    h('td', { class: 'n' }, String(r.row)),
    h('td', null, r.name || '—'),
    h('td', null, flag(data.dry_run && r.status === 'already' ? '重复行' : STATUS_TEXT[r.status] || r.status,
      STATUS_FLAG[r.status] || 'info')),
    // A refusal's reason; for a row already in, why (the same as the record, or as an earlier row).
    h('td', { class: 'result-text' }, r.status === 'refused' || (r.status === 'already' && r.result !== '已导入') ? r.result : '')));
  fill('import-rows', table(['行号', NAME_HEADER[data.kind] || '名称', '结果', '说明'], rows,
    { cls: 'data compact', empty: '文件中没有数据行', dataset: { kind: data.kind } }));
  offerFile(data.result_file);
  filterRows();
  document.getElementById('import-result').hidden = false;
}

function filterRows() {
  const only = document.getElementById('only-refused').checked;
  for (const tr of document.querySelectorAll('#import-rows tbody tr')) {
    tr.hidden = only && tr.dataset.status !== 'refused';
  }
}

// A long file's progress: the reply comes as lines of JSON, {"progress": {done, total}} while rows are sent, then
// the reply itself, returned here.
async function lastLine(res, onProgress) {
  const reader = res.body.getReader();
  const decoder = new TextDecoder();
  let buffered = '';
  let last = null;
  for (;;) {
    const { value, done } = await reader.read();
    buffered += decoder.decode(value || new Uint8Array(), { stream: !done });
    const lines = buffered.split('\n');
    buffered = lines.pop();
    for (const line of lines.filter((l) => l.trim())) {
      const message = JSON.parse(line);
      if (message.progress) onProgress(message.progress); else last = message;
    }
    if (done) return buffered.trim() ? JSON.parse(buffered) : last;
  }
}

function showProgress(status, p) {
  window.__importProgress.push(p);
  const bar = document.getElementById('import-progress');
  bar.hidden = false;
  bar.max = p.total;
  bar.value = p.done;
  status.textContent = `正在导入：已处理 ${p.done} / ${p.total} 行`;
}

async function upload(ev) {
  ev.preventDefault();
  showError('');
  const input = document.getElementById('import-file');
  if (!input.files || !input.files.length) { showError('请选择要导入的 .xlsx 或 .csv 文件'); return; }
  const dry = document.getElementById('import-dry-run').checked;
  const body = new FormData();
  body.append('file', input.files[0]);
  body.append('dry_run', dry ? 'true' : 'false');
  const button = document.getElementById('import-submit');
  const status = document.getElementById('import-status');
  button.disabled = true;
  window.__importProgress = [];
  document.getElementById('import-progress').hidden = true;
  status.dataset.state = 'busy';
  status.textContent = dry ? '正在校验…' : '正在导入，每行一条记录，请稍候…';
  try {
    let res;
    try {
      res = await fetch(`/api/import/${encodeURIComponent(kind())}`, {
        method: 'POST', body, credentials: 'same-origin', cache: 'no-store', headers: { Accept: 'application/x-ndjson' } });
    } catch {
      throw new ApiError(0, null);
    }
    if (res.status === 401) { goLogin(); return; }
    let payload = null;
    try {
      payload = res.ok ? await lastLine(res, (p) => showProgress(status, p)) : await res.json();
    } catch { payload = null; }
    if (!res.ok || !payload || payload.ok !== true) throw new ApiError(res.ok ? 500 : res.status, payload && payload.error);
    render(payload.data);
    const c = payload.data.counts;
    status.dataset.state = c.refused ? 'error' : 'ok';
    status.textContent = payload.data.summary;
  } catch (err) {
    status.dataset.state = 'error';
    status.textContent = '';
    showError(err instanceof ApiError ? `${err.message}（${err.code}）` : String(err));
  } finally {
    button.disabled = false;
  }
}

start(async () => {
  // Before any await: a file sent at once, while the login is still being asked for, must not submit the form natively
  // (a page reload that loses the file).
  document.getElementById('import-form').addEventListener('submit', upload);
  const me = await loadMe();
  header(me);
  const params = new URLSearchParams(location.search);
  if (params.get('kind') === 'sites') document.getElementById('import-kind').value = 'sites';
  setTemplates();
  setButton();
  document.getElementById('import-kind').addEventListener('change', setTemplates);
  document.getElementById('import-dry-run').addEventListener('change', setButton);
  document.getElementById('only-refused').addEventListener('change', filterRows);
  if (!me.may_write) {
    // The server refuses a reading login's upload before reading it, a check only (dry run) included: offering
    // one here only led to a 403.
    fill('write-note', `${me.role_label}身份只能查看，不能导入或校验表格；请由乡镇或市工委导入。`);
    for (const el of document.querySelectorAll('#import-form input, #import-form select, #import-form button')) el.disabled = true;
  } else if (me.role === 'township') {
    fill('write-note', '乡镇身份只能导入本乡镇工地的人员与项目；其他乡镇的行会显示“未导入 FORBIDDEN”。');
  } else if (me.role === 'site') {
    fill('write-note', '工地书记身份只能导入本工地的人员；工地编号可空（即本工地）。');
  }
});
