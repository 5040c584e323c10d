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
 *
 * For the encoding targets: fuzz_alloc (exact-size heap buffers),
 * FUZZ_CHECK_SAME (two byte strings, both printed when they differ) and a
 * small UTF-8 toolkit written from the specifications (WHATWG decoding,
 * RFC 3629 validity, UTF-16 code units to UTF-8).
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

/* ---- text, for the encoding targets (fuzz-decoder, fuzz-write-encoding) --
 *
 * Written from the specifications (RFC 3629, the WHATWG Encoding Standard),
 * not from src/encoding.c, so that they can serve as oracles for it. */

#define FUZZ_REPLACEMENT 0xFFFDu

/* malloc(n) that never returns NULL, with exactly n usable bytes (even for
 * n == 0), so that AddressSanitizer reports a write one byte too far. */
static inline void *fuzz_alloc(size_t n) {
  void *p = malloc(n);

  if (p == NULL && n == 0)
    p = malloc(1);
  if (p == NULL)
    abort();
  return p;
}

/* FUZZ_CHECK_SAME(what, a, alen, b, blen): two byte strings are equal;
 * prints both on failure. */
#define FUZZ_CHECK_SAME(what, a, alen, b, blen)                                \
  fuzz_check_same(__FILE__, __LINE__, what, a, alen, b, blen)

static inline void fuzz_check_same(const char *file, int line, const char *what,
                                   const void *a, size_t alen, const void *b,
                                   size_t blen) {
  if (alen == blen && (alen == 0 || memcmp(a, b, alen) == 0))
    return;
  fuzz_print_escaped("got     ", a, alen);
  fuzz_print_escaped("expected", b, blen);
  fuzz_fail(file, line, "%s: %zu bytes, expected %zu", what, alen, blen);
}

/* cp (at most U+10FFFF) as UTF-8 at out, which has room for 4; returns the
 * number of bytes. Surrogates are never passed here. */
static inline size_t fuzz_utf8_put(unsigned char *out, uint32_t cp) {
  if (cp < 0x80) {
    out[0] = (unsigned char)cp;
    return 1;
  }
  if (cp < 0x800) {
    out[0] = (unsigned char)(0xC0 | cp >> 6);
    out[1] = (unsigned char)(0x80 | (cp & 0x3F));
    return 2;
  }
  if (cp < 0x10000) {
    out[0] = (unsigned char)(0xE0 | cp >> 12);
    out[1] = (unsigned char)(0x80 | (cp >> 6 & 0x3F));
    out[2] = (unsigned char)(0x80 | (cp & 0x3F));
    return 3;
  }
  out[0] = (unsigned char)(0xF0 | cp >> 18);
  out[1] = (unsigned char)(0x80 | (cp >> 12 & 0x3F));
  out[2] = (unsigned char)(0x80 | (cp >> 6 & 0x3F));
  out[3] = (unsigned char)(0x80 | (cp & 0x3F));
  return 4;
}

/* The WHATWG Encoding Standard's UTF-8 decoder (its "UTF-8 decoder"
 * handler, followed step by step, end of stream included): the code points
 * of in[0..n), one U+FFFD per error. V8 decodes this way, so this is what a
 * JS string made from these bytes holds. cps needs room for n; returns how
 * many were written. */
static inline size_t fuzz_utf8_decode(const unsigned char *in, size_t n,
                                      uint32_t *cps) {
  uint32_t cp = 0;
  unsigned seen = 0, needed = 0, lower = 0x80, upper = 0xBF;
  size_t k = 0;

  for (size_t i = 0; i < n; i++) {
    unsigned b = in[i];

    if (needed == 0) {
      if (b <= 0x7F) {
        cps[k++] = b;
      } else if (b >= 0xC2 && b <= 0xDF) {
        needed = 1;
        cp = b & 0x1F;
      } else if (b >= 0xE0 && b <= 0xEF) {
        if (b == 0xE0)
          lower = 0xA0;
        if (b == 0xED)
          upper = 0x9F;
        needed = 2;
        cp = b & 0xF;
      } else if (b >= 0xF0 && b <= 0xF4) {
        if (b == 0xF0)
          lower = 0x90;
        if (b == 0xF4)
          upper = 0x8F;
        needed = 3;
        cp = b & 0x7;
      } else {
        cps[k++] = FUZZ_REPLACEMENT;
      }
      continue;
    }
    if (b < lower || b > upper) {
      /* error; the byte is "restored to the stream": read it again */
      cp = needed = seen = 0;
      lower = 0x80;
      upper = 0xBF;
      cps[k++] = FUZZ_REPLACEMENT;
      i--;
      continue;
    }
    lower = 0x80;
    upper = 0xBF;
    cp = cp << 6 | (b & 0x3F);
    if (++seen == needed) {
      cps[k++] = cp;
      cp = needed = seen = 0;
    }
  }
  if (needed != 0) /* end of stream inside a sequence */
    cps[k++] = FUZZ_REPLACEMENT;
  return k;
}

/* Whether s[0..n) is well-formed UTF-8 (RFC 3629: shortest form, no
 * surrogates, nothing past U+10FFFF): each sequence decoded by its length
 * and the code point checked, rather than by the table of byte ranges. */
static inline bool fuzz_utf8_valid(const void *s, size_t n) {
  const unsigned char *p = s;

  for (size_t i = 0; i < n;) {
    unsigned b = p[i], len;
    uint32_t cp, min;

    if (b < 0x80) {
      i++;
      continue;
    }
    if ((b & 0xE0) == 0xC0) {
      len = 2, cp = b & 0x1F, min = 0x80;
    } else if ((b & 0xF0) == 0xE0) {
      len = 3, cp = b & 0x0F, min = 0x800;
    } else if ((b & 0xF8) == 0xF0) {
      len = 4, cp = b & 0x07, min = 0x10000;
    } else {
      return false;
    }
    if (n - i < len)
      return false;
    for (unsigned j = 1; j < len; j++) {
      if ((p[i + j] & 0xC0) != 0x80)
        return false;
      cp = cp << 6 | (p[i + j] & 0x3F);
    }
    if (cp < min || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF))
      return false;
    i += len;
  }
  return true;
}

/* A JS string, n UTF-16 code units, as UTF-8 (what Buffer.from(s, 'utf8')
 * gives): a high surrogate followed by a low one is one character, any
 * other surrogate U+FFFD. out needs room for 3 * n. */
static inline size_t fuzz_utf16_to_utf8(const uint16_t *u, size_t n,
                                        unsigned char *out) {
  size_t k = 0;

  for (size_t i = 0; i < n; i++) {
    uint32_t cp = u[i];

    if (cp >= 0xD800 && cp <= 0xDBFF && i + 1 < n && u[i + 1] >= 0xDC00 &&
        u[i + 1] <= 0xDFFF) {
      cp = 0x10000 + ((cp - 0xD800) << 10) + (u[i + 1] - 0xDC00u);
      i++;
    } else if (cp >= 0xD800 && cp <= 0xDFFF) {
      cp = FUZZ_REPLACEMENT;
    }
    k += fuzz_utf8_put(out + k, cp);
  }
  return k;
}

#endif /* CNET_FUZZ_H */
