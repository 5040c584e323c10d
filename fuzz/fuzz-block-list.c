/* libFuzzer target: net.BlockList (cnet_block_list_*).
 *
 * The input is a small program, one instruction per line, run against one
 * list and against a naive model of it kept here:
 *
 *   a[F] ADDRESS         add_address(ADDRESS, F)
 *   r[F] START END       add_range(START, END, F)
 *   s[F] NETWORK PREFIX  add_subnet(NETWORK, PREFIX, F)   (PREFIX decimal)
 *   R RULE               add_rule(RULE)  (the rest of the line; a
 *                        two-character "\n" in it is a newline)
 *   c[F] ADDRESS         check(ADDRESS, F)
 *   b[K]                 check the edges of model rule K mod count
 *
 * F is one digit, the family argument (0 or 4 IPv4, 6 IPv6, others
 * invalid); without it, 0. K is a decimal number. Other lines are skipped;
 * at most MAX_OPS lines run. fuzz/corpus/fuzz-block-list/ has examples.
 *
 * Properties:
 *   - Each add succeeds exactly when the model says so, else fails with the
 *     documented code (ERR_INVALID_ARG_VALUE for a bad family, then
 *     ERR_INVALID_ADDRESS for a bad address, ERR_INVALID_ARG_VALUE for a
 *     range backwards, ERR_OUT_OF_RANGE for a prefix; add_rule fails with
 *     ERR_INVALID_ARG_VALUE only), and changes the rule count by one or not
 *     at all; a failure leaves its code and a message in cnet_last_error().
 *     An address is what fuzz_pton (fuzz.h) accepts: inet_pton of
 *     the family, IPv6 with uv_ip6_addr()'s zone handling.
 *   - rules: rule(i) is the model's rule count-1-i (newest first), printed
 *     as Node prints it with inet_ntop's canonical addresses; and every
 *     rule(i) text added to a fresh list with add_rule succeeds and prints
 *     back the same text.
 *   - check() and check_sockaddr() agree with the model: a binary 128-bit
 *     comparison over the rules added successfully, IPv4 addresses in their
 *     IPv4-mapped form ::ffff:a.b.c.d (an IPv4 subnet /n is the mapped /96+n).
 *     One exception, Node's and documented in src/block_list.c: Node
 *     compares an IPv4 address with an IPv6 one only when the IPv6 one is
 *     IPv4-mapped, so an IPv4 address never falls in an IPv6 range unless
 *     both its ends are mapped (even when its mapped form does). So
 *     include/cnet.h's "the same address to every rule" does not hold for
 *     ranges: check("1.2.3.4") is false and check("::ffff:1.2.3.4", 6) true
 *     against the rule "Range: IPv6 ::-ffff::".
 *   - No leaks (LeakSanitizer, at the end of each run).
 */
#include "cnet.h"
#include "fuzz.h"

#include <limits.h>

#define MAX_OPS 64
#define MAX_LINE 512

enum { RULE_ADDRESS, RULE_RANGE, RULE_SUBNET };

/* One rule of the model: 16-byte addresses, IPv4 ones mapped. */
typedef struct {
  int kind;
  int fam; /* 4 or 6: the family it was added with (and is printed in) */
  unsigned char a[16], b[16];
  int prefix;
} mrule_t;

typedef struct {
  mrule_t rules[MAX_OPS];
  size_t n;
} model_t;

static const unsigned char mapped_prefix[12] = {0, 0, 0, 0, 0,    0,
                                                0, 0, 0, 0, 0xff, 0xff};

static bool is_mapped(const unsigned char *x) {
  return memcmp(x, mapped_prefix, sizeof(mapped_prefix)) == 0;
}

/* ------------------------------------------------------------ the model --- */

/* What an add must return, and the rule it adds when that is 0. */
static int model_address(const char *text, int family, mrule_t *r) {
  memset(r, 0, sizeof(*r));
  r->kind = RULE_ADDRESS;
  r->fam = fuzz_family(family);
  if (r->fam == 0)
    return CNET_ERR_INVALID_ARG_VALUE;
  return fuzz_pton(r->fam, text, r->a) ? 0 : CNET_ERR_INVALID_ADDRESS;
}

