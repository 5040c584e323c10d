/* net.BlockList: address, range and subnet rules, and the check a server or
 * a connect makes against them.
 *
 * Node keeps each rule as a SocketAddress (a sockaddr_in or sockaddr_in6)
 * and compares families case by case in node_sockaddr.cc. cnet keeps every
 * address as 16 bytes, an IPv4 one in its IPv4-mapped form ::ffff:a.b.c.d,
 * plus the family it was given in. For address and subnet rules the mapped
 * form makes the cases collapse into one byte comparison (BL-03: 1.2.3.4 and
 * ::ffff:1.2.3.4 are the same address to them, both ways). Ranges are the
 * exception, reproduced below: Node compares an IPv4 address with an IPv6
 * one only if the IPv6 one is mapped, so an IPv6 range whose ends are not
 * both mapped never holds an IPv4 address, even one its mapped form is in.
 *
 * Rules live in an array, oldest first; Node lists them newest first, so
 * rule i of the listing is the array's len - 1 - i. A list may be shared by
 * loops on several threads: adds take the write lock, checks and listings
 * the read lock.
 */
#include "internal.h"

#include <stdio.h>

#define IP_LEN 16

enum { RULE_ADDRESS, RULE_RANGE, RULE_SUBNET };

typedef struct {
  unsigned char a[IP_LEN]; /* the address, the range's start, the network */
  unsigned char b[IP_LEN]; /* the range's end */
  uint8_t kind;
  uint8_t family; /* 4 or 6: how the rule was added, and is printed */
  uint8_t prefix; /* a subnet's, in bits of its own family */
} rule_t;

struct cnet_block_list_s {
  uv_rwlock_t lock;
  rule_t *rules;
  size_t len, cap;
};

/* An address to add or check: mapped bytes and the family it came as. */
typedef struct {
  unsigned char b[IP_LEN];
  int family;
} ip_t;

static const unsigned char mapped_prefix[12] = {0, 0, 0, 0, 0,    0,
                                                0, 0, 0, 0, 0xff, 0xff};

/* ------------------------------------------------------------------------ */
/* Addresses                                                                */

/* new SocketAddress({ address, family }) as BlockList makes it: the same
 * libuv parser, a "%zone" cut off the way uv_ip6_addr() does. Returns 0,
 * CNET_ERR_INVALID_ARG_VALUE (family) or CNET_ERR_INVALID_ADDRESS, without
 * recording it: check() swallows both, as Node does. */
static int parse_ip(const char *text, int family, ip_t *out) {
  out->family = cnet__family_arg(family);
  if (out->family == 0)
    return CNET_ERR_INVALID_ARG_VALUE;
  if (out->family == 4) {
    memcpy(out->b, mapped_prefix, sizeof(mapped_prefix));
    return cnet__ip_pton(4, text, out->b + 12) ? 0 : CNET_ERR_INVALID_ADDRESS;
  }
  return cnet__ip_pton(6, text, out->b) ? 0 : CNET_ERR_INVALID_ADDRESS;
}

/* SocketAddress's .address: inet_ntop of the family the rule was added in,
 * so an IPv4 rule prints "1.2.3.4" and an IPv6 one "::ffff:1.2.3.4". */
static void ip_text(int family, const unsigned char *b, char *out,
                    size_t size) {
  if (family == 4)
    uv_inet_ntop(AF_INET, b + 12, out, size);
  else
    uv_inet_ntop(AF_INET6, b, out, size);
}

static bool is_mapped(const unsigned char *b) {
  return memcmp(b, mapped_prefix, sizeof(mapped_prefix)) == 0;
}

/* The first `bits` bits of a and b agree. */
static bool same_prefix(const unsigned char *a, const unsigned char *b,
                        unsigned bits) {
  unsigned bytes = bits / 8, rest = bits % 8;
  unsigned char mask = (unsigned char)(0xff00u >> rest);

  if (memcmp(a, b, bytes) != 0)
    return false;
  return rest == 0 || ((a[bytes] ^ b[bytes]) & mask) == 0;
}

