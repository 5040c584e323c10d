/* libFuzzer target: cnet_socket_address_init / _parse / _format
 * (net.SocketAddress).
 *
 * Input: an optional header line "<family> <port> <flowlabel>\n" (decimal,
 * '-' allowed, clamped to the C types; missing numbers are 0), then the
 * text, up to its first NUL (the API takes C strings). Without a '\n' the
 * whole input is the text and the numbers are 0. The text goes both to
 * init (as options.address, with the header's numbers) and to parse.
 *
 * Properties:
 *
 * init  - the result follows Node's order of checks, as the implementation
 *         documents it: a family other than 0/4/6 is ERR_INVALID_ARG_VALUE;
 *         then a port outside 0..65535 ERR_SOCKET_BAD_PORT; then the
 *         address ERR_INVALID_ADDRESS unless fuzz_pton (fuzz.h: inet_pton
 *         of that family, IPv6 with uv_ip6_addr()'s zone handling) accepts
 *         it; then, IPv6 only, a flow label past 20 bits ERR_OUT_OF_RANGE.
 *         On success the address is inet_ntop's canonical text of the same
 *         bytes, the flow label kept (IPv6) or 0 (IPv4). A NULL address is
 *         Node's default, 127.0.0.1 or ::.
 * parse - every success is a value init could have made: family 4 or 6,
 *         port 0..65535, flow label 0, an address that is valid per
 *         cnet_is_ip for that family and canonical (inet_ntop(inet_pton(a))
 *         == a); and parse(format(x)) == x. Every failure is
 *         ERR_INVALID_ADDRESS. Two regions where parse must agree with the
 *         C library exactly (both ways), established by experiment on
 *         glibc 2.36 (exhaustive over short strings, then fuzzing):
 *           - "H" or "H:D": H non-empty, only [0-9a-fA-FxX.], not ending
 *             in '.', no dot-separated part "0x"/"0X" (the URL parser reads
 *             a trailing dot and a bare "0x" as fine, inet_aton does not);
 *             D only digits. Valid iff inet_aton(H) and D is empty or at
 *             most 65535; the address is inet_aton's, the port D or 0.
 *             (inet_aton reads the URL's IPv4 shorthands: "256", "0x7f.1",
 *             octal "010".)
 *           - "[X]" or "[X]:D": X only [0-9a-fA-F:.]. Valid iff
 *             inet_pton(AF_INET6, X) and the port is as above.
 * format - returns the length of "a.b.c.d:port" / "[v6]:port", writes a
 *         NUL-terminated prefix of it into any smaller buffer, and nothing
 *         into a 0-byte one.
 */
#include "cnet.h"
#include "fuzz.h"

#include <limits.h>

/* A decimal number at *p (optional '-'), clamped to [lo, hi]; moves *p past
 * it and the spaces after. Saturating, so huge inputs are no UB. */
static long long read_number(const char **p, const char *end, long long lo,
                             long long hi) {
  long long v = 0;
  bool neg = false;

  if (*p < end && **p == '-') {
    neg = true;
    (*p)++;
  }
  for (; *p < end && **p >= '0' && **p <= '9'; (*p)++) {
    if (v < LLONG_MAX / 100)
      v = v * 10 + (**p - '0');
  }
  while (*p < end && **p == ' ')
    (*p)++;
  if (neg)
    v = -v;
  return v < lo ? lo : v > hi ? hi : v;
}

/* The full text format() must produce for sa. */
static void expected_text(const cnet_socket_address_t *sa, char *out,
                          size_t size) {
  snprintf(out, size, sa->family == 6 ? "[%s]:%d" : "%s:%d", sa->address,
           sa->port);
}

/* Everything a successful result must be, whoever made it. */
static void check_value(const cnet_socket_address_t *sa, const char *what) {
  unsigned char bin[16];
  char canon[INET6_ADDRSTRLEN];

  FUZZ_CHECK(sa->family == 4 || sa->family == 6, "%s: family %d", what,
             sa->family);
  FUZZ_CHECK(sa->port >= 0 && sa->port <= 65535, "%s: port %d", what, sa->port);
  FUZZ_CHECK(memchr(sa->address, '\0', sizeof(sa->address)) != NULL,
             "%s: address not terminated", what);
  FUZZ_CHECK(cnet_is_ip(sa->address) == sa->family,
             "%s: address \"%s\" is_ip %d, family %d", what, sa->address,
             cnet_is_ip(sa->address), sa->family);
  FUZZ_CHECK(fuzz_pton(sa->family, sa->address, bin),
             "%s: inet_pton refuses \"%s\"", what, sa->address);
  fuzz_ntop(sa->family, bin, canon, sizeof(canon));
  FUZZ_CHECK(strcmp(canon, sa->address) == 0,
             "%s: address \"%s\" is not canonical (\"%s\")", what, sa->address,
             canon);
  if (sa->family == 4)
    FUZZ_CHECK(sa->flowlabel == 0, "%s: IPv4 with flow label %u", what,
               (unsigned)sa->flowlabel);
}

