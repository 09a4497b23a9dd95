// 记录: the forms a site secretary uses most. Each form posts one command to /api/commands/<service>/<Name>
// with an Idempotency-Key made for that submission and kept while the same submission is retried.
// Errors are shown next to the field the reply names (error.field), else at the top of the form.
import {
  ApiError, LABELS, api, cityToday, fill, h, header, label, live, loadMe, newKey, setFreshness, showProblem, snapshotOf,
  start, throttle, view,
} from '/static/app.js';

let me = null;
let siteId = '';
let site = null;
let talks = [];

function siteFromPath() {
  const parts = location.pathname.split('/').filter(Boolean); // ['site', '<id>', 'record']
  if (parts[0] === 'site' && parts[1]) return decodeURIComponent(parts[1]);
  return new URLSearchParams(location.search).get('site_id') || (me && me.site) || '';
}

// ---- Chinese messages for validation errors ----------------------------------------------------------------------

const CJK = /[\u4e00-\u9fff]/;
const PATTERNS = [
  [/Field required|Missing required/i, () => '必填'],
  [/should have at least 1 character/i, () => '不能为空'],
  [/should have at most (\d+) characters?/i, (m) => `不能超过 ${m[1]} 个字`],
  [/should have at least (\d+) items?/i, (m) => (m[1] === '1' ? '至少填写一项' : `至少 ${m[1]} 项`)],
  [/should have at most (\d+) items?/i, (m) => `最多 ${m[1]} 项`],
  [/should match pattern/i, () => '只能用小写字母、数字、-、_，并以字母或数字开头'],
  [/must lie between (\S+) and (\S+)/i, (m) => `日期不合理，应在 ${m[1]} 至 ${m[2]} 之间`],
  [/valid date|date in the format|date from/i, () => '请填写有效日期'],
  [/valid UUID|uuid/i, () => '请从列表中选择'],
  [/Input should be '.*'/i, () => '请从列表中选择'],
  [/valid integer|int_/i, () => '请填写整数'],
  [/no more than (\d+) decimal places/i, (m) => `最多 ${m[1]} 位小数`],
  [/no more than (\d+) digits/i, () => '数字过大'],
  [/valid decimal|valid number|decimal_/i, () => '请填写数字'],
  [/greater than or equal to (\S+)/i, (m) => `不能小于 ${m[1]}`],
  [/greater than (\S+)/i, (m) => `必须大于 ${m[1]}`],
  [/less than or equal to (\S+)/i, (m) => `不能超过 ${m[1]}`],
  [/wage dispute states the amount/i, () => '薪资纠纷须填写争议金额（大于 0）'],
  [/social-organisation service names/i, () => '社会组织送服务须填写社会组织和服务内容'],
  [/headcount must count at least the attendees/i, () => '参加人数不能少于所选参加党员人数'],
  [/must not repeat|repeats a name/i, () => '有重复'],
  [/ID-card or phone number/i, () => '名称中不得含身份证号或手机号'],
  [/control or direction characters/i, () => '含有不可见的控制字符'],
  [/Extra inputs are not permitted/i, () => '多余的字段'],
  [/valid string|string_type/i, () => '请填写文字'],
  [/valid list/i, () => '格式不正确'],
];

const GENERIC = '不合要求';

// A reply's words for the person at the form: `field: 中文 (English)`, perhaps with `；另有 2 处不合要求` after.
function chinese(err) {
  const raw = String(err.message || '');
  let text = err.field && raw.startsWith(`${err.field}: `) ? raw.slice(err.field.length + 2) : raw;
  if (err.code === 'VALIDATION_FAILED') text = text.replace(/^(?:[\w.]+|请求): /, '');
  const tail = (text.match(/；另有 \d+ 处不合要求(?:（[^（）]*）)?$/) || [''])[0];
  text = text.slice(0, text.length - tail.length);
  const more = tail.replace(/（[^（）]*）$/, ''); // the other fields by their API names: the form marks its own
  const said = text.replace(/\s*\([\x20-\x7e]*\)\s*$/, '');
  // The platform's own words come first in Chinese, its English detail in parentheses after them; a bare
  // 不合要求 says nothing, so then the English detail is read below.
  if (/^[\u4e00-\u9fff]/.test(said) && said !== GENERIC) return said + more;
  if (err.code === 'VALIDATION_FAILED' || !CJK.test(text)) {
    for (const [re, make] of PATTERNS) {
      const m = text.match(re);
      if (m) return make(m) + more;
    }
    const inner = text.match(/[（(]([^（）()]*[\u4e00-\u9fff][^（）()]*)[)）]/);
    if (inner) return inner[1] + more;
  }
  if (CJK.test(text)) return text + more;
  if (err.status === 0) return '无法连接服务器，请检查网络后重试';
  if (err.status === 503) return '平台暂时无法连接，请稍后再试';
  return `未记录：${text || err.code}`;
}

