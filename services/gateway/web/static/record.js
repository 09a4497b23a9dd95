// 记录: the forms a site secretary uses most. Each form posts one command to /api/commands/<service>/<Name>
// with an Idempotency-Key made for that submission and kept while the same submission is retried.
// Errors are shown next to the field the reply names (error.field), else at the top of the form.
import {
  ApiError, LABELS, cityToday, fill, h, header, label, live, loadMe, newKey, setFreshness, showProblem, snapshotOf,
  start, throttle, view,
} from '/static/app.js';
import {
  amount, chinese, clean, clearErrors, clickToChoose, fillOptions, integer, lines, optional, post, refusedEmpty, result,
  selected, setOptions, showError, text,
} from '/static/forms.js';

let me = null;
let siteId = '';
let site = null;
let talks = [];
// 撤销记录: the records of the kind chosen (the `records` query), or null for the site view's latest; and whether
// there were more of that kind than listed.
let kindRecords = null;
let moreRecords = false;
let birthdayPeople = [];

function siteFromPath() {
  const parts = location.pathname.split('/').filter(Boolean); // ['site', '<id>', 'record']
  if (parts[0] === 'site' && parts[1]) return decodeURIComponent(parts[1]);
  return new URLSearchParams(location.search).get('site_id') || (me && me.site) || '';
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
  'form-violation': (f) => ({
    command: 'activities/RecordSafetyViolation',
    body: { site_id: siteId, member_id: text(f, 'member_id'), occurred_on: text(f, 'occurred_on'), description: text(f, 'description') },
  }),
  'form-personal-change': (f) => ({
    command: 'activities/ReportPersonalChange',
    body: { site_id: siteId, member_id: text(f, 'member_id'), reported_on: text(f, 'reported_on'), description: text(f, 'description') },
  }),
  'form-birthdays': (f) => ({
    command: 'activities/CelebrateBirthdays',
    body: clean({ site_id: siteId, held_on: text(f, 'held_on'), members: selected(f, 'members'), cards_sent: integer(f, 'cards_sent') || undefined }),
  }),
  'form-post': (f) => ({
    command: 'activities/EstablishPost',
    body: { site_id: siteId, post_id: text(f, 'post_id'), kind: text(f, 'kind'), holder: text(f, 'holder'), place: text(f, 'place'), established_on: text(f, 'established_on') },
  }),
  'form-zone': (f) => ({
    command: 'activities/DesignateZone',
    body: { site_id: siteId, zone_id: text(f, 'zone_id'), name: text(f, 'name'), area: text(f, 'area'), responsible: selected(f, 'responsible'), designated_on: text(f, 'designated_on') },
  }),
  'form-team': (f) => {
    const leader = text(f, 'leader');
    // The leader is one of the team (FormTeam's rule): counted in without being picked twice.
    const members = [...new Set([leader, ...selected(f, 'members')].filter(Boolean))];
    return {
      command: 'activities/FormTeam',
      body: { site_id: siteId, team_id: text(f, 'team_id'), kind: text(f, 'kind'), name: text(f, 'name'), leader, members, purpose: text(f, 'purpose'), formed_on: text(f, 'formed_on') },
    };
  },
  'form-points': (f) => ({
    command: 'activities/AwardPoints',
    body: { site_id: siteId, member_id: text(f, 'member_id'), category: text(f, 'category'), points: integer(f, 'points'), awarded_on: text(f, 'awarded_on'), reason: text(f, 'reason') },
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
    const items = [...Array(MEETING_ITEMS).keys()].filter((i) => text(f, `items.${i}.description`)).map((i) => ({
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
  'form-retract': (f) => {
    const [record, ...id] = text(f, 'record_id').split('/'); // the option's value: <kind>/<id>
    return {
      command: 'activities/RetractRecord',
      body: { site_id: siteId, record: record || '', record_id: id.join('/'), reason: text(f, 'reason') },
    };
  },
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

async function submit(ev) {
  ev.preventDefault();
  if (!me || !me.may_write || !siteId) return; // still loading, or a login that only reads: nothing to send
  const form = ev.currentTarget;
  const button = form.querySelector('button[type="submit"]');
  if (button.disabled) return;
  // A click on the form just emptied by a success (a second click, a double tap): the record stands, said so,
  // rather than "未记录" in red over it, which made secretaries enter it again.
  const shown = form.querySelector('.form-result');
  if (shown.dataset.state === 'ok' && untouched(form)) {
    if (!shown.querySelector('.next')) shown.append(h('span', { class: 'next muted' }, '　表单已清空，可记录下一条'));
    return;
  }
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

// Nothing entered since the form was last reset: every field the user fills (not the kept ones: dates, sticky
// choices, hidden ids) is empty.
function untouched(form) {
  return [...form.querySelectorAll('input, select, textarea')]
    .filter((el) => el.type !== 'hidden' && !el.disabled && !el.closest('[hidden]') && !el.hasAttribute('data-sticky')
      && el.dataset.default === undefined)
    .every((el) => (el.multiple ? el.selectedOptions.length === 0 : String(el.value || '').trim() === ''));
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

// What a retraction did besides (domain._retraction): a talk is owed again, a violation's or change's talk no more.
const AFTER_RETRACTION = { talk: '；谈话任务重新待谈', violation: '；未谈的谈话任务一并撤销', change: '；未谈的谈话任务一并撤销' };

// Whom a record was about, by name, so that the secretary sees it was the right person.
function whom(body) {
  const record = body.record && [...(kindRecords || []), ...((site && site.records) || [])]
    .find((r) => r.record === body.record && r.record_id === body.record_id);
  if (record) return `已撤销 ${recordText(record)}${AFTER_RETRACTION[record.record] || ''}`;
  if (body.member && body.member.name) return body.member.name;
  const member = body.member_id && ((site && site.members) || []).find((m) => m.member_id === body.member_id);
  if (member) return member.name;
  const talk = body.obligation_id && talks.find((t) => t.obligation_id === body.obligation_id);
  if (talk) return talk.name || talk.member_id;
  if (body.name) return body.name;
  const person = body.person_id && developmentPeople().find(([id]) => id === body.person_id);
  if (person) return person[2];
  // a post's holder, a zone's or a party's members, by name
  const names = new Map(((site && site.members) || []).map((m) => [m.member_id, m.name]));
  const people = body.holder ? [body.holder] : body.responsible || body.members;
  if (people && people.length) return people.map((id) => names.get(id) || id).join('、');
  return body.grades ? `${body.grades.length} 名党员` : '';
}

function resetForm(form) {
  // The day stays too: the next record is most often of the same day (before, it went back to today, and a
  // secretary entering last year's records saved the next ones as of today); an appraisal's year with its day.
  const keep = [...form.querySelectorAll('[data-sticky], input[data-default="today"], input[data-default="year"]')]
    .map((el) => [el, el.value]);
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
  form.querySelectorAll('input[data-id]').forEach((el) => { el.value = newId(el.dataset.id); }); // and post, zone, team
  applyDefaults(form);
  syncConditional();
}

// ---- form furniture -------------------------------------------------------------------------------------------------

const MEETING_ITEMS = 3; // new items one meeting raises on the form (BUILD['form-meeting'] reads the filled ones)

// The joint meeting's rows of new items: each its description, kind, responsible party and day due.
function drawMeetingItems() {
  fill('meeting-items', Array.from({ length: MEETING_ITEMS }, (_, i) => h('div', { class: 'form-grid meeting-item', dataset: { item: String(i) } },
    h('label', { class: 'field span-2' }, h('span', null, `事项 ${i + 1}`), h('input', { name: `items.${i}.description`, maxlength: 100, autocomplete: 'off' })),
    h('label', { class: 'field' }, h('span', null, '类别'), h('select', { name: `items.${i}.kind`, 'data-options': 'itemKind' })),
    h('label', { class: 'field' }, h('span', null, '责任方'), h('select', { name: `items.${i}.responsible`, 'data-options': 'party' })),
    h('label', { class: 'field' }, h('span', null, '应于'), h('input', { name: `items.${i}.due_on`, type: 'date' })))));
}

// ---- defaults and ids --------------------------------------------------------------------------------------------------

function applyDefaults(root = document) {
  root.querySelectorAll('input[data-default="today"]').forEach((el) => { if (!el.value) el.value = cityToday(); });
  root.querySelectorAll('input[data-default="year"]').forEach((el) => { if (!el.value) el.value = cityToday().slice(0, 4); });
  root.querySelectorAll('input[name="meeting_id"]').forEach((el) => { if (!el.value) el.value = newMeetingId(); });
  root.querySelectorAll('input[name="group_id"]').forEach((el) => { if (!el.value) el.value = newId('xz'); });
  root.querySelectorAll('input[data-id]').forEach((el) => { if (!el.value) el.value = newId(el.dataset.id); });
}

// An id made once per form (kept while the same submission is retried): a prefix, the day, six hex digits.
function newId(prefix) {
  const tail = Array.from(crypto.getRandomValues(new Uint8Array(3)), (b) => b.toString(16).padStart(2, '0')).join('');
  return `${prefix}-${cityToday().replaceAll('-', '')}-${tail}`;
}

function newMeetingId() { return newId('lx'); } // 联席会议 of a day

function renderSources() {
  if (!site) return;
  const members = [...(site.members || [])].sort((a, b) => String(a.name).localeCompare(String(b.name), 'zh-CN'));
  const memberOptions = members.map((m) => [m.member_id, `${m.name}（${m.section} · ${label(LABELS.unitKind, m.unit_kind)} · ${m.member_id}）`]);
  document.querySelectorAll('select[data-source="members"]').forEach((sel) => {
    setOptions(sel, memberOptions, memberOptions.length ? '请选择党员' : '本工地暂无在场党员');
  });
  const names = new Map((site.members || []).map((m) => [m.member_id, m.name]));
  const sections = new Map((site.members || []).map((m) => [m.member_id, m.section]));
  // Whom, told apart from a namesake by section and id, as the departure's choice does (two 郑建国 on one site).
  const talkOptions = talks.map((t) => [t.obligation_id,
    `${t.name || names.get(t.member_id) || t.member_id}（${sections.has(t.member_id) ? `${sections.get(t.member_id)} · ` : ''}${t.member_id}） · ${label(LABELS.talkReason, t.reason)}（${t.created_on} 起） · 应于 ${t.due_on} 前谈${t.overdue ? '（已逾期）' : ''}`]);
  document.querySelectorAll('select[data-source="talks"]').forEach((sel) => {
    setOptions(sel, talkOptions, talkOptions.length ? '请选择必谈任务' : '暂无待谈的必谈任务');
  });
  const l = site.liaison || {};
  const sources = {
    cases: [(l.open_cases || []).map((c) => [c.case_id,
      `${c.case_id} · ${label(LABELS.dispute, c.kind)}纠纷${c.description ? `（${short(c.description)}）` : ''} · ${label(LABELS.caseState, c.state)} · ${c.reported_on} 受理`]),
    '暂无未结案件', '请选择案件'],
    'open-items': [(l.open_items || []).map((x) => [x.item_id,
      `${x.description} · ${label(LABELS.party, x.responsible)} · ${x.raised_on} 提出 · 应于 ${x.due_on}${x.overdue ? '（逾期）' : ''}`]),
    '暂无未解决的议定事项', ''],
    'cobuilding-items': [(l.agreements || []).flatMap((a) => a.items.filter((i) => !i.completed_on).map((i) => [
      `${a.agreement_id}/${i.item_id}`, `${a.village} · ${i.title}（协议 ${a.agreement_id}，${a.signed_on} 签订）`])),
    '暂无未完成的共建事项', '请选择共建事项'],
    records: [(kindRecords ?? (site.records || [])).map((r) => [`${r.record}/${r.record_id}`, recordText(r)]),
    '暂无可撤销的记录', '请选择要撤销的记录'],
  };
  const picker = document.querySelector('#form-retract [name="record_id"]');
  const chosen = picker.value;
  fill('records-note', kindRecords === null
    ? ((site.records || []).length >= RECORDS_LATEST ? `只列出最近 ${RECORDS_LATEST} 条；更早的记录请先选择类别` : '')
    : (moreRecords ? `只列出该类最近 ${kindRecords.length} 条` : ''));
  for (const [source, [options, none, choose]] of Object.entries(sources)) {
    document.querySelectorAll(`select[data-source="${source}"]`).forEach((sel) => {
      setOptions(sel, options, options.length ? choose : none);
    });
  }
  if (chosen && picker.value !== chosen) {
    // Before, the choice emptied itself and 撤销 then said a field was missing.
    fill('records-note', h('span', { class: 'warn' }, '刚才选中的记录已不在列表中：它已被撤销（可能在另一个窗口）；请重新选择'));
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

// The members present whose political birthday falls in the month of the party's day and who have not had it
// that year (the views' 政治生日 list of that month, CelebrateBirthdays' rules), as [member_id, text].
async function loadBirthdayMembers() {
  const day = text(document.getElementById('form-birthdays'), 'held_on') || cityToday();
  try {
    const listed = await view('birthdays', { site_id: siteId, month: day.slice(0, 7) });
    birthdayPeople = (listed.members || []).filter((m) => !m.celebrated_on)
      .map((m) => [m.member_id, `${m.name}（${m.admitted_on} 入党 · ${m.member_id}）`]);
  } catch (err) {
    if (!(err instanceof ApiError) || err.status !== 401) birthdayPeople = [];
  }
  renderBirthdayMembers();
}

function renderBirthdayMembers() {
  document.querySelectorAll('select[data-source="birthday-members"]').forEach((sel) => setOptions(sel, birthdayPeople, ''));
  const day = text(document.getElementById('form-birthdays'), 'held_on') || cityToday();
  const month = `${Number(day.slice(5, 7))} 月`;
  fill('birthday-note', birthdayPeople.length ? `${month}待过政治生日的在场党员 ${birthdayPeople.length} 名`
    : `${month}没有待过政治生日的在场党员`);
}

// A long text cut to what a choice can show.
function short(text, n = 24) { return text.length > n ? `${text.slice(0, n)}…` : text; }

// A record as the secretary entered it: its day, what it was, how many took part.
function recordText(r) {
  if (r.record === 'appraisal') return `${r.day} · ${r.title}民主评议 · ${r.count} 名党员`;
  if (r.record === 'talk') return `${r.day} · 谈心谈话（${label(LABELS.talkReason, r.kind)}） · ${r.title}`;
  if (r.record === 'points') return `${r.day} · 党员积分（${label(LABELS.pointsCategory, r.kind)}） · ${r.title} · ${r.count} 分`;
  if (r.record === 'violation' || r.record === 'change') return `${r.day} · ${label(LABELS.record, r.record)} · ${r.title}`;
  if (r.record === 'post') return `${r.day} · 党员示范岗（${label(LABELS.post, r.kind)}） · ${r.title}`;
  if (r.record === 'zone') return `${r.day} · 党员责任区「${r.title}」 · ${r.count} 名党员`;
  if (r.record === 'team') return `${r.day} · ${label(LABELS.team, r.kind)}「${r.title}」 · ${r.count} 名党员`;
  const kind = r.record === 'meeting' ? label(LABELS.meetingKind, r.kind) : label(LABELS.activity, r.kind);
  return `${r.day} · ${kind}《${r.title}》 · ${r.record === 'meeting' ? '到会' : '参加'} ${r.count} 人`;
}

// 纠纷调解进展: the steps a case in each state may take (liaison's TRANSITIONS); the others are offered greyed out.
const CASE_STEPS = { reported: ['StartMediation', 'EscalateToPetition'], mediating: ['ResolveMediation', 'EscalateToPetition'] };

function syncCaseSteps() {
  const form = document.getElementById('form-dispute-step');
  const chosen = ((site && site.liaison && site.liaison.open_cases) || []).find((c) => c.case_id === text(form, 'case_id'));
  const allowed = chosen ? CASE_STEPS[chosen.state] || [] : null;
  const step = document.getElementById('dispute-step');
  for (const o of step.options) o.disabled = Boolean(allowed) && !allowed.includes(o.value);
  if (allowed && !allowed.includes(step.value) && allowed.length) {
    step.value = allowed[0];
    syncConditional();
  }
}

// 发展党员: the step before each step, whose people it may take (an extension or confirmation takes a probationary
// member admitted here or arrived as one).
const STEP_FROM = {
  DesignateActivist: 'applicant', DesignateDevelopmentTarget: 'activist', AdmitProbationary: 'target',
  ExtendProbation: 'probationary', ConfirmFullMembership: 'probationary',
};

const SINCE = { applicant: 'applied_on', activist: 'activist_on', target: 'target_on', probationary: 'admitted_on' };

// [person_id, option text, name] of the people the chosen development step may take.
function developmentPeople() {
  const stage = STEP_FROM[document.getElementById('development-step').value];
  if (!stage || !site) return [];
  const candidates = (site.development_candidates || {})[stage] || [];
  // The day each came to the step they are at (before, a probationary member showed the day named 发展对象), said
  // as the roster says it: a probationary member's day is the day of admission (入党).
  const since = (p) => {
    const day = p[SINCE[stage]] || '';
    if (!day) return '';
    return stage === 'probationary' ? `${day} 入党 · ` : `${day} 起 · `;
  };
  const people = candidates.map((p) => [p.person_id, `${p.name}（${label(LABELS.stage, stage)} · ${since(p)}${p.person_id}${p.departed ? ' · 已离场' : ''}）`, p.name]);
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

// 民主评议: one row per member present on the appraisal's day (who arrived later cannot be graded), the grades
// chosen kept while the site's figures change.
function renderAppraisal(everyone) {
  const list = document.getElementById('appraisal-list');
  const day = text(document.getElementById('form-appraisal'), 'appraised_on');
  const members = everyone.filter((m) => !day || !m.arrived_on || m.arrived_on <= day);
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
  // on a phone the row of tabs scrolls: the chosen one is brought into it (opened as …/record#team, it was not)
  const active = tabs.find((b) => b.dataset.tab === chosen);
  const row = document.getElementById('tabs');
  if (active && row.scrollWidth > row.clientWidth) row.scrollLeft = active.offsetLeft - row.offsetLeft - 40;
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

const RECORDS_LATEST = 100; // contracts.queries: the site view lists this many; a kind chosen, all of that kind

function retractKind() {
  return text(document.getElementById('form-retract'), 'record_kind');
}

async function loadRecords() {
  const kind = retractKind();
  if (!kind) {
    kindRecords = null;
    moreRecords = false;
  } else {
    try {
      const d = await view('records', { site_id: siteId, record: kind });
      if (kind !== retractKind()) return; // chosen otherwise meanwhile: that one's answer fills the list
      kindRecords = d.records || [];
      moreRecords = Boolean(d.more);
    } catch (err) {
      if (err instanceof ApiError && err.status === 401) return;
      kindRecords = [];
    }
  }
  renderSources();
}

const recordsSoon = throttle(loadRecords, 3000);
const birthdaysSoon = throttle(loadBirthdayMembers, 3000);

// Whether `d` is at least as recent as the site view shown. A view fetched after a submission may come back after
// a live snapshot that already holds the new record; taken, it put the page back before it (the record missing
// from 撤销记录 until the next change).
function notOlder(d) {
  const seq = (x) => { const n = Number(snapshotOf(x).seq); return Number.isFinite(n) ? n : -1; };
  return !site || seq(d) >= seq(site);
}

const refreshSoon = throttle(async () => {
  try {
    const fresh = await view('site', { site_id: siteId });
    if (notOlder(fresh)) site = fresh;
  } catch { /* the live stream will bring it */ }
  await loadTalks();
  if (retractKind()) await loadRecords();
}, 1500);

// A site has one branch: once formed, its form says so instead of offering to form another.
function showBranch() {
  const form = document.getElementById('form-branch');
  const branch = site && site.branch && !site.branch.dissolved_on ? site.branch : null;
  form.querySelector('button[type="submit"]').disabled = Boolean(branch);
  fill(form.querySelector('.form-note') || form.insertBefore(h('p', { class: 'form-note muted' }), form.querySelector('.form-errors')),
    branch ? `本工地已于 ${branch.formed_on} 成立党支部「${branch.name}」，不能再组建；党小组请在“党小组”中成立。` : '');
}

function onSite(d) {
  if (!d || !notOlder(d)) return;
  site = d;
  showBranch();
  fill('title', `记录 · ${d.name}`);
  document.title = `记录 · ${d.name} · 工地党建`;
  renderSources();
  talksSoon();
  birthdaysSoon();
  if (retractKind()) recordsSoon();
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
  drawMeetingItems();
  fillOptions();
  document.querySelector('#form-retract [name="record_kind"] option[value=""]').textContent = '全部类别';
  document.getElementById('form-retract').elements.namedItem('record_kind').addEventListener('change', () => {
    document.querySelector('#form-retract [name="record_id"]').value = ''; // another kind: another list
    loadRecords();
  });
  clickToChoose();
  applyDefaults();
  const followUnit = wireUnitName();
  document.getElementById('form-activity').elements.namedItem('kind').addEventListener('change', syncConditional);
  document.getElementById('dispute-step').addEventListener('change', syncConditional);
  document.getElementById('form-dispute-step').elements.namedItem('case_id').addEventListener('change', syncCaseSteps);
  document.getElementById('development-step').addEventListener('change', syncConditional);
  document.getElementById('form-appraisal').elements.namedItem('appraised_on').addEventListener('change', () => {
    if (site) renderAppraisal([...(site.members || [])].sort((a, b) => String(a.name).localeCompare(String(b.name), 'zh-CN')));
  });
  document.getElementById('form-birthdays').elements.namedItem('held_on').addEventListener('change', loadBirthdayMembers);
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
