/* net.SocketAddress: construction (Node v20), SocketAddress.parse() (Node
 * v22.13+) and the "address:port" text.
 *
 * Node's constructor hands the address to uv_ip4_addr()/uv_ip6_addr() and
 * reads it back with uv_inet_ntop(), so cnet does the same with libuv's own
 * parser (not the C library's): what is accepted, and the canonical text
 * ("::1", "::ffff:1.2.3.4", "::0.2.0.3"), are Node's by construction.
 *
 * parse() follows the WHATWG URL parser for "http://" + input, as Node does
 * with URL.parse(), but only as far as a socket address needs: the host must
 * come out an IPv4 or IPv6 address, and everything after the authority (a
 * path, query or fragment) is ignored. cnet_socket_address_parse() says
 * where it departs from Node v22.13: an explicit ":80" is kept, and a host
 * that is not ASCII is refused.
 */
#include "internal.h"

#include <stdio.h>

#define IN4_LEN 4
#define IN6_LEN 16

/* ------------------------------------------------------------------------ */
/* The constructor                                                          */

/* SA-02: new SocketAddress({ family: 5 }) throws "The property
 * 'options.family' is invalid. Received 5". */
static int fail_family(int family) {
  char received[16];

  snprintf(received, sizeof(received), "%d", family);
  return cnet__fail(CNET_ERR_INVALID_ARG_VALUE, "property 'options.family'",
                    "is invalid", received);
}

static void fill(cnet_socket_address_t *out, int family,
                 const unsigned char *bytes, int port, uint32_t flowlabel) {
  memset(out, 0, sizeof(*out));
  uv_inet_ntop(family == 4 ? AF_INET : AF_INET6, bytes, out->address,
               sizeof(out->address));
  out->port = port;
  out->family = family;
  out->flowlabel = family == 6 ? flowlabel : 0;
}

int cnet_socket_address_init(cnet_socket_address_t *out,
                             const cnet_socket_address_options_t *opts) {
  static const cnet_socket_address_options_t defaults;
  unsigned char bytes[IN6_LEN];
  const char *address;
  int family, err;

  if (out == NULL)
    return cnet__fail(UV_EINVAL);
  if (opts == NULL)
    opts = &defaults;
  /* Node's order: family, then the port, then the address itself. */
  family = cnet__family_arg(opts->family);
  if (family == 0)
    return fail_family(opts->family);
  address = opts->address;
  if (address == NULL)
    address = family == 4 ? "127.0.0.1" : "::";
  err = cnet__check_port(opts->port, "options.port");
  if (err != 0)
    return err;
  if (!cnet__ip_pton(family, address, bytes))
    return cnet__fail(CNET_ERR_INVALID_ADDRESS);
  /* An IPv6 flow label is 20 bits. Node v20 does not check it and aborts
   * the process on a CHECK in set_flow_label(); refusing is the only
   * useful reading. An IPv4 address has no flow label: Node ignores it. */
  if (family == 6 && opts->flowlabel > 0xfffff) {
    char received[16];

    snprintf(received, sizeof(received), "%u", (unsigned)opts->flowlabel);
    return cnet__fail(CNET_ERR_OUT_OF_RANGE, "options.flowlabel",
                      ">= 0 && <= 1048575", received);
  }
  fill(out, family, bytes, opts->port, opts->flowlabel);
  return 0;
}

/* ------------------------------------------------------------------------ */
/* SocketAddress.parse(): the WHATWG URL parser, the parts a host:port uses  */

/* A text range [s, e). */
typedef struct {
  const char *s, *e;
} span_t;

static bool is_digit(int c) {
  return c >= '0' && c <= '9';
}

static int hex_value(int c) {
  if (is_digit(c))
    return c - '0';
  if (c >= 'a' && c <= 'f')
    return c - 'a' + 10;
  if (c >= 'A' && c <= 'F')
    return c - 'A' + 10;
  return -1;
}