// The input an error's field names: `member.name`, `parties.0` → `parties`, else none.
function inputFor(form, field) {
  if (!field) return null;
  const parts = String(field).split('.');
  while (parts.length) {
    const name = parts.join('.');
    const el = [...form.elements].find((x) => x.name === name && !x.disabled && !x.closest('[hidden]'));
    if (el) return el;
    if (/^\d+$/.test(parts[parts.length - 1])) parts.pop();
    else break;
  }
  return null;
}

function clearErrors(form) {
  form.querySelectorAll('.field-error').forEach((x) => x.remove());
  form.querySelectorAll('[aria-invalid]').forEach((x) => x.removeAttribute('aria-invalid'));
}

function showError(form, err) {
  const message = chinese(err);
  const field = err.field || '';
  const input = inputFor(form, field);
  const box = h('div', { class: 'field-error', 'data-field': field, 'data-code': err.code, role: 'alert', title: err.message }, message);
  if (input) {
    (input.closest('.field') || input.parentElement).append(box);
    input.setAttribute('aria-invalid', 'true');
    input.focus();
  } else {
    const top = form.querySelector('.form-errors');
    top.append(field && !/^[A-Z_]+$/.test(field) ? h('div', { class: 'field-error', 'data-field': field, 'data-code': err.code, role: 'alert', title: err.message }, `${field}：${message}`) : box);
  }
  result(form, 'error', input ? '未记录，请按提示修改后再提交' : '未记录');
}

// The required fields (marked *) left empty, each said next to itself in the form's own words before anything is
// sent: the server names only the first field it refuses, in its terms (an empty 党员编号 read as a bad format).
function refusedEmpty(form) {
  const empty = [...form.querySelectorAll('label.field')].map((label) => [label, label.querySelector('input, select, textarea')])
    .filter(([label, input]) => label.querySelector('.req') && input && !input.disabled && !input.closest('[hidden]')
      && String(input.value || '').trim() === '');
  for (const [label, input] of empty) {
    const name = label.querySelector('span').firstChild.textContent.trim();
    const text = `${input.tagName === 'SELECT' ? '请选择' : '请填写'}${name}`;
    label.append(h('div', { class: 'field-error', 'data-field': input.name, 'data-code': 'REQUIRED', role: 'alert' }, text));
    input.setAttribute('aria-invalid', 'true');
  }
  if (!empty.length) return false;
  empty[0][1].focus();
  result(form, 'error', `未记录：还有 ${empty.length} 项必填内容未填写`);
  return true;
}

function result(form, state, ...children) {
  const el = form.querySelector('.form-result');
  el.dataset.state = state;
  fill(el, children);
  return el;
}

// ---- reading the forms -----------------------------------------------------------------------------------------------

// The enabled element of that name: a form of several steps has one per step, the others disabled.
function named(form, name) {
  return [...form.elements].find((x) => x.name === name && !x.disabled) || null;
}

function text(form, name) {
  const el = named(form, name);
  return el ? String(el.value).trim() : '';
}

function optional(form, name) {
  const v = text(form, name);
  return v === '' ? undefined : v;
}

function integer(form, name) {
  const v = text(form, name);
  return /^\d+$/.test(v) ? Number(v) : v; // anything else goes as typed: the reply names the field
}

function selected(form, name) {
  const el = named(form, name);
  return el ? [...el.selectedOptions].map((o) => o.value).filter(Boolean) : [];
}