static int model_range(const char *start, const char *end, int family,
                       mrule_t *r) {
  memset(r, 0, sizeof(*r));
  r->kind = RULE_RANGE;
  r->fam = fuzz_family(family);
  if (r->fam == 0)
    return CNET_ERR_INVALID_ARG_VALUE;
  if (!fuzz_pton(r->fam, start, r->a) || !fuzz_pton(r->fam, end, r->b))
    return CNET_ERR_INVALID_ADDRESS;
  return memcmp(r->a, r->b, 16) <= 0 ? 0 : CNET_ERR_INVALID_ARG_VALUE;
}

static int model_subnet(const char *net, int prefix, int family, mrule_t *r) {
  memset(r, 0, sizeof(*r));
  r->kind = RULE_SUBNET;
  r->fam = fuzz_family(family);
  r->prefix = prefix;
  if (r->fam == 0)
    return CNET_ERR_INVALID_ARG_VALUE;
  if (!fuzz_pton(r->fam, net, r->a))
    return CNET_ERR_INVALID_ADDRESS;
  return prefix >= 0 && prefix <= (r->fam == 4 ? 32 : 128)
             ? 0
             : CNET_ERR_OUT_OF_RANGE;
}

/* "<a><sep><b>" split at its only sep, both parts non-empty and shorter
 * than CNET_ADDR_MAX (the longest address text the header promises room
 * for). The documented reading of add_rule is strict: a rule as rule()
 * prints it, so a second sep is not a rule. */
static bool split_once(const char *s, char sep, char *a, char *b) {
  const char *at = strchr(s, sep);
  size_t la, lb;

  if (at == NULL || strchr(at + 1, sep) != NULL)
    return false;
  la = (size_t)(at - s);
  lb = strlen(at + 1);
  if (la == 0 || lb == 0 || la >= CNET_ADDR_MAX || lb >= CNET_ADDR_MAX)
    return false;
  memcpy(a, s, la);
  a[la] = '\0';
  memcpy(b, at + 1, lb + 1);
  return true;
}

/* add_rule: "Address: IPv4 1.2.3.4", "Range: IPv6 ::1-::ff",
 * "Subnet: IPv4 10.0.0.0/8" (prefix: 1 to 3 decimal digits). 0 and the
 * rule, or ERR_INVALID_ARG_VALUE for anything else. */
static int model_rule(const char *text, mrule_t *r) {
  char a[CNET_ADDR_MAX], b[CNET_ADDR_MAX];
  int family, rc = -1;
  const char *rest;

  if (strncmp(text, "Address: ", 9) == 0)
    rest = text + 9;
  else if (strncmp(text, "Range: ", 7) == 0)
    rest = text + 7;
  else if (strncmp(text, "Subnet: ", 8) == 0)
    rest = text + 8;
  else
    return CNET_ERR_INVALID_ARG_VALUE;
  if (strncmp(rest, "IPv4 ", 5) == 0)
    family = 4;
  else if (strncmp(rest, "IPv6 ", 5) == 0)
    family = 6;
  else
    return CNET_ERR_INVALID_ARG_VALUE;
  rest += 5;

  if (text[0] == 'A') {
    rc = model_address(rest, family, r);
  } else if (text[0] == 'R') {
    if (split_once(rest, '-', a, b))
      rc = model_range(a, b, family, r);
  } else if (split_once(rest, '/', a, b)) {
    size_t digits = strspn(b, "0123456789");

    if (digits == strlen(b) && digits <= 3)
      rc = model_subnet(a, atoi(b), family, r);
  }
  return rc == 0 ? 0 : CNET_ERR_INVALID_ARG_VALUE;
}

/* The first bits bits of x and y agree. */
static bool same_prefix(const unsigned char *x, const unsigned char *y,
                        int bits) {
  for (int i = 0; i < bits; i++) {
    int mask = 0x80 >> (i % 8);

    if ((x[i / 8] & mask) != (y[i / 8] & mask))
      return false;
  }
  return true;
}

