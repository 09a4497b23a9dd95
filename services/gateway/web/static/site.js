// 工地 page: project facts, branch, groups, members, counts, talks due, political birthdays, development, mobility,
// activities, liaison.
import {
  ApiError, LABELS, activitiesSummary, actorName, asOf, asOfControl, card, cityToday, downloadButtons, fig, fill, flag, fmt, h, header, label, liaisonSummary,
  live, loadMe,
  setFreshness, showAsOf, showProblem, snapshotOf, start, table, thisMonth, throttle, townshipName, view,
} from '/static/app.js';

let me = null;
let siteId = '';
let current = null;
let names = new Map();

function siteFromPath() {
  const parts = location.pathname.split('/').filter(Boolean); // ['site', '<id>', ...]
  if (parts[0] === 'site' && parts[1]) return decodeURIComponent(parts[1]);
  return new URLSearchParams(location.search).get('site_id') || (me && me.site) || '';
}

function nameOf(id) { return names.get(id) || id; }

// A wide table scrolls inside its own box on a phone, not the whole page sideways.
function scrolling(el) {
  return el.tagName === 'TABLE' ? h('div', { class: 'table-scroll' }, el) : el;
}

function addMonths(iso, months) {
  const [y, m] = iso.split('-').map(Number);
  const total = y * 12 + (m - 1) + Number(months);
  return `${Math.floor(total / 12)}年${(total % 12) + 1}月`;
}

function bars(map, labels) {
  const entries = Object.entries(map || {});
  if (!entries.length) return h('p', { class: 'empty' }, '暂无');
  const max = Math.max(...entries.map(([, v]) => Number(v) || 0), 1);
  return h('ul', { class: 'bars' }, entries.map(([k, v]) => {
    const bar = h('span');
    bar.style.width = `${Math.round(((Number(v) || 0) / max) * 100)}%`;
    return h('li', { dataset: { key: k } }, h('span', null, labels ? label(labels, k) : k), h('span', { class: 'bar' }, bar), h('span', { class: 'n' }, fmt(v)));
  }));
}

function renderFigures(d) {
  const probationary = Math.max(0, (d.members_present ?? 0) - (d.full_members ?? 0));
  const rel = d.by_relation || {};
  const talks = (d.activities && d.activities.talks) || {};
  fill('figures',
    card('workforce', '从业人员', d.workforce ?? 0, { unit: '人', accent: true }),
    card('members_present', '在场党员', d.members_present ?? 0, { unit: '名', accent: true, sub: ['正式 ', fig('full_members', d.full_members ?? 0), ' · 预备 ', fig('probationary_members', probationary)] }),
    card('mobile', '流动党员', rel.mobile ?? 0, { unit: '名', sub: ['组织关系转入 ', fig('transferred', rel.transferred ?? 0)] }),
    card('groups', '党小组', (d.groups || []).length, { unit: '个' }),
    card('talks_open', '谈话待谈', talks.open ?? 0, { sub: ['其中逾期 ', fig('talks_overdue', talks.overdue ?? 0)] }));
}

function renderProject(d) {
  const units = d.units || {};
  const flags = [];
  const today = d.as_of && d.as_of.day ? d.as_of.day : cityToday();
  if (d.completed_on) flags.push(flag(`已竣工 ${d.completed_on}`, 'done'));
  else if (d.start_date && d.start_date > today) flags.push(flag(`未开工（${d.start_date} 开工）`, 'info'));  // before: 在建
  else flags.push(flag('在建', 'info'));
  if (d.qualifies) flags.push(flag('强制覆盖', 'info'));
  if (d.gap) flags.push(flag('空白点', 'gap'));
  if (d.should_form_branch) flags.push(flag('应组建党支部', 'should'));
  const cost = Number(d.cost_wan);
  fill('project', h('dl', { class: 'facts wide' },
    h('dt', null, '项目名称'), h('dd', { dataset: { figure: 'site_name' } }, d.name),
    h('dt', null, '状态'), h('dd', null, flags),
    h('dt', null, '所在乡镇'), h('dd', null, d.township_name || townshipName(me, d.township)),
    h('dt', null, '项目主管部门'), h('dd', null, d.department || '—'),
    h('dt', null, '总投资'), h('dd', null, fig('cost_wan', d.cost_wan), ' 万元', Number.isFinite(cost) && cost >= 10000 ? h('span', { class: 'muted' }, `（${fmt(cost / 10000)} 亿元）`) : null),
    h('dt', null, '计划工期'), h('dd', null, fig('planned_months', d.planned_months), ' 个月',
      d.start_date ? h('span', { class: 'muted' }, `（${d.start_date} 开工，计划 ${addMonths(d.start_date, d.planned_months)} 完工）`) : null),
    ['owner', 'design', 'construction', 'supervision'].map((k) => [h('dt', null, LABELS.unitKind[k]), h('dd', null, units[k] || '—')]),
    Object.keys(units).filter((k) => !['owner', 'design', 'construction', 'supervision'].includes(k))
      .map((k) => [h('dt', null, label(LABELS.unitKind, k)), h('dd', null, units[k])])));
}