/* The URL's IPv4 number parser: decimal, "0x" hex or leading-"0" octal; an
 * empty number after the prefix is 0. Values past 2^32 saturate, which is
 * enough: no part of an IPv4 address may reach 2^32. false on a bad digit
 * or an empty part. */
static bool ipv4_number(span_t in, uint64_t *out) {
  unsigned radix = 10;
  uint64_t v = 0;

  if (in.s == in.e)
    return false;
  if (in.e - in.s >= 2 && in.s[0] == '0' &&
      (in.s[1] == 'x' || in.s[1] == 'X')) {
    radix = 16;
    in.s += 2;
  } else if (in.e - in.s >= 2 && in.s[0] == '0') {
    radix = 8;
    in.s++;
  }
  for (const char *p = in.s; p < in.e; p++) {
    int d = radix == 16    ? hex_value((unsigned char)*p)
            : is_digit(*p) ? *p - '0'
                           : -1;

    if (d < 0 || (unsigned)d >= radix)
      return false;
    v = v * radix + (unsigned)d;
    if (v > UINT32_MAX)
      v = (uint64_t)UINT32_MAX + 1; /* saturate: too big anywhere */
  }
  *out = v;
  return true;
}

/* "Ends in a number": the host is meant as IPv4 (and must then parse as one)
 * when its last dot-separated part -- after dropping one trailing empty part
 * -- is all digits or a valid number such as "0x1f". */
static bool ends_in_number(span_t host) {
  span_t last = host;
  uint64_t ignored;

  if (last.e > last.s && last.e[-1] == '.')
    last.e--;
  for (const char *p = last.e; p > last.s; p--) {
    if (p[-1] == '.') {
      last.s = p;
      break;
    }
  }
  if (last.s == last.e)
    return false;
  for (const char *p = last.s; p < last.e; p++) {
    if (!is_digit(*p))
      return ipv4_number(last, &ignored);
  }
  return true;
}

/* The URL's IPv4 parser: 1 to 4 numbers, the last one filling the bytes the
 * others leave ("192.168.257" is 192.168.1.1, "256" is 0.0.1.0). */
static bool parse_ipv4(span_t host, unsigned char out[IN4_LEN]) {
  uint64_t nums[4], last;
  size_t n = 0;
  const char *p = host.s;

  if (host.e[-1] == '.')
    host.e--; /* one trailing dot is allowed: "1.2.3.4." */
  for (;;) {
    const char *dot = memchr(p, '.', (size_t)(host.e - p));
    span_t part = {p, dot != NULL ? dot : host.e};

    if (n == 4 || !ipv4_number(part, &nums[n]))
      return false;
    n++;
    if (dot == NULL)
      break;
    p = dot + 1;
  }
  for (size_t i = 0; i + 1 < n; i++) {
    if (nums[i] > 255)
      return false;
  }
  last = nums[n - 1];
  if (last >= (uint64_t)1 << (8 * (5 - n)))
    return false;
  for (size_t i = 0; i + 1 < n; i++)
    last += nums[i] << (8 * (3 - i));
  out[0] = (unsigned char)(last >> 24);
  out[1] = (unsigned char)(last >> 16);
  out[2] = (unsigned char)(last >> 8);
  out[3] = (unsigned char)last;
  return true;
}

/* The dotted-decimal tail of a URL IPv6 address: exactly four decimal
 * numbers 0..255 without leading zeros, into pieces[*i] and pieces[*i+1]. */