static bool model_matches(const mrule_t *r, const unsigned char x[16],
                          int fam) {
  switch (r->kind) {
  case RULE_ADDRESS:
    return memcmp(r->a, x, 16) == 0;
  case RULE_SUBNET:
    return same_prefix(r->a, x, r->fam == 4 ? 96 + r->prefix : r->prefix);
  default:
    /* Node's exception for an IPv4 address against an IPv6 range. */
    if (fam == 4 && r->fam == 6 && !(is_mapped(r->a) && is_mapped(r->b)))
      return false;
    return memcmp(r->a, x, 16) <= 0 && memcmp(x, r->b, 16) <= 0;
  }
}

static bool model_check(const model_t *m, const unsigned char x[16], int fam) {
  for (size_t i = 0; i < m->n; i++) {
    if (model_matches(&m->rules[i], x, fam))
      return true;
  }
  return false;
}

/* Node's rule text, addresses canonical in the rule's own family. */
static void model_text(const mrule_t *r, char *out, size_t size) {
  static const char *const kinds[] = {"Address", "Range", "Subnet"};
  char a[INET6_ADDRSTRLEN], b[INET6_ADDRSTRLEN];
  const char *family = r->fam == 4 ? "IPv4" : "IPv6";

  fuzz_ntop(r->fam, r->a, a, sizeof(a));
  if (r->kind == RULE_RANGE) {
    fuzz_ntop(r->fam, r->b, b, sizeof(b));
    snprintf(out, size, "%s: %s %s-%s", kinds[r->kind], family, a, b);
  } else if (r->kind == RULE_SUBNET) {
    snprintf(out, size, "%s: %s %s/%d", kinds[r->kind], family, a, r->prefix);
  } else {
    snprintf(out, size, "%s: %s %s", kinds[r->kind], family, a);
  }
}

/* ----------------------------------------------------------- the checks --- */

/* Rule i of bl is model rule n-1-i, and its text survives add_rule on a
 * fresh list unchanged. */
static void check_rule(const cnet_block_list_t *bl, const model_t *m,
                       size_t i) {
  char got[256], want[256], again[256];
  size_t len = cnet_block_list_rule(bl, i, got, sizeof(got));
  cnet_block_list_t *fresh;
  int rc;

  model_text(&m->rules[m->n - 1 - i], want, sizeof(want));
  FUZZ_CHECK(len == strlen(got) && strcmp(got, want) == 0,
             "rule(%zu) is \"%s\" (%zu), expected \"%s\"", i, got, len, want);

  fresh = cnet_block_list_new();
  FUZZ_CHECK(fresh != NULL, "block_list_new failed");
  rc = cnet_block_list_add_rule(fresh, got);
  FUZZ_CHECK(rc == 0, "add_rule(\"%s\") of a listed rule: %s", got,
             cnet_err_name(rc));
  FUZZ_CHECK(cnet_block_list_rule_count(fresh) == 1, "fresh list count %zu",
             cnet_block_list_rule_count(fresh));
  cnet_block_list_rule(fresh, 0, again, sizeof(again));
  FUZZ_CHECK(strcmp(again, got) == 0, "add_rule(\"%s\") lists as \"%s\"", got,
             again);
  cnet_block_list_free(fresh);
}

/* One add: same outcome as the model, count and listing updated. */
static void after_add(cnet_block_list_t *bl, model_t *m, int rc, int want,
                      const mrule_t *r, const char *what) {
  size_t before = m->n;

  FUZZ_CHECK(rc == want, "%s gives %s, expected %s", what,
             rc ? cnet_err_name(rc) : "success",
             want ? cnet_err_name(want) : "success");
  if (rc != 0)
    fuzz_check_last_error(rc, what);
  if (rc == 0)
    m->rules[m->n++] = *r;
  FUZZ_CHECK(cnet_block_list_rule_count(bl) == m->n,
             "%s: %zu rules, expected %zu (were %zu)", what,
             cnet_block_list_rule_count(bl), m->n, before);
  if (rc == 0)
    check_rule(bl, m, 0);
}

/* check() of text against the model, and check_sockaddr() of the same
 * address when it is one. */