function renderBranch(d) {
  const b = d.branch;
  if (!b) {
    fill('branch', h('p', { class: 'empty', id: 'no-branch' }, '尚未组建工地兼合党支部'),
      d.should_form_branch ? h('p', null, flag('应组建党支部', 'should'), `在场正式党员 ${fmt(d.full_members)} 名，已达到组建条件（≥3 名）。`) : null,
      d.gap ? h('p', null, flag('空白点', 'gap'), '本项目属强制覆盖范围，尚未建立党组织。') : null);
    return;
  }
  const committee = b.committee_names || (b.committee || []).map(nameOf);
  fill('branch', h('dl', { class: 'facts wide' },
    h('dt', null, '支部名称'), h('dd', { dataset: { figure: 'branch_name' } }, b.name),
    h('dt', null, '成立日期'), h('dd', null, b.formed_on || '—'),
    h('dt', null, '支部书记'), h('dd', { dataset: { figure: 'secretary_name' } }, b.secretary_name || nameOf(b.secretary) || '—',
      b.secretary_departed ? h('span', { class: 'warn' }, '（已离场，请重新选举）') : null),
    h('dt', null, '党建工作指导员'), h('dd', null, b.instructor || '—'),
    h('dt', null, '联络员'), h('dd', null, b.liaison || '—'),
    h('dt', null, '支部委员'), h('dd', null, committee.length ? committee.join('、') : h('span', { class: 'muted' }, '未设支委会')),
    h('dt', null, '组成单位'), h('dd', null, (b.member_units || []).join('、') || '—'),
    h('dt', null, '成立时党员'), h('dd', null, `${fmt(b.members)} 名（正式党员 ${fmt(b.full_members)} 名）`)));
}

function renderGroups(d) {
  const groups = d.groups || [];
  fill('groups', scrolling(table(['党小组', '工段/班组', '组长', '成员', '成立日期'], groups.map((g) => {
    const left = new Set(g.departed || []);
    const members = (g.members || []).map((id, i) => `${(g.member_names || [])[i] || nameOf(id)}${left.has(id) ? '（已离场）' : ''}`);
    const gone = left.size ? `，${fmt(left.size)} 人已离场` : '';
    return h('tr', { dataset: { groupId: g.group_id } },
      h('td', null, g.name), h('td', null, g.section),
      h('td', null, g.leader_name || nameOf(g.leader), left.has(g.leader) ? h('span', { class: 'warn' }, '（已离场）') : null),
      h('td', null, `${members.join('、')}（${fmt(members.length)} 人${gone}）`), h('td', null, g.formed_on));
  }), { empty: '尚未成立党小组' })));
}

