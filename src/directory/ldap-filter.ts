/**
 * Building LDAP search filters from untrusted SIP user names (RFC 4515 §3).
 */

/**
 * Escape a value for use inside an LDAP filter assertion (RFC 4515 §3): `*`, `(`, `)`, `\` and NUL
 * become `\2a`, `\28`, `\29`, `\5c`, `\00`. Everything else (UTF-8 included) is kept.
 */
export function escapeFilterValue(value: string): string {
  let out = '';
  for (const ch of value) {
    switch (ch) {
      case '*':
        out += '\\2a';
        break;
      case '(':
        out += '\\28';
        break;
      case ')':
        out += '\\29';
        break;
      case '\\':
        out += '\\5c';
        break;
      case '\0':
        out += '\\00';
        break;
      default:
        out += ch;
    }
  }
  return out;
}

/**
 * Fill a filter template: every `{user}` and `{domain}` is replaced by the escaped value.
 * `(uid={user})` with user `a*)(x=1` gives `(uid=a\2a\29\28x=1)`.
 */
export function fillFilter(template: string, vars: { user: string; domain: string }): string {
  return template
    .split('{user}')
    .map((part) => part.split('{domain}').join(escapeFilterValue(vars.domain)))
    .join(escapeFilterValue(vars.user));
}
