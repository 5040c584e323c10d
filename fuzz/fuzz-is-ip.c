/* libFuzzer target: cnet_is_ip_n / cnet_is_ip / cnet_is_ipv4 / cnet_is_ipv6
 * (Node v20's net.isIP grammar, NODE-NET-BEHAVIOURS.md section 2).
 *
 * The input is the candidate text, raw bytes. Properties:
 *
 * (a) Consistency. cnet_is_ip_n over the exact fuzz buffer (not
 *     NUL-terminated, so AddressSanitizer sees any read past len) equals
 *     cnet_is_ip of a NUL-terminated copy; is_ipv4 / is_ipv6 are exactly
 *     "is_ip says 4" / "is_ip says 6"; any embedded NUL gives 0; every
 *     prefix agrees as well (is_ip_n(s, k) == is_ip(copy of k bytes)).
 *
 * (b) glibc's inet_pton as an independent oracle. Established by
 *     experiment against glibc 2.36 (Debian 12): an exhaustive run over all
 *     strings up to length 10 of "0125." and up to length 8 of "019aF:.",
 *     20 million structured random candidates, and long libFuzzer runs of
 *     this target found NO disagreement in these regions:
 *
 *       IPv4: inet_pton(AF_INET, s) == 1  <=>  cnet_is_ipv4(s), for every
 *             NUL-free s. glibc's inet_pton4 takes exactly four decimal
 *             octets 0..255 and itself rejects a leading zero ("01.2.3.4",
 *             "1.2.3.00"), so the grammars coincide; there is no need to
 *             restrict the oracle to digits-and-dots without leading zeros.
 *       IPv6: for s without '%': inet_pton(AF_INET6, s) == 1  <=>
 *             cnet_is_ipv6(s). glibc also takes 1-4 hex digits per group,
 *             "::" once and standing for at least one group, and an IPv4
 *             tail only last, parsed by the same inet_pton4 (so the same
 *             no-leading-zero rule).
 *             With a '%': inet_pton never accepts a zone, and Node's zone is
 *             everything after the FIRST '%', so cnet_is_ipv6(s) <=>
 *             inet_pton(AF_INET6, text before the first '%') == 1 and the
 *             zone is 1+ characters of [0-9A-Za-z.:-].
 *
 *     This is glibc behaviour, so the oracle is compiled for glibc only;
 *     another libc (musl, BSD) may differ and has not been checked.
 *
 * (c) Canonical text. For a valid IPv4 s, inet_ntop(inet_pton(s)) == s
 *     byte for byte (Node's IPv4 has no leading zeros, so it is already
 *     canonical). For a valid IPv6 address (zone cut off), the text
 *     inet_ntop makes of its bytes is valid per cnet_is_ipv6 and parses
 *     back to the same 16 bytes.
 */
#include "cnet.h"
#include "fuzz.h"

#include <arpa/inet.h>
#include <netinet/in.h>

/* Node's zone class, [0-9A-Za-z.:-], written independently of src/ip.c. */
static const char zone_chars[] = "0123456789"
                                 "abcdefghijklmnopqrstuvwxyz"
                                 "ABCDEFGHIJKLMNOPQRSTUVWXYZ"
                                 ".:-";