function lines(form, name) {
  return text(form, name).split(/[\n\r,，、;；]+/).map((x) => x.trim()).filter(Boolean);
}

// An amount as people write it (48,000 or 4 8000): the separators go, anything else is sent as typed for the reply
// to name the field.
function amount(form, name) {
  const v = optional(form, name);
  if (v === undefined) return v;
  const bare = v.replace(/[,，\s]/g, '');
  return /^\d+(\.\d+)?$/.test(bare) ? bare : v;
}

function clean(body) {
  return Object.fromEntries(Object.entries(body).filter(([, v]) => v !== undefined));
}

const BUILD = {
  'form-arrival': (f) => ({
    command: 'membership/RecordArrival',
    body: {
      site_id: siteId,
      member_id: text(f, 'member_id'),
      member: {
        name: text(f, 'member.name'),
        gender: text(f, 'member.gender'),
        admitted_on: text(f, 'member.admitted_on'),
        status: text(f, 'member.status'),
        unit_kind: text(f, 'member.unit_kind'),
        unit_name: text(f, 'member.unit_name'),
        job: text(f, 'member.job'),
        section: text(f, 'member.section'),
        home_org: text(f, 'member.home_org'),
        relation: text(f, 'member.relation'),
      },
      arrived_on: text(f, 'arrived_on'),
    },
  }),
  'form-departure': (f) => ({
    command: 'membership/RecordDeparture',
    body: { site_id: siteId, member_id: text(f, 'member_id'), departed_on: text(f, 'departed_on'), reason: text(f, 'reason') },
  }),
  'form-talk': (f) => ({
    command: 'activities/RecordTalk',
    body: { site_id: siteId, obligation_id: text(f, 'obligation_id'), talked_by: text(f, 'talked_by'), talked_on: text(f, 'talked_on'), method: text(f, 'method'), note: text(f, 'note') },
  }),
  'form-activity': (f) => {
    const social = text(f, 'kind') === 'social_service';
    return {
      command: 'activities/RecordActivity',
      body: clean({
        site_id: siteId,
        kind: text(f, 'kind'),
        title: text(f, 'title'),
        held_on: text(f, 'held_on'),
        headcount: integer(f, 'headcount'),
        attendees: selected(f, 'attendees'),
        organisation: social ? optional(f, 'organisation') : undefined,
        service: social ? optional(f, 'service') : undefined,
      }),
    };
  },
  'form-branch-meeting': (f) => ({
    command: 'activities/RecordBranchMeeting',
    body: { site_id: siteId, kind: text(f, 'kind'), topic: text(f, 'topic'), held_on: text(f, 'held_on'), attendance: integer(f, 'attendance'), attendees: selected(f, 'attendees') },
  }),
  'form-dispute': (f) => ({
    command: 'liaison/ReportDispute',
    body: clean({
      site_id: siteId,
      case_id: text(f, 'case_id'),
      kind: text(f, 'kind'),
      reported_on: text(f, 'reported_on'),
      parties: lines(f, 'parties'),
      amount_yuan: amount(f, 'amount_yuan'),
      description: text(f, 'description'),
    }),
  }),
  'form-branch': (f) => ({
    command: 'membership/FormBranch',
    body: { site_id: siteId, name: text(f, 'name'), secretary: text(f, 'secretary'), instructor: text(f, 'instructor'), liaison: text(f, 'liaison'), member_units: lines(f, 'member_units'), committee: selected(f, 'committee'), formed_on: text(f, 'formed_on') },
  }),
  'form-group': (f) => {
    // The leader is one of the group's members: chosen as leader, counted in whatever was picked beside.
    const members = [...new Set([text(f, 'leader'), ...selected(f, 'members')].filter(Boolean))];
    return {
      command: 'membership/FormPartyGroup',
      body: { site_id: siteId, group_id: text(f, 'group_id'), name: text(f, 'name'), section: text(f, 'section'), leader: text(f, 'leader'), members, formed_on: text(f, 'formed_on') },
    };
  },
  'form-meeting': (f) => {
    const meetingId = text(f, 'meeting_id');
    // Filled rows only, each numbered after the meeting: the item's id a later meeting resolves it by.
    const items = [0, 1, 2].filter((i) => text(f, `items.${i}.description`)).map((i) => ({
      item_id: `${meetingId}-${i + 1}`,
      kind: text(f, `items.${i}.kind`),
      description: text(f, `items.${i}.description`),
      responsible: text(f, `items.${i}.responsible`),
      due_on: text(f, `items.${i}.due_on`),
    }));
    return {
      command: 'liaison/HoldJointMeeting',
      body: { site_id: siteId, meeting_id: meetingId, held_on: text(f, 'held_on'), parties: selected(f, 'parties'), items, resolves: selected(f, 'resolves') },
    };
  },
  'form-cobuilding': (f) => {
    const [agreementId, itemId] = text(f, 'item').split('/');
    return {
      command: 'liaison/CompleteCoBuildingItem',
      body: { site_id: siteId, agreement_id: agreementId || '', item_id: itemId || '', completed_on: text(f, 'completed_on'), note: text(f, 'note') },
    };
  },
  'form-development': (f) => {
    const step = text(f, 'step');
    const base = { site_id: siteId, person_id: text(f, 'person_id') };
    const approved = { approved_by: text(f, 'approved_by') };
    const bodies = {
      SubmitApplication: () => ({
        ...base, name: text(f, 'name'), gender: text(f, 'gender'), birth_date: text(f, 'birth_date'),
        applied_on: text(f, 'applied_on'), unit_kind: text(f, 'unit_kind'), unit_name: text(f, 'unit_name'),
        job: text(f, 'job'), section: text(f, 'section'),
      }),
      DesignateActivist: () => ({ ...base, designated_on: text(f, 'designated_on'), ...approved }),
      DesignateDevelopmentTarget: () => ({ ...base, designated_on: text(f, 'designated_on'), ...approved }),
      AdmitProbationary: () => ({ ...base, admitted_on: text(f, 'admitted_on'), ...approved }),
      ExtendProbation: () => ({ ...base, extended_on: text(f, 'extended_on'), months: integer(f, 'months'), ...approved }),
      ConfirmFullMembership: () => ({ ...base, confirmed_on: text(f, 'confirmed_on'), ...approved }),
    };
    return { command: `membership/${step}`, body: (bodies[step] || bodies.SubmitApplication)() };
  },
  'form-appraisal': (f) => ({
    command: 'activities/AppraiseMembers',
    body: {
      site_id: siteId,
      year: integer(f, 'year'),
      appraised_on: text(f, 'appraised_on'),
      grades: [...f.querySelectorAll('select[data-grade-of]')].filter((sel) => sel.value)
        .map((sel) => ({ member_id: sel.dataset.gradeOf, grade: sel.value })),
    },
  }),
  'form-dispute-step': (f) => {
    const step = text(f, 'step');
    const base = { site_id: siteId, case_id: text(f, 'case_id') };
    if (step === 'ResolveMediation') {
      return { command: 'liaison/ResolveMediation', body: clean({ ...base, resolved_on: text(f, 'resolved_on'), outcome: text(f, 'outcome'), amount_settled_yuan: amount(f, 'amount_settled_yuan') }) };
    }
    if (step === 'EscalateToPetition') {
      return { command: 'liaison/EscalateToPetition', body: { ...base, escalated_on: text(f, 'escalated_on'), reason: text(f, 'reason') } };
    }
    return { command: 'liaison/StartMediation', body: { ...base, mediator: text(f, 'mediator'), started_on: text(f, 'started_on') } };
  },
};

