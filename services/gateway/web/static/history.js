// 历史记录: every event touching a site, member, case or branch, with what it caused beneath it, in the words the
// CLI prints (the API's `reading`, made once on the server for both). Changed records are marked.
import { ApiError, api, fill, h, header, loadMe, showProblem, start } from '/static/app.js';

const KINDS = { site: '工地', member: '党员', case: '案件', branch: '党支部' };
const ORDERS = { recorded: '按记录时间', day: '按发生日期' }; // gongdi.ops.history.ORDERS

function subjectFromPath() {
  const [, kind, id] = location.pathname.split('/').filter(Boolean); // ['history', kind, id]
  return { kind: decodeURIComponent(kind || ''), id: decodeURIComponent(id || '') };
}

// 按记录时间 (what was entered when) or 按发生日期 (a late entry where it happened): a link each, so a page in either
// order can be kept or sent.
function orderLinks(order) {
  const base = location.pathname;
  fill('history-order', '排列：', ...Object.entries(ORDERS).flatMap(([key, label], i) => [
    i ? ' · ' : '',
    h('a', { href: key === 'recorded' ? base : `${base}?order=${key}`, dataset: { order: key },
      'aria-current': key === order ? 'page' : null }, label)]));
}

function render(r) {
  fill('history-title', r.title);
  document.title = `${r.title} · 工地党建`;
  fill('history-warnings', r.warnings.map((w) => h('p', { class: 'warn', role: 'alert' }, `!! ${w}`)));
  fill('history', r.lines.length ? r.lines.map((line) => h('li', {
    class: line.intact ? 'history-line' : 'history-line changed',
    style: `margin-left: ${line.depth * 1.6}em`,
    dataset: { eventId: line.event_id, type: line.type, depth: String(line.depth), intact: String(line.intact) },
  },
  h('div', { class: 'history-what' }, line.depth ? '→ ' : '', line.what, line.where ? h('span', { class: 'muted' }, `  [${line.where}]`) : null),
  line.intact ? null : h('div', { class: 'warn' }, '!! 此条记录写入后被改动过（哈希与内容不符），以上内容不可信'),
  h('div', { class: 'history-when muted' }, line.when,
    line.member ? h('a', { class: 'history-member', href: `/history/member/${encodeURIComponent(line.member)}` }, ' · 此人的历史') : null)))
    : h('li', { class: 'empty' }, '（没有记录）'));
  fill('history-notes', r.notes.map((n) => h('p', null, n)));
}

start(async () => {
  const me = await loadMe();
  header(me);
  const { kind, id } = subjectFromPath();
  const back = document.getElementById('back-link');
  if (kind === 'site' || kind === 'branch') back.href = `/site/${encodeURIComponent(id)}`;
  fill('title', `${KINDS[kind] || ''}历史记录 · 工地党建`);
  const order = new URLSearchParams(location.search).get('order') === 'day' ? 'day' : 'recorded';
  orderLinks(order);
  try {
    const query = order === 'day' ? '?order=day' : '';
    const reply = await api(`/api/history/${encodeURIComponent(kind)}/${encodeURIComponent(id)}${query}`);
    render(reply.data.reading);
  } catch (err) {
    if (err instanceof ApiError && err.status === 401) return;
    showProblem(err instanceof ApiError ? err : new ApiError(0, null));
  }
});