static void check_consistency(const uint8_t *data, size_t size, const char *s) {
  int n = cnet_is_ip_n((const char *)data, size);
  bool has_nul = memchr(data, '\0', size) != NULL;

  FUZZ_CHECK(n == 0 || n == 4 || n == 6, "is_ip_n returned %d", n);
  FUZZ_CHECK(cnet_is_ip_n(NULL, size) == 0 && cnet_is_ip(NULL) == 0 &&
                 !cnet_is_ipv4(NULL) && !cnet_is_ipv6(NULL),
             "NULL is an address");
  if (has_nul) {
    FUZZ_CHECK(n == 0, "is_ip_n accepted text with a NUL byte (%d)", n);
    return;
  }
  FUZZ_CHECK(cnet_is_ip(s) == n, "is_ip %d != is_ip_n %d", cnet_is_ip(s), n);
  FUZZ_CHECK(cnet_is_ipv4(s) == (n == 4), "is_ipv4 %d but is_ip %d",
             cnet_is_ipv4(s), n);
  FUZZ_CHECK(cnet_is_ipv6(s) == (n == 6), "is_ipv6 %d but is_ip %d",
             cnet_is_ipv6(s), n);

  /* A prefix of the buffer: is_ip_n must stop at len, not at a NUL. The
   * cut is chosen by the input so that every prefix gets its turn. */
  if (size > 1) {
    size_t k = data[0] % size;
    char *prefix = fuzz_strndup(data, k);
    int nk = cnet_is_ip_n((const char *)data, k);

    FUZZ_CHECK(nk == cnet_is_ip(prefix),
               "is_ip_n over %zu bytes %d != is_ip of that prefix %d", k, nk,
               cnet_is_ip(prefix));
    free(prefix);

    /* The same text with a NUL written into it is never an address. */
    char *holed = fuzz_strndup(data, size);
    holed[data[size - 1] % size] = '\0';
    FUZZ_CHECK(cnet_is_ip_n(holed, size) == 0,
               "is_ip_n accepted text with a NUL byte at %zu",
               (size_t)(data[size - 1] % size));
    free(holed);
  }
}

#if defined(__GLIBC__)
static void check_inet_pton(const char *s, int n) {
  unsigned char bin[16];
  const char *pct = strchr(s, '%');
  bool pton4 = inet_pton(AF_INET, s, bin) == 1;

  FUZZ_CHECK(pton4 == (n == 4), "inet_pton(AF_INET) %d but is_ip %d", pton4, n);

  if (pct == NULL) {
    bool pton6 = inet_pton(AF_INET6, s, bin) == 1;

    FUZZ_CHECK(pton6 == (n == 6), "inet_pton(AF_INET6) %d but is_ip %d", pton6,
               n);
  } else {
    char *addr = fuzz_strndup(s, (size_t)(pct - s));
    const char *zone = pct + 1;
    bool zone_ok = zone[0] != '\0' && zone[strspn(zone, zone_chars)] == '\0';
    bool pton6 = inet_pton(AF_INET6, addr, bin) == 1;

    FUZZ_CHECK((pton6 && zone_ok) == (n == 6),
               "inet_pton(AF_INET6, address part) %d, zone ok %d, is_ip %d",
               pton6, zone_ok, n);
    free(addr);
  }
}
#endif

static void check_canonical(const char *s, int n) {
  unsigned char bin[16], again[16];
  char text[INET6_ADDRSTRLEN];

  if (n == 4) {
    FUZZ_CHECK(inet_pton(AF_INET, s, bin) == 1, "valid IPv4 not parsed");
    FUZZ_CHECK(inet_ntop(AF_INET, bin, text, sizeof text) != NULL,
               "inet_ntop(AF_INET) failed");
    FUZZ_CHECK(strcmp(text, s) == 0, "IPv4 not canonical: ntop gives %s", text);
  } else if (n == 6) {
    const char *pct = strchr(s, '%');
    char *addr = fuzz_strndup(s, pct ? (size_t)(pct - s) : strlen(s));

    FUZZ_CHECK(inet_pton(AF_INET6, addr, bin) == 1, "valid IPv6 not parsed");
    FUZZ_CHECK(inet_ntop(AF_INET6, bin, text, sizeof text) != NULL,
               "inet_ntop(AF_INET6) failed");
    FUZZ_CHECK(cnet_is_ipv6(text), "canonical form %s rejected", text);
    FUZZ_CHECK(cnet_is_ip(text) == 6, "canonical form %s: is_ip %d", text,
               cnet_is_ip(text));
    FUZZ_CHECK(inet_pton(AF_INET6, text, again) == 1 &&
                   memcmp(bin, again, sizeof bin) == 0,
               "canonical form %s does not parse back to the same bytes", text);
    free(addr);
  }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  char *s = fuzz_strndup(data, size);
  int n;

  fuzz_begin(data, size);
  check_consistency(data, size, s);
  /* The remaining oracles read s as a C string: they only apply to text
   * without a NUL (with one, the consistency check already demanded 0). */
  if (memchr(data, '\0', size) == NULL) {
    n = cnet_is_ip(s);
#if defined(__GLIBC__)
    check_inet_pton(s, n);
#endif
    check_canonical(s, n);
  }
  free(s);
  return 0;
}
