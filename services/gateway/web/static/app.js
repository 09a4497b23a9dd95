// 工地党建 · shared browser code: API access, login state, header, Chinese labels, live updates, small renderers.
// Plain ES module, no build step. Every text taken from data goes through textContent (never innerHTML).

// ---- Chinese labels ------------------------------------------------------------------------------------------

export const LABELS = {
  unitKind: {
    owner: '建设单位', design: '设计单位', construction: '施工单位', supervision: '监理单位',
    department: '主管部门', township: '驻地乡镇/村',
  },
  status: { full: '正式党员', probationary: '预备党员' },
  statusShort: { full: '正式', probationary: '预备' },
  relation: { transferred: '转入', mobile: '流动' },
  relationLong: { transferred: '组织关系转入', mobile: '流动党员' },
  job: { worker: '农民工', technician: '技术人员', manager: '管理人员' },
  gender: { male: '男', female: '女' },
  talkMethod: { in_person: '面谈', phone: '电话' },
  team: { vanguard: '工建先锋小组', assault: '党员突击队', emergency: '党员应急小组' },
  post: {
    policy_consultation: '政策宣传咨询岗', opinion_collection: '民意收集反馈岗', safety_patrol: '安全生产巡查岗',
    quality_supervision: '工程质量监督岗', skills_mentoring: '技能帮带岗', epidemic_prevention: '防疫专管岗',
  },
  visit: { section: '进工段', crew: '进班组', dormitory: '进宿舍' },
  pointsCategory: { post_goals: '岗位目标', obligations: '履行义务', rules_kept: '遵规守纪', innovation: '创新创效' },
  talkReason: { new_arrival: '新来党员必谈', safety_violation: '施工违章必谈', personal_change: '个人或家庭变故必谈', application: '入党申请人谈话' },
  grade: { excellent: '优秀', qualified: '合格', basically_qualified: '基本合格', unqualified: '不合格' },
  stage: { applicant: '入党申请人', activist: '入党积极分子', target: '发展对象', probationary: '预备党员', full: '已转正' },
  meetingKind: { general_assembly: '支部党员大会', committee: '支委会', group: '党小组会', lecture: '党课', themed_day: '主题党日', life_meeting: '组织生活会' },
  activity: {
    night_school: '工地夜校', micro_lesson: '微党课', safety_month: '安全生产月', skills_contest: '技能大练兵',
    safety_drill: '安全应急演练', social_service: '社会组织送服务', cultural_evening: '文艺晚会',
  },
  party: {
    owner: '业主', department: '项目主管部门', township: '驻地乡镇', village: '村', design: '设计',
    construction: '施工', supervision: '监理',
  },
  itemKind: { technical_bottleneck: '技术瓶颈', dispute: '矛盾纠纷', risk: '风险防控', party_activity: '党建活动', member_education: '党员教育管理' },
  target: { quality: '工程质量', safety: '安全生产', progress: '工程进度', civilised_site: '文明工地' },
  dispute: { wages: '薪资', land_acquisition: '征地拆迁', work_obstruction: '阻工', neighbours: '邻里', other: '其他' },
  caseState: { reported: '待调解', mediating: '调解中', resolved: '调解成功', petitioned: '上访' },
  support: {
    road_hardening: '硬化道路', donation: '捐款', poverty_visit: '慰问贫困户', transport: '免费运输',
    joint_patrol: '联合巡逻', epidemic_help: '疫情防控协助',
  },
  supportUnit: { road_hardening: '米', donation: '元', poverty_visit: '元', transport: '车次', joint_patrol: '次', epidemic_help: '次' },
  record: {
    meeting: '会议', activity: '活动', appraisal: '民主评议', talk: '谈心谈话', points: '党员积分', violation: '施工违章',
    change: '个人或家庭变故', post: '党员示范岗', zone: '党员责任区', team: '党员队伍',
  },
  role: { city: '市工委', township: '乡镇', site: '工地书记', department: '主管部门', auditor: '审计', dashboard: '大屏' },
  // The same words as the history's (contracts.history.EVENT_LABELS; a unit test keeps them equal).
  event: {
    SiteRegistered: '工地登记', WorkforceReported: '报告从业人数', MemberArrived: '党员进场', MemberDeparted: '党员离场',
    BranchFormed: '成立党支部', PartyGroupFormed: '成立党小组', SiteCompleted: '工程竣工', ApplicationSubmitted: '递交入党申请',
    ActivistDesignated: '确定入党积极分子', DevelopmentTargetDesignated: '确定发展对象', ProbationaryAdmitted: '接收预备党员',
    ProbationExtended: '延长预备期', FullMembershipConfirmed: '预备党员转正', BranchDissolved: '党支部撤销',
    PartyGroupClosed: '党小组撤销', RelationTransferred: '组织关系转入', ContactLost: '登记失联', ContactRestored: '恢复联系',
    TransferPrompted: '提醒转接组织关系', ContactEscalated: '失联党员上报', VisitRecorded: '走访', SafetyViolationRecorded: '施工违章',
    PersonalChangeReported: '个人或家庭变故', TalkObligationCreated: '产生谈话任务', TalkHeld: '谈话完成',
    BirthdaysCelebrated: '过政治生日', ZoneDesignated: '划定党员责任区', TeamFormed: '组建党员队伍', PostEstablished: '设立党员示范岗',
    WorkPointDesignated: '确定示范工点', ActivityHeld: '开展活动', InnovationRecorded: '创新成果',
    TalkObligationMooted: '谈话任务关闭（不再需要）', BackboneTrained: '培养党员骨干', PromotedToManagement: '骨干培养成管理人员',
    CrewLeaderRecommended: '推荐为班组长', RecommendedForManagement: '推荐进入项目管理层', PointsAwarded: '党员积分',
    MembersAppraised: '民主评议', BranchMeetingHeld: '三会一课', RecordRetracted: '撤销记录', JointMeetingHeld: '召开联席会议',
    ComplianceLetterSigned: '签订双达标承诺书', ComplianceAssessed: '双达标考核', CoBuildingAgreementSigned: '签订党建联创协议',
    CoBuildingItemCompleted: '完成共建事项', DisputeReported: '受理纠纷', MediationStarted: '开始调解', MediationResolved: '调解成功',
    DisputeEscalated: '纠纷上访', VillageSupportRecorded: '帮扶驻地',
  },
};

