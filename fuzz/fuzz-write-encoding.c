/* libFuzzer target: Buffer.from(string, encoding) -- cnet_encode and
 * cnet_encode_max_length, what cnet_socket_write_string turns its text into
 * -- for every encoding: utf8, utf16le, latin1, ascii, hex, base64,
 * base64url. No socket is involved.
 *
 * The input is used whole, twice: as text (UTF-8, valid or not, as the C
 * side hands it over) and as bytes (a Buffer to make a string of with
 * cnet_decoder, and back). There is no header: every check runs on every
 * input.
 *
 * Properties:
 *   - Bounds. For each encoding, cnet_encode writes at most
 *     cnet_encode_max_length(enc, len) bytes, into a buffer of exactly that
 *     size (so ASan sees a write past it), and reads nothing past text[len)
 *     (libFuzzer's buffer is exactly the input). For lengths near SIZE_MAX
 *     cnet_encode_max_length covers the worst case (derived here: at most
 *     one code unit per byte of text; utf8 3 bytes for each) or says
 *     SIZE_MAX; it does not wrap around.
 *   - Node's rules. The result equals a reference written here that works
 *     on the JS string the text stands for -- its UTF-16 code units, the
 *     text decoded by fuzz.h's WHATWG decoder (invalid UTF-8 is U+FFFD, as
 *     in the string Buffer.toString('utf8') would give) -- following Node
 *     v20's src/string_bytes.cc and base64-inl.h:
 *       utf8     the code units as UTF-8;
 *       utf16le  each code unit, little-endian;
 *       latin1,
 *       ascii    the low byte of each code unit (Node v20 writes ascii as
 *                latin1: Buffer.from('\u00e9\u0141', 'ascii') is e9 41);
 *       hex      string.length >> 1 bytes at most, a pair of code units at
 *                a time, each cast to uint8_t, stopping at the first pair
 *                that is not two hex digits (Buffer.from('abz', 'hex') is
 *                ab, 'zz1' nothing, 'a\u0142' ab);
 *       base64,
 *       base64url  (the same decoder: both alphabets) the low bytes of the
 *                code units up to the first '='; those not in either
 *                alphabet skipped; every 4 characters 3 bytes, a last 2 or 3
 *                give 1 or 2, a last 1 nothing ('QQ==QUJD' is 41,
 *                'Q U J D' 414243, 'QQ\ud83d\ude00' 41: 0x3d is '=');
 *                capped by Buffer.from's byteLength (length less up to two
 *                trailing '=', times 3/4), which cannot bind but is Node's.
 *     The quoted cases were checked with node v20.20.
 *   - Round trips, bytes -> string -> bytes, through cnet_decoder (one
 *     write + end()) and back through cnet_encode:
 *       hex, base64, base64url, latin1  the bytes, exactly; hex also from
 *                upper-case digits and with an odd digit or a bad pair
 *                appended; base64 text read as base64url and the other way
 *                round;
 *       ascii    the bytes with the high bit cleared;
 *       utf16le  the code units, each lone surrogate U+FFFD, an odd last
 *                byte dropped;
 *       utf8     the decoded text again (a fixed point), and the same as
 *                encoding the raw bytes as utf8; valid UTF-8 unchanged.
 *   - Round trips, string -> bytes -> string: utf16le always; latin1 when
 *     every code unit is below 0x100, ascii below 0x80; hex when the text
 *     is an even number of hex digits (then lower-cased).
 */
#include "cnet.h"
#include "fuzz.h"

#include <ctype.h>

static const struct {
  cnet_encoding_t enc;
  const char *name;
} encodings[] = {
    {CNET_ENC_UTF8, "utf8"},
    {CNET_ENC_UTF16LE, "utf16le"},
    {CNET_ENC_LATIN1, "latin1"},
    {CNET_ENC_ASCII, "ascii"},
    {CNET_ENC_HEX, "hex"},
    {CNET_ENC_BASE64, "base64"},
    {CNET_ENC_BASE64URL, "base64url"},
};
#define N_ENCODINGS (sizeof(encodings) / sizeof(encodings[0]))

typedef struct {
  unsigned char *s;
  size_t len;
} bytes_t;

/* ------------------------------------------------------ the library -- */

/* cnet_encode into a buffer of exactly the promised size. */
static bytes_t encode(cnet_encoding_t enc, const void *text, size_t len) {
  size_t max = cnet_encode_max_length(enc, len);
  bytes_t b = {fuzz_alloc(max), 0};

  b.len = cnet_encode(enc, text, len, b.s);
  FUZZ_CHECK(b.len <= max, "%s: %zu bytes from %zu of text, room promised %zu",
             cnet_encoding_name(enc), b.len, len, max);
  return b;
}

