// 全市大屏: the city view, live. Figures carry data-figure attributes; charts are re-set whole (notMerge).
import {
  COVERAGE_TITLE, LABELS, POST_KINDS, TEAM_KINDS, asOf, asOfControl, cityMoment, cityToday, coverageParts, disputesTable, downloadButtons, fig, fill,
  fmt, h, header, live, loadMe, mayReadDepartment, mayReadSite, mayReadTownship, pad2, pageLink, setFreshness, showAsOf, snapshotOf,
  start, sum, supportList, talksDoneSplit, townshipName, view,
} from '/static/app.js';

const FONT = '"Noto Sans CJK SC", "Source Han Sans SC", "Microsoft YaHei", "PingFang SC", sans-serif';
const WEEK = ['日', '一', '二', '三', '四', '五', '六'];
const COLORS = { projects: '#ff5b5b', members: '#f2b84b', workers: '#4fa3ff', arrivals: '#73d13d', departures: '#ff7875', started: '#f2b84b' };

let me = null;
const charts = {};
const chartInputs = {};

function tick() {
  const m = cityMoment();  // the city's time on a screen wherever its clock is set
  fill('clock', `${m.year}年${m.month}月${m.day}日 星期${WEEK[m.weekday]} ${m.hh}:${m.mm}:${m.ss}`);
}

function kpi(name, title, value, { unit, sub, extra } = {}) {
  return h('div', { class: 'kpi', dataset: { kpi: name } },
    h('div', { class: 'kpi-title' }, title),
    h('div', { class: 'kpi-value' }, fig(name, value), extra, unit ? h('span', { class: 'unit' }, unit) : null),
    sub ? h('div', { class: 'kpi-sub' }, sub) : null);
}

function stat(name, title, value, { unit, tone, hint } = {}) {
  return h('div', { class: `stat${tone ? ` ${tone}` : ''}`, title: hint || null },
    h('div', { class: 'stat-label' }, title),
    h('div', { class: 'stat-value' }, fig(name, value), unit ? h('span', { class: 'unit' }, unit) : null));
}

function renderKpis(d) {
  const probationary = Math.max(0, (d.members ?? 0) - (d.full_members ?? 0));
  fill('kpis',
    kpi('projects', '重点工程项目', d.projects ?? 0, {
      unit: '个', sub: ['在建 ', fig('projects_active', Math.max(0, (d.projects ?? 0) - (d.completed ?? 0))), ' · 已竣工 ', fig('completed', d.completed ?? 0)],
    }),
    kpi('workers', '从业人员', d.workers ?? 0, { unit: '人', sub: '各工地上报在岗人数' }),
    kpi('members', '党员', d.members ?? 0, {
      unit: '名', sub: ['正式党员 ', fig('full_members', d.full_members ?? 0), ' · 预备党员 ', fig('probationary_members', probationary)],
    }),
    kpi('branches', '工地党支部', d.branches ?? 0, {
      unit: '个', sub: ['应组建 ', fig('should_form_count', (d.should_form_branch || []).length), ' 个'],
    }),
    coverageTile(d.coverage || {}));
}

function coverageTile(cov) {
  const { value, extra, sub } = coverageParts(cov);
  return kpi('covered', COVERAGE_TITLE, value, { extra, sub });
}

function siteItem(s) {
  const name = mayReadSite(me, s)
    ? h('a', { href: pageLink(`/site/${encodeURIComponent(s.site_id)}`), class: 'site-name' }, s.name)
    : h('span', { class: 'site-name' }, s.name);
  return h('li', { dataset: { siteId: s.site_id, township: s.township }, title: `${s.name}（${townshipName(me, s.township)}，在场正式党员 ${fmt(s.full_members ?? 0)} 名）` }, name,
    h('span', { class: 'site-meta' }, `正式 ${fmt(s.full_members ?? 0)}`));
}