/* format(): length, truncation, and that parse() reads it back. */
static void check_format(const cnet_socket_address_t *sa, size_t cut) {
  char want[CNET_ADDR_MAX + 16], got[CNET_ADDR_MAX + 16], small[64];
  size_t n, k = cut % sizeof(small);
  cnet_socket_address_t back;
  int rc;

  expected_text(sa, want, sizeof(want));
  n = cnet_socket_address_format(sa, got, sizeof(got));
  FUZZ_CHECK(n == strlen(want) && strcmp(got, want) == 0,
             "format gives \"%s\" (%zu), not \"%s\"", got, n, want);
  FUZZ_CHECK(cnet_socket_address_format(sa, NULL, 0) == n,
             "format(NULL, 0) does not measure");
  memset(small, 'X', sizeof(small));
  FUZZ_CHECK(cnet_socket_address_format(sa, small, k) == n,
             "format into %zu bytes returns another length", k);
  if (k == 0) {
    FUZZ_CHECK(small[0] == 'X', "format wrote into a 0-byte buffer");
  } else {
    size_t w = n < k - 1 ? n : k - 1;

    FUZZ_CHECK(memcmp(small, want, w) == 0 && small[w] == '\0',
               "format into %zu bytes is not a terminated prefix", k);
  }

  /* Flow labels are not part of the text; parse() gives 0. */
  rc = cnet_socket_address_parse(&back, got);
  FUZZ_CHECK(rc == 0, "parse(format(x)) fails (%d) on \"%s\"", rc, got);
  FUZZ_CHECK(back.family == sa->family && back.port == sa->port &&
                 strcmp(back.address, sa->address) == 0 && back.flowlabel == 0,
             "parse(\"%s\") gives %s port %d family %d", got, back.address,
             back.port, back.family);
}

static void check_init(const char *text, int family, int port,
                       uint32_t flowlabel) {
  cnet_socket_address_options_t o = {text, family, port, flowlabel};
  cnet_socket_address_t sa;
  unsigned char bin[16];
  char canon[INET6_ADDRSTRLEN];
  int fam = fuzz_family(family);
  int want, rc = cnet_socket_address_init(&sa, &o);

  if (fam == 0)
    want = CNET_ERR_INVALID_ARG_VALUE;
  else if (port < 0 || port > 65535)
    want = CNET_ERR_SOCKET_BAD_PORT;
  else if (!fuzz_pton(fam, text, bin))
    want = CNET_ERR_INVALID_ADDRESS;
  else if (fam == 6 && flowlabel > 0xfffff)
    want = CNET_ERR_OUT_OF_RANGE;
  else
    want = 0;
  FUZZ_CHECK(rc == want,
             "init(family %d, port %d, flowlabel %u) gives %s, "
             "expected %s",
             family, port, (unsigned)flowlabel, cnet_err_name(rc),
             want ? cnet_err_name(want) : "success");
  if (rc != 0)
    fuzz_check_last_error(rc, "init");
  if (rc == 0) {
    check_value(&sa, "init");
    fuzz_ntop(fam, bin, canon, sizeof(canon));
    FUZZ_CHECK(sa.family == fam && sa.port == port &&
                   strcmp(sa.address, canon) == 0,
               "init gives %s port %d family %d, expected %s", sa.address,
               sa.port, sa.family, canon);
    FUZZ_CHECK(sa.flowlabel == (fam == 6 ? flowlabel : 0), "init flow label %u",
               (unsigned)sa.flowlabel);
    check_format(&sa, (size_t)port);
  }

  /* No address: Node's default for the family, whenever the other
   * arguments are fine. */
  o.address = NULL;
  rc = cnet_socket_address_init(&sa, &o);
  if (want == 0 || want == CNET_ERR_INVALID_ADDRESS) {
    bool args_ok = !(fam == 6 && flowlabel > 0xfffff);

    FUZZ_CHECK((rc == 0) == args_ok, "init with no address: %s",
               cnet_err_name(rc));
    if (rc == 0)
      FUZZ_CHECK(strcmp(sa.address, fam == 4 ? "127.0.0.1" : "::") == 0,
                 "init with no address gives \"%s\"", sa.address);
  }
}

/* The regions where parse() must agree with inet_aton / inet_pton (see
 * the comment at the top). Returns false when text is outside them; else
 * *ok says whether parse must succeed, and then *want is the result. */