export const DISPUTE_KINDS = ['wages', 'land_acquisition', 'work_obstruction', 'neighbours', 'other'];
export const CASE_STATES = ['reported', 'mediating', 'resolved', 'petitioned'];
export const TEAM_KINDS = ['vanguard', 'assault', 'emergency'];
export const POST_KINDS = Object.keys(LABELS.post);
export const UNIT_KINDS = Object.keys(LABELS.unitKind);

export function label(map, key) {
  if (key === null || key === undefined) return '';
  return Object.prototype.hasOwnProperty.call(map, key) ? map[key] : String(key);
}

// ---- formatting ----------------------------------------------------------------------------------------------

const NUMBER = new Intl.NumberFormat('zh-CN', { maximumFractionDigits: 2 });

export function fmt(n) {
  if (n === null || n === undefined || n === '') return '—';
  const x = typeof n === 'number' ? n : Number(n);
  return Number.isFinite(x) ? NUMBER.format(x) : String(n);
}

export function pad2(n) { return String(n).padStart(2, '0'); }

// The city's calendar and clock at a moment (Asia/Shanghai, the time its views, services and reports count by),
// wherever the browser's clock is set: the browser's own day differs for a user abroad or on a machine left on UTC,
// and toISOString() gives the UTC day, yesterday's before 08:00 in the city.
const CITY_PARTS = new Intl.DateTimeFormat('en-US', {
  timeZone: 'Asia/Shanghai', year: 'numeric', month: '2-digit', day: '2-digit', weekday: 'short',
  hour: '2-digit', minute: '2-digit', second: '2-digit', hourCycle: 'h23',
});
const WEEKDAYS = ['Sun', 'Mon', 'Tue', 'Wed', 'Thu', 'Fri', 'Sat'];

// {year, month, day: numbers; weekday: 0 for Sunday … 6; hh, mm, ss: two-digit texts}
export function cityMoment(date = new Date()) {
  const p = Object.fromEntries(CITY_PARTS.formatToParts(date).map((x) => [x.type, x.value]));
  return {
    year: Number(p.year), month: Number(p.month), day: Number(p.day), weekday: WEEKDAYS.indexOf(p.weekday),
    hh: p.hour, mm: p.minute, ss: p.second,
  };
}

// HH:MM:SS in the city
export function clockTime(date) {
  const m = cityMoment(date);
  return `${m.hh}:${m.mm}:${m.ss}`;
}

// The city's day now, YYYY-MM-DD: every "today" of the pages (a form's default day, the latest as-of day).
export function cityToday(now = new Date()) {
  const m = cityMoment(now);
  return `${m.year}-${pad2(m.month)}-${pad2(m.day)}`;
}

export function thisMonth() { return cityToday().slice(0, 7); }

export function sum(values) { return values.reduce((a, b) => a + (Number(b) || 0), 0); }

// ---- DOM helpers ---------------------------------------------------------------------------------------------

// h('a', {href: '/x', class: 'link', dataset: {figure: 'members'}}, 'text', child, [more, children])
export function h(tag, attrs, ...children) {
  const el = document.createElement(tag);
  if (attrs) {
    for (const [k, v] of Object.entries(attrs)) {
      if (v === undefined || v === null || v === false) continue;
      if (k === 'class') el.className = v;
      else if (k === 'dataset') { for (const [dk, dv] of Object.entries(v)) if (dv !== undefined && dv !== null) el.dataset[dk] = String(dv); }
      else if (k.startsWith('on') && typeof v === 'function') el.addEventListener(k.slice(2), v);
      else if (v === true) el.setAttribute(k, '');
      else el.setAttribute(k, String(v));
    }
  }
  append(el, children);
  return el;
}

function append(el, children) {
  for (const c of children) {
    if (c === undefined || c === null || c === false) continue;
    if (Array.isArray(c)) append(el, c);
    else el.append(c instanceof Node ? c : String(c));
  }
}

export function $(selector, root = document) { return root.querySelector(selector); }

// Replace an element's content: views re-render whole, so nothing grows over a day on screen.
// The talks done as what they were: the three 必谈, and applicants' talks (入党申请人谈话), which a view counts with
// them but are none of them (contracts.activities.split_talks_done; the yearly report says them apart).
export function talksDoneSplit(a) {
  const reasons = a.talks_by_reason || {};
  const applicants = reasons.application ?? 0;
  if (!applicants) return null;
  const required = Object.values(reasons).reduce((x, y) => x + y, 0) - applicants;
  return h('span', { class: 'muted talks-split' }, `（三必谈 ${fmt(required)}，入党申请人谈话 ${fmt(applicants)}）`);
}

export function fill(target, ...children) {
  const el = typeof target === 'string' ? document.getElementById(target) : target;
  if (!el) return null;
  el.replaceChildren();
  append(el, children);
  return el;
}

// A figure tests and screens rely on: <span data-figure="members">251</span>
// Counts are shown as plain digits (251, 12708): what tests read and a wall screen shows.
export function fig(name, value, cls = 'num') {
  const x = typeof value === 'number' ? value : Number(value);
  const text = value === null || value === undefined || value === '' ? '—' : (Number.isFinite(x) ? String(x) : String(value));
  return h('span', { class: cls, dataset: { figure: name, value: Number.isFinite(x) ? String(x) : undefined } }, text);
}

export function card(name, title, value, { unit, sub, accent, extra } = {}) {
  return h('div', { class: `card${accent ? ' card-accent' : ''}` },
    h('div', { class: 'card-title' }, title),
    h('div', { class: 'card-value' }, fig(name, value), extra, unit ? h('span', { class: 'unit' }, unit) : null),
    sub ? h('div', { class: 'card-sub' }, sub) : null);
}