/* node_sockaddr.cc's is_match / is_in_network / compare, in mapped form. */
static bool rule_matches(const rule_t *r, const ip_t *ip) {
  switch (r->kind) {
  case RULE_ADDRESS:
    return memcmp(r->a, ip->b, IP_LEN) == 0;
  case RULE_SUBNET:
    /* An IPv4 network's /n is its mapped form's /96+n: an IPv6 address
     * must then be mapped to be in it. */
    return same_prefix(r->a, ip->b,
                       r->family == 4 ? 96u + r->prefix : r->prefix);
  default:
    /* Across families Node compares only with a mapped IPv6 address: all
     * three must be mapped (the IPv4 ones are, by construction). */
    if (r->family != ip->family &&
        !(is_mapped(r->a) && is_mapped(r->b) && is_mapped(ip->b)))
      return false;
    return memcmp(r->a, ip->b, IP_LEN) <= 0 && memcmp(ip->b, r->b, IP_LEN) <= 0;
  }
}

/* ------------------------------------------------------------------------ */
/* Errors, with Node's messages                                             */

/* The address could not be made a SocketAddress: the family first (Node's
 * constructor checks it before the address), then the address. */
static int fail_parse(int err, int family) {
  char received[16];

  if (err != CNET_ERR_INVALID_ARG_VALUE)
    return cnet__fail(err);
  snprintf(received, sizeof(received), "%d", family);
  return cnet__fail(CNET_ERR_INVALID_ARG_VALUE, "property 'options.family'",
                    "is invalid", received);
}

/* BL-04: "The argument 'start' must come before end. Received
 * SocketAddress { address: '10.0.0.9', port: 0, family: 'ipv4', flowlabel: 0
 * }". util.inspect keeps the four properties on one line while 4 + 15 plus
 * their lengths fit in its 80 columns -- an address of up to 17 characters
 * -- and otherwise gives each its own line (checked against Node v20). */
static int fail_order(const ip_t *start) {
  char addr[INET6_ADDRSTRLEN], received[256];
  const char *family = start->family == 4 ? "ipv4" : "ipv6";
  size_t width;

  ip_text(start->family, start->b, addr, sizeof(addr));
  width = 4 + 15 + strlen("address: ''") + strlen(addr) + strlen("port: 0") +
          strlen("family: 'ipv4'") + strlen("flowlabel: 0");
  snprintf(received, sizeof(received),
           width <= 80 ? "SocketAddress { address: '%s', port: 0, family: "
                         "'%s', flowlabel: 0 }"
                       : "SocketAddress {\n  address: '%s',\n  port: 0,\n  "
                         "family: '%s',\n  flowlabel: 0\n}",
           addr, family);
  return cnet__fail(CNET_ERR_INVALID_ARG_VALUE, "argument 'start'",
                    "must come before end", received);
}

/* BL-05: validateInt32(prefix, 'prefix', 0, 32 or 128). */
static int fail_prefix(int family, int prefix) {
  char received[16];

  snprintf(received, sizeof(received), "%d", prefix);
  return cnet__fail(CNET_ERR_OUT_OF_RANGE, "prefix",
                    family == 4 ? ">= 0 && <= 32" : ">= 0 && <= 128", received);
}

/* util.inspect of a JS string, written into an error message. Node cuts the
 * whole inspected text at 128 UTF-16 units and adds "..."
 * (ERR_INVALID_ARG_VALUE), so the writer counts units as it goes. */
typedef struct {
  char *out;
  size_t size, n, units;
  bool cut;
} text_writer_t;

/* One character: its UTF-8 bytes, worth one or two UTF-16 units. */
static void put_char(text_writer_t *w, const char *s, size_t k) {
  size_t units = k == 4 ? 2 : 1;

  if (w->cut || w->units + units > 128) {
    w->cut = true;
    return;
  }
  for (size_t i = 0; i < k && w->n + 1 < w->size; i++)
    w->out[w->n++] = s[i];
  w->units += units;
}