// ---- submitting -------------------------------------------------------------------------------------------------------

const pending = new WeakMap(); // form → {fingerprint, key}: the key of a submission whose outcome is unknown

function sleep(ms) { return new Promise((r) => { setTimeout(r, ms); }); }

async function post(command, body, key) {
  let last = null;
  for (let attempt = 0; attempt < 3; attempt += 1) {
    try {
      return await api(`/api/commands/${command}`, { method: 'POST', body, headers: { 'Idempotency-Key': key } });
    } catch (err) {
      last = err;
      if (!(err instanceof ApiError) || !err.retryable || attempt === 2) throw err;
      await sleep(1000 * (attempt + 1));
    }
  }
  throw last;
}

async function submit(ev) {
  ev.preventDefault();
  if (!me || !me.may_write || !siteId) return; // still loading, or a login that only reads: nothing to send
  const form = ev.currentTarget;
  const button = form.querySelector('button[type="submit"]');
  if (button.disabled) return;
  clearErrors(form);
  if (refusedEmpty(form)) return;
  const { command, body } = BUILD[form.id](form);
  form.dataset.command = command;
  const fingerprint = `${command}\n${JSON.stringify(body)}`;
  const before = pending.get(form);
  const key = before && before.fingerprint === fingerprint ? before.key : newKey();
  pending.set(form, { fingerprint, key });
  form.dataset.idempotencyKey = key;
  button.disabled = true;
  result(form, 'busy', '正在提交…');
  try {
    const reply = await post(command, body, key);
    pending.delete(form);
    succeeded(form, command, body, reply);
  } catch (err) {
    if (err instanceof ApiError && err.status === 401) return;
    // No answer: the same submission may have been recorded; a resubmission keeps the key (recorded once).
    if (!(err instanceof ApiError && err.retryable)) pending.delete(form);
    showError(form, err instanceof ApiError ? err : new ApiError(0, null));
  } finally {
    button.disabled = false;
  }
}