export const COVERAGE_TITLE = '覆盖（已建/应建）';

// The coverage tile's figure and line beneath, one wording for the city page's tile and an area's card: 已建 / 应建,
// then the rate and the rule, each when there is one. `cov`: {covered, qualifying, rule?}, as the city view gives it.
export function coverageParts(cov) {
  const rate = cov.qualifying ? Math.round((cov.covered / cov.qualifying) * 1000) / 10 : null;
  const rule = cov.rule ? h('span', { class: 'rule', dataset: { figure: 'coverage_rule' } }, `强制覆盖：${cov.rule}`) : null;
  return {
    value: cov.covered ?? 0,
    extra: h('span', { class: 'of' }, ' / ', fig('qualifying', cov.qualifying ?? 0)),
    sub: [rate === null ? null : h('span', { dataset: { figure: 'coverage_rate' } }, `覆盖率 ${rate}%`),
      rate !== null && rule ? ' · ' : null, rule],
  };
}

export function table(headers, rows, { cls = 'data', empty = '暂无记录', dataset } = {}) {
  if (!rows.length) return h('p', { class: 'empty' }, empty);
  return h('table', { class: cls, dataset },
    h('thead', null, h('tr', null, headers.map((x) => h('th', null, x)))),
    h('tbody', null, rows.map((r) => (r instanceof Node ? r : h('tr', null, r.map((c) => h('td', null, c)))))));
}

export function flag(text, kind) { return h('span', { class: `flag flag-${kind}` }, text); }

// ---- API -----------------------------------------------------------------------------------------------------

const HTTP_MESSAGES = {
  0: '无法连接服务器，请检查网络后重试',
  401: '请先登录',
  403: '无权查看',
  404: '没有找到',
  409: '不符合规定，未记录',
  413: '内容过大',
  422: '填写有误',
  503: '平台暂时无法连接，请稍后再试',
};

export class ApiError extends Error {
  constructor(status, error) {
    const info = error || {};
    super(info.message || HTTP_MESSAGES[status] || `请求失败（${status}）`);
    this.status = status;
    this.code = info.code || (status ? `HTTP_${status}` : 'NETWORK');
    this.field = info.field ?? null;
    this.problems = Array.isArray(info.problems) ? info.problems : null;  // every field at fault, each in its words
  }
  get forbidden() { return this.status === 403 || this.code === 'FORBIDDEN'; }
  get notFound() { return this.status === 404 || /_NOT_FOUND$/.test(this.code); }
  // Worth sending again as is: no answer, or the platform was unreachable.
  get retryable() { return this.status === 0 || this.status === 502 || this.status === 503 || this.status === 504; }
}

export function loginUrl() {
  return `/login?next=${encodeURIComponent(location.pathname + location.search + location.hash)}`;
}

export function goLogin() {
  if (location.pathname !== '/login') location.assign(loginUrl());
}

// fetch the gateway: same-origin credentials, JSON both ways; 401 goes to the login page (unless told not to).
export async function api(path, { method = 'GET', body, headers = {}, redirectOn401 = true } = {}) {
  const init = { method, credentials: 'same-origin', headers: { Accept: 'application/json', ...headers }, cache: 'no-store' };
  if (body !== undefined) {
    init.headers['Content-Type'] = 'application/json';
    init.body = JSON.stringify(body);
  }
  let res;
  try {
    res = await fetch(path, init);
  } catch {
    throw new ApiError(0, null);
  }
  let payload = null;
  try { payload = await res.json(); } catch { payload = null; }
  if (res.status === 401 && redirectOn401) {
    goLogin();
    throw new ApiError(401, payload && payload.error);
  }
  if (!res.ok || !payload || payload.ok !== true) {
    throw new ApiError(res.ok ? 500 : res.status, payload && payload.error);
  }
  return payload;
}

export async function view(name, params = {}) {
  const q = new URLSearchParams(Object.entries(params).filter(([, v]) => v !== undefined && v !== null && v !== ''));
  const reply = await api(`/api/views/${name}${q.toString() ? `?${q}` : ''}`);
  return reply.data;
}

// A UUID for Idempotency-Key: crypto.randomUUID needs a secure context (https or localhost), which an intranet
// served over plain http is not; getRandomValues works everywhere.
export function newKey() {
  if (globalThis.crypto && typeof crypto.randomUUID === 'function' && globalThis.isSecureContext) {
    return crypto.randomUUID();
  }
  const b = crypto.getRandomValues(new Uint8Array(16));
  b[6] = (b[6] & 0x0f) | 0x40;
  b[8] = (b[8] & 0x3f) | 0x80;
  const x = [...b].map((v) => v.toString(16).padStart(2, '0')).join('');
  return `${x.slice(0, 8)}-${x.slice(8, 12)}-${x.slice(12, 16)}-${x.slice(16, 20)}-${x.slice(20)}`;
}

// ---- who is logged in ----------------------------------------------------------------------------------------

let mePromise = null;

export function loadMe() {
  if (!mePromise) mePromise = api('/api/me').then((r) => r.data);
  return mePromise;
}

export function homeOf(me) {
  switch (me.role) {
    case 'township': return `/township/${encodeURIComponent(me.township)}`;
    case 'department': return `/department/${encodeURIComponent(me.department)}`;
    case 'site': return `/site/${encodeURIComponent(me.site)}`;
    default: return '/city';
  }
}

export function townshipName(me, code) {
  return (me && me.city && me.city.townships && me.city.townships[code]) || code || '';
}

// Who recorded something, as people say it: 市工委, 沙埕镇（乡镇）, 工地书记 (shachengwan), 平台规则 …; the login name
// stays in the title.
export function actorName(me, actor) {
  const parts = String(actor || '').split('.');
  if (!actor) return '';
  if (actor.startsWith('policy:')) return `平台规则 ${actor.slice(7)}`;
  if (parts[0] === 'township' && parts[1]) return `${townshipName(me, parts[1])}（乡镇）`;
  if (parts[0] === 'site' && parts[2]) return `${townshipName(me, parts[1])} 工地书记`;
  if (parts[0] === 'department' && parts[1]) return `${departmentName(me, parts[1])}（主管部门）`;
  return LABELS.role[parts[0]] || actor;
}