static void put_ascii(text_writer_t *w, const char *s) {
  for (; *s != '\0'; s++)
    put_char(w, s, 1);
}

/* strEscape(): one piece quoted with ' -- or with " or ` when the piece
 * holds a ' and not the other -- and its control characters, backslashes
 * and (with ') quotes escaped. */
static void put_quoted(text_writer_t *w, const char *s, const char *e) {
  static const char *const named[0x20] = {['\b'] = "\\b",
                                          ['\t'] = "\\t",
                                          ['\n'] = "\\n",
                                          ['\f'] = "\\f",
                                          ['\r'] = "\\r"};
  char quote[2] = "'", esc[8];

  if (memchr(s, '\'', (size_t)(e - s)) != NULL) {
    bool dollar_brace = false;

    for (const char *p = s; p + 1 < e; p++)
      dollar_brace = dollar_brace || (p[0] == '$' && p[1] == '{');
    if (memchr(s, '"', (size_t)(e - s)) == NULL)
      quote[0] = '"';
    else if (memchr(s, '`', (size_t)(e - s)) == NULL && !dollar_brace)
      quote[0] = '`';
  }
  put_ascii(w, quote);
  for (const char *p = s; p < e;) {
    unsigned char c = (unsigned char)*p;
    size_t k = 1;

    if (c < 0x20 && named[c] != NULL) {
      put_ascii(w, named[c]);
    } else if (c < 0x20 || c == 0x7f) {
      snprintf(esc, sizeof(esc), "\\x%02X", c);
      put_ascii(w, esc);
    } else if (c == '\\') {
      put_ascii(w, "\\\\");
    } else if (c == '\'' && quote[0] == '\'') {
      put_ascii(w, "\\'");
    } else if (c == 0xc2 && p + 1 < e && (unsigned char)p[1] >= 0x80 &&
               (unsigned char)p[1] <= 0x9f) {
      snprintf(esc, sizeof(esc), "\\x%02X", (unsigned char)p[1]); /* C1 */
      put_ascii(w, esc);
      k = 2;
    } else {
      while (p + k < e && ((unsigned char)p[k] & 0xc0) == 0x80)
        k++;
      put_char(w, p, k);
    }
    p += k;
  }
  put_ascii(w, quote);
}

/* inspect(string) in an error message: a text longer than 76 columns
 * (80, Node's breakLength, less 4) is shown as one quoted piece per line,
 * joined with " +\n  ". */
static void inspect_string(const char *s, char *out, size_t size) {
  text_writer_t w = {out, size, 0, 0, false};
  const char *end = s + strlen(s), *p = s;
  size_t units = 0;

  for (const char *q = s; q < end; q++) {
    unsigned char c = (unsigned char)*q;

    units += (c & 0xc0) != 0x80 ? (c >= 0xf0 ? 2 : 1) : 0;
  }
  while (p < end || p == s) {
    const char *nl = units > 76 ? memchr(p, '\n', (size_t)(end - p)) : NULL;
    const char *stop = nl != NULL && nl + 1 < end ? nl + 1 : end;

    if (p != s)
      put_ascii(&w, " +\n  ");
    put_quoted(&w, p, stop);
    p = stop;
    if (p == end)
      break;
  }
  out[w.n] = '\0';
  if (w.cut)
    snprintf(out + w.n, size - w.n, "...");
}

/* add_rule's text was not a rule. */
static int fail_rule(const char *rule) {
  char received[CNET_MESSAGE_MAX];

  inspect_string(rule, received, sizeof(received));
  return cnet__fail(CNET_ERR_INVALID_ARG_VALUE, "argument 'rule'", "is invalid",
                    received);
}

/* ------------------------------------------------------------------------ */
/* Rules                                                                    */