static void check_address(const cnet_block_list_t *bl, const model_t *m,
                          const char *text, int family) {
  unsigned char x[16];
  int fam = fuzz_family(family);
  bool valid = fam != 0 && fuzz_pton(fam, text, x);
  bool want = valid && model_check(m, x, fam);
  bool got = cnet_block_list_check(bl, text, family);

  FUZZ_CHECK(got == want, "check(\"%s\", %d) is %d, expected %d", text, family,
             got, want);
  if (!valid)
    return;
  if (fam == 4) {
    struct sockaddr_in sin = {.sin_family = AF_INET};

    memcpy(&sin.sin_addr, x + 12, 4);
    got = cnet_block_list_check_sockaddr(bl, (struct sockaddr *)&sin);
  } else {
    struct sockaddr_in6 sin6 = {.sin6_family = AF_INET6};

    memcpy(&sin6.sin6_addr, x, 16);
    got = cnet_block_list_check_sockaddr(bl, (struct sockaddr *)&sin6);
  }
  FUZZ_CHECK(got == want, "check_sockaddr(%s) is %d, expected %d", text, got,
             want);
}

/* The 16-byte big-endian number x plus delta (+1 or -1), wrapping. */
static void add_one(unsigned char x[16], int delta) {
  for (int i = 15; i >= 0; i--) {
    x[i] = (unsigned char)(x[i] + delta);
    if (x[i] != (delta > 0 ? 0x00 : 0xff))
      break;
  }
}

/* x, as IPv6 text and, when it is IPv4-mapped, as IPv4 text too. */
static void check_point(const cnet_block_list_t *bl, const model_t *m,
                        const unsigned char x[16]) {
  char text[INET6_ADDRSTRLEN];

  fuzz_ntop(6, x, text, sizeof(text));
  check_address(bl, m, text, 6);
  if (is_mapped(x)) {
    fuzz_ntop(4, x, text, sizeof(text));
    check_address(bl, m, text, 4);
  }
}

/* The addresses just inside and just outside model rule k. */
static void check_edges(const cnet_block_list_t *bl, const model_t *m,
                        size_t k) {
  const mrule_t *r = &m->rules[k % m->n];
  unsigned char lo[16], hi[16], x[16];

  memcpy(lo, r->a, 16);
  memcpy(hi, r->kind == RULE_RANGE ? r->b : r->a, 16);
  if (r->kind == RULE_SUBNET) {
    int bits = r->fam == 4 ? 96 + r->prefix : r->prefix;

    for (int i = bits; i < 128; i++) {
      lo[i / 8] &= (unsigned char)~(0x80 >> (i % 8));
      hi[i / 8] |= (unsigned char)(0x80 >> (i % 8));
    }
  }
  check_point(bl, m, lo);
  check_point(bl, m, hi);
  memcpy(x, lo, 16);
  add_one(x, -1);
  check_point(bl, m, x);
  memcpy(x, hi, 16);
  add_one(x, +1);
  check_point(bl, m, x);
}

/* ---------------------------------------------------------- the program --- */

/* A decimal number (optional '-'), clamped to int; 0 if there is none. */
static int read_int(const char *s) {
  long long v = 0;
  bool neg = *s == '-';

  for (s += neg; *s >= '0' && *s <= '9'; s++) {
    if (v <= INT_MAX)
      v = v * 10 + (*s - '0');
  }
  v = neg ? -v : v;
  return v < INT_MIN ? INT_MIN : v > INT_MAX ? INT_MAX : (int)v;
}

