/* Helpers shared by the libFuzzer targets in fuzz/ (not a target itself).
 *
 * An oracle failure must stop the run the way a sanitizer report does, so
 * that libFuzzer saves the input as a crash-* artefact: FUZZ_CHECK prints
 * what disagreed, the input (escaped) and aborts.
 *
 * The C library's inet_pton / inet_aton / inet_ntop serve as independent
 * oracles; where they agree with Node's rules was established against glibc
 * 2.36 (see each target). On another C library, suspect a libc difference
 * first when one of those oracles fails.
 */
#ifndef CNET_FUZZ_H
#define CNET_FUZZ_H

#include "cnet.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* The input of the current run, kept for the failure message. */
static const uint8_t *fuzz_input;
static size_t fuzz_input_size;

static inline void fuzz_begin(const uint8_t *data, size_t size) {
  fuzz_input = data;
  fuzz_input_size = size;
}

/* text as a C string literal (non-printable bytes as \xNN) on stderr. */
static inline void fuzz_print_escaped(const char *label, const void *text,
                                      size_t len) {
  const unsigned char *p = text;

  fprintf(stderr, "%s (%zu bytes): \"", label, len);
  for (size_t i = 0; i < len; i++) {
    if (p[i] == '"' || p[i] == '\\')
      fprintf(stderr, "\\%c", p[i]);
    else if (p[i] == '\n')
      fprintf(stderr, "\\n");
    else if (p[i] >= 0x20 && p[i] < 0x7f)
      fputc(p[i], stderr);
    else
      fprintf(stderr, "\\x%02x", p[i]);
  }
  fprintf(stderr, "\"\n");
}

#if defined(__GNUC__)
__attribute__((noreturn, format(printf, 3, 4)))
#endif
static inline void
fuzz_fail(const char *file, int line, const char *fmt, ...) {
  va_list ap;

  fprintf(stderr, "\n==ORACLE FAILURE== %s:%d: ", file, line);
  va_start(ap, fmt);
  vfprintf(stderr, fmt, ap);
  va_end(ap);
  fputc('\n', stderr);
  if (fuzz_input != NULL)
    fuzz_print_escaped("input", fuzz_input, fuzz_input_size);
  abort();
}

/* FUZZ_CHECK(cond, fmt, ...): the property cond must hold. */
#define FUZZ_CHECK(cond, ...)                                                  \
  do {                                                                         \
    if (!(cond))                                                               \
      fuzz_fail(__FILE__, __LINE__, __VA_ARGS__);                              \
  } while (0)

/* A NUL-terminated heap copy of len bytes (the caller frees it). Heap, not
 * stack, so that AddressSanitizer sees any read past the terminator. */
static inline char *fuzz_strndup(const void *data, size_t len) {
  char *s = malloc(len + 1);

  if (s == NULL)
    abort();
  if (len > 0)
    memcpy(s, data, len);
  s[len] = '\0';
  return s;
}

/* A call that failed with rc must leave it, and a message, in
 * cnet_last_error() (the header's contract for synchronous failures). */
static inline void fuzz_check_last_error(int rc, const char *what) {
  const cnet_error_t *e = cnet_last_error();

  FUZZ_CHECK(e != NULL && e->errnum == rc, "%s: last error %d, returned %d",
             what, e != NULL ? e->errnum : 0, rc);
  FUZZ_CHECK(memchr(e->message, '\0', sizeof(e->message)) != NULL &&
                 e->message[0] != '\0',
             "%s: no message in the last error", what);
}

/* Node's family argument (SocketAddress options.family, BlockList's type):
 * 0 and 4 are IPv4, 6 is IPv6; anything else is invalid (0 here). */
static inline int fuzz_family(int family) {
  return family == 0 || family == 4 ? 4 : family == 6 ? 6 : 0;
}

/* The oracle for "text is an address of family fam (4 or 6)", as the
 * SocketAddress constructor and BlockList read it: Node hands the text to
 * uv_ip4_addr() / uv_ip6_addr(), and cnet reproduces that reading
 * (src/socket_address.c). uv_ip6_addr() (libuv's src/uv-common.c) ignores a
 * "%zone" -- any text after the first '%', even none -- and copies the part
 * before it into a 40-byte buffer, silently cutting it at 39 bytes. The address
 * itself is then read here with the C library's inet_pton, independently of
 * libuv's copy of the same BIND code. On success the 16 bytes are the address,
 * IPv4 in its IPv4-mapped form
 * ::ffff:a.b.c.d, which is how BlockList compares them. */
static inline bool fuzz_pton(int fam, const char *text, unsigned char out[16]) {
  static const unsigned char mapped[12] = {0, 0, 0, 0, 0,    0,
                                           0, 0, 0, 0, 0xff, 0xff};
  const char *zone;
  char part[40];

  if (fam == 4) {
    memcpy(out, mapped, sizeof(mapped));
    return inet_pton(AF_INET, text, out + 12) == 1;
  }
  zone = strchr(text, '%');
  if (zone != NULL) {
    size_t n = (size_t)(zone - text);

    if (n >= sizeof(part))
      n = sizeof(part) - 1;
    memcpy(part, text, n);
    part[n] = '\0';
    text = part;
  }
  return inet_pton(AF_INET6, text, out) == 1;
}

/* The canonical text of 16 bytes read as family fam (4: the last four). */
static inline void fuzz_ntop(int fam, const unsigned char b[16], char *out,
                             size_t size) {
  if (inet_ntop(fam == 4 ? AF_INET : AF_INET6, fam == 4 ? b + 12 : b, out,
                (socklen_t)size) == NULL)
    abort();
}

#endif /* CNET_FUZZ_H */