/* Each builder fills r from Node's arguments and returns 0 or the code
 * Node would throw, recording nothing; the caller explains the failure. */

static int build_address(rule_t *r, const char *address, int family) {
  ip_t ip;
  int err = parse_ip(address, family, &ip);

  if (err != 0)
    return err;
  memset(r, 0, sizeof(*r));
  r->kind = RULE_ADDRESS;
  r->family = (uint8_t)ip.family;
  memcpy(r->a, ip.b, IP_LEN);
  return 0;
}

/* The start and end come in the same family, so Node's comparison is
 * plain byte order. *start is filled for fail_order(). */
static int build_range(rule_t *r, const char *start, const char *end,
                       int family, ip_t *first) {
  ip_t last;
  int err = parse_ip(start, family, first);

  if (err == 0)
    err = parse_ip(end, family, &last);
  if (err != 0)
    return err;
  if (memcmp(first->b, last.b, IP_LEN) > 0)
    return CNET_ERR_INVALID_ARG_VALUE;
  memset(r, 0, sizeof(*r));
  r->kind = RULE_RANGE;
  r->family = (uint8_t)first->family;
  memcpy(r->a, first->b, IP_LEN);
  memcpy(r->b, last.b, IP_LEN);
  return 0;
}

/* Node reads the network before it checks the prefix. */
static int build_subnet(rule_t *r, const char *network, int prefix,
                        int family) {
  ip_t ip;
  int err = parse_ip(network, family, &ip);

  if (err != 0)
    return err;
  if (prefix < 0 || prefix > (ip.family == 4 ? 32 : 128))
    return CNET_ERR_OUT_OF_RANGE;
  memset(r, 0, sizeof(*r));
  r->kind = RULE_SUBNET;
  r->family = (uint8_t)ip.family;
  r->prefix = (uint8_t)prefix;
  memcpy(r->a, ip.b, IP_LEN);
  return 0;
}

static int insert(cnet_block_list_t *bl, const rule_t *r) {
  int err = 0;

  uv_rwlock_wrlock(&bl->lock);
  if (bl->len == bl->cap) {
    size_t cap = bl->cap != 0 ? bl->cap * 2 : 8;
    rule_t *rules = cap < SIZE_MAX / sizeof(*rules)
                        ? cnet__realloc(bl->rules, cap * sizeof(*rules))
                        : NULL;

    if (rules == NULL) {
      err = UV_ENOMEM;
    } else {
      bl->rules = rules;
      bl->cap = cap;
    }
  }
  if (err == 0)
    bl->rules[bl->len++] = *r;
  uv_rwlock_wrunlock(&bl->lock);
  return err != 0 ? cnet__fail(err) : 0;
}

/* BL-06: "Address: IPv4 1.1.1.1", "Range: IPv4 10.0.0.1-10.0.0.10",
 * "Subnet: IPv6 8592:757c:efae:4e45::/64". */
static size_t format_rule(const rule_t *r, char *buf, size_t size) {
  static const char *const kinds[] = {"Address", "Range", "Subnet"};
  char a[INET6_ADDRSTRLEN], b[INET6_ADDRSTRLEN];
  const char *family = r->family == 4 ? "IPv4" : "IPv6";
  int n;

  ip_text(r->family, r->a, a, sizeof(a));
  if (r->kind == RULE_RANGE) {
    ip_text(r->family, r->b, b, sizeof(b));
    n = snprintf(buf, size, "%s: %s %s-%s", kinds[r->kind], family, a, b);
  } else if (r->kind == RULE_SUBNET) {
    n = snprintf(buf, size, "%s: %s %s/%u", kinds[r->kind], family, a,
                 (unsigned)r->prefix);
  } else {
    n = snprintf(buf, size, "%s: %s %s", kinds[r->kind], family, a);
  }
  return n > 0 ? (size_t)n : 0;
}