/* buf.toString(enc) through the library's decoder: one write, end(). */
static bytes_t decode(cnet_encoding_t enc, const void *p, size_t n) {
  cnet_decoder_t d;
  size_t max;
  bytes_t t;
  int rc = cnet_decoder_init(&d, cnet_encoding_name(enc));

  FUZZ_CHECK(rc == 0, "cnet_decoder_init(%s): %d", cnet_encoding_name(enc), rc);
  max = cnet_decoder_max_length(&d, n);
  t.s = fuzz_alloc(max + CNET_DECODER_END_MAX);
  t.len = cnet_decoder_write(&d, p, n, (char *)t.s);
  FUZZ_CHECK(t.len <= max, "decoder %s overran", cnet_encoding_name(enc));
  t.len += cnet_decoder_end(&d, (char *)t.s + t.len);
  return t;
}

/* -------------------------------------------------------- the reference -- */

/* The JS string text[0..len) stands for, as UTF-16 code units (at most len
 * of them: a code point takes at least one byte, two units four). */
static size_t js_units(const unsigned char *text, size_t len, uint16_t *u) {
  uint32_t *cps = fuzz_alloc(len * sizeof(*cps));
  size_t n = fuzz_utf8_decode(text, len, cps), k = 0;

  for (size_t i = 0; i < n; i++) {
    if (cps[i] >= 0x10000) {
      u[k++] = (uint16_t)(0xD800 + ((cps[i] - 0x10000) >> 10));
      u[k++] = (uint16_t)(0xDC00 + ((cps[i] - 0x10000) & 0x3FF));
    } else {
      u[k++] = (uint16_t)cps[i];
    }
  }
  free(cps);
  FUZZ_CHECK(k <= len, "%zu code units from %zu bytes", k, len);
  return k;
}

static int hex_value(unsigned c) {
  static const char digits[] = "0123456789abcdef0123456789ABCDEF";
  const char *at = c != 0 ? strchr(digits, (int)c) : NULL;

  return at != NULL ? (int)((at - digits) % 16) : -1;
}

static int base64_value(unsigned c) {
  static const char std[] =
      "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  const char *at = c != 0 ? strchr(std, (int)c) : NULL;

  if (c == '-')
    return 62;
  if (c == '_')
    return 63;
  return at != NULL ? (int)(at - std) : -1;
}

/* Buffer.from(string, enc) of the code units u[0..m). out needs room for
 * 3 * m. */
static size_t ref_encode(cnet_encoding_t enc, const uint16_t *u, size_t m,
                         unsigned char *out) {
  size_t k = 0;

  switch (enc) {
  case CNET_ENC_UTF16LE:
    for (size_t i = 0; i < m; i++) {
      out[k++] = (unsigned char)(u[i] & 0xFF);
      out[k++] = (unsigned char)(u[i] >> 8);
    }
    return k;
  case CNET_ENC_LATIN1:
  case CNET_ENC_ASCII:
    for (size_t i = 0; i < m; i++)
      out[k++] = (unsigned char)(u[i] & 0xFF);
    return k;
  case CNET_ENC_HEX:
    /* hex_decode(): for (i = 0; i < len && i * 2 + 1 < srcLen; ++i) */
    for (size_t i = 0; i < m / 2; i++) {
      int a = hex_value(u[2 * i] & 0xFF), b = hex_value(u[2 * i + 1] & 0xFF);

      if (a < 0 || b < 0)
        break;
      out[k++] = (unsigned char)(a << 4 | b);
    }
    return k;
  case CNET_ENC_BASE64:
  case CNET_ENC_BASE64URL: {
    size_t cap = m;
    uint32_t acc = 0;
    unsigned bits = 0;

    /* base64ByteLength() in lib/buffer.js: exact '=' code units */
    if (cap > 0 && u[cap - 1] == '=')
      cap--;
    if (cap > 1 && u[cap - 1] == '=')
      cap--;
    cap = cap * 3 / 4;
    /* Six bits per character in, a byte out whenever eight are in: the
     * same bytes as base64_decode_group_slow()'s groups. */
    for (size_t i = 0; i < m && k < cap; i++) {
      unsigned c = u[i] & 0xFF;
      int v = base64_value(c);

      if (v < 0) {
        if (c == '=')
          break;
        continue;
      }
      acc = acc << 6 | (unsigned)v;
      bits += 6;
      if (bits >= 8) {
        bits -= 8;
        out[k++] = (unsigned char)(acc >> bits);
      }
    }
    return k;
  }
  case CNET_ENC_UTF8:
  default:
    return fuzz_utf16_to_utf8(u, m, out);
  }
}