function succeeded(form, command, body, reply) {
  const types = (reply.events || []).map((e) => e.type);
  const el = result(form, 'ok',
    '已记录',
    types.length ? h('span', { class: 'events' }, '：', types.map((t) => label(LABELS.event, t)).join('、')) : null,
    whom(body) ? h('span', { class: 'whom' }, `（${whom(body)}）`) : null,
    reply.duplicate ? h('span', { class: 'events' }, '（此前已记录，未重复记录）') : null,
    (reply.warnings || []).length ? h('ul', { class: 'warnings' }, reply.warnings.map((w) => h('li', { dataset: { code: w.code, field: w.field || '' } }, chinese({ ...w, status: 200 })))) : null);
  el.dataset.events = types.join(',');
  el.dataset.commandId = reply.command_id || '';
  el.dataset.duplicate = reply.duplicate ? 'true' : 'false';
  resetForm(form);
  refreshSoon();
}

// Whom a record was about, by name, so that the secretary sees it was the right person.
function whom(body) {
  if (body.member && body.member.name) return body.member.name;
  const member = body.member_id && ((site && site.members) || []).find((m) => m.member_id === body.member_id);
  if (member) return member.name;
  const talk = body.obligation_id && talks.find((t) => t.obligation_id === body.obligation_id);
  if (talk) return talk.name || talk.member_id;
  if (body.name) return body.name;
  const person = body.person_id && developmentPeople().find(([id]) => id === body.person_id);
  if (person) return person[2];
  return body.grades ? `${body.grades.length} 名党员` : '';
}

function resetForm(form) {
  const keep = [...form.querySelectorAll('[data-sticky]')].map((el) => [el, el.value]);
  const step = form.elements.namedItem('step');
  const stepValue = step ? step.value : null;
  form.reset();
  for (const [el, v] of keep) el.value = v;
  if (step) { // the next record is most often the same step for another person (a case is chosen afresh)
    step.value = stepValue;
    const chosenCase = form.elements.namedItem('case_id');
    if (chosenCase) chosenCase.value = '';
  }
  const meeting = form.elements.namedItem('meeting_id');
  if (meeting) meeting.value = newMeetingId(); // the next meeting is another one; a retry of this one kept its id
  const group = form.elements.namedItem('group_id');
  if (group) group.value = newId('xz'); // likewise the next group
  applyDefaults(form);
  syncConditional();
}

// ---- form furniture -------------------------------------------------------------------------------------------------

function applyDefaults(root = document) {
  root.querySelectorAll('input[data-default="today"]').forEach((el) => { if (!el.value) el.value = cityToday(); });
  root.querySelectorAll('input[data-default="year"]').forEach((el) => { if (!el.value) el.value = cityToday().slice(0, 4); });
  root.querySelectorAll('input[name="meeting_id"]').forEach((el) => { if (!el.value) el.value = newMeetingId(); });
  root.querySelectorAll('input[name="group_id"]').forEach((el) => { if (!el.value) el.value = newId('xz'); });
}