static bool parse_ipv6_tail(const char *p, const char *e, uint16_t *pieces,
                            int *i) {
  int seen = 0;

  if (*i > 6)
    return false;
  while (p < e) {
    int v = -1;

    if (seen > 0) {
      if (*p != '.' || seen == 4)
        return false;
      p++;
    }
    if (p == e || !is_digit(*p))
      return false;
    for (; p < e && is_digit(*p); p++) {
      if (v == 0)
        return false; /* a leading zero */
      v = v < 0 ? *p - '0' : v * 10 + (*p - '0');
      if (v > 255)
        return false;
    }
    pieces[*i] = (uint16_t)(pieces[*i] * 0x100 + v);
    if (++seen == 2 || seen == 4)
      (*i)++;
  }
  return seen == 4;
}

/* The URL's IPv6 parser (the text between the brackets). No zone: a '%'
 * is not part of a URL's IPv6 address. */
static bool parse_ipv6(span_t in, unsigned char out[IN6_LEN]) {
  uint16_t pieces[8] = {0};
  int i = 0, compress = -1;
  const char *p = in.s;

  if (p < in.e && *p == ':') {
    if (p + 1 >= in.e || p[1] != ':')
      return false;
    p += 2;
    compress = ++i;
  }
  while (p < in.e) {
    unsigned v = 0, len = 0;

    if (i == 8)
      return false;
    if (*p == ':') {
      if (compress >= 0)
        return false;
      p++;
      compress = ++i;
      continue;
    }
    for (; len < 4 && p < in.e && hex_value((unsigned char)*p) >= 0; p++, len++)
      v = v * 16 + (unsigned)hex_value((unsigned char)*p);
    if (p < in.e && *p == '.') {
      if (len == 0 || !parse_ipv6_tail(p - len, in.e, pieces, &i))
        return false;
      break;
    }
    if (p < in.e && *p == ':') {
      if (++p == in.e)
        return false;
    } else if (p < in.e) {
      return false;
    }
    pieces[i++] = (uint16_t)v;
  }
  if (compress >= 0) {
    for (int swaps = i - compress, j = 7; j != 0 && swaps > 0; j--, swaps--) {
      uint16_t t = pieces[j];

      pieces[j] = pieces[compress + swaps - 1];
      pieces[compress + swaps - 1] = t;
    }
  } else if (i != 8) {
    return false;
  }
  for (int k = 0; k < 8; k++) {
    out[2 * k] = (unsigned char)(pieces[k] >> 8);
    out[2 * k + 1] = (unsigned char)pieces[k];
  }
  return true;
}

/* Percent-decodes and ASCII-lowercases a host in place (the URL host
 * parser's first steps; for ASCII, IDNA's mapping is just lowercasing). The
 * result is never longer than the text. false for a byte past ASCII: IDNA's
 * full mapping is not implemented (see cnet_socket_address_parse). */
static bool decode_host(char *s, char *e, span_t *out) {
  char *w = s;

  for (const char *p = s; p < e; p++) {
    int c = (unsigned char)*p;

    if (c == '%' && e - p >= 3 && hex_value((unsigned char)p[1]) >= 0 &&
        hex_value((unsigned char)p[2]) >= 0) {
      c = hex_value((unsigned char)p[1]) * 16 + hex_value((unsigned char)p[2]);
      p += 2;
    }
    if (c >= 0x80)
      return false;
    *w++ = (char)(c >= 'A' && c <= 'Z' ? c + ('a' - 'A') : c);
  }
  out->s = s;
  out->e = w;
  return true;
}

/* The URL's port: decimal digits only, at most 65535; empty is 0. */
static bool parse_port(const char *s, const char *e, int *port) {
  long v = 0;

  for (const char *p = s; p < e; p++) {
    if (!is_digit(*p))
      return false;
    v = v * 10 + (*p - '0');
    if (v > 65535)
      return false;
  }
  *port = (int)v;
  return true;
}

