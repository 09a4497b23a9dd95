// 记录 forms' furniture, shared by the record page and the site registration: reading fields, the platform's refusals
// in Chinese next to the field they name, required fields said before sending, choices from the labels, posting a
// command with its Idempotency-Key and retries.
import { ApiError, LABELS, api, fill, h } from '/static/app.js';

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
export function chinese(err) {
  const raw = String(err.message || '');
  let text = err.field && raw.startsWith(`${err.field}: `) ? raw.slice(err.field.length + 2) : raw;
  if (err.code === 'VALIDATION_FAILED') text = text.replace(/^(?:[\w.]+|请求): /, '');
  const tail = (text.match(/；另有 \d+ 处不合要求(?:（[^（）]*）)?$/) || [''])[0];
  text = text.slice(0, text.length - tail.length);
  const more = tail.replace(/（[^（）]*）$/, ''); // the other fields by their API names: the form marks its own
  // The rule's code (`[OTHER_TOWNSHIP]`) and the English after the Chinese are for logs and programs, not the form.
  const said = text.replace(/\s*\[[A-Za-z_]+\]\s*$/, '').replace(/\s*\([\x20-\x7e]*\)\s*$/, '');
  // The platform's own words come first in Chinese, its English detail in parentheses after them; a bare
  // 不合要求 says nothing, so then the English detail is read below.
  // (A message may open with a day or a year: "2026-11-27 已记录过…", "2020 年度…".)
  if (/^[\d\s-]*[\u4e00-\u9fff]/.test(said) && said !== GENERIC) return said + more;
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
export function inputFor(form, field) {
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

export function clearErrors(form) {
  form.querySelectorAll('.field-error').forEach((x) => x.remove());
  form.querySelectorAll('[aria-invalid]').forEach((x) => x.removeAttribute('aria-invalid'));
}

export function showError(form, err) {
  const message = chinese(err);
  const field = err.field || '';
  const input = inputFor(form, field);
  const box = h('div', { class: 'field-error', 'data-field': field, 'data-code': err.code, role: 'alert', title: err.message }, message);
  // The other fields at fault, each marked beside itself in its own words (`problems`; before, 不合要求，请检查
  // beside all but the first), or by name only from an older reply (另有 2 处不合要求（cost_wan、planned_months）).
  const named = (String(err.message || '').match(/另有 \d+ 处不合要求（([^（）]*)）/) || [null, ''])[1]
    .split('、').map((x) => x.trim()).filter(Boolean);
  const others = err.problems ? err.problems.filter((p) => p.field !== field)
    : named.map((name) => ({ field: name, message: null }));
  for (const problem of others) {
    const other = inputFor(form, problem.field);
    if (!other || other === input) continue;
    other.setAttribute('aria-invalid', 'true');
    const words = problem.message ? chinese({ code: err.code, field: problem.field, message: problem.message }) : '不合要求，请检查';
    (other.closest('.field') || other.parentElement).append(h('div', { class: 'field-error', 'data-field': problem.field, 'data-code': err.code, role: 'alert' }, words));
  }
  if (input) {
    (input.closest('.field') || input.parentElement).append(box);
    input.setAttribute('aria-invalid', 'true');
    input.focus();
  } else {
    const top = form.querySelector('.form-errors');
    // A field the form has no input for is named before the message, but not the site (the page is the site's).
    top.append(field && field !== 'site_id' && !/^[A-Z_]+$/.test(field) ? h('div', { class: 'field-error', 'data-field': field, 'data-code': err.code, role: 'alert', title: err.message }, `${field}：${message}`) : box);
  }
  result(form, 'error', input ? '未记录，请按提示修改后再提交' : '未记录');
}

// The required fields (marked *) left empty, each said next to itself in the form's own words before anything is
// sent: the server names only the first field it refuses, in its terms (an empty 党员编号 read as a bad format).
export function refusedEmpty(form) {
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

export function result(form, state, ...children) {
  const el = form.querySelector('.form-result');
  el.dataset.state = state;
  fill(el, children);
  return el;
}

// ---- reading the forms -----------------------------------------------------------------------------------------------

// The enabled element of that name: a form of several steps has one per step, the others disabled.
export function named(form, name) {
  return [...form.elements].find((x) => x.name === name && !x.disabled) || null;
}

export function text(form, name) {
  const el = named(form, name);
  return el ? String(el.value).trim() : '';
}

export function optional(form, name) {
  const v = text(form, name);
  return v === '' ? undefined : v;
}

// Digits as a Chinese input method may type them (１０, full width) are digits too.
export function halfWidth(v) {
  return v.replace(/[０-９]/g, (d) => String.fromCharCode(d.charCodeAt(0) - 0xfee0));
}

export function integer(form, name) {
  const v = halfWidth(text(form, name));
  return /^\d+$/.test(v) ? Number(v) : v; // anything else goes as typed: the reply names the field
}

export function selected(form, name) {
  const el = named(form, name);
  return el ? [...el.selectedOptions].map((o) => o.value).filter(Boolean) : [];
}

export function lines(form, name) {
  return text(form, name).split(/[\n\r,，、;；]+/).map((x) => x.trim()).filter(Boolean);
}

// An amount as people write it (48,000 or 4 8000): the separators go, anything else is sent as typed for the reply
// to name the field.
export function amount(form, name) {
  const v = optional(form, name);
  if (v === undefined) return v;
  const bare = halfWidth(v).replace(/[,，\s]/g, '').replace(/．/g, '.');
  return /^\d+(\.\d+)?$/.test(bare) ? bare : v;
}

export function clean(body) {
  return Object.fromEntries(Object.entries(body).filter(([, v]) => v !== undefined));
}

export function sleep(ms) { return new Promise((r) => { setTimeout(r, ms); }); }

export async function post(command, body, key) {
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

export function fillOptions() {
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

// A list choosing several (select multiple) takes each click as "this one too" or "not this one any more". Before,
// a plain click kept only the person clicked, and the help said 按住 Ctrl 点选, which means nothing on a phone or
// to most secretaries: one click too few dropped the others chosen. (Phones show their own list with boxes to tick.)
export function clickToChoose(root = document) {
  root.querySelectorAll('select[multiple]').forEach((sel) => {
    sel.addEventListener('mousedown', (e) => {
      const option = e.target;
      if (!(option instanceof HTMLOptionElement) || e.shiftKey || e.ctrlKey || e.metaKey) return;
      e.preventDefault(); // the browser's own choice would drop the others
      const top = sel.scrollTop;
      option.selected = !option.selected;
      sel.focus();
      sel.scrollTop = top;
      sel.dispatchEvent(new Event('input', { bubbles: true }));
      sel.dispatchEvent(new Event('change', { bubbles: true }));
    });
  });
}

export function setOptions(sel, options, placeholder) {
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