function renderLists(d) {
  const gaps = d.gaps || [];
  const should = d.should_form_branch || [];
  fill('gaps-count', fmt(gaps.length));
  fill('gaps', gaps.length ? gaps.map(siteItem) : h('li', { class: 'empty' }, '无空白点'));
  fill('should-count', fmt(should.length));
  fill('should-form', should.length ? should.map(siteItem) : h('li', { class: 'empty' }, '暂无'));
}

function renderRoles(a, dev) {
  a = a || {};
  dev = dev || {};
  const teams = a.teams || {};
  const posts = a.posts || {};
  const talent = a.talent || {};
  fill('roles',
    h('div', { class: 'stat-row' },
      stat('zones', '党员责任区', a.zones ?? 0, { unit: '个', tone: 'gold' }),
      stat('teams', '党员队伍', sum(Object.values(teams)), { unit: '支', tone: 'gold' }),
      stat('posts', '党员示范岗', sum(Object.values(posts)), { unit: '个', tone: 'gold' }),
      stat('work_points', '示范工点', a.work_points ?? 0, { unit: '个' }),
      stat('innovations', '小发明小革新', a.innovations ?? 0, { unit: '项' })),
    h('div', { class: 'stat-row', dataset: { section: 'talent' } },
      stat('development.developed', '发展党员', dev.developed ?? 0, { unit: '名', tone: 'gold' }),
      stat('talent.backbone_trained', '培养骨干', talent.backbone_trained ?? 0, { unit: '名' }),
      stat('talent.recommended_management', '推荐进入管理层', talent.recommended_management ?? 0, { unit: '名' }),
      stat('development.applied', '入党申请', dev.applied ?? 0, { unit: '人' }),
      stat('development.activists', '积极分子', dev.activists ?? 0, { unit: '人' })),
    h('h3', null, '党员队伍'),
    h('ul', { class: 'kinds three' }, TEAM_KINDS.map((k) => h('li', null, h('span', null, LABELS.team[k]), fig(`teams.${k}`, teams[k] ?? 0)))),
    h('h3', null, `党员示范岗（${fmt(a.post_kinds ?? 0)} 类）`),
    h('ul', { class: 'kinds' }, POST_KINDS.map((k) => h('li', null, h('span', null, LABELS.post[k]), fig(`posts.${k}`, posts[k] ?? 0)))));
}

// 组织生活 on the wall, under 帮扶驻地 (the panel with room at 1366×768): 三会一课 this period, the latest year's 民主评议
// and 党员积分, earlier years in the tiles' hints. Before, the city screen left all three out (the township,
// department and site pages had them).
function branchLifeRow(a) {
  a = a || {};
  const meetings = a.meetings || {};
  const appraisal = a.appraisal || {};
  const points = a.points || {};
  const years = (list, said) => (list || []).slice(1).map(said).join('；') || null;
  return h('div', { class: 'stat-row', dataset: { section: 'branch-life' } },
    stat('meetings.due', '三会一课本期待开', meetings.due ?? 0, {
      unit: '次', tone: meetings.due ? 'gold' : '', hint: `本期已开 ${meetings.held ?? 0} 次`,
    }),
    stat('meetings.overdue', '上期未开', meetings.overdue ?? 0, { unit: '次', tone: meetings.overdue ? 'red' : 'green' }),
    stat('appraisal.appraised', appraisal.year ? `${appraisal.year}年度民主评议` : '民主评议', appraisal.appraised ?? 0, {
      unit: '人',
      hint: years(appraisal.years, (y) => `${y.year}年度 ${y.branches} 个支部评议 ${y.appraised} 人`),
    }),
    stat('points.total', points.year ? `${points.year}年党员积分` : '党员积分', points.total ?? 0, {
      unit: '分',
      hint: [points.year ? `${points.year}年 ${points.sites ?? 0} 个工地 ${points.members ?? 0} 名党员` : null,
        years(points.years, (y) => `${y.year}年 ${y.sites} 个工地 ${y.members} 名党员 ${y.total} 分`)].filter(Boolean).join('；') || null,
    }));
}