function renderMembers() {
  const d = current;
  if (!d) return;
  const filter = (document.getElementById('members-filter').value || '').trim();
  const list = (d.members || []).filter((m) => !filter
    || [m.name, m.unit_name, m.section, label(LABELS.unitKind, m.unit_kind), m.member_id].some((x) => String(x || '').includes(filter)));
  const secretary = d.branch && d.branch.secretary;
  const leaders = new Set((d.groups || []).map((g) => g.leader));
  fill('members-note', `共 ${fmt((d.members || []).length)} 名${filter ? `，筛选出 ${fmt(list.length)} 名` : ''}`);
  if (!list.length) {
    fill('members', h('p', { class: 'empty' }, (d.members || []).length ? '没有符合条件的党员' : '暂无在场党员'));
    return;
  }
  fill('members', h('div', { class: 'table-scroll' }, h('table', { class: 'data', id: 'members-table' },
    h('thead', null, h('tr', null, ['姓名', '党员类别', '单位类别', '单位名称', '岗位', '工段/班组', '组织关系', '进场日期'].map((x) => h('th', null, x)))),
    h('tbody', null, list.map((m) => h('tr', { dataset: { memberId: m.member_id } },
      h('td', null, m.name,
        m.member_id === secretary ? h('span', { class: 'member-tags' }, flag('书记', 'ok')) : null,
        leaders.has(m.member_id) ? h('span', { class: 'member-tags' }, flag('组长', 'info')) : null),
      h('td', null, label(LABELS.statusShort, m.status)),
      h('td', null, label(LABELS.unitKind, m.unit_kind)),
      h('td', null, m.unit_name),
      h('td', null, label(LABELS.job, m.job)),
      h('td', null, m.section),
      h('td', null, label(LABELS.relation, m.relation)),
      h('td', null, m.arrived_on)))))));
}

function renderCounts(d) {
  fill('counts',
    h('div', null, h('h3', null, '按单位类别'), bars(d.by_unit_kind, LABELS.unitKind)),
    h('div', null, h('h3', null, '按工段/班组'), bars(d.by_section)),
    h('div', null, h('h3', null, '按组织关系'), bars(d.by_relation, LABELS.relationLong)));
}

function renderDepartures(d) {
  const out = d.recent_departures || [];
  const holders = d.departed_holders || [];
  fill('departures',
    scrolling(table(['姓名', '离场日期', '去向', '原因', '记录人'], out.map((x) => [
      x.name || x.member_id, x.departed_on, x.moved_to_site ? `转至工地 ${x.moved_to_name || x.moved_to_site}` : '离开工地',
      x.reason || '',
      h('span', { title: x.recorded_by || '' }, actorName(me, x.recorded_by))]),
    { empty: '近期无人离场' })),
    holders.length ? h('div', null, h('h3', null, '需调整的负责人（已离场）'),
      h('ul', { class: 'plain' }, holders.map((x) => h('li', { class: 'warn' },
        x.what === 'post' ? `示范岗「${label(LABELS.post, x.kind)}」（${x.id}）`
          : x.what === 'team' ? `队组「${x.kind}」（${x.id}）组长`
            : x.what === 'secretary' ? `党支部「${x.kind}」书记`
              : x.what === 'group' ? `党小组「${x.kind}」（${x.id}）组长` : `责任区「${x.kind}」（${x.id}）`,
        `负责人 ${x.name || nameOf(x.member_id)} 已离场，请重新指定`)))) : null);
}

// 组织生活: 三会一课 owed, the latest 民主评议 and the 积分排名, in a section of their own (before, headings without a
// card under the departures, and no appraisal at all).
function renderBranchLife(d) {
  const ranking = (d.points_ranking && d.points_ranking.members) || [];
  const earlier = d.points_ranking && d.points_ranking.earlier;
  const owed = (d.meetings_due || []).filter((x) => x.due || x.overdue);
  const appraisal = (d.activities || {}).appraisal || {};
  const grades = appraisal.grades || {};
  fill('branch-life',
    (d.meetings_due || []).length ? h('div', null, h('h3', null, '三会一课'),
      owed.length ? h('ul', { class: 'plain' }, owed.map((x) => h('li', { class: x.overdue ? 'warn' : '' },
        `${label(LABELS.meetingKind, x.kind)}：${x.due ? '本期待开' : ''}${x.due && x.overdue ? '，' : ''}${x.overdue ? '上期未开' : ''}`
        + `（最近 ${x.last_held_on || '未开过'}）`)))
        : h('p', { class: 'muted' }, '本期会议均已召开')) : null,
    h('div', { dataset: { part: 'appraisal' } }, h('h3', null, '民主评议'),
      appraisal.appraised
        ? h('p', null, `${appraisal.year}年度评议党员 ${fmt(appraisal.appraised)} 名：`
          + Object.keys(LABELS.grade).map((g) => `${LABELS.grade[g]} ${fmt(grades[g] ?? 0)}`).join('，'))
        : h('p', { class: 'muted' }, '尚未开展民主评议')),
    ranking.length ? h('div', null, h('h3', null, `${d.points_ranking.year}年党员积分排名`), rankingTable(ranking)) : null,
    // the year before with points, folded: a new year's first award no longer hides last year's whole ranking
    earlier && earlier.members.length ? h('details', { dataset: { part: 'earlier-ranking' } },
      h('summary', null, `${earlier.year}年党员积分排名`), rankingTable(earlier.members)) : null);
}