/* ------------------------------------------------------------------------ */
/* The public calls                                                         */

cnet_block_list_t *cnet_block_list_new(void) {
  cnet_block_list_t *bl = cnet__calloc(1, sizeof(*bl));

  if (bl == NULL) {
    cnet__fail(UV_ENOMEM);
    return NULL;
  }
  if (uv_rwlock_init(&bl->lock) != 0) {
    cnet__free(bl);
    cnet__fail(UV_ENOMEM);
    return NULL;
  }
  return bl;
}

void cnet_block_list_free(cnet_block_list_t *bl) {
  if (bl == NULL)
    return;
  uv_rwlock_destroy(&bl->lock);
  cnet__free(bl->rules);
  cnet__free(bl);
}

int cnet_block_list_add_address(cnet_block_list_t *bl, const char *address,
                                int family) {
  rule_t r;
  int err;

  if (bl == NULL || address == NULL)
    return cnet__fail(UV_EINVAL);
  err = build_address(&r, address, family);
  if (err != 0)
    return fail_parse(err, family);
  return insert(bl, &r);
}

int cnet_block_list_add_range(cnet_block_list_t *bl, const char *start,
                              const char *end, int family) {
  rule_t r;
  ip_t first;
  int err;

  if (bl == NULL || start == NULL || end == NULL)
    return cnet__fail(UV_EINVAL);
  if (cnet__family_arg(family) == 0)
    return fail_parse(CNET_ERR_INVALID_ARG_VALUE, family);
  err = build_range(&r, start, end, family, &first);
  if (err == CNET_ERR_INVALID_ARG_VALUE)
    return fail_order(&first); /* the family was fine: the order is not */
  if (err != 0)
    return fail_parse(err, family);
  return insert(bl, &r);
}

int cnet_block_list_add_subnet(cnet_block_list_t *bl, const char *network,
                               int prefix, int family) {
  rule_t r;
  int err;

  if (bl == NULL || network == NULL)
    return cnet__fail(UV_EINVAL);
  err = build_subnet(&r, network, prefix, family);
  if (err == CNET_ERR_OUT_OF_RANGE)
    return fail_prefix(cnet__family_arg(family), prefix);
  if (err != 0)
    return fail_parse(err, family);
  return insert(bl, &r);
}

/* Splits "<a><sep><b>" at its only sep into two NUL-terminated copies.
 * false if sep is missing or repeated, or a part is empty or too long. */
static bool split_once(const char *s, char sep, char *a, char *b, size_t size) {
  const char *at = strchr(s, sep);
  size_t la, lb;

  if (at == NULL || strchr(at + 1, sep) != NULL)
    return false;
  la = (size_t)(at - s);
  lb = strlen(at + 1);
  if (la == 0 || lb == 0 || la >= size || lb >= size)
    return false;
  memcpy(a, s, la);
  a[la] = '\0';
  memcpy(b, at + 1, lb + 1);
  return true;
}

/* A subnet's prefix as rule() prints it: 1 to 3 decimal digits. */
static bool parse_prefix(const char *s, int *out) {
  size_t n = strlen(s);

  if (n == 0 || n > 3 || strspn(s, "0123456789") != n)
    return false;
  *out = atoi(s);
  return true;
}

/* BlockList.fromJSON()'s reading of one entry (Node v22.19), strict: the
 * text must be a rule as rule() prints it, with any address text the add
 * calls accept. Node's fromJSON skips what it cannot read; a C caller gets
 * ERR_INVALID_ARG_VALUE for the whole text instead, whatever was wrong in
 * it (an unknown kind, a bad address, a range backwards, a prefix too big). */