// An id made once per form (kept while the same submission is retried): a prefix, the day, six hex digits.
function newId(prefix) {
  const tail = Array.from(crypto.getRandomValues(new Uint8Array(3)), (b) => b.toString(16).padStart(2, '0')).join('');
  return `${prefix}-${cityToday().replaceAll('-', '')}-${tail}`;
}

function newMeetingId() { return newId('lx'); } // 联席会议 of a day

function fillOptions() {
  document.querySelectorAll('select[data-options]').forEach((sel) => {
    const map = LABELS[sel.dataset.options] || {};
    // No preselected answer: a member's status or relation is chosen, never defaulted by mistake.
    // A select may name its usual answer (data-default: a talk is most often 面谈); reset returns to it.
    const choices = Object.entries(map).map(([v, t]) => {
      const o = h('option', { value: v }, t);
      if (v === sel.dataset.default) { o.defaultSelected = true; o.selected = true; }
      return o;
    });
    sel.replaceChildren(...(sel.multiple ? choices : [h('option', { value: '' }, '请选择'), ...choices]));
  });
}

function setOptions(sel, options, placeholder) {
  const keep = new Set([...sel.selectedOptions].map((o) => o.value));
  const nodes = [];
  if (placeholder && !sel.multiple) nodes.push(h('option', { value: '' }, placeholder));
  for (const [value, textValue] of options) {
    const o = h('option', { value }, textValue);
    if (keep.has(value)) o.selected = true;
    nodes.push(o);
  }
  sel.replaceChildren(...nodes);
  sel.disabled = false;
}

function renderSources() {
  if (!site) return;
  const members = [...(site.members || [])].sort((a, b) => String(a.name).localeCompare(String(b.name), 'zh-CN'));
  const memberOptions = members.map((m) => [m.member_id, `${m.name}（${m.section} · ${label(LABELS.unitKind, m.unit_kind)} · ${m.member_id}）`]);
  document.querySelectorAll('select[data-source="members"]').forEach((sel) => {
    setOptions(sel, memberOptions, memberOptions.length ? '请选择党员' : '本工地暂无在场党员');
  });
  const names = new Map((site.members || []).map((m) => [m.member_id, m.name]));
  const talkOptions = talks.map((t) => [t.obligation_id,
    `${t.name || names.get(t.member_id) || t.member_id} · ${label(LABELS.talkReason, t.reason)} · 应于 ${t.due_on} 前谈${t.overdue ? '（已逾期）' : ''}`]);
  document.querySelectorAll('select[data-source="talks"]').forEach((sel) => {
    setOptions(sel, talkOptions, talkOptions.length ? '请选择必谈任务' : '暂无待谈的必谈任务');
  });
  const l = site.liaison || {};
  const sources = {
    cases: [(l.open_cases || []).map((c) => [c.case_id,
      `${c.case_id} · ${label(LABELS.dispute, c.kind)}纠纷 · ${label(LABELS.caseState, c.state)} · ${c.reported_on} 受理`]),
    '暂无未结案件', '请选择案件'],
    'open-items': [(l.open_items || []).map((x) => [x.item_id,
      `${x.description} · ${label(LABELS.party, x.responsible)} · 应于 ${x.due_on}${x.overdue ? '（逾期）' : ''} · ${x.item_id}`]),
    '暂无未解决的议定事项', ''],
    'cobuilding-items': [(l.agreements || []).flatMap((a) => a.items.filter((i) => !i.completed_on).map((i) => [
      `${a.agreement_id}/${i.item_id}`, `${a.village} · ${i.title}（协议 ${a.agreement_id}，${a.signed_on} 签订）`])),
    '暂无未完成的共建事项', '请选择共建事项'],
  };
  for (const [source, [options, none, choose]] of Object.entries(sources)) {
    document.querySelectorAll(`select[data-source="${source}"]`).forEach((sel) => {
      setOptions(sel, options, options.length ? choose : none);
    });
  }
  const full = members.filter((m) => m.status === 'full').map((m) => [m.member_id, `${m.name}（${m.section} · ${m.member_id}）`]);
  document.querySelectorAll('select[data-source="full-members"]').forEach((sel) => {
    setOptions(sel, full, full.length ? '请选择正式党员' : '本工地暂无在场正式党员');
  });
  renderDevelopmentPeople();
  renderAppraisal(members);
  const units = site.units || {};
  fill('unit-names', Object.values(units).filter(Boolean).map((u) => h('option', { value: u })));
  fill('sections', Object.keys(site.by_section || {}).map((s) => h('option', { value: s })));
}