static bool parse_oracle(const char *text, bool *ok,
                         cnet_socket_address_t *want) {
  const char *host = text, *host_end, *colon;
  long port = 0;
  unsigned char bin[16];
  char *h;

  memset(want, 0, sizeof(*want));
  if (text[0] == '[') {
    const char *close = strchr(text, ']');

    if (close == NULL)
      return false;
    host = text + 1;
    host_end = close;
    if (strspn(host, "0123456789abcdefABCDEF:.") != (size_t)(close - host))
      return false;
    colon = close + 1;
    want->family = 6;
  } else {
    host_end = text + strcspn(text, ":");
    if (host_end == text || host_end[-1] == '.' ||
        strspn(text, "0123456789abcdefABCDEFxX.") != (size_t)(host_end - text))
      return false;
    for (const char *q = text; q < host_end;) {
      const char *dot = memchr(q, '.', (size_t)(host_end - q));
      const char *e = dot ? dot : host_end;

      if (e - q == 2 && q[0] == '0' && (q[1] == 'x' || q[1] == 'X'))
        return false;
      q = e + 1;
    }
    colon = host_end;
    want->family = 4;
  }
  if (*colon != '\0') {
    if (*colon != ':' || strspn(colon + 1, "0123456789") != strlen(colon + 1))
      return false;
    for (const char *q = colon + 1; *q != '\0'; q++) {
      port = port * 10 + (*q - '0');
      if (port > 65535)
        port = 65536; /* saturate: too big is too big */
    }
  }

  h = fuzz_strndup(host, (size_t)(host_end - host));
  if (want->family == 6) {
    *ok = inet_pton(AF_INET6, h, bin) == 1;
  } else {
    struct in_addr in;

    *ok = inet_aton(h, &in) == 1;
    memcpy(bin + 12, &in, sizeof(in));
  }
  free(h);
  *ok = *ok && port <= 65535;
  if (*ok) {
    fuzz_ntop(want->family, bin, want->address, sizeof(want->address));
    want->port = (int)port;
  }
  return true;
}

static void check_parse(const char *text, size_t cut) {
  cnet_socket_address_t sa, want;
  bool in_region, ok = false;
  int rc = cnet_socket_address_parse(&sa, text);

  FUZZ_CHECK(rc == 0 || rc == CNET_ERR_INVALID_ADDRESS, "parse gives %s",
             cnet_err_name(rc));
  if (rc != 0)
    fuzz_check_last_error(rc, "parse");
  if (rc == 0) {
    check_value(&sa, "parse");
    FUZZ_CHECK(sa.flowlabel == 0, "parse: flow label %u",
               (unsigned)sa.flowlabel);
    check_format(&sa, cut);
  }

  in_region = parse_oracle(text, &ok, &want);
  if (in_region) {
    FUZZ_CHECK((rc == 0) == ok, "parse %s, the C library %s",
               rc == 0 ? "accepts" : "refuses", ok ? "accepts" : "refuses");
    if (ok)
      FUZZ_CHECK(sa.family == want.family && sa.port == want.port &&
                     strcmp(sa.address, want.address) == 0,
                 "parse gives %s port %d, the C library %s port %d", sa.address,
                 sa.port, want.address, want.port);
  }

  /* Node's own isIPv4 text is a URL host as it stands. */
  if (cnet_is_ipv4(text))
    FUZZ_CHECK(rc == 0 && sa.family == 4 && sa.port == 0 &&
                   strcmp(sa.address, text) == 0,
               "parse of a plain IPv4 address: %d %s", rc, sa.address);
}

/* The documented answers to NULL arguments. */
static void check_null_args(void) {
  cnet_socket_address_t sa;
  char buf[8] = "X";

  FUZZ_CHECK(cnet_socket_address_init(NULL, NULL) == UV_EINVAL,
             "init(NULL) is not UV_EINVAL");
  FUZZ_CHECK(cnet_socket_address_init(&sa, NULL) == 0 &&
                 strcmp(sa.address, "127.0.0.1") == 0 && sa.port == 0 &&
                 sa.family == 4,
             "init with no options is not 127.0.0.1 port 0");
  FUZZ_CHECK(cnet_socket_address_parse(NULL, "1.2.3.4") == UV_EINVAL &&
                 cnet_socket_address_parse(&sa, NULL) == UV_EINVAL,
             "parse(NULL) is not UV_EINVAL");
  FUZZ_CHECK(cnet_socket_address_format(NULL, buf, sizeof(buf)) == 0 &&
                 buf[0] == '\0',
             "format(NULL) is not empty");
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  const char *p = (const char *)data, *end = p + size;
  const char *nl = memchr(p, '\n', size);
  int family = 0, port = 0;
  uint32_t flowlabel = 0;
  char *text;

  fuzz_begin(data, size);
  if (nl != NULL) {
    family = (int)read_number(&p, nl, INT_MIN, INT_MAX);
    port = (int)read_number(&p, nl, INT_MIN, INT_MAX);
    flowlabel = (uint32_t)read_number(&p, nl, 0, UINT32_MAX);
    p = nl + 1;
  }
  /* Up to the first NUL: what a C caller can pass. */
  text = fuzz_strndup(p, strnlen(p, (size_t)(end - p)));
  check_init(text, family, port, flowlabel);
  check_parse(text, size);
  check_null_args();
  free(text);
  return 0;
}
