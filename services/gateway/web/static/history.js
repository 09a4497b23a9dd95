// 历史记录: every event touching a site, member, case or branch, with what it caused beneath it, in the words the
// CLI prints (the API's `reading`, made once on the server for both). Changed records are marked. Newest first by
// default (what was just recorded is what a secretary comes to check), and filtered by kind or words on the page.
import { ApiError, LABELS, api, fill, fmt, h, header, label, loadMe, showProblem, start } from '/static/app.js';

const KINDS = { site: '工地', member: '党员', case: '案件', branch: '党支部' };
// gongdi.ops.history.ORDERS; the page's own default first, reached without a query
const ORDERS = { newest: '最新在前', recorded: '按记录时间', day: '按发生日期' };
const DEFAULT_ORDER = 'newest';

function subjectFromPath() {
  const [, kind, id] = location.pathname.split('/').filter(Boolean); // ['history', kind, id]
  return { kind: decodeURIComponent(kind || ''), id: decodeURIComponent(id || '') };
}

// The page's address says its order and filters (?order=…&kind=…&q=…), so a page as filtered can be kept, sent or
// reloaded as it is; before, a reload or a change of order lost the filters.
function address(order, kind, words) {
  const params = new URLSearchParams();
  if (order !== DEFAULT_ORDER) params.set('order', order);
  if (kind) params.set('kind', kind);
  if (words) params.set('q', words);
  const query = params.toString();
  return query ? `${location.pathname}?${query}` : location.pathname;
}

// 最新在前, 按记录时间 (what was entered when) or 按发生日期 (a late entry where it happened): a link each, keeping the
// filters.
function orderLinks(order, kind = '', words = '') {
  fill('history-order', '排列：', ...Object.entries(ORDERS).flatMap(([key, name], i) => [
    i ? ' · ' : '',
    h('a', { href: address(key, kind, words), dataset: { order: key },
      'aria-current': key === order ? 'page' : null }, name)]));
}

function lineItem(line) {
  return h('li', {
    class: line.intact ? 'history-line' : 'history-line changed',
    style: `margin-left: ${line.depth * 1.6}em`,
    dataset: { eventId: line.event_id, type: line.type, depth: String(line.depth), intact: String(line.intact) },
  },
  h('div', { class: 'history-what' }, line.depth ? '→ ' : '', line.what, line.where ? h('span', { class: 'muted' }, `  [${line.where}]`) : null),
  line.intact ? null : h('div', { class: 'warn' }, '!! 此条记录写入后被改动过（哈希与内容不符），以上内容不可信'),
  h('div', { class: 'history-when muted' }, line.when,
    line.member ? h('a', { class: 'history-member', href: `/history/member/${encodeURIComponent(line.member)}` }, ' · 此人的历史') : null,
    (line.people || []).length ? [' · 历史：', line.people.flatMap((p, i) => [i ? '、' : '',
      h('a', { class: 'history-member', href: `/history/member/${encodeURIComponent(p.id)}` }, p.name)])] : null));
}

// A top line and what it caused beneath it: shown or hidden together, so an effect is never without its cause.
function groupsOf(lines) {
  const groups = [];
  for (const line of lines) {
    if (!line.depth || !groups.length) groups.push({ lines: [], items: [] });
    const group = groups[groups.length - 1];
    group.lines.push(line);
    group.items.push(lineItem(line));
  }
  return groups;
}

function kindChoices(lines) {
  const counts = new Map();
  for (const line of lines) counts.set(line.type, (counts.get(line.type) || 0) + 1);
  const select = document.getElementById('history-kind');
  fill(select, h('option', { value: '' }, '全部类别'),
    [...counts].map(([type, n]) => [type, label(LABELS.event, type), n])
      .sort((a, b) => a[1].localeCompare(b[1], 'zh-CN'))
      .map(([type, name, n]) => h('option', { value: type }, `${name}（${fmt(n)}）`)));
}

function applyFilter(groups, order) {
  const kind = document.getElementById('history-kind').value;
  const words = document.getElementById('history-filter').value.trim();
  history.replaceState(null, '', address(order, kind, words));
  orderLinks(order, kind, words);
  let shown = 0;
  for (const g of groups) {
    const match = (!kind || g.lines.some((l) => l.type === kind))
      && (!words || g.lines.some((l) => [l.what, l.where, l.when].some((x) => (x || '').includes(words))));
    for (const li of g.items) li.hidden = !match;
    shown += match ? 1 : 0;
  }
  fill('history-count', kind || words ? `显示 ${fmt(shown)} / ${fmt(groups.length)} 组记录` : '');
  document.getElementById('history-none').hidden = shown > 0;
}

function render(r, order) {
  fill('history-title', r.title);
  document.title = `${r.title} · 工地党建`;
  fill('history-warnings', r.warnings.map((w) => h('p', { class: 'warn', role: 'alert' }, `!! ${w}`)));
  fill('history-notes', r.notes.map((n) => h('p', null, n)));
  if (!r.lines.length) { fill('history', h('li', { class: 'empty' }, '（没有记录）')); return; }
  const groups = groupsOf(r.lines);
  fill('history', groups.map((g) => g.items), h('li', { class: 'empty', id: 'history-none', hidden: true }, '没有符合条件的记录'));
  kindChoices(r.lines);
  document.getElementById('history-filters').hidden = false;
  const asked = new URLSearchParams(location.search);
  const kind = document.getElementById('history-kind');
  kind.value = asked.get('kind') || '';
  if (kind.selectedIndex < 0) kind.value = ''; // a kind this history has none of: all of them
  document.getElementById('history-filter').value = asked.get('q') || '';
  for (const id of ['history-kind', 'history-filter']) {
    document.getElementById(id).addEventListener('input', () => applyFilter(groups, order));
  }
  applyFilter(groups, order);
}

start(async () => {
  const me = await loadMe();
  header(me);
  const { kind, id } = subjectFromPath();
  const back = document.getElementById('back-link');
  if (kind === 'site' || kind === 'branch') back.href = `/site/${encodeURIComponent(id)}`;
  fill('title', `${KINDS[kind] || ''}历史记录 · 工地党建`);
  const asked = new URLSearchParams(location.search).get('order');
  const order = asked in ORDERS ? asked : DEFAULT_ORDER;
  orderLinks(order);
  try {
    const reply = await api(`/api/history/${encodeURIComponent(kind)}/${encodeURIComponent(id)}?order=${order}`);
    render(reply.data.reading, order);
  } catch (err) {
    if (err instanceof ApiError && err.status === 401) return;
    showProblem(err instanceof ApiError ? err : new ApiError(0, null));
  }
});