export function departmentName(me, code) {
  return (me && me.city && me.city.departments && me.city.departments[code]) || code || '';
}

// Whether the views service lets this login read a site's page (names of members): see contracts/identity.py.
export function mayReadSite(me, site) {
  if (!me || !site) return false;
  switch (me.role) {
    case 'city': case 'auditor': return true;
    case 'township': return site.township === me.township;
    case 'site': return site.site_id === me.site;
    case 'department': {
      const mine = departmentName(me, me.department);
      return Boolean(site.department) && (site.department === mine || site.department === me.department);
    }
    default: return false;
  }
}

export function mayReadTownship(me, code) {
  if (!me) return false;
  if (me.role === 'township' || me.role === 'site') return me.township === code;
  return true;
}

// Whether the views service lets this login read a department's page (contracts/identity.py may_read_department):
// its own department, and those who see the whole city; a township's or a site's people are refused.
export function mayReadDepartment(me, code) {
  if (!me) return false;
  switch (me.role) {
    case 'city': case 'auditor': case 'dashboard': case 'platform': return true;
    case 'department': return me.department === code;
    default: return false;
  }
}

export function siteLink(me, site, text) {
  const name = text ?? site.name ?? site.site_id;
  if (mayReadSite(me, site)) {
    return h('a', { href: pageLink(`/site/${encodeURIComponent(site.site_id)}`), dataset: { siteId: site.site_id } }, name);
  }
  return h('span', { dataset: { siteId: site.site_id } }, name);
}

// ---- header --------------------------------------------------------------------------------------------------

export async function logout() {
  try { await api('/api/logout', { method: 'POST', redirectOn401: false }); } catch { /* gone anyway */ }
  location.assign('/login');
}

// Fills #user-box with the login and the 退出 button, and #nav with links fitting the role.
export function header(me, { nav = true } = {}) {
  fill('user-box',
    h('span', { class: 'user-role', dataset: { role: me.role } }, me.role_label || label(LABELS.role, me.role)),
    h('span', { class: 'user-name', id: 'user-name' }, me.user),
    h('button', { type: 'button', class: 'btn btn-logout', id: 'logout', onclick: logout }, '退出'));
  const navEl = document.getElementById('nav');
  if (nav && navEl) {
    // The pages of areas keep a past day (pageLink); the import is of today.
    const links = [h('a', { href: pageLink('/city'), dataset: { path: '/city' } }, '全市')];
    const go = (path, text) => links.push(h('a', { href: pageLink(path), dataset: { path } }, text));
    if (me.township) go(`/township/${encodeURIComponent(me.township)}`, townshipName(me, me.township));
    if (me.department) go(`/department/${encodeURIComponent(me.department)}`, departmentName(me, me.department));
    if (me.site) go(`/site/${encodeURIComponent(me.site)}`, '本工地');
    if (me.may_write) links.push(h('a', { href: '/import', id: 'nav-import', dataset: { path: '/import' } }, '导入'));
    const here = location.pathname;
    for (const a of links) if (a.dataset.path === here) a.setAttribute('aria-current', 'page');
    fill(navEl, links);
  }
}

// A whole-page message in place of a view: 无权查看, 没有找到, 无法连接.
// A message as a person reads it: the platform writes Chinese first, then its English detail in parentheses and a rule
// code in brackets for programs and logs; the page keeps the Chinese (the whole text stays in the tooltip).
export function forPeople(message) {
  const text = String(message || '');
  if (!/^[^\x00-\x7f]/.test(text.trim()) && !/[\u4e00-\u9fff]/.test(text)) return text;
  return text.replace(/\s*\[[A-Z_]+\]/g, '').replace(/\s*\([\x20-\x7e]*\)/g, '').trim() || text;
}

export function showProblem(err, target = 'content', { forbiddenTitle = '无权查看' } = {}) {
  const el = typeof target === 'string' ? document.getElementById(target) : target;
  let title = '加载失败';
  let state = 'error';
  if (err instanceof ApiError && err.forbidden) { title = forbiddenTitle; state = 'forbidden'; }
  else if (err instanceof ApiError && err.notFound) { title = '没有找到'; state = 'not-found'; }
  else if (err instanceof ApiError && err.retryable) { title = '暂时无法连接'; state = 'unreachable'; }
  const message = err && err.message && err.message !== title ? forPeople(err.message) : '';
  fill(el, h('div', { class: 'problem', id: 'problem', dataset: { state, code: err && err.code }, title: err && err.message },
    h('h2', null, title),
    message ? h('p', null, message) : null,
    h('p', null, h('a', { href: '/' }, '返回首页'))));
  setLive('off');
}

// ---- as of a day: ?as_of=YYYY-MM-DD&basis=business|recorded ----------------------------------------------------

const BASIS_TEXT = { business: '按业务日期', recorded: '按记录时间' };

// The day (or, 按记录时间, the moment in Beijing time) and sense the page is asked for, as query parameters of the
// view; null for the live view.
export function asOf() {
  const p = new URLSearchParams(location.search);
  const day = p.get('as_of');
  const recorded = p.get('basis') === 'recorded';
  if (!day || !(/^\d{4}-\d{2}-\d{2}$/.test(day) || (recorded && /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}(:\d{2})?$/.test(day)))) return null;
  return { as_of: day, as_of_basis: recorded ? 'recorded' : 'business' };
}

// A link to another page at the same moment: from a page of a past day, the page it opens is of that day too, in the
// same sense (before, a township opened from the city's 2020-12-31 showed today's figures without a word).
export function pageLink(path) {
  const past = asOf();
  return past ? `${path}?${new URLSearchParams({ as_of: past.as_of, basis: past.as_of_basis })}` : path;
}

