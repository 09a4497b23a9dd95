// 乡镇 / 主管部门 pages: the township or department view summed over its sites, live.
// The page kind comes from <body data-page="township|department">; the code from the path /township/<code>.
import {
  COVERAGE_TITLE, activitiesSummary, asOf, asOfControl, card, coverageParts, departmentName, downloadButtons, fig, fill, flag, fmt,
  h, header, liaisonSummary, live, loadMe, mayReadSite, pageLink, peopleSummary, setFreshness, showAsOf, showProblem, snapshotOf, start, sum, townshipName, view,
} from '/static/app.js';

const kind = document.body.dataset.page === 'department' ? 'department' : 'township';
const KIND_LABEL = kind === 'department' ? '主管部门' : '乡镇';
let me = null;
let code = '';
let current = null;

function codeFromPath() {
  const parts = location.pathname.split('/').filter(Boolean); // ['township', '<code>']
  if (parts.length >= 2) return decodeURIComponent(parts[1]);
  return new URLSearchParams(location.search).get(kind) || (me && me[kind]) || '';
}

function branchText(b) {
  if (!b) return null;
  if (typeof b === 'string') return b;
  if (typeof b === 'object') return b.name || '已建';
  return '已建';
}

function statusFlags(s) {
  const out = [];
  if (s.completed_on) out.push(flag(`已竣工 ${s.completed_on}`, 'done'));
  if (s.gap) out.push(flag('空白点', 'gap'));
  if (s.should_form_branch) out.push(flag('应组建党支部', 'should'));
  if (branchText(s.branch)) out.push(flag('已建支部', 'ok'));
  if (s.qualifies) out.push(flag('强制覆盖', 'info'));
  return out;
}

function sitesTable(sites) {
  const filter = (document.getElementById('sites-filter').value || '').trim();
  const showTownship = kind === 'department';
  // By township in the city file's order (a department's list), then by name as people sort Chinese (拼音), not by
  // character code (佳阳 before 前岐 before 太姥山).
  const order = Object.keys((me.city && me.city.townships) || {});
  const rank = (s) => (order.includes(s.township) ? order.indexOf(s.township) : order.length);
  const rows = sites.filter((s) => !filter || String(s.name || '').includes(filter) || String(s.site_id).includes(filter))
    .sort((a, b) => (showTownship ? rank(a) - rank(b) : 0) || String(a.name || a.site_id).localeCompare(String(b.name || b.site_id), 'zh-CN'));
  const headers = ['工地', showTownship ? '所在乡镇' : '主管部门', '从业人员', '在场党员', '正式党员', '党支部', '覆盖情况'];
  if (!rows.length) return h('p', { class: 'empty' }, sites.length ? '没有符合条件的工地' : '暂无登记的工地');
  return h('div', { class: 'table-scroll' }, h('table', { class: 'data', id: 'sites-table' },
    h('thead', null, h('tr', null, headers.map((x, i) => h('th', { class: i >= 2 && i <= 4 ? 'n' : null }, x)))),
    h('tbody', null, rows.map((s) => {
      const site = { ...s, township: s.township || (kind === 'township' ? code : undefined) };
      const name = mayReadSite(me, site)
        ? h('a', { href: pageLink(`/site/${encodeURIComponent(s.site_id)}`) }, s.name || s.site_id)
        : h('span', null, s.name || s.site_id);
      const branch = branchText(s.branch);
      return h('tr', { dataset: { siteId: s.site_id, gap: s.gap ? 'true' : 'false', shouldFormBranch: s.should_form_branch ? 'true' : 'false' } },
        h('td', null, name),
        h('td', null, showTownship ? townshipName(me, s.township) : (s.department || '')),
        h('td', { class: 'n' }, fmt(s.workforce ?? 0)),
        h('td', { class: 'n' }, fmt(s.members_present ?? 0)),
        h('td', { class: 'n' }, fmt(s.full_members ?? 0)),
        h('td', null, branch ? branch : h('span', { class: 'muted' }, '未建')),
        h('td', null, statusFlags(s)));
    }))));
}