function renderCases(a, l) {
  a = a || {};
  l = l || {};
  const talks = a.talks || {};
  const visits = a.visits || {};
  fill('cases',
    h('div', { class: 'stat-row' },
      stat('talks_open', '待谈', talks.open ?? 0, { tone: 'gold' }),
      stat('talks_overdue', '其中逾期', talks.overdue ?? 0, { tone: talks.overdue ? 'red' : '' }),
      // the wall has no room for a line more: the split is the tile's hint (the township pages show it)
      stat('talks_done', '已谈', talks.done ?? 0, { tone: 'green', hint: talksDoneSplit(a)?.textContent }),
      stat('petitions', '上访', l.petitions ?? 0, { tone: l.petitions ? 'red' : 'green' }),
      stat('wage_petitions', '薪资纠纷上访', l.wage_petitions ?? 0, { tone: l.wage_petitions ? 'red' : 'green' })),
    h('ul', { class: 'kinds three visits' }, Object.keys(LABELS.visit).map((k) => h('li', null, h('span', null, LABELS.visit[k]), h('span', null, fig(`visits.${k}`, visits[k] ?? 0), h('span', { class: 'unit' }, '次'))))),
    disputesTable(l.disputes));
}

function renderSupport(l, a) {
  l = l || {};
  const co = l.cobuilding || {};
  fill('support',
    supportList(l.support),
    h('p', { class: 'rule' }, '党建联创 ', fig('cobuilding_completed', co.completed ?? 0), ' / ', fig('cobuilding_items', co.items ?? 0),
      ` 项共建清单完成 · 联席会议 ${fmt(l.meetings ?? 0)} 次`),
    h('h3', null, '组织生活'),
    branchLifeRow(a));
}

function renderLinks(d) {
  const fromView = Object.fromEntries((d.townships || []).map((t) => [t.township, t.name]));
  const townships = { ...((me.city && me.city.townships) || {}), ...fromView };
  fill('township-links', Object.entries(townships)
    .filter(([code]) => mayReadTownship(me, code))
    .map(([code, name]) => h('a', { href: pageLink(`/township/${encodeURIComponent(code)}`), dataset: { township: code } }, name)));
  // The departments by name, a link only where this login may open the page (else a refusal behind the link).
  const departments = (me.city && me.city.departments) || {};
  fill('department-links', Object.entries(departments)
    .filter(([code]) => me.role !== 'department' || code === me.department)
    .map(([code, name]) => (mayReadDepartment(me, code)
      ? h('a', { href: pageLink(`/department/${encodeURIComponent(code)}`), dataset: { department: code } }, name)
      : h('span', { class: 'chip', dataset: { department: code } }, name))));
}

// ---- charts ----------------------------------------------------------------------------------------------------

function chart(id) {
  if (!globalThis.echarts) return null;
  if (!charts[id]) {
    const el = document.getElementById(id);
    if (!el) return null;
    charts[id] = globalThis.echarts.init(el, null, { renderer: 'svg' });
    new ResizeObserver(() => charts[id] && charts[id].resize()).observe(el);
  }
  return charts[id];
}

// setOption only when the chart's input changed, and always whole (notMerge): nothing accumulates.
function setChart(id, input, build) {
  const key = JSON.stringify(input);
  if (chartInputs[id] === key) return;
  const c = chart(id);
  if (!c) {
    fill(id, h('p', { class: 'empty' }, '图表组件未加载'));
    return;
  }
  const first = chartInputs[id] === undefined;
  chartInputs[id] = key;
  c.setOption({ animation: first, textStyle: { fontFamily: FONT }, ...build(input) }, { notMerge: true });
}

const AXIS = {
  axisLine: { lineStyle: { color: 'rgba(169,184,207,.5)' } },
  axisLabel: { color: '#a9b8cf', fontSize: 13 },
  splitLine: { lineStyle: { color: 'rgba(120,160,220,.12)' } },
};
const LEGEND = { top: 0, left: 'center', textStyle: { color: '#e8eef8', fontSize: 13 }, itemWidth: 14, itemHeight: 10 };
const TOOLTIP = { trigger: 'axis', backgroundColor: 'rgba(7,16,31,.92)', borderColor: '#c8161d', textStyle: { color: '#e8eef8' } };