// A day and a sense beside the freshness mark; 回到实时 goes back to the live view.
export function asOfControl() {
  const box = document.querySelector('.head-right');
  if (!box) return;
  const current = asOf();
  const moment = Boolean(current) && current.as_of_basis === 'recorded';
  const day = h('input', { type: moment ? 'datetime-local' : 'date', id: 'as-of-day', max: moment ? `${cityToday()}T23:59` : cityToday(),
    'aria-label': '查看某日的视图', title: '查看某日的视图' });
  if (current) day.value = moment && !current.as_of.includes('T') ? `${current.as_of}T23:59` : current.as_of.slice(0, 16);
  const basis = h('select', { id: 'as-of-basis', 'aria-label': '口径',
    title: '按业务日期：当时的实际情况（含事后补录）；按记录时间：平台当时显示的情况' },
  Object.entries(BASIS_TEXT).map(([value, text]) => h('option', { value }, text)));
  if (current) basis.value = current.as_of_basis;
  // 按记录时间 may ask a moment (what the platform showed at 16:20), 按业务日期 a day: the input follows the sense.
  const follow = () => {
    const recorded = basis.value === 'recorded';
    const [date, time] = day.value.split('T');
    day.type = recorded ? 'datetime-local' : 'date';
    day.max = recorded ? `${cityToday()}T23:59` : cityToday();
    if (date) day.value = recorded ? `${date}T${time || '23:59'}` : date;
  };
  basis.addEventListener('change', follow);
  function submit(ev) {
    ev.preventDefault();
    if (!day.value) { location.assign(location.pathname); return; }
    location.assign(`${location.pathname}?${new URLSearchParams({ as_of: day.value, basis: basis.value })}`);
  }
  // A day the page cannot read (a hand-edited link) is said, not silently replaced by the live view.
  const asked = new URLSearchParams(location.search).get('as_of');
  const unreadable = asked !== null && !current
    ? h('span', { class: 'warn', id: 'as-of-invalid', role: 'alert' }, `“${asked}”不是日期（YYYY-MM-DD；按记录时间也可为时刻），显示的是实时视图`)
    : null;
  box.prepend(h('form', { class: 'as-of', id: 'as-of-form', onsubmit: submit }, day, basis,
    h('button', { type: 'submit', class: 'btn', id: 'as-of-go' }, '查看'),
    current ? h('a', { href: location.pathname, id: 'as-of-live', class: 'btn' }, '回到实时') : null, unreadable));
}

// 下载 Excel / 下载 CSV in the header: the page's view as a file (GET /api/export/<view>), with the page's own
// parameters and day, asked as this login like the page itself. Plain links: the browser saves what they answer.
// `lists`: the roster and the project list of what the page shows (their query: a township, or {} for all the login
// may read), for a login that may read names; they have the import's columns, so they can be edited and sent back.
export function downloadButtons(viewName, params = {}, { me = null, lists = null } = {}) {
  const box = document.querySelector('.head-right');
  if (!box || document.getElementById('downloads')) return;
  const query = (extra) => new URLSearchParams(Object.entries(extra).filter(([, v]) => v !== undefined && v !== null && v !== ''));
  const link = (format, text) => h('a', { class: 'btn btn-download', id: `download-${format}`,
    href: `/api/export/${encodeURIComponent(viewName)}?${query({ ...params, format })}`,
    download: true, title: format === 'csv' ? 'CSV（UTF-8），各部分依次排列' : 'Excel 工作簿，每部分一个工作表' }, text);
  const named = lists && me && me.role !== 'dashboard'
    ? [['members', '党员花名册', '在场党员名册（Excel），列与导入模板相同'], ['sites', '重点项目清单', '重点项目清单（Excel），列与导入模板相同']]
      .map(([what, text, title]) => h('a', { id: `download-${what}`,
        href: `/api/export/${what}?${query({ ...lists, format: 'xlsx' })}`, download: true, title }, text))
    : [];
  // The lists (and the city's reports, city.js) in one 更多 menu: a row of buttons more made the header of the big
  // screen taller and cut its lower panels.
  const more = h('details', { class: 'more-downloads', id: 'more-downloads', hidden: !named.length },
    h('summary', { class: 'btn btn-download' }, '更多'), h('div', { class: 'menu', id: 'more-menu' }, named));
  box.prepend(h('span', { class: 'downloads', id: 'downloads' }, link('xlsx', '下载 Excel'), link('csv', '下载 CSV'), more));
}

// A past view says which day and sense it shows where the live one says how fresh it is; it is not live.
export function showAsOf(data) {
  const past = data && data.as_of;
  const el = document.getElementById('freshness');
  if (el && past) {
    el.textContent = past.title;
    el.dataset.asOf = past.day;
    el.title = `日志 ${past.read} 条事件中的 ${past.events} 条`;
  }
  const mark = document.getElementById('live-status');
  if (mark) {
    mark.dataset.state = 'past';
    mark.className = 'live live-past';
    mark.textContent = '历史视图';
  }
}

// ---- live: Server-Sent Events ---------------------------------------------------------------------------------

const LIVE_TEXT = { live: '实时', connecting: '连接中…', down: '连接中断，重连中', off: '未连接' };

export function setLive(state, detail) {
  const el = document.getElementById('live-status');
  if (!el) return;
  el.dataset.state = state;
  el.className = `live live-${state === 'live' ? 'ok' : 'down'}`;
  el.textContent = LIVE_TEXT[state] || state;
  el.title = detail || '';
}

export function setFreshness(at, seq) {
  const el = document.getElementById('freshness');
  if (!el || !at) return;
  const d = new Date(at);
  if (Number.isNaN(d.getTime())) return;
  el.textContent = `数据更新于 ${clockTime(d)}`;
  el.dataset.at = at;
  if (seq !== undefined && seq !== null) el.dataset.seq = String(seq);
  el.title = `${cityToday(d)} ${clockTime(d)} 北京时间`;
}

export function snapshotOf(data) {
  return (data && data.snapshot) || {};
}