// 发展党员: the step before each step, whose people it may take (an extension or confirmation takes a probationary
// member admitted here or arrived as one).
const STEP_FROM = {
  DesignateActivist: 'applicant', DesignateDevelopmentTarget: 'activist', AdmitProbationary: 'target',
  ExtendProbation: 'probationary', ConfirmFullMembership: 'probationary',
};

// [person_id, option text, name] of the people the chosen development step may take.
function developmentPeople() {
  const stage = STEP_FROM[document.getElementById('development-step').value];
  if (!stage || !site) return [];
  const candidates = (site.development_candidates || {})[stage] || [];
  const since = (p) => p.target_on || p.activist_on || p.applied_on || p.admitted_on || '';
  const people = candidates.map((p) => [p.person_id, `${p.name}（${label(LABELS.stage, stage)} · ${since(p) ? `${since(p)} 起 · ` : ''}${p.person_id}）`, p.name]);
  if (stage === 'probationary') {
    const listed = new Set(people.map(([id]) => id));
    for (const m of site.members || []) {
      if (m.status === 'probationary' && !listed.has(m.member_id)) {
        people.push([m.member_id, `${m.name}（预备党员 · ${m.admitted_on ? `${m.admitted_on} 入党 · ` : ''}${m.member_id}）`, m.name]);
      }
    }
  }
  return people.sort((a, b) => String(a[2]).localeCompare(String(b[2]), 'zh-CN'));
}

function renderDevelopmentPeople() {
  const sel = document.querySelector('select[data-source="development-people"]');
  const step = document.getElementById('development-step').value;
  const stage = STEP_FROM[step];
  if (!sel || !stage) return;
  const people = developmentPeople();
  setOptions(sel, people.map(([id, textValue]) => [id, textValue]),
    people.length ? `请选择${label(LABELS.stage, stage)}` : `本工地暂无${label(LABELS.stage, stage)}`);
}

// 民主评议: one row per member present, the grades chosen kept while the site's figures change.
function renderAppraisal(members) {
  const list = document.getElementById('appraisal-list');
  const chosen = new Map([...list.querySelectorAll('select[data-grade-of]')].map((sel) => [sel.dataset.gradeOf, sel.value]));
  const rows = members.map((m) => {
    const sel = h('select', { dataset: { gradeOf: m.member_id }, 'aria-label': `${m.name}的等次` },
      h('option', { value: '' }, '未评议'),
      Object.entries(LABELS.grade).map(([v, t]) => h('option', { value: v }, t)));
    sel.value = chosen.get(m.member_id) || '';
    return h('label', { class: 'appraisal-row' },
      h('span', {}, `${m.name}（${m.section} · ${label(LABELS.statusShort, m.status)}）`), sel);
  });
  fill(list, rows.length ? rows : h('p', { class: 'muted' }, '本工地暂无在场党员'));
}

// Shows the fields that belong to the chosen activity kind and step; hidden ones are disabled (not sent).
function syncConditional() {
  const activity = document.getElementById('form-activity');
  const social = activity.elements.namedItem('kind').value === 'social_service';
  activity.querySelectorAll('[data-when="social_service"]').forEach((el) => {
    el.hidden = !social;
    el.querySelectorAll('input').forEach((i) => { i.disabled = !social; });
  });
  document.querySelectorAll('form.record-form').forEach((form) => {
    const chooser = form.elements.namedItem('step');
    if (!chooser) return;
    const step = chooser.value;
    form.dataset.command = `${form.dataset.command.split('/')[0]}/${step}`;
    form.querySelectorAll('[data-step]').forEach((group) => {
      const on = group.dataset.step.split(' ').includes(step);
      group.hidden = !on;
      group.querySelectorAll('input, select, textarea').forEach((i) => { i.disabled = !on; });
    });
  });
  renderDevelopmentPeople();
}