/* a * b, or SIZE_MAX if that does not fit */
static size_t sat_mul(size_t a, size_t b) {
  size_t x;

  return __builtin_mul_overflow(a, b, &x) ? SIZE_MAX : x;
}

/* The most bytes len bytes of text can give, from the rules above (at most
 * one code unit per byte), SIZE_MAX when that does not fit. */
static size_t worst_bytes(cnet_encoding_t enc, size_t len) {
  switch (enc) {
  case CNET_ENC_UTF16LE:
    return sat_mul(len, 2);
  case CNET_ENC_LATIN1:
  case CNET_ENC_ASCII:
    return len;
  case CNET_ENC_HEX:
    return len / 2;
  case CNET_ENC_BASE64:
  case CNET_ENC_BASE64URL:
    return len / 4 * 3 + len % 4 * 3 / 4; /* 3 bytes per 4 characters */
  case CNET_ENC_UTF8:
  default:
    return sat_mul(len, 3); /* every byte U+FFFD */
  }
}

/* --------------------------------------------------------------- checks -- */

/* cnet_encode_max_length must not wrap around for lengths no text can
 * have: it covers the worst case, or says SIZE_MAX. */
static void check_huge_lengths(void) {
  static const size_t huge[] = {
      SIZE_MAX,         SIZE_MAX - 1, SIZE_MAX - 3,     SIZE_MAX / 2,
      SIZE_MAX / 2 + 1, SIZE_MAX / 3, SIZE_MAX / 3 + 1, SIZE_MAX / 4 * 3};

  for (size_t e = 0; e < N_ENCODINGS; e++) {
    for (size_t i = 0; i < sizeof(huge) / sizeof(huge[0]); i++) {
      size_t max = cnet_encode_max_length(encodings[e].enc, huge[i]);
      size_t worst = worst_bytes(encodings[e].enc, huge[i]);

      FUZZ_CHECK(max >= worst, "%s: max_length(%zu) = %zu, below %zu",
                 encodings[e].name, huge[i], max, worst);
    }
  }
}

static void check_against_reference(const unsigned char *text, size_t len) {
  uint16_t *u = fuzz_alloc(len * sizeof(*u));
  size_t m = js_units(text, len, u);
  unsigned char *want = fuzz_alloc(3 * m);

  for (size_t e = 0; e < N_ENCODINGS; e++) {
    bytes_t got = encode(encodings[e].enc, text, len);
    size_t wn = ref_encode(encodings[e].enc, u, m, want);

    FUZZ_CHECK_SAME(encodings[e].name, got.s, got.len, want, wn);
    free(got.s);
  }
  free(want);
  free(u);
}

/* encode(enc, text) must give want. */
static void check_encodes_to(const char *what, cnet_encoding_t enc,
                             const void *text, size_t len, const void *want,
                             size_t wn) {
  bytes_t got = encode(enc, text, len);

  FUZZ_CHECK_SAME(what, got.s, got.len, want, wn);
  free(got.s);
}