// live('site', 'shachengwan', (data, msg) => render(data), {initialSeq}) → {close()}
// Each (re)connection starts with a full snapshot; snapshots older than the one shown are ignored.
export function live(viewName, key, onSnapshot, { initialSeq = -1, onFailure } = {}) {
  let seq = Number.isFinite(initialSeq) ? initialSeq : -1;
  let es = null;
  let timer = null;
  let delay = 1000;
  let stopped = false;
  const url = `/api/live?view=${encodeURIComponent(viewName)}${key ? `&key=${encodeURIComponent(key)}` : ''}`;

  function reconnectLater() {
    if (stopped || timer) return;
    setLive('down');
    timer = setTimeout(async () => {
      timer = null;
      try { await api('/api/me'); } catch (err) { if (err.status === 401) return; } // 401 → login page
      connect();
    }, delay);
    delay = Math.min(delay * 2, 30000);
  }

  function connect() {
    if (stopped) return;
    if (es) es.close();
    setLive('connecting');
    es = new EventSource(url, { withCredentials: false });
    es.onopen = () => { delay = 1000; setLive('live'); };
    es.addEventListener('snapshot', (ev) => {
      let msg;
      try { msg = JSON.parse(ev.data); } catch { return; }
      setLive('live');
      const raw = msg.seq ?? snapshotOf(msg.data).seq ?? (ev.lastEventId || undefined);
      const s = raw === undefined || raw === null ? NaN : Number(raw);
      if (Number.isFinite(s) && s < seq) return; // older than what is shown
      const unchanged = Number.isFinite(s) && s === seq;
      if (Number.isFinite(s)) seq = s;
      setFreshness(msg.at || snapshotOf(msg.data).at, seq);
      if (unchanged) return;
      try { onSnapshot(msg.data, msg); } catch (err) { console.error('render failed', err); }
    });
    es.addEventListener('failure', (ev) => {
      let info = {};
      try { info = JSON.parse(ev.data); } catch { /* keep empty */ }
      if (info.code === 'LOGIN_REQUIRED') { stop(); goLogin(); return; }
      if (info.code === 'FORBIDDEN' || /_NOT_FOUND$/.test(info.code || '')) {
        stop();
        setLive('off', info.message);
        if (onFailure) onFailure(new ApiError(info.code === 'FORBIDDEN' ? 403 : 404, info));
        return;
      }
      if (info.code === 'UNREACHABLE') { setLive('down', info.message); return; } // the gateway keeps trying
      // Any other refusal ends the stream: reconnect on our own, slowly, instead of the browser's every second.
      if (es) es.close();
      reconnectLater();
      setLive('down', info.message);
    });
    es.onerror = () => {
      if (stopped) return;
      if (es.readyState === EventSource.CLOSED) reconnectLater(); // refused (HTTP error): we retry ourselves
      else setLive('down'); // the browser is already reconnecting
    };
  }

  function stop() {
    stopped = true;
    if (timer) clearTimeout(timer);
    timer = null;
    if (es) es.close();
    es = null;
  }

  addEventListener('pagehide', stop);
  // Back to a page kept in the browser's cache: its stream was stopped, so load it afresh.
  addEventListener('pageshow', (ev) => { if (ev.persisted) location.reload(); });
  connect();
  return { close: stop, get seq() { return seq; } };
}

// Calls fn at most once per `ms`, always with the latest arguments (for side queries refreshed on snapshots).
export function throttle(fn, ms) {
  let last = 0;
  let timer = null;
  return () => {
    const wait = last + ms - Date.now();
    if (wait <= 0) { last = Date.now(); fn(); return; }
    if (!timer) timer = setTimeout(() => { timer = null; last = Date.now(); fn(); }, wait);
  };
}

// ---- shared summaries (site, township, department pages) ------------------------------------------------------

export function kindCounts(map, labels) {
  const keys = Object.keys(labels).concat(Object.keys(map || {}).filter((k) => !(k in labels)));
  return keys.map((k) => [label(labels, k), fmt((map || {})[k] ?? 0)]);
}

function dl(pairs, cls = 'facts') {
  return h('dl', { class: cls }, pairs.map(([k, v]) => [h('dt', null, k), h('dd', null, v)]));
}

export function activitiesSummary(a) {
  if (!a) return h('p', { class: 'empty' }, '暂无活动数据');
  const teams = a.teams || {};
  const posts = a.posts || {};
  const talks = a.talks || {};
  const lessons = a.lessons || {};
  return h('div', { class: 'summary-grid' },
    h('div', { class: 'summary-block' },
      h('h3', null, '党员作用发挥'),
      dl([
        ['党员责任区', fig('zones', a.zones ?? 0)],
        ['党员队伍', fig('teams', sum(Object.values(teams)))],
        ...TEAM_KINDS.map((k) => [`　${LABELS.team[k]}`, fig(`teams.${k}`, teams[k] ?? 0)]),
        ['党员示范岗', h('span', null, fig('posts', sum(Object.values(posts))), a.post_kinds ? `（${fmt(a.post_kinds)} 类）` : '')],
        ['党建引领示范工点', fig('work_points', a.work_points ?? 0)],
        ['小发明小革新小改良', h('span', null, fig('innovations', a.innovations ?? 0), `（全项目推广 ${fmt(a.innovations_adopted ?? 0)}）`)],
      ])),
    h('div', { class: 'summary-block' },
      h('h3', null, '党员示范岗'),
      table(['岗位', '数量'], POST_KINDS.map((k) => [LABELS.post[k], fmt(posts[k] ?? 0)]), { cls: 'data compact' })),
    h('div', { class: 'summary-block' },
      h('h3', null, '三进三必谈'),
      dl([
        ...Object.keys(LABELS.visit).map((k) => [LABELS.visit[k], `${fmt((a.visits || {})[k] ?? 0)} 次`]),
        ['待谈', fig('talks_open', talks.open ?? 0)],
        ['其中逾期', h('span', { class: talks.overdue ? 'warn' : '' }, fig('talks_overdue', talks.overdue ?? 0))],
        ['已谈', h('span', null, fig('talks_done', talks.done ?? 0), talksDoneSplit(a))],
        ['本月政治生日', fig('birthdays_this_month', a.birthdays_this_month ?? 0)],
      ])),
    h('div', { class: 'summary-block' },
      h('h3', null, '教育培训与活动'),
      table(['活动', '场次', '参加人次'], Object.keys(LABELS.activity).map((k) => [
        LABELS.activity[k], fmt((lessons[k] || {}).sessions ?? 0), fmt((lessons[k] || {}).attendance ?? 0)]),
      { cls: 'data compact' })),
    branchLife(a));
}