static void run_line(cnet_block_list_t *bl, model_t *m, char *line) {
  char op = line[0];
  char *arg = line + 1, *sp;
  int family = 0, rc, want;
  mrule_t r;

  if (*arg >= '0' && *arg <= '9')
    family = *arg++ - '0';
  if (*arg == ' ')
    arg++;

  switch (op) {
  case 'a':
    want = model_address(arg, family, &r);
    rc = cnet_block_list_add_address(bl, arg, family);
    after_add(bl, m, rc, want, &r, "add_address");
    break;
  case 'r':
    sp = strchr(arg, ' ');
    if (sp == NULL)
      return;
    *sp = '\0';
    want = model_range(arg, sp + 1, family, &r);
    rc = cnet_block_list_add_range(bl, arg, sp + 1, family);
    after_add(bl, m, rc, want, &r, "add_range");
    break;
  case 's': {
    int prefix;

    sp = strchr(arg, ' ');
    if (sp == NULL)
      return;
    *sp = '\0';
    prefix = read_int(sp + 1);
    want = model_subnet(arg, prefix, family, &r);
    rc = cnet_block_list_add_subnet(bl, arg, prefix, family);
    after_add(bl, m, rc, want, &r, "add_subnet");
    break;
  }
  case 'R':
    /* The digit after 'R' was read as a family: give it back. "\n" stands
     * for a newline, which a line cannot hold: add_rule quotes the text it
     * refuses in its message, over several lines when it has newlines. */
    arg = line[1] == ' ' ? line + 2 : line + 1;
    for (char *q = arg; (q = strstr(q, "\\n")) != NULL; q++) {
      *q = '\n';
      memmove(q + 1, q + 2, strlen(q + 2) + 1);
    }
    want = model_rule(arg, &r);
    rc = cnet_block_list_add_rule(bl, arg);
    after_add(bl, m, rc, want, &r, "add_rule");
    break;
  case 'c':
    check_address(bl, m, arg, family);
    break;
  case 'b':
    if (m->n > 0)
      check_edges(bl, m, (size_t)read_int(line + 1) & 0xffff);
    break;
  default:
    break;
  }
}

/* The documented answers to NULL arguments. */
static void check_null_args(cnet_block_list_t *bl) {
  char buf[8] = "X";

  FUZZ_CHECK(
      cnet_block_list_add_address(NULL, "1.2.3.4", 4) == UV_EINVAL &&
          cnet_block_list_add_address(bl, NULL, 4) == UV_EINVAL &&
          cnet_block_list_add_range(bl, NULL, "1.2.3.4", 4) == UV_EINVAL &&
          cnet_block_list_add_range(bl, "1.2.3.4", NULL, 4) == UV_EINVAL &&
          cnet_block_list_add_subnet(bl, NULL, 8, 4) == UV_EINVAL &&
          cnet_block_list_add_rule(bl, NULL) == UV_EINVAL &&
          cnet_block_list_add_rule(NULL, "Address: IPv4 1.2.3.4") == UV_EINVAL,
      "a NULL argument to an add is not UV_EINVAL");
  FUZZ_CHECK(!cnet_block_list_check(NULL, "1.2.3.4", 4) &&
                 !cnet_block_list_check(bl, NULL, 4) &&
                 !cnet_block_list_check_sockaddr(bl, NULL),
             "check(NULL) is true");
  FUZZ_CHECK(cnet_block_list_rule_count(NULL) == 0 &&
                 cnet_block_list_rule(NULL, 0, buf, sizeof(buf)) == 0 &&
                 buf[0] == '\0',
             "a NULL list has rules");
  cnet_block_list_free(NULL);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  const char *p = (const char *)data, *end = p + size;
  cnet_block_list_t *bl;
  model_t m = {.n = 0};
  int ops = 0;

  fuzz_begin(data, size);
  bl = cnet_block_list_new();
  FUZZ_CHECK(bl != NULL, "block_list_new failed");
  while (p < end && ops < MAX_OPS) {
    const char *nl = memchr(p, '\n', (size_t)(end - p));
    size_t len = (size_t)((nl != NULL ? nl : end) - p);

    /* A line is a C string for the API: cut at a NUL, and long lines
     * (which only slow the run down) at MAX_LINE. */
    if (len > 0) {
      char *line = fuzz_strndup(p, len < MAX_LINE ? len : MAX_LINE);

      run_line(bl, &m, line);
      free(line);
      ops++;
    }
    p += len + 1;
  }
  for (size_t i = 0; i < m.n; i++)
    check_rule(bl, &m, i);
  FUZZ_CHECK(cnet_block_list_rule(bl, m.n, NULL, 0) == 0,
             "rule(%zu) past the end is not 0", m.n);
  {
    struct sockaddr other = {.sa_family = AF_UNIX};

    FUZZ_CHECK(!cnet_block_list_check_sockaddr(bl, &other),
               "check_sockaddr(AF_UNIX) is true");
  }
  check_null_args(bl);
  cnet_block_list_free(bl);
  return 0;
}