function townshipOption(rows) {
  return {
    color: [COLORS.projects, COLORS.members, COLORS.workers],
    legend: { ...LEGEND, data: ['项目', '党员', '从业人员'] },
    tooltip: { ...TOOLTIP, axisPointer: { type: 'shadow' } },
    grid: { left: 8, right: 8, top: 48, bottom: 4, containLabel: true },
    xAxis: {
      type: 'category', data: rows.map((t) => t.name), ...AXIS,
      axisLabel: { ...AXIS.axisLabel, interval: 0, rotate: rows.length > 10 ? 40 : 0, fontSize: 12 },
      triggerEvent: true,
    },
    yAxis: [
      { type: 'value', name: '项目 / 党员', nameTextStyle: { color: '#6f819c' }, minInterval: 1, ...AXIS },
      { type: 'value', name: '从业人员', nameTextStyle: { color: '#6f819c' }, minInterval: 1, ...AXIS, splitLine: { show: false } },
    ],
    series: [
      { name: '项目', type: 'bar', data: rows.map((t) => t.projects ?? 0), barMaxWidth: 14, cursor: 'pointer' },
      { name: '党员', type: 'bar', data: rows.map((t) => t.members ?? 0), barMaxWidth: 14, cursor: 'pointer' },
      { name: '从业人员', type: 'line', yAxisIndex: 1, data: rows.map((t) => t.workers ?? 0), symbolSize: 6, smooth: true, cursor: 'pointer' },
    ],
  };
}

// Months from the first to the last one given, the missing ones as zeros: a true time line.
function monthsFilled(rows) {
  const by = new Map(rows.filter((r) => /^\d{4}-\d{2}$/.test(r.month)).map((r) => [r.month, r]));
  const keys = [...by.keys()].sort();
  if (!keys.length) return [];
  const out = [];
  let [y, m] = keys[0].split('-').map(Number);
  const [ly, lm] = keys[keys.length - 1].split('-').map(Number);
  while ((y < ly || (y === ly && m <= lm)) && out.length < 600) {
    const k = `${y}-${pad2(m)}`;
    out.push(by.get(k) || { month: k, arrivals: 0, departures: 0, sites_started: 0 });
    m += 1;
    if (m > 12) { m = 1; y += 1; }
  }
  return out;
}

function monthOption(rows) {
  if (!rows.length) {
    return { graphic: { type: 'text', left: 'center', top: 'middle', style: { text: '暂无逐月数据', fill: '#6f819c', fontSize: 18 } } };
  }
  const long = rows.length > 36;
  return {
    color: [COLORS.arrivals, COLORS.departures, COLORS.started],
    legend: { ...LEGEND, data: ['党员进场', '党员离场', '新开工项目'] },
    tooltip: TOOLTIP,
    grid: { left: 8, right: 8, top: 48, bottom: long ? 34 : 4, containLabel: true },
    dataZoom: long ? [{ type: 'inside', start: 0, end: 100 }, { type: 'slider', height: 16, bottom: 4, textStyle: { color: '#a9b8cf' }, borderColor: 'rgba(120,160,220,.22)' }] : [],
    xAxis: { type: 'category', boundaryGap: false, data: rows.map((r) => r.month), ...AXIS },
    yAxis: [
      { type: 'value', name: '党员（人次）', nameTextStyle: { color: '#6f819c' }, minInterval: 1, ...AXIS },
      { type: 'value', name: '项目', nameTextStyle: { color: '#6f819c' }, minInterval: 1, ...AXIS, splitLine: { show: false } },
    ],
    series: [
      { name: '党员进场', type: 'line', smooth: true, showSymbol: rows.length <= 36, areaStyle: { opacity: 0.12 }, data: rows.map((r) => r.arrivals ?? 0) },
      { name: '党员离场', type: 'line', smooth: true, showSymbol: rows.length <= 36, data: rows.map((r) => r.departures ?? 0) },
      { name: '新开工项目', type: 'bar', yAxisIndex: 1, barMaxWidth: 10, data: rows.map((r) => r.sites_started ?? 0) },
    ],
  };
}