function rankingTable(rows) {
  return scrolling(table(['名次', '党员', '积分'], rows.map((x) => [String(x.rank), x.name || x.member_id, fmt(x.points)])));
}

// 发展党员: each person on the path with the day of the step reached; who is late is not judged here (the rules are
// the service's), only shown: a probation past its end without confirmation is marked.
function renderDevelopment(d) {
  const byStage = d.development_candidates || {};
  const today = d.as_of && d.as_of.day ? d.as_of.day : cityToday();
  const stepDay = { applicant: 'applied_on', activist: 'activist_on', target: 'target_on', probationary: 'admitted_on', full: 'confirmed_on' };
  const rows = Object.keys(LABELS.stage).flatMap((stage) => (byStage[stage] || []).map((p) => h('tr', { dataset: { personId: p.person_id, stage } },
    h('td', null, p.name || p.person_id, p.departed ? h('span', { class: 'muted' }, '（已离场）') : null),
    h('td', null, label(LABELS.stage, stage)), h('td', null, p[stepDay[stage]] || ''),
    h('td', null, p.applied_on || ''),
    h('td', null, stage === 'probationary' && p.probation_ends
      ? (p.probation_ends < today && !p.departed ? flag(`预备期满 ${p.probation_ends}，待转正`, 'gap')
        : `预备期至 ${p.probation_ends}${p.extensions ? '（已延长）' : ''}`)
      : ''))));
  fill('development', scrolling(table(['姓名', '阶段', '进入本阶段', '申请日期', '预备期'], rows, { empty: '本工地暂无入党申请人、积极分子、发展对象或在此接收的预备党员', cls: 'data nowrap' })));
}

// Of the members present not celebrated this year: those whose month has passed (missed, named) apart from those
// whose month is still to come (before, November said 40 members "not yet", all of them, without telling which).
function missedLine(waiting, month) {
  const missed = waiting.filter((x) => Number(String(x.admitted_on).slice(5, 7)) < month);
  const coming = waiting.filter((x) => Number(String(x.admitted_on).slice(5, 7)) > month).length;
  if (!missed.length && !coming) return null;
  const names = missed.slice(0, 12).map((x) => x.name).join('、') + (missed.length > 12 ? ` 等` : '');
  return h('p', { class: 'muted', id: 'birthdays-missed' },
    missed.length ? `今年政治生日已过而未过红色生日会：${fmt(missed.length)} 名（${names}）` : '今年已过的政治生日都已过红色生日会',
    coming ? `；本年内还有 ${fmt(coming)} 名将过政治生日` : '');
}

function renderMobility(d) {
  const mo = d.mobility || {};
  const items = [
    // When it fell due comes first: the day the reminder was made is only when the platform noticed.
    ...(mo.transfer_prompts || []).map((x) => [x.name || x.member_id, '应转接组织关系', `进场 ${x.arrived_on}`, `应于 ${x.due_on}`, `${x.prompted_on} 提醒`]),
    ...(mo.escalated || []).map((x) => [x.name || x.member_id, flag('失联已上报', 'gap'), `最后联系 ${x.last_contact_on}`, `应于 ${x.due_on}`, `${x.escalated_on} 上报`]),
    ...(mo.contact_lost || []).map((x) => [x.name || x.member_id, flag('失联', 'should'), `最后联系 ${x.last_contact_on}`, '', '']),
  ];
  fill('mobility', scrolling(table(['党员', '待办', '起因', '应办日期', '提醒'], items, { empty: '没有流动党员待办', cls: 'data nowrap' })));
}