int cnet_block_list_add_rule(cnet_block_list_t *bl, const char *rule) {
  static const char *const kinds[] = {"Address: ", "Range: ", "Subnet: "};
  char a[CNET_ADDR_MAX], b[CNET_ADDR_MAX];
  const char *rest = NULL;
  int kind, family = 0, prefix, err = CNET_ERR_INVALID_ARG_VALUE;
  rule_t r;
  ip_t first;

  if (bl == NULL || rule == NULL)
    return cnet__fail(UV_EINVAL);
  for (kind = 0; kind < (int)ARRAY_SIZE(kinds); kind++) {
    size_t n = strlen(kinds[kind]);

    if (strncmp(rule, kinds[kind], n) == 0) {
      rest = rule + n;
      break;
    }
  }
  if (rest != NULL && strncmp(rest, "IPv4 ", 5) == 0)
    family = 4;
  else if (rest != NULL && strncmp(rest, "IPv6 ", 5) == 0)
    family = 6;
  if (family != 0) {
    rest += 5;
    if (kind == RULE_ADDRESS)
      err = build_address(&r, rest, family);
    else if (kind == RULE_RANGE && split_once(rest, '-', a, b, sizeof(a)))
      err = build_range(&r, a, b, family, &first);
    else if (kind == RULE_SUBNET && split_once(rest, '/', a, b, sizeof(a)) &&
             parse_prefix(b, &prefix))
      err = build_subnet(&r, a, prefix, family);
  }
  if (err != 0)
    return fail_rule(rule);
  return insert(bl, &r);
}

static bool check_ip(const cnet_block_list_t *bl, const ip_t *ip) {
  /* The lock is the list's own state, not its value: reading needs it. */
  uv_rwlock_t *lock = (uv_rwlock_t *)&bl->lock;
  bool hit = false;

  uv_rwlock_rdlock(lock);
  for (size_t i = 0; i < bl->len && !hit; i++)
    hit = rule_matches(&bl->rules[i], ip);
  uv_rwlock_rdunlock(lock);
  return hit;
}

/* BL-07: an address that is not one (or a bad family) is just false. */
bool cnet_block_list_check(const cnet_block_list_t *bl, const char *address,
                           int family) {
  ip_t ip;

  if (bl == NULL || address == NULL || parse_ip(address, family, &ip) != 0)
    return false;
  return check_ip(bl, &ip);
}

bool cnet_block_list_check_sockaddr(const cnet_block_list_t *bl,
                                    const struct sockaddr *sa) {
  ip_t ip;

  if (bl == NULL || sa == NULL)
    return false;
  if (sa->sa_family == AF_INET) {
    const struct sockaddr_in *in4 = (const struct sockaddr_in *)sa;

    memcpy(ip.b, mapped_prefix, sizeof(mapped_prefix));
    memcpy(ip.b + 12, &in4->sin_addr, 4);
    ip.family = 4;
  } else if (sa->sa_family == AF_INET6) {
    memcpy(ip.b, &((const struct sockaddr_in6 *)sa)->sin6_addr, IP_LEN);
    ip.family = 6;
  } else {
    return false;
  }
  return check_ip(bl, &ip);
}

size_t cnet_block_list_rule_count(const cnet_block_list_t *bl) {
  uv_rwlock_t *lock;
  size_t n;

  if (bl == NULL)
    return 0;
  lock = (uv_rwlock_t *)&bl->lock;
  uv_rwlock_rdlock(lock);
  n = bl->len;
  uv_rwlock_rdunlock(lock);
  return n;
}

size_t cnet_block_list_rule(const cnet_block_list_t *bl, size_t i, char *buf,
                            size_t size) {
  uv_rwlock_t *lock;
  rule_t r;
  bool found;

  if (buf == NULL)
    size = 0;
  if (size > 0)
    buf[0] = '\0';
  if (bl == NULL)
    return 0;
  lock = (uv_rwlock_t *)&bl->lock;
  uv_rwlock_rdlock(lock);
  found = i < bl->len;
  if (found)
    r = bl->rules[bl->len - 1 - i]; /* newest first */
  uv_rwlock_rdunlock(lock);
  return found ? format_rule(&r, buf, size) : 0;
}
