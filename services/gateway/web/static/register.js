// 登记工地: a township (or the city) registers a key project's site; then its page and its 记录 are a click away.
import { ApiError, cityToday, h, header, loadMe, newKey, showProblem, start } from '/static/app.js';
import { amount, clearErrors, integer, post, refusedEmpty, result, setOptions, showError, text } from '/static/forms.js';

let me = null;
let pending = null; // {fingerprint, key} of a submission whose outcome is unknown: a resubmission keeps its key

function body(form) {
  return {
    site_id: text(form, 'site_id'),
    name: text(form, 'name'),
    township: text(form, 'township'),
    department: text(form, 'department'),
    cost_wan: amount(form, 'cost_wan'),
    planned_months: integer(form, 'planned_months'),
    start_date: text(form, 'start_date'),
    units: {
      owner: text(form, 'units.owner'),
      design: text(form, 'units.design'),
      construction: text(form, 'units.construction'),
      supervision: text(form, 'units.supervision'),
    },
  };
}

async function submit(ev) {
  ev.preventDefault();
  const form = ev.currentTarget;
  const button = form.querySelector('button[type="submit"]');
  if (!me || !me.may_write || button.disabled) return;
  clearErrors(form);
  if (refusedEmpty(form)) return;
  const facts = body(form);
  const fingerprint = JSON.stringify(facts);
  const key = pending && pending.fingerprint === fingerprint ? pending.key : newKey();
  pending = { fingerprint, key };
  button.disabled = true;
  result(form, 'busy', '正在提交…');
  try {
    const reply = await post('membership/RegisterSite', facts, key);
    pending = null;
    const page = `/site/${encodeURIComponent(facts.site_id)}`;
    const el = result(form, 'ok', `已登记：${facts.name}`,
      reply.duplicate ? h('span', { class: 'events' }, '（此前已登记，未重复记录）') : null,
      h('span', { class: 'events' }, '　', h('a', { href: page, id: 'new-site-link' }, '打开工地页'), '　',
        h('a', { href: `${page}/record` }, '记录党员进场')),
      (reply.warnings || []).length ? h('ul', { class: 'warnings' }, reply.warnings.map((w) => h('li', { dataset: { code: w.code } }, w.message))) : null);
    el.dataset.commandId = reply.command_id || '';
  } catch (err) {
    if (err instanceof ApiError && err.status === 401) return;
    if (!(err instanceof ApiError && err.retryable)) pending = null;
    showError(form, err instanceof ApiError ? err : new ApiError(0, null));
  } finally {
    button.disabled = false;
  }
}

start(async () => {
  const form = document.getElementById('form-register');
  form.addEventListener('submit', submit); // before any await: an early submit is not sent natively
  me = await loadMe();
  header(me);
  if (!me.may_write) {
    showProblem(new ApiError(403, { code: 'FORBIDDEN', message: `${me.role_label}身份只能查看，不能登记工地` }), 'content',
      { forbiddenTitle: '无权登记' });
    return;
  }
  if (me.role === 'site') { // said on opening, not after the whole form is filled (contracts.base: registers a site)
    showProblem(new ApiError(403, { code: 'FORBIDDEN', message: '工地由乡镇或市工委登记；工地书记请联系本乡镇' }), 'content',
      { forbiddenTitle: '无权登记' });
    return;
  }
  const city = me.city || {};
  const wanted = new URLSearchParams(location.search).get('township');
  // A township registers its own sites; the city chooses the township.
  const townships = Object.entries(city.townships || {}).filter(([code]) => !me.township || code === me.township);
  const chooser = form.elements.namedItem('township');
  setOptions(chooser, townships, townships.length > 1 ? '请选择乡镇' : '');
  chooser.value = me.township || (townships.some(([code]) => code === wanted) ? wanted : '');
  // A site records its department by its name, as the city file lists them.
  setOptions(form.elements.namedItem('department'), Object.values(city.departments || {}).map((n) => [n, n]), '请选择主管部门');
  form.elements.namedItem('start_date').value = cityToday();
  const back = document.getElementById('back-link');
  back.href = me.township ? `/township/${encodeURIComponent(me.township)}` : (wanted ? `/township/${encodeURIComponent(wanted)}` : '/city');
});
