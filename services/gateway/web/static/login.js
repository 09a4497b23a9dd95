// 登录: POST /api/login, then go to `next` (a path of this site) or the user's home page.
import { api, ApiError, fill, h, homeOf } from '/static/app.js';

function safeNext() {
  // Only a page of this site (no open redirect): the browser drops tabs and newlines and reads "\\" as "/" in a URL, so
  // "/\t/evil.example" would be "//evil.example"; refuse such characters, then let the URL parser decide.
  const next = new URLSearchParams(location.search).get('next');
  if (!next || !next.startsWith('/') || /[\u0000-\u001f\u007f\\]/.test(next)) return null;
  let url;
  try {
    url = new URL(next, location.origin);
  } catch {
    return null;
  }
  if (url.origin !== location.origin) return null;
  if (url.pathname === '/login' || url.pathname.startsWith('/api/')) return null;
  return url.pathname + url.search + url.hash;
}

const MESSAGES = {
  LOGIN_FAILED: '用户名或密码错误',
  NETWORK: '无法连接服务器，请检查网络后重试',
};

function showError(message, field) {
  const box = document.getElementById('login-error');
  fill(box, message ? h('div', { class: 'field-error', 'data-field': field || '' }, message) : null);
}

async function submit(ev) {
  ev.preventDefault();
  const form = ev.currentTarget;
  const user = form.elements.user.value.trim();
  const password = form.elements.password.value;
  if (!user) { showError('请输入用户名', 'user'); form.elements.user.focus(); return; }
  if (!password) { showError('请输入密码', 'password'); form.elements.password.focus(); return; }
  const button = document.getElementById('login-submit');
  button.disabled = true;
  button.textContent = '正在登录…';
  showError('');
  try {
    const reply = await api('/api/login', { method: 'POST', body: { user, password }, redirectOn401: false });
    location.assign(safeNext() || homeOf(reply.data));
  } catch (err) {
    let message = err.message;
    if (err instanceof ApiError) {
      if (err.code === 'LOGIN_FAILED' || err.status === 401) message = MESSAGES.LOGIN_FAILED;
      else if (err.status === 0) message = MESSAGES.NETWORK;
      else if (err.status === 503 && err.code !== 'SESSIONS_FULL') message = '平台暂时无法连接，请稍后再试';
      else if (!/[\u4e00-\u9fff]/.test(message)) message = `登录失败（${err.code}）`;
    }
    showError(message, err.field);
    form.elements.password.select();
  } finally {
    button.disabled = false;
    button.textContent = '登录';
  }
}

function init() {
  const form = document.getElementById('login-form');
  form.addEventListener('submit', submit);
  const user = new URLSearchParams(location.search).get('user');
  if (user) form.elements.user.value = user;
  (user ? form.elements.password : form.elements.user).focus();
}

if (document.readyState === 'loading') document.addEventListener('DOMContentLoaded', init);
else init();