function renderCharts(d) {
  const rows = (d.townships || []).map((t) => ({ township: t.township, name: t.name || townshipName(me, t.township), projects: t.projects, members: t.members, workers: t.workers }));
  setChart('chart-townships', rows, townshipOption);
  const c = charts['chart-townships'];
  if (c && !c.__gongdiClick) {
    c.__gongdiClick = true;
    c.on('click', (p) => {
      const current = JSON.parse(chartInputs['chart-townships'] || '[]');
      const row = p.componentType === 'xAxis' ? current.find((t) => t.name === p.value) : current[p.dataIndex];
      if (row && mayReadTownship(me, row.township)) location.assign(pageLink(`/township/${encodeURIComponent(row.township)}`));
    });
  }
  setChart('chart-months', monthsFilled(d.by_month || []), monthOption);
}

function render(d) {
  if (!d) return;
  document.body.dataset.city = d.city || '';
  renderKpis(d);
  renderLists(d);
  renderRoles(d.activities, d.development);
  renderCases(d.activities, d.liaison);
  renderSupport(d.liaison, d.activities);
  renderLinks(d);
  renderCharts(d);
}

// Long lists on a wall screen creep upwards by themselves (paused under the mouse), then start again at the top.
function autoScroll(el) {
  let rest = 60;
  setInterval(() => {
    if (el.scrollHeight - el.clientHeight < 4 || el.matches(':hover')) return;
    if (rest > 0) { rest -= 1; return; }
    if (el.scrollTop + el.clientHeight >= el.scrollHeight - 1) {
      el.scrollTop = 0;
      rest = 60;
      return;
    }
    el.scrollTop += 1;
    if (el.scrollTop + el.clientHeight >= el.scrollHeight - 1) rest = 60;
  }, 50);
}

// The city's yearly report of last year and of this year so far, for the logins that may make it (they open in a new
// tab: the report asks the views for each year's end, which takes a while).
// The yearly reports: this year, the last, and every year the city's record has months of (before, the last two only,
// and the demo city's 2020 was reached by typing its address).
function reportLinks(d) {
  const menu = document.getElementById('more-menu');
  if (!menu || !['city', 'auditor', 'dashboard'].includes(me.role)) return;
  const year = Number(cityToday().slice(0, 4));
  const recorded = (d.by_month || []).map((r) => Number(String(r.month).slice(0, 4))).filter((y) => y > 1921 && y <= year);
  const years = [...new Set([year, year - 1, ...recorded])].sort((a, b) => b - a).slice(0, 12);
  menu.append(...years.map((y) => h('a', { id: `report-${y}`, href: `/api/report/${y}`,
    target: '_blank', rel: 'noopener', title: `${y}年全市工地党建年度报告（HTML；加 ?format=pdf 得 PDF），生成需数十秒` },
  `${y}年度报告`)));
  document.getElementById('more-downloads').hidden = false;
}

start(async () => {
  document.querySelectorAll('[data-autoscroll]').forEach(autoScroll);
  tick();
  setInterval(tick, 1000);
  me = await loadMe();
  header(me, { nav: false });
  const cityName = (me.city && me.city.name) || '';
  fill('title', `${cityName}工地党建 · 全市大屏`);
  document.title = `${cityName}工地党建 · 全市大屏`;
  asOfControl();
  const past = asOf();
  const data = await view('city', past || {});
  downloadButtons('city', past || {}, { me, lists: past ? null : {} });
  reportLinks(data);
  render(data);
  if (past) { showAsOf(data); return; }
  const snap = snapshotOf(data);
  setFreshness(snap.at, snap.seq);
  live('city', (me.city && me.city.code) || data.city, render, { initialSeq: Number.isFinite(snap.seq) ? snap.seq : -1 });
});