// 组织生活: 三会一课 held and owed this period, the latest 民主评议, the year's 党员积分. Before, the pages left all
// three out although every summary carried them (an appraisal recorded in the form showed nowhere).
function branchLife(a) {
  const meetings = a.meetings || {};
  const byKind = meetings.by_kind || {};
  const appraisal = a.appraisal || {};
  const grades = appraisal.grades || {};
  const points = a.points || {};
  return h('div', { class: 'summary-block', dataset: { section: 'branch-life' } },
    h('h3', null, '组织生活'),
    table(['三会一课', '已开', '本期待开', '上期未开'], Object.keys(LABELS.meetingKind).map((k) => {
      const m = byKind[k] || {};
      return [LABELS.meetingKind[k], fmt(m.held ?? 0), fmt(m.due ?? 0), h('span', { class: m.overdue ? 'warn' : '' }, fmt(m.overdue ?? 0))];
    }), { cls: 'data compact' }),
    dl([
      ['民主评议', appraisal.appraised
        ? [`${appraisal.year}年度 ${fmt(appraisal.branches ?? 0)} 个支部评议 ${fmt(appraisal.appraised)} 人：`
          + Object.keys(LABELS.grade).map((g) => `${LABELS.grade[g]} ${fmt(grades[g] ?? 0)}`).join('，'),
        earlier((appraisal.years || []).slice(1), (y) => `${y.year}年度 ${fmt(y.branches)} 个支部评议 ${fmt(y.appraised)} 人`)]
        : '尚未开展'],
      ['党员积分', points.members
        ? [`${points.year}年 ${points.sites ? `${fmt(points.sites)} 个工地 ` : ''}${fmt(points.members)} 名党员共 ${fmt(points.total ?? 0)} 分`,
          earlier((points.years || []).slice(1), (y) => `${y.year}年 ${fmt(y.sites)} 个工地 ${fmt(y.members)} 名党员 ${fmt(y.total)} 分`)]
        : '尚无积分'],
    ]));
}

// The years before the latest, one by one: the latest year of a scope may be one site's first entry of a new year.
function earlier(years, said) {
  return years.length ? h('span', { class: 'muted', dataset: { part: 'earlier-years' } }, `（往年：${years.map(said).join('；')}）`) : null;
}

export function disputesTable(disputes) {
  const d = disputes || {};
  const rows = DISPUTE_KINDS.map((k) => {
    const s = d[k] || {};
    return h('tr', { dataset: { kind: k } }, h('th', null, LABELS.dispute[k]),
      CASE_STATES.map((st) => h('td', { class: st === 'petitioned' && s[st] ? 'warn' : '' }, fmt(s[st] ?? 0))),
      h('td', null, fmt(sum(CASE_STATES.map((st) => s[st])))));
  });
  const totals = CASE_STATES.map((st) => sum(DISPUTE_KINDS.map((k) => (d[k] || {})[st])));
  return h('table', { class: 'data compact disputes' },
    h('thead', null, h('tr', null, h('th', null, '类别'), CASE_STATES.map((st) => h('th', null, LABELS.caseState[st])), h('th', null, '合计'))),
    h('tbody', null, rows),
    h('tfoot', null, h('tr', null, h('th', null, '合计'), totals.map((t) => h('td', null, fmt(t))), h('td', null, fmt(sum(totals))))));
}

export function supportList(support, { cls = 'support' } = {}) {
  const s = support || {};
  const keys = Object.keys(LABELS.support).concat(Object.keys(s).filter((k) => !(k in LABELS.support)));
  return h('ul', { class: cls }, keys.map((k) => {
    const item = s[k] || {};
    return h('li', { dataset: { kind: k } }, h('span', { class: 'support-label' }, label(LABELS.support, k)),
      h('span', { class: 'support-value' }, fig(`support.${k}`, item.total ?? 0), h('span', { class: 'unit' }, item.unit || LABELS.supportUnit[k] || '')));
  }));
}

// 发展党员 and 流动党员 of a township, department (or the city): counts at each stage, and the sites with open
// transfer prompts or escalations by name (a view of an area names no member), linked where `me` may read them
// (`siteOf` gives a listed site its township and department).
export function peopleSummary(dev, mo, me, siteOf = (x) => x) {
  dev = dev || {};
  mo = mo || {};
  const sites = mo.sites || [];
  return h('div', { class: 'summary-grid' },
    h('div', { class: 'summary-block' },
      h('h3', null, '发展党员'),
      dl([
        ['入党申请（含积极分子）', fig('development.applied', dev.applied ?? 0)],
        ['入党积极分子', fig('development.activists', dev.activists ?? 0)],
        ['发展对象', fig('development.targets', dev.targets ?? 0)],
        // 预备党员 of the overview counts every probationary member present; these are the ones admitted here.
        ['在工地接收的预备党员', fig('development.probationary', dev.probationary ?? 0)],
        ['其中预备期满未转正', h('span', { class: dev.overdue ? 'warn' : '' }, fig('development.overdue', dev.overdue ?? 0))],
        ['已转正', fig('development.full_confirmed', dev.full_confirmed ?? 0)],
        ['在工地发展的党员', h('span', null, fig('development.developed', dev.developed ?? 0), `（今年 ${fmt(dev.developed_this_year ?? 0)}）`)],
      ])),
    h('div', { class: 'summary-block' },
      h('h3', null, '流动党员'),
      dl([
        ['应转接组织关系', h('span', { class: mo.transfer_prompts_open ? 'warn' : '' }, fig('mobility.transfer_prompts_open', mo.transfer_prompts_open ?? 0))],
        ['失联已上报', h('span', { class: mo.escalated ? 'warn' : '' }, fig('mobility.escalated', mo.escalated ?? 0))],
        ['失联党员', fig('mobility.contact_lost', mo.contact_lost ?? 0)],
      ]),
      table(['工地', '应转接', '失联上报'], sites.map((x) => [
        mayReadSite(me, siteOf(x)) ? h('a', { href: pageLink(`/site/${encodeURIComponent(x.site_id)}`) }, x.name || x.site_id) : (x.name || x.site_id),
        fmt(x.transfer_prompts_open ?? 0), fmt(x.escalated ?? 0)]), { cls: 'data compact', empty: '没有待办的工地' })));
}