async function loadTalks() {
  try {
    const t = await view('talks', { site_id: siteId });
    const rows = (t.open || []);
    fill('talks', scrolling(table(['党员', '必谈事由', '产生日期', '应谈日期', '状态'], rows.map((x) => h('tr', { dataset: { obligationId: x.obligation_id, overdue: x.overdue ? 'true' : 'false' } },
      h('td', null, x.name || nameOf(x.member_id)), h('td', null, label(LABELS.talkReason, x.reason)), h('td', null, x.created_on),
      h('td', null, x.due_on), h('td', null, x.overdue ? flag('已逾期', 'gap') : flag('待谈', 'should')))),
    { empty: '没有待谈的必谈任务' })));
  } catch (err) {
    if (err instanceof ApiError && err.status === 401) return;
    fill('talks', h('p', { class: 'warn' }, `无法加载：${err.message}`));
  }
}

async function loadBirthdays() {
  try {
    const month = thisMonth();
    const b = await view('birthdays', { site_id: siteId, month });
    const [y, m] = (b.month || month).split('-').map(Number);
    fill('birthdays-title', `${y}年${m}月政治生日`);
    fill('birthdays', scrolling(table(['姓名', '入党日期', '党龄', '红色生日会'], (b.members || []).map((x) => h('tr', { dataset: { memberId: x.member_id } },
      h('td', null, x.name), h('td', null, x.admitted_on), h('td', null, `${y - Number(String(x.admitted_on).slice(0, 4))} 年`),
      h('td', null, x.celebrated_on ? flag(`已过 ${x.celebrated_on}`, 'ok') : flag('待过', 'should')))),
    { empty: '本月没有党员过政治生日' })),
    missedLine(b.not_celebrated_this_year || [], m));
  } catch (err) {
    if (err instanceof ApiError && err.status === 401) return;
    fill('birthdays', h('p', { class: 'warn' }, `无法加载：${err.message}`));
  }
}

const refreshSide = throttle(() => { loadTalks(); loadBirthdays(); }, 5000);

function render(d, { side = true } = {}) {
  if (!d) return;
  current = d;
  names = new Map((d.members || []).map((m) => [m.member_id, m.name]));
  for (const x of d.recent_departures || []) if (x.name && !names.has(x.member_id)) names.set(x.member_id, x.name);
  fill('title', `${d.name} · 工地党建`);
  document.title = `${d.name} · 工地党建`;
  renderFigures(d);
  renderProject(d);
  renderBranch(d);
  renderGroups(d);
  renderMembers();
  renderCounts(d);
  renderDepartures(d);
  renderBranchLife(d);
  renderDevelopment(d);
  renderMobility(d);
  fill('activities', activitiesSummary(d.activities));
  fill('liaison', liaisonSummary(d.liaison));
  if (side) refreshSide();
}

start(async () => {
  me = await loadMe();
  header(me);
  siteId = siteFromPath();
  const past = asOf();
  if (me.may_write && !past) {  // a page of a past day records nothing: its 记录 would look like recording then
    const link = document.getElementById('record-link');
    link.href = `/site/${encodeURIComponent(siteId)}/record`;
    link.hidden = false;
  }
  if (['city', 'auditor', 'township', 'site'].includes(me.role)) { // the readers of histories (they name people)
    const link = document.getElementById('history-link');
    link.href = `/history/site/${encodeURIComponent(siteId)}`;
    link.hidden = false;
  }
  document.getElementById('members-filter').addEventListener('input', renderMembers);
  asOfControl();
  const data = await view('site', { site_id: siteId, ...(past || {}) });
  downloadButtons('site', { site_id: siteId, ...(past || {}) });
  render(data, { side: false });
  if (past) { showAsOf(data); return; }  // talks and birthdays are today's lists
  const snap = snapshotOf(data);
  setFreshness(snap.at, snap.seq);
  loadTalks();
  loadBirthdays();
  live('site', siteId, (d) => render(d), {
    initialSeq: Number.isFinite(snap.seq) ? snap.seq : -1,
    onFailure: (err) => showProblem(err),
  });
});