function renderSites() {
  if (!current) return;
  const sites = current.sites;
  if (!Array.isArray(sites)) {
    fill('sites', h('p', { class: 'empty' }, '视图暂未提供工地明细'));
    return;
  }
  fill('sites-note', `共 ${fmt(sites.length)} 个工地`);
  fill('sites', sitesTable(sites));
}

// 覆盖（已建/应建） as the city page counts it: the view's own figures when it gives them, else from the sites as the
// city view counts them, where a completed project needs no branch any more and is out of both.
function coverageOf(d, sites) {
  if (d.coverage) return d.coverage;
  if (!sites) return null;
  const qualifying = sites.filter((s) => s.qualifies && !s.completed_on);
  return { qualifying: qualifying.length, covered: qualifying.filter((s) => branchText(s.branch)).length };
}

function coverageCard(cov) {
  const { value, extra, sub } = coverageParts(cov);
  return card('covered', COVERAGE_TITLE, value, { extra, sub });
}

function render(d) {
  if (!d) return;
  current = d;
  const sites = Array.isArray(d.sites) ? d.sites : null;
  const full = d.full_members ?? (sites ? sum(sites.map((s) => s.full_members)) : null);
  const gaps = sites ? sites.filter((s) => s.gap).length : null;
  const should = sites ? sites.filter((s) => s.should_form_branch).length : null;
  const coverage = coverageOf(d, sites);
  fill('figures',
    card('projects', '重点工程项目', d.projects ?? (sites ? sites.length : 0), { unit: '个', accent: true }),
    card('workers', '从业人员', d.workers ?? 0, { unit: '人', accent: true }),
    card('members', '党员', d.members ?? 0, { unit: '名', accent: true, sub: full === null ? null : ['正式党员 ', fig('full_members', full)] }),
    card('branches', '工地党支部', d.branches ?? 0, { unit: '个', accent: true }),
    coverage === null ? null : coverageCard(coverage),
    gaps === null ? null : card('gaps', '空白点', gaps, { unit: '个', sub: '应覆盖而未建支部' }),
    should === null ? null : card('should_form', '应组建党支部', should, { unit: '个', sub: '≥3名正式党员未建支部' }));
  renderSites();
  fill('activities', d.activities ? activitiesSummary(d.activities) : h('p', { class: 'empty' }, '暂无活动数据'));
  fill('liaison', liaisonSummary(d.liaison));
  const byId = new Map((sites || []).map((s) => [s.site_id, { ...s, township: s.township || (kind === 'township' ? code : undefined) }]));
  fill('people', peopleSummary(d.development, d.mobility, me, (x) => byId.get(x.site_id) || x));
}

start(async () => {
  me = await loadMe();
  header(me);
  code = codeFromPath();
  const name = kind === 'department' ? departmentName(me, code) : townshipName(me, code);
  fill('title', `${name} · 工地党建`);
  document.title = `${name} · ${KIND_LABEL} · 工地党建`;
  document.getElementById('sites-filter').addEventListener('input', renderSites);
  asOfControl();
  const past = asOf();
  const data = await view(kind, { [kind]: code, ...(past || {}) });
  if (kind === 'township' && !past && me.may_write && (!me.township || me.township === code) && me.role !== 'site') {
    document.querySelector('.head-right').prepend(h('a', { class: 'btn btn-light', id: 'register-link',
      href: `/register?township=${encodeURIComponent(code)}` }, '登记工地'));
  }
  // The roster and project list of this area: a township's for a login that reads it whole (the city, the auditor,
  // the township itself); a department's for the department itself (its lists are what it supervises).
  const own = kind === 'township' ? ['city', 'auditor'].includes(me.role) || me.township === code
    : me.department === code;
  downloadButtons(kind, { [kind]: code, ...(past || {}) },
    { me, lists: past || !own ? null : (kind === 'township' ? { township: code } : {}) });
  if (data && data.name) {
    fill('title', `${data.name} · 工地党建`);
    document.title = `${data.name} · ${KIND_LABEL} · 工地党建`;
  }
  render(data);
  if (past) { showAsOf(data); return; }
  const snap = snapshotOf(data);
  setFreshness(snap.at, snap.seq);
  live(kind, code, render, {
    initialSeq: Number.isFinite(snap.seq) ? snap.seq : -1,
    onFailure: (err) => showProblem(err),
  });
});