/* bytes -> string -> bytes. */
static void check_bytes_round_trip(const unsigned char *b, size_t n) {
  bytes_t s, s2;
  unsigned char *want = fuzz_alloc(n + 2);
  size_t wn = 0;

  /* hex, as printed, in upper case, with an odd digit or a bad pair more */
  s = decode(CNET_ENC_HEX, b, n);
  check_encodes_to("hex round trip", CNET_ENC_HEX, s.s, s.len, b, n);
  s2.s = fuzz_alloc(s.len + 2);
  for (size_t i = 0; i < s.len; i++)
    s2.s[i] = (unsigned char)toupper(s.s[i]);
  check_encodes_to("HEX round trip", CNET_ENC_HEX, s2.s, s.len, b, n);
  s2.s[s.len] = 'f';
  check_encodes_to("hex + odd digit", CNET_ENC_HEX, s2.s, s.len + 1, b, n);
  s2.s[s.len + 1] = 'g';
  check_encodes_to("hex + bad pair", CNET_ENC_HEX, s2.s, s.len + 2, b, n);
  free(s2.s);
  free(s.s);

  /* base64 and base64url, each read back as either */
  for (int url = 0; url < 2; url++) {
    s = decode(url ? CNET_ENC_BASE64URL : CNET_ENC_BASE64, b, n);
    check_encodes_to(url ? "base64url -> base64" : "base64 -> base64",
                     CNET_ENC_BASE64, s.s, s.len, b, n);
    check_encodes_to(url ? "base64url -> base64url" : "base64 -> base64url",
                     CNET_ENC_BASE64URL, s.s, s.len, b, n);
    free(s.s);
  }

  /* latin1: exact, and ascii writes it the same way */
  s = decode(CNET_ENC_LATIN1, b, n);
  check_encodes_to("latin1 round trip", CNET_ENC_LATIN1, s.s, s.len, b, n);
  check_encodes_to("latin1 -> ascii", CNET_ENC_ASCII, s.s, s.len, b, n);
  free(s.s);

  /* ascii: the high bit is lost in the string */
  s = decode(CNET_ENC_ASCII, b, n);
  for (size_t i = 0; i < n; i++)
    want[i] = b[i] & 0x7F;
  check_encodes_to("ascii round trip", CNET_ENC_ASCII, s.s, s.len, want, n);
  free(s.s);

  /* utf16le: the code units, lone surrogates as U+FFFD */
  s = decode(CNET_ENC_UTF16LE, b, n);
  for (size_t i = 0; i + 1 < n; i += 2) {
    unsigned unit = b[i] | b[i + 1] << 8, next = 0;
    bool high = unit >= 0xD800 && unit <= 0xDBFF;

    if (i + 3 < n)
      next = b[i + 2] | b[i + 3] << 8;
    if (high && next >= 0xDC00 && next <= 0xDFFF) {
      memcpy(want + wn, b + i, 4); /* a pair: both units as they are */
      wn += 4;
      i += 2;
      continue;
    }
    if (unit >= 0xD800 && unit <= 0xDFFF)
      unit = FUZZ_REPLACEMENT;
    want[wn++] = (unsigned char)(unit & 0xFF);
    want[wn++] = (unsigned char)(unit >> 8);
  }
  check_encodes_to("utf16le round trip", CNET_ENC_UTF16LE, s.s, s.len, want,
                   wn);
  free(s.s);

  /* utf8: the decoded text is a fixed point, and what encoding the raw
   * bytes as utf8 gives; valid UTF-8 comes back unchanged */
  s = decode(CNET_ENC_UTF8, b, n);
  check_encodes_to("utf8 of utf8 text", CNET_ENC_UTF8, s.s, s.len, s.s, s.len);
  check_encodes_to("utf8 of raw bytes", CNET_ENC_UTF8, b, n, s.s, s.len);
  if (fuzz_utf8_valid(b, n))
    FUZZ_CHECK_SAME("valid UTF-8 decoded", s.s, s.len, b, n);
  free(s.s);
  free(want);
}

/* string -> bytes -> string. */
static void check_text_round_trip(const unsigned char *t, size_t len) {
  bytes_t text = encode(CNET_ENC_UTF8, t, len); /* the string, as UTF-8 */
  bytes_t b, s;
  uint32_t *cps = fuzz_alloc(len * sizeof(*cps));
  size_t n = fuzz_utf8_decode(t, len, cps);
  uint32_t top = 0;
  bool hex = len % 2 == 0;

  for (size_t i = 0; i < n; i++) {
    if (cps[i] > top)
      top = cps[i];
    hex = hex && cps[i] < 0x80 && isxdigit((int)cps[i]);
  }
  free(cps);

  b = encode(CNET_ENC_UTF16LE, t, len);
  s = decode(CNET_ENC_UTF16LE, b.s, b.len);
  FUZZ_CHECK_SAME("utf16le text round trip", s.s, s.len, text.s, text.len);
  free(s.s);
  free(b.s);

  if (top < 0x100) {
    b = encode(CNET_ENC_LATIN1, t, len);
    s = decode(CNET_ENC_LATIN1, b.s, b.len);
    FUZZ_CHECK_SAME("latin1 text round trip", s.s, s.len, text.s, text.len);
    free(s.s);
    free(b.s);
  }
  if (top < 0x80) {
    b = encode(CNET_ENC_ASCII, t, len);
    s = decode(CNET_ENC_ASCII, b.s, b.len);
    FUZZ_CHECK_SAME("ascii text round trip", s.s, s.len, text.s, text.len);
    free(s.s);
    free(b.s);
  }
  if (hex) {
    for (size_t i = 0; i < text.len; i++)
      text.s[i] = (unsigned char)tolower(text.s[i]);
    b = encode(CNET_ENC_HEX, t, len);
    s = decode(CNET_ENC_HEX, b.s, b.len);
    FUZZ_CHECK_SAME("hex text round trip", s.s, s.len, text.s, text.len);
    free(s.s);
    free(b.s);
  }
  free(text.s);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  fuzz_begin(data, size);
  check_huge_lengths();
  check_against_reference(data, size);
  check_bytes_round_trip(data, size);
  check_text_round_trip(data, size);
  return 0;
}
