// Passkey ceremonies (reference §8): the site's only script.
//
// It talks JSON to the passkey endpoints with the browser's cookies and the
// page's CSRF token (X-CSRF-Token, from <meta name="csrf-token">), and turns
// the base64url of the server's options into the ArrayBuffers that
// navigator.credentials wants, and the credential back. Hooks, by attribute:
//   button[data-passkey="login"]   on /login   (data-next)
//   button[data-passkey="reauth"]  on /reauth  (data-next)
//   form[data-passkey="register"]  on /account (a `name` field)
// each with data-public-origin and a .passkey-status element nearby. The
// buttons stay hidden unless this browser has WebAuthn and the page is on
// the site's public origin (the relying party would refuse it elsewhere).
(function () {
  'use strict';

  function supported(el) {
    return Boolean(window.PublicKeyCredential) &&
      window.location.origin === el.getAttribute('data-public-origin');
  }

  function toBuffer(text) {
    var b64 = text.replace(/-/g, '+').replace(/_/g, '/');
    while (b64.length % 4) { b64 += '='; }
    var raw = window.atob(b64);
    var bytes = new Uint8Array(raw.length);
    for (var i = 0; i < raw.length; i++) { bytes[i] = raw.charCodeAt(i); }
    return bytes.buffer;
  }

  function toText(buffer) {
    if (!buffer) { return null; }
    var bytes = new Uint8Array(buffer);
    var raw = '';
    for (var i = 0; i < bytes.length; i++) { raw += String.fromCharCode(bytes[i]); }
    return window.btoa(raw).replace(/\+/g, '-').replace(/\//g, '_').replace(/=+$/, '');
  }

  function descriptors(list) {
    return (list || []).map(function (c) {
      var copy = Object.assign({}, c);
      copy.id = toBuffer(c.id);
      return copy;
    });
  }

  function csrfToken() {
    var meta = document.querySelector('meta[name="csrf-token"]');
    return meta ? meta.getAttribute('content') : '';
  }

  function statusFor(el) {
    var scope = el.closest('section') || document;
    return scope.querySelector('.passkey-status');
  }

  function say(el, text) {
    var status = statusFor(el);
    if (status) { status.textContent = text; }
  }

  // POSTs JSON; resolves to the answer's JSON, or rejects with its message
  // (after sending the browser to /reauth when the server asks for it).
  function post(path, body) {
    return window.fetch(path, {
      method: 'POST',
      credentials: 'same-origin',
      headers: {
        'Content-Type': 'application/json',
        'Accept': 'application/json',
        'X-CSRF-Token': csrfToken()
      },
      body: JSON.stringify(body)
    }).then(function (res) {
      return res.json().catch(function () { return {}; }).then(function (data) {
        if (res.ok) { return data; }
        if (res.status === 403 && data.reauth_required) {
          window.location.assign('/reauth?next=' + encodeURIComponent('/account'));
        }
        throw new Error(data.error || 'Something went wrong. Please try again.');
      });
    });
  }

  function problem(err) {
    // The browser's own errors when the person cancels or the authenticator
    // refuses: one calm message rather than its technical text.
    if (err && (err.name === 'NotAllowedError' || err.name === 'AbortError')) {
      return 'The passkey was not used. You can try again.';
    }
    if (err && err.name === 'InvalidStateError') {
      return 'This device already holds a passkey for your account.';
    }
    return (err && err.message) || 'Something went wrong. Please try again.';
  }

  function register(form) {
    var field = form.querySelector('input[name="name"]');
    var name = field ? field.value.trim() : '';
    if (!name) {
      say(form, 'Please give the passkey a name.');
      if (field) { field.focus(); }
      return;
    }
    say(form, 'Follow your browser\u2019s prompt to create the passkey\u2026');
    post('/account/passkeys/register/start', { name: name }).then(function (start) {
      var options = start.publicKey;
      options.challenge = toBuffer(options.challenge);
      options.user.id = toBuffer(options.user.id);
      options.excludeCredentials = descriptors(options.excludeCredentials);
      return navigator.credentials.create({ publicKey: options }).then(function (cred) {
        return post('/account/passkeys/register/finish', {
          ceremony: start.ceremony,
          credential: {
            id: cred.id,
            rawId: toText(cred.rawId),
            type: cred.type,
            response: {
              attestationObject: toText(cred.response.attestationObject),
              clientDataJSON: toText(cred.response.clientDataJSON),
              transports: cred.response.getTransports ? cred.response.getTransports() : undefined
            },
            extensions: cred.getClientExtensionResults()
          }
        });
      });
    }).then(function (done) {
      window.location.assign(done.redirect || '/account');
    }).catch(function (err) { say(form, problem(err)); });
  }

  function authenticate(button, kind) {
    var base = kind === 'login' ? '/login/passkey' : '/reauth/passkey';
    say(button, 'Follow your browser\u2019s prompt to use your passkey\u2026');
    post(base + '/start', {}).then(function (start) {
      var options = start.publicKey;
      options.challenge = toBuffer(options.challenge);
      options.allowCredentials = descriptors(options.allowCredentials);
      return navigator.credentials.get({ publicKey: options }).then(function (cred) {
        return post(base + '/finish', {
          ceremony: start.ceremony,
          next: button.getAttribute('data-next') || '',
          credential: {
            id: cred.id,
            rawId: toText(cred.rawId),
            type: cred.type,
            response: {
              authenticatorData: toText(cred.response.authenticatorData),
              clientDataJSON: toText(cred.response.clientDataJSON),
              signature: toText(cred.response.signature),
              userHandle: toText(cred.response.userHandle)
            },
            extensions: cred.getClientExtensionResults()
          }
        });
      });
    }).then(function (done) {
      window.location.assign(done.redirect || '/');
    }).catch(function (err) { say(button, problem(err)); });
  }

  function init() {
    document.querySelectorAll('button[data-passkey="login"], button[data-passkey="reauth"]')
      .forEach(function (button) {
        if (!supported(button)) { return; }
        button.hidden = false;
        button.addEventListener('click', function () {
          authenticate(button, button.getAttribute('data-passkey'));
        });
      });
    document.querySelectorAll('form[data-passkey="register"]').forEach(function (form) {
      if (!supported(form)) {
        form.hidden = true;
        say(form, 'Passkeys cannot be added in this browser or at this address.');
        return;
      }
      form.addEventListener('submit', function (event) {
        event.preventDefault();
        register(form);
      });
    });
  }

  if (document.readyState === 'loading') {
    document.addEventListener('DOMContentLoaded', init);
  } else {
    init();
  }
}());
