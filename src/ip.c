/* IP address classification with the exact semantics of Node v20's
 * net.isIP / net.isIPv4 / net.isIPv6.
 *
 * Node uses two anchored regular expressions.  A hand-written parser is
 * used here instead of <regex.h> because POSIX regexec differs from JS in
 * anchoring and alternation, and because the rules are easier to audit as
 * code.  The grammar (see NODE-NET-BEHAVIOURS.md section 2.2):
 *
 *   dec-octet = 0..255 in decimal, no leading zero
 *   ipv4      = dec-octet 3( "." dec-octet )
 *   h16       = 1*4HEX
 *   ipv6      = addr [ "%" 1*( ALNUM / "." / ":" / "-" ) ]
 *   addr      = 8 groups without "::", or at most 7 groups around one "::";
 *               an ipv4 may be the last group and counts as two.
 *
 * All character classes are plain ASCII on bytes: no locale, no Unicode.
 * Every range is a (pointer, length) pair, so nothing here relies on NUL
 * termination; a NUL byte belongs to no class and so never matches.
 */

#include "cnet.h"

#include <string.h>

/* Groups in a full IPv6 address; an embedded IPv4 tail fills two. */
#define IP6_GROUPS 8

static bool is_digit(unsigned char c) {
  return c >= '0' && c <= '9';
}

static bool is_hex(unsigned char c) {
  return is_digit(c) || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F');
}

static bool is_alnum(unsigned char c) {
  return is_digit(c) || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
}

/* Node's zone class is [0-9a-zA-Z-.:]; "%" itself is not in it, which is
 * why the zone always starts at the first "%". */
static bool is_zone_char(unsigned char c) {
  return is_alnum(c) || c == '.' || c == ':' || c == '-';
}

/* 0..255 written in decimal without a leading zero ("0" alone is fine). */
static bool is_dec_octet(const char *s, size_t len) {
  unsigned value = 0;

  if (len == 0 || len > 3)
    return false;
  if (len > 1 && s[0] == '0')
    return false;
  for (size_t i = 0; i < len; i++) {
    if (!is_digit((unsigned char)s[i]))
      return false;
    value = value * 10 + (unsigned)(s[i] - '0');
  }
  return value <= 255;
}

/* Exactly four dotted octets, nothing before or after. */
static bool is_ipv4_range(const char *s, size_t len) {
  const char *end = s + len;
  int octets = 0;

  for (;;) {
    const char *dot = memchr(s, '.', (size_t)(end - s));
    const char *stop = dot != NULL ? dot : end;

    if (!is_dec_octet(s, (size_t)(stop - s)))
      return false;
    octets++;
    if (dot == NULL)
      return octets == 4;
    if (octets == 4)
      return false; /* a fifth field, or a trailing "." */
    s = dot + 1;
  }
}

static bool is_h16(const char *s, size_t len) {
  if (len == 0 || len > 4)
    return false;
  for (size_t i = 0; i < len; i++) {
    if (!is_hex((unsigned char)s[i]))
      return false;
  }
  return true;
}

/* One ':'-separated field: an h16 is one group; an ipv4, allowed only as
 * the last field of the right-hand side, is two.  -1 if malformed. */
static int field_groups(const char *s, size_t len, bool may_be_ipv4) {
  if (may_be_ipv4 && memchr(s, '.', len) != NULL)
    return is_ipv4_range(s, len) ? 2 : -1;
  return is_h16(s, len) ? 1 : -1;
}

/* Counts the groups of a run "h16 *(':' h16)" whose last field may be an
 * ipv4 if allow_ipv4 is set.  An empty range is zero groups.  Returns -1
 * if any field is malformed or empty (so a stray leading, trailing or
 * doubled ':' fails here) or if the count exceeds a full address, which
 * also stops early on long inputs. */
static int count_groups(const char *s, size_t len, bool allow_ipv4) {
  const char *end = s + len;
  int groups = 0;

  if (len == 0)
    return 0;
  for (;;) {
    const char *colon = memchr(s, ':', (size_t)(end - s));
    const char *stop = colon != NULL ? colon : end;
    int n = field_groups(s, (size_t)(stop - s), allow_ipv4 && colon == NULL);

    if (n < 0)
      return -1;
    groups += n;
    if (groups > IP6_GROUPS)
      return -1;
    if (colon == NULL)
      return groups;
    s = colon + 1;
  }
}

/* The address part (before any zone).  With no "::" it must be a full
 * eight groups.  With one "::" the sides are counted separately; only the
 * right side may end in an ipv4, and "::" must stand for at least one zero
 * group, so at most seven may be written.  A second "::" lands in one of
 * the sides as an empty field and is rejected by count_groups. */
static bool is_ipv6_addr(const char *s, size_t len) {
  const char *end = s + len;
  const char *gap = NULL;
  int left, right;

  for (const char *p = s; p + 1 < end; p++) {
    if (p[0] == ':' && p[1] == ':') {
      gap = p;
      break;
    }
  }
  if (gap == NULL)
    return count_groups(s, len, true) == IP6_GROUPS;
  left = count_groups(s, (size_t)(gap - s), false);
  right = count_groups(gap + 2, (size_t)(end - gap - 2), true);
  return left >= 0 && right >= 0 && left + right < IP6_GROUPS;
}

/* Splits off an optional "%zone" and checks both parts.  The zone needs
 * at least one character. */
static bool is_ipv6_range(const char *s, size_t len) {
  const char *pct = memchr(s, '%', len);
  size_t addr_len = pct != NULL ? (size_t)(pct - s) : len;

  if (pct != NULL) {
    const char *zone = pct + 1;
    size_t zone_len = len - addr_len - 1;

    if (zone_len == 0)
      return false;
    for (size_t i = 0; i < zone_len; i++) {
      if (!is_zone_char((unsigned char)zone[i]))
        return false;
    }
  }
  return is_ipv6_addr(s, addr_len);
}

int cnet_is_ip_n(const char *s, size_t len) {
  /* Embedded NULs need no special case: no class accepts a NUL byte. */
  if (s == NULL)
    return 0;
  if (is_ipv4_range(s, len))
    return 4;
  if (is_ipv6_range(s, len))
    return 6;
  return 0;
}

int cnet_is_ip(const char *s) {
  return s != NULL ? cnet_is_ip_n(s, strlen(s)) : 0;
}

bool cnet_is_ipv4(const char *s) {
  return s != NULL && is_ipv4_range(s, strlen(s));
}

bool cnet_is_ipv6(const char *s) {
  return s != NULL && is_ipv6_range(s, strlen(s));
}