// One site's co-building agreements, each with its items and which are done (the site view carries them).
function agreementList(agreements) {
  return h('ul', { class: 'plain agreements' }, agreements.map((a) => {
    const done = a.items.filter((i) => i.completed_on).length;
    return h('li', { dataset: { agreementId: a.agreement_id } },
      h('strong', null, a.village), ` · ${a.signed_on} 签订 · 完成 ${fmt(done)} / ${fmt(a.items.length)}`,
      h('ul', { class: 'plain' }, a.items.map((i) => h('li', { class: i.completed_on ? 'done' : '' },
        i.completed_on ? `✓ ${i.title}（${i.completed_on} 完成）` : `○ ${i.title}`))));
  }));
}

export function liaisonSummary(l) {
  if (!l) return h('p', { class: 'empty' }, '暂无联络数据');
  const items = l.meeting_items || {};
  const comp = l.compliance || {};
  const co = l.cobuilding || {};
  return h('div', { class: 'summary-grid' },
    h('div', { class: 'summary-block' },
      h('h3', null, '联席会议'),
      dl([
        ['召开联席会议', `${fmt(l.meetings ?? 0)} 次`],
        ['议定事项 已解决', fmt(items.resolved ?? 0)],
        ['议定事项 未解决', fmt(items.open ?? 0)],
        ['其中逾期', h('span', { class: items.overdue ? 'warn' : '' }, fmt(items.overdue ?? 0))],
      ]),
      Object.keys(items.by_unit || {}).length
        ? table(['责任方', '未解决', '逾期'], Object.entries(items.by_unit).map(([k, v]) => [
          label(LABELS.party, k), fmt(v.open ?? 0), fmt(v.overdue ?? 0)]), { cls: 'data compact' })
        : null,
      (l.open_items || []).length
        ? h('div', { class: 'open-items' }, h('h4', null, '未解决的议定事项'),
          // The item's id (what the API and an import resolve it by) in the tooltip: people go by what it says.
          table(['事项', '类别', '责任方', '提出', '应于'], l.open_items.map((x) => [
            h('span', { title: `编号 ${x.item_id}`, dataset: { itemId: x.item_id } }, x.description),
            label(LABELS.itemKind, x.kind), label(LABELS.party, x.responsible), x.raised_on,
            h('span', { class: x.overdue ? 'warn' : '' }, `${x.due_on}${x.overdue ? '（逾期）' : ''}`)]), { cls: 'data compact' }))
        : null),
    h('div', { class: 'summary-block' },
      h('h3', null, '双达标责任书'),
      table(['目标', '达标', '未达标', '未考核'], Object.keys(LABELS.target).map((k) => {
        const c = comp[k] || {};
        return [LABELS.target[k], fmt(c.met ?? 0), h('span', { class: c.not_met ? 'warn' : '' }, fmt(c.not_met ?? 0)), fmt(c.unassessed ?? 0)];
      }), { cls: 'data compact' })),
    h('div', { class: 'summary-block' },
      h('h3', null, '党建联创'),
      dl([
        ['联创协议', `${fmt(co.agreements ?? 0)} 份`],
        ['共建清单', `${fmt(co.completed ?? 0)} / ${fmt(co.items ?? 0)} 项完成`],
      ]),
      (l.agreements || []).length ? agreementList(l.agreements)
        : (co.by_agreement || []).length
          ? table(['村', '完成', '共建事项'], co.by_agreement.map((x) => [x.village, fmt(x.completed), fmt(x.items)]), { cls: 'data compact' })
          : null),
    h('div', { class: 'summary-block wide' },
      h('h3', null, '纠纷调解'),
      disputesTable(l.disputes),
      dl([
        ['上访', h('span', { class: l.petitions ? 'warn' : '' }, fig('petitions', l.petitions ?? 0))],
        ['其中薪资纠纷上访', fig('wage_petitions', l.wage_petitions ?? 0)],
      ]),
      // A site's cases still open, one by one (before, only counted: the next step had to be found by id).
      (l.open_cases || []).length
        ? h('div', { dataset: { part: 'open-cases' } }, h('h3', null, '未结案件'),
          // Scrolls inside its own box on a phone: with 事由 it is wider than the screen.
          h('div', { class: 'table-scroll' }, table(['案件', '类别', '事由', '状态', '受理', '争议金额', '调解人'], l.open_cases.map((c) => [
            c.case_id, `${label(LABELS.dispute, c.kind)}纠纷`, c.description || '—', label(LABELS.caseState, c.state), c.reported_on,
            c.amount_yuan ? `${fmt(Number(c.amount_yuan))} 元` : '—', c.mediator || '—']), { cls: 'data compact' })))
        : null),
    h('div', { class: 'summary-block' },
      h('h3', null, '帮扶驻地'),
      supportList(l.support),
      (l.support_by_village || []).length
        ? table(['村（社区）', '帮扶', '数量'], l.support_by_village.map((x) => [x.village, label(LABELS.support, x.kind), `${fmt(x.total)} ${x.unit || ''}`]), { cls: 'data compact' })
        : null));
}

// Runs the page's main function, showing any unexpected failure instead of a blank page.
export function start(main) {
  const run = async () => {
    try {
      await main();
    } catch (err) {
      if (err instanceof ApiError && err.status === 401) return; // on the way to the login page
      console.error(err);
      showProblem(err);
    }
  };
  if (document.readyState === 'loading') document.addEventListener('DOMContentLoaded', run);
  else run();
}