/* The host [s, e) of an authority as an address; decodes it in place. */
static bool parse_host(char *s, char *e, int *family,
                       unsigned char bytes[IN6_LEN]) {
  span_t h;

  if (s == e)
    return false; /* an http: URL needs a host */
  if (*s == '[') {
    if (e - s < 2 || e[-1] != ']')
      return false;
    *family = 6;
    return parse_ipv6((span_t){s + 1, e - 1}, bytes);
  }
  /* A host that does not end in a number is a domain name, which
   * SocketAddress then refuses. */
  if (!decode_host(s, e, &h) || !ends_in_number(h))
    return false;
  *family = 4;
  return parse_ipv4(h, bytes);
}

/* The authority of "http://" + input, input already stripped of tabs and
 * newlines (and of trailing spaces and controls). */
static bool parse_authority(char *input, int *family,
                            unsigned char bytes[IN6_LEN], int *port) {
  char *p = input, *end, *colon = NULL;
  bool bracket = false;

  /* "http:" takes any run of slashes before the authority. */
  while (*p == '/' || *p == '\\')
    p++;
  end = p + strcspn(p, "/\\?#");
  /* Userinfo ends at the last '@' ("user:80@1.2.3.4" has no port). */
  for (char *q = p; q < end; q++) {
    if (*q == '@')
      p = q + 1;
  }
  for (char *q = p; q < end && colon == NULL; q++) {
    if (*q == '[')
      bracket = true;
    else if (*q == ']')
      bracket = false;
    else if (*q == ':' && !bracket)
      colon = q;
  }
  *port = 0;
  if (colon != NULL && !parse_port(colon + 1, end, port))
    return false;
  return parse_host(p, colon != NULL ? colon : end, family, bytes);
}

/* SocketAddress.parse(input): new URL('http://' + input)'s host and port,
 * then new SocketAddress() of them.
 *
 * The one departure from Node v22.13, deliberately: a URL drops the port
 * its scheme implies, so Node v22.13 reads "1.2.3.4:80" as port 0. Node's
 * own test (test/parallel/test-socketaddress.js) expects 80 and 443 to be
 * kept, and nodejs/node#62906 calls the drop a bug; cnet keeps the port as
 * written. A port in the userinfo ("user:80@1.2.3.4") is not the port.
 *
 * Hosts are read as the URL parser reads ASCII: tabs and newlines anywhere
 * are dropped, trailing spaces and controls too; %XX escapes are decoded and
 * letters lowercased before the IPv4 shorthands ("0X7F.1") are read. A
 * non-ASCII host is refused, where a URL would first map it through IDNA
 * (which turns full-width digits into ASCII ones). */
int cnet_socket_address_parse(cnet_socket_address_t *out, const char *input) {
  unsigned char bytes[IN6_LEN];
  size_t len, n = 0;
  char *text;
  int family = 0, port = 0;
  bool ok;

  if (out == NULL || input == NULL)
    return cnet__fail(UV_EINVAL);
  len = strlen(input);
  while (len > 0 && (unsigned char)input[len - 1] <= 0x20)
    len--;
  text = cnet__malloc(len + 1);
  if (text == NULL)
    return cnet__fail(UV_ENOMEM);
  for (size_t i = 0; i < len; i++) {
    if (input[i] != '\t' && input[i] != '\n' && input[i] != '\r')
      text[n++] = input[i];
  }
  text[n] = '\0';
  ok = parse_authority(text, &family, bytes, &port);
  cnet__free(text);
  if (!ok)
    return cnet__fail(CNET_ERR_INVALID_ADDRESS);
  fill(out, family, bytes, port, 0);
  return 0;
}

/* ------------------------------------------------------------------------ */
/* Text                                                                     */

size_t cnet_socket_address_format(const cnet_socket_address_t *sa, char *buf,
                                  size_t size) {
  int n;

  if (sa == NULL) {
    if (buf != NULL && size > 0)
      buf[0] = '\0';
    return 0;
  }
  if (buf == NULL)
    size = 0;
  n = snprintf(buf, size, sa->family == 6 ? "[%s]:%d" : "%s:%d", sa->address,
               sa->port);
  return n > 0 ? (size_t)n : 0;
}