// The unit's name follows its kind when the site's units name it and the user has not typed another.
function wireUnitName() {
  const form = document.getElementById('form-arrival');
  const kind = form.elements.namedItem('member.unit_kind');
  const name = form.elements.namedItem('member.unit_name');
  let auto = '';
  const follow = () => {
    const suggestion = (site && site.units && site.units[kind.value]) || '';
    if (!name.value || name.value === auto) { name.value = suggestion; auto = suggestion; }
  };
  kind.addEventListener('change', follow);
  return follow;
}

function showTab(tab) {
  const tabs = [...document.querySelectorAll('#tabs [data-tab]')];
  const chosen = tabs.find((b) => b.dataset.tab === tab) ? tab : tabs[0].dataset.tab;
  for (const b of tabs) b.setAttribute('aria-selected', b.dataset.tab === chosen ? 'true' : 'false');
  document.querySelectorAll('[data-tab-panel]').forEach((p) => { p.hidden = p.dataset.tabPanel !== chosen; });
  if (location.hash.slice(1) !== chosen) history.replaceState(null, '', `#${chosen}`);
}

// ---- data -----------------------------------------------------------------------------------------------------------

async function loadTalks() {
  try {
    talks = (await view('talks', { site_id: siteId })).open || [];
  } catch (err) {
    if (!(err instanceof ApiError) || err.status !== 401) talks = [];
  }
  renderSources();
}

const talksSoon = throttle(loadTalks, 3000);

const refreshSoon = throttle(async () => {
  try {
    site = await view('site', { site_id: siteId });
  } catch { /* the live stream will bring it */ }
  await loadTalks();
}, 1500);

function onSite(d) {
  if (!d) return;
  site = d;
  fill('title', `记录 · ${d.name}`);
  document.title = `记录 · ${d.name} · 工地党建`;
  renderSources();
  talksSoon();
}

start(async () => {
  // Before any await: a form sent while the page is still loading is not submitted natively (a reload that loses it).
  document.querySelectorAll('form.record-form').forEach((f) => f.addEventListener('submit', submit));
  me = await loadMe();
  header(me);
  siteId = siteFromPath();
  document.getElementById('site-link').href = `/site/${encodeURIComponent(siteId)}`;
  if (!me.may_write) {
    showProblem(new ApiError(403, { code: 'FORBIDDEN', message: `${me.role_label || label(LABELS.role, me.role)}身份只能查看，不能记录` }),
      'content', { forbiddenTitle: '无权记录' });
    return;
  }
  if (me.role === 'site' && me.site && me.site !== siteId) {
    fill('write-note', `提示：您的账号只能记录本工地（${me.site}），记录其他工地会被拒绝。`);
  }
  fillOptions();
  applyDefaults();
  const followUnit = wireUnitName();
  document.getElementById('form-activity').elements.namedItem('kind').addEventListener('change', syncConditional);
  document.getElementById('dispute-step').addEventListener('change', syncConditional);
  document.getElementById('development-step').addEventListener('change', syncConditional);
  document.getElementById('appraise-rest').addEventListener('click', () => {
    document.querySelectorAll('#appraisal-list select[data-grade-of]').forEach((sel) => { if (!sel.value) sel.value = 'qualified'; });
  });
  document.querySelectorAll('#tabs [data-tab]').forEach((b) => b.addEventListener('click', () => showTab(b.dataset.tab)));
  addEventListener('hashchange', () => showTab(location.hash.slice(1)));
  showTab(location.hash.slice(1));
  syncConditional();

  const data = await view('site', { site_id: siteId });
  const snap = snapshotOf(data);
  setFreshness(snap.at, snap.seq);
  onSite(data);
  followUnit();
  live('site', siteId, onSite, { initialSeq: Number.isFinite(snap.seq) ? snap.seq : -1, onFailure: (err) => showProblem(err) });
});
