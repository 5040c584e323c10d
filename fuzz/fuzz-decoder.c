/* libFuzzer target: string_decoder (cnet_decoder_*), every encoding Node's
 * StringDecoder takes: utf8, utf16le, latin1, ascii, hex, base64,
 * base64url.
 *
 * The input: byte 0 is k | v << 4. k (0..15) chunk lengths follow, one byte
 * each (0..255, 0 included: an empty write); v picks the name each decoder
 * is opened with (one of the encoding's aliases, upper-cased when v >= 8;
 * for utf8 also "", NULL and a zeroed decoder). The rest is the stream.
 * Every encoding decodes the stream three ways, each ended by end(): in one
 * write; cut into chunks of the k lengths (repeated until the stream runs
 * out; all zero means one write); one byte per write (the first 64 bytes,
 * then the rest at once). Each chunk is copied into a buffer of its exact
 * size, so AddressSanitizer sees a read past it.
 *
 * Properties, for each encoding:
 *   - Bounds. Every write's text is valid UTF-8 (fuzz.h, RFC 3629) and no
 *     longer than cnet_decoder_max_length() said before the call, end()'s
 *     no longer than CNET_DECODER_END_MAX; the output buffers are exactly
 *     that size, so a write past the promise is an ASan report even when
 *     the returned length looks fine. After end() nothing is kept; latin1,
 *     ascii and hex never keep anything. For lengths near SIZE_MAX,
 *     cnet_decoder_max_length covers the worst case (derived here: every
 *     byte U+FFFD in utf8, every unit in utf16le...) or says SIZE_MAX; it
 *     does not wrap around.
 *   - Names. Each alias opens its encoding, cnet_encoding_name gives the
 *     canonical name, and that name with an "x" appended fails with
 *     ERR_UNKNOWN_ENCODING and a message in cnet_last_error().
 *   - Reference. The stream in one write + end() equals a decoder written
 *     here: utf8 the WHATWG decoder (fuzz.h); utf16le little-endian code
 *     units, a high surrogate followed by a low one as one character, any
 *     other surrogate U+FFFD, an odd last byte dropped; latin1 byte = code
 *     point; ascii the byte with its high bit cleared; hex two lower-case
 *     digits a byte; base64 with '=' padding, base64url without.
 *   - Chunking. The chunked runs give, concatenated, exactly the one-write
 *     text -- for every encoding but utf16le, where Node's own decoder does
 *     not: each write() returns a JS string of its own, so a surrogate pair
 *     that two writes split becomes two U+FFFD (Node v20: writes [00 d8 00]
 *     and [dc] give "\ufffd" and "\ufffd"; [00 d8 00 dc] in one gives
 *     U+10000). For utf16le instead:
 *       - with every character outside the BMP written as two U+FFFD, the
 *         chunked text equals the one-write text (pairs may come apart, but
 *         no code unit is lost, added or changed);
 *       - each write() equals a model of Node's decoder phrased as byte
 *         ranges (u16model_t below): write() returns the string of the
 *         bytes from where the previous one stopped to what it holds back.
 *     Checked against Node v20's StringDecoder on 200,000 short random
 *     streams (up to 11 bytes, rich in surrogates and UTF-8 leads) in random
 *     chunks: both utf16le properties held for every write, and every other
 *     encoding was chunk-invariant.
 *   - Reuse. After end() the same decoder decodes the stream again to the
 *     same text (Node's end() resets the decoder).
 */
#include "cnet.h"
#include "fuzz.h"

#include <ctype.h>

#define MAX_LENGTHS 15
#define BYTEWISE_MAX 64

/* Each encoding with the names it is opened with. For utf8, names[3] is
 * NULL (Node's default) and variant 4 a zeroed decoder, no name at all. */
static const struct {
  cnet_encoding_t enc;
  unsigned variants;
  const char *names[4];
} encodings[] = {
    {CNET_ENC_UTF8, 5, {"utf8", "utf-8", "", NULL}},
    {CNET_ENC_UTF16LE, 4, {"utf16le", "utf-16le", "ucs2", "ucs-2"}},
    {CNET_ENC_LATIN1, 2, {"latin1", "binary"}},
    {CNET_ENC_ASCII, 1, {"ascii"}},
    {CNET_ENC_HEX, 1, {"hex"}},
    {CNET_ENC_BASE64, 1, {"base64"}},
    {CNET_ENC_BASE64URL, 1, {"base64url"}},
};
#define N_ENCODINGS (sizeof(encodings) / sizeof(encodings[0]))

/* ---------------------------------------------------------- text buffer -- */

typedef struct {
  unsigned char *s;
  size_t len, cap;
} text_t;

static void text_put(text_t *t, const void *p, size_t n) {
  if (t->len + n > t->cap) {
    size_t cap = t->cap * 2 + n + 64;

    t->s = realloc(t->s, cap);
    if (t->s == NULL)
      abort();
    t->cap = cap;
  }
  if (n > 0)
    memcpy(t->s + t->len, p, n);
  t->len += n;
}

/* ------------------------------------------------------- the reference -- */

static const char hex_digits[] = "0123456789abcdef";

/* base64 the bit-accumulator way (six bits out whenever six are in), not
 * in 3-byte groups as src/encoding.c does. */
static size_t ref_base64(const unsigned char *p, size_t n, bool url,
                         unsigned char *out) {
  const char *abc = url ? "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
                          "0123456789-_"
                        : "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
                          "0123456789+/";
  uint32_t acc = 0;
  unsigned bits = 0;
  size_t k = 0;

  for (size_t i = 0; i < n; i++) {
    acc = acc << 8 | p[i];
    bits += 8;
    while (bits >= 6) {
      bits -= 6;
      out[k++] = (unsigned char)abc[acc >> bits & 0x3F];
    }
  }
  if (bits > 0)
    out[k++] = (unsigned char)abc[acc << (6 - bits) & 0x3F];
  while (!url && k % 4 != 0)
    out[k++] = '=';
  return k;
}

/* n bytes read as little-endian UTF-16 (an odd last byte ignored), as
 * UTF-8. out needs room for 3 * n / 2. */
static size_t ref_utf16le(const unsigned char *p, size_t n,
                          unsigned char *out) {
  uint16_t *u = fuzz_alloc(n / 2 * sizeof(*u));
  size_t k;

  for (size_t i = 0; i < n / 2; i++)
    u[i] = (uint16_t)(p[2 * i] | p[2 * i + 1] << 8);
  k = fuzz_utf16_to_utf8(u, n / 2, out);
  free(u);
  return k;
}

/* What Buffer.toString(enc) of n bytes is, as UTF-8. out needs room for
 * 3 * n + 4. */
static size_t ref_decode(cnet_encoding_t enc, const unsigned char *p, size_t n,
                         unsigned char *out) {
  size_t k = 0;

  switch (enc) {
  case CNET_ENC_UTF16LE:
    return ref_utf16le(p, n, out);
  case CNET_ENC_LATIN1:
    for (size_t i = 0; i < n; i++)
      k += fuzz_utf8_put(out + k, p[i]);
    return k;
  case CNET_ENC_ASCII:
    for (size_t i = 0; i < n; i++)
      out[k++] = p[i] & 0x7F;
    return k;
  case CNET_ENC_HEX:
    for (size_t i = 0; i < n; i++) {
      out[k++] = (unsigned char)hex_digits[p[i] >> 4];
      out[k++] = (unsigned char)hex_digits[p[i] & 0xF];
    }
    return k;
  case CNET_ENC_BASE64:
  case CNET_ENC_BASE64URL:
    return ref_base64(p, n, enc == CNET_ENC_BASE64URL, out);
  case CNET_ENC_UTF8:
  default: {
    uint32_t *cps = fuzz_alloc(n * sizeof(*cps));
    size_t m = fuzz_utf8_decode(p, n, cps);

    for (size_t i = 0; i < m; i++)
      k += fuzz_utf8_put(out + k, cps[i]);
    free(cps);
    return k;
  }
  }
}

/* ---------------------------------------- Node's utf16le decoder, modelled
 *
 * Every write() returns the UTF-16 string of one byte range of the stream:
 * from where the previous write() stopped (start) to what this one holds
 * back. Node's string_decoder.cc holds back the last byte of a body of odd
 * length, and the last code unit of an even body when it is a high
 * surrogate; the body is what the write brought after completing the unit
 * held back before (target: the stream offset where that unit ends). A
 * write that only completes the held unit returns it, paired or not. */
typedef struct {
  const unsigned char *stream;
  size_t start, total, target; /* target 0: nothing held */
} u16model_t;

/* After a write of len more bytes: the range [*from, *to) it returns. */
static void u16model_write(u16model_t *m, size_t len, size_t *from,
                           size_t *to) {
  size_t body;

  m->total += len;
  *from = *to = m->start;
  if (m->target > 0) {
    if (m->total < m->target)
      return; /* the held unit is still incomplete */
    body = m->target;
    m->target = 0;
  } else {
    body = m->start;
  }
  *to = m->total;
  if (m->total > body) {
    if ((m->total - body) % 2 == 1) {
      *to = m->total - 1;
      m->target = m->total + 1;
    } else if ((m->stream[m->total - 1] & 0xFC) == 0xD8) {
      *to = m->total - 2;
      m->target = m->total + 2;
    }
  }
  m->start = *to;
}

/* end(): what is held, an odd last byte dropped. */
static void u16model_end(u16model_t *m, size_t *from, size_t *to) {
  *from = m->start;
  *to = m->total - (m->total - m->start) % 2;
  m->start = m->total;
  m->target = 0;
}

/* ---------------------------------------------------------- the decoder -- */

typedef struct {
  cnet_decoder_t d;
  cnet_encoding_t enc;
  const char *name; /* canonical, for messages */
  const char *how;  /* which run, for messages */
  size_t writes;
  text_t text;       /* everything returned so far */
  u16model_t *model; /* utf16le, chunked runs only */
  bool huge;         /* check_huge_lengths after each write */
} run_t;

static void check_piece(run_t *r, const char *out, size_t n, size_t max,
                        size_t from, size_t to) {
  FUZZ_CHECK(n <= max,
             "%s, %s, write %zu: %zu bytes of text, room promised %zu", r->name,
             r->how, r->writes, n, max);
  if (!fuzz_utf8_valid(out, n)) {
    fuzz_print_escaped("text", out, n);
    fuzz_fail(__FILE__, __LINE__, "%s, %s, write %zu: not valid UTF-8", r->name,
              r->how, r->writes);
  }
  FUZZ_CHECK(r->d.pending_len <= sizeof(r->d.pending) &&
                 r->d.pending_len + r->d.need <= sizeof(r->d.pending),
             "%s, %s, write %zu: keeps %u bytes, needs %u more", r->name,
             r->how, r->writes, r->d.pending_len, r->d.need);
  if (r->enc == CNET_ENC_LATIN1 || r->enc == CNET_ENC_ASCII ||
      r->enc == CNET_ENC_HEX)
    FUZZ_CHECK(r->d.pending_len == 0 && r->d.need == 0, "%s keeps bytes (%u)",
               r->name, r->d.pending_len);
  if (r->model != NULL) {
    unsigned char *want = fuzz_alloc(3 * (to - from) / 2);
    size_t wn = ref_utf16le(r->model->stream + from, to - from, want);

    if (n != wn || memcmp(out, want, n) != 0) { /* the message only then */
      char what[96];

      snprintf(what, sizeof(what), "utf16le, %s, write %zu (stream %zu..%zu)",
               r->how, r->writes, from, to);
      FUZZ_CHECK_SAME(what, out, n, want, wn);
    }
    free(want);
  }
  text_put(&r->text, out, n);
  r->writes++;
}

static void run_open(run_t *r, size_t e, unsigned v, const char *how) {
  unsigned i = v % encodings[e].variants;
  const char *name = encodings[e].names[i % 4];
  char upper[16];
  int rc;

  memset(r, 0, sizeof(*r));
  r->enc = encodings[e].enc;
  r->name = encodings[e].names[0];
  r->how = how;
  if (i == 4) /* utf8's zeroed decoder: new StringDecoder() */
    return;
  if (name != NULL && v >= 8) {
    size_t j = 0;

    for (; name[j] != '\0' && j + 1 < sizeof(upper); j++)
      upper[j] = (char)toupper((unsigned char)name[j]);
    upper[j] = '\0';
    name = upper;
  }
  rc = cnet_decoder_init(&r->d, name);
  FUZZ_CHECK(rc == 0 && r->d.encoding == r->enc,
             "cnet_decoder_init(\"%s\") returned %d, encoding %d",
             name != NULL ? name : "(null)", rc, (int)r->d.encoding);
  FUZZ_CHECK(cnet_encoding_name(r->enc) != NULL &&
                 strcmp(cnet_encoding_name(r->enc), r->name) == 0,
             "cnet_encoding_name(%d) is not %s", (int)r->enc, r->name);
}

/* A name with one character more is no encoding: ERR_UNKNOWN_ENCODING,
 * reported in cnet_last_error(). */
static void check_unknown_name(size_t e) {
  char name[16];
  cnet_decoder_t d;
  int rc;

  snprintf(name, sizeof(name), "%sx", encodings[e].names[0]);
  rc = cnet_decoder_init(&d, name);
  FUZZ_CHECK(rc == CNET_ERR_UNKNOWN_ENCODING,
             "cnet_decoder_init(\"%s\") returned %d", name, rc);
  fuzz_check_last_error(rc, "cnet_decoder_init");
}

/* a * b, or SIZE_MAX if that does not fit */
static size_t sat_mul(size_t a, size_t b) {
  size_t x;

  return __builtin_mul_overflow(a, b, &x) ? SIZE_MAX : x;
}

/* The most text len bytes can give, as derived here from what each
 * encoding prints (kept: the bytes the decoder holds now), SIZE_MAX when
 * it does not fit. */
static size_t worst_text(cnet_encoding_t enc, size_t len, size_t kept) {
  size_t all = len > SIZE_MAX - kept ? SIZE_MAX : len + kept;

  switch (enc) {
  case CNET_ENC_UTF16LE:
    return sat_mul(all / 2, 3); /* a lone surrogate: 3 bytes of U+FFFD */
  case CNET_ENC_LATIN1:         /* 0x80..0xFF: 2 bytes */
  case CNET_ENC_HEX:
    return sat_mul(len, 2);
  case CNET_ENC_ASCII:
    return len;
  case CNET_ENC_BASE64:
  case CNET_ENC_BASE64URL:
    return sat_mul(all / 3, 4); /* whole groups; end() pads the rest */
  case CNET_ENC_UTF8:
  default:
    return sat_mul(all, 3); /* every byte U+FFFD */
  }
}

/* cnet_decoder_max_length must not wrap around for lengths no buffer can
 * have: it covers the worst case, or says SIZE_MAX. */
static void check_huge_lengths(const run_t *r) {
  static const size_t huge[] = {
      SIZE_MAX,         SIZE_MAX - 1, SIZE_MAX - 4,     SIZE_MAX / 2,
      SIZE_MAX / 2 + 1, SIZE_MAX / 3, SIZE_MAX / 3 + 1, SIZE_MAX / 4 * 3};

  for (size_t i = 0; i < sizeof(huge) / sizeof(huge[0]); i++) {
    size_t max = cnet_decoder_max_length(&r->d, huge[i]);
    size_t worst = worst_text(r->enc, huge[i], r->d.pending_len);

    FUZZ_CHECK(max >= worst,
               "%s: max_length(%zu) = %zu with %u kept, below %zu", r->name,
               huge[i], max, r->d.pending_len, worst);
  }
}

static void run_write(run_t *r, const unsigned char *p, size_t len) {
  unsigned char *in = fuzz_alloc(len);
  size_t max = cnet_decoder_max_length(&r->d, len), n, from = 0, to = 0;
  char *out = fuzz_alloc(max);

  if (len > 0)
    memcpy(in, p, len);
  n = cnet_decoder_write(&r->d, in, len, out);
  if (r->model != NULL)
    u16model_write(r->model, len, &from, &to);
  check_piece(r, out, n, max, from, to);
  if (r->huge)
    check_huge_lengths(r);
  free(out);
  free(in);
}

static void run_end(run_t *r) {
  char *out = fuzz_alloc(CNET_DECODER_END_MAX);
  size_t n = cnet_decoder_end(&r->d, out), from = 0, to = 0;

  FUZZ_CHECK(r->d.pending_len == 0 && r->d.need == 0,
             "%s, %s: end() left %u bytes kept, %u needed", r->name, r->how,
             r->d.pending_len, r->d.need);
  if (r->model != NULL)
    u16model_end(r->model, &from, &to);
  check_piece(r, out, n, CNET_DECODER_END_MAX, from, to);
  free(out);
}

/* Each character outside the BMP (a 4-byte sequence: the text is valid
 * UTF-8) as two U+FFFD, the rest as it is. */
static void project(const text_t *t, text_t *out) {
  static const unsigned char two[] = {0xEF, 0xBF, 0xBD, 0xEF, 0xBF, 0xBD};

  for (size_t i = 0; i < t->len;) {
    if (t->s[i] >= 0xF0) {
      text_put(out, two, sizeof(two));
      i += 4;
    } else {
      text_put(out, t->s + i, 1);
      i++;
    }
  }
}

/* A chunked run's text against the one-write text. */
static void check_chunked(const run_t *r, const text_t *whole) {
  char what[64];

  snprintf(what, sizeof(what), "%s, %s, all writes", r->name, r->how);
  if (r->enc != CNET_ENC_UTF16LE) {
    FUZZ_CHECK_SAME(what, r->text.s, r->text.len, whole->s, whole->len);
    return;
  }
  text_t a = {0}, b = {0};

  project(&r->text, &a);
  project(whole, &b);
  FUZZ_CHECK_SAME(what, a.s, a.len, b.s, b.len);
  free(a.s);
  free(b.s);
}

static void check_encoding(size_t e, unsigned v, const size_t *lens, size_t k,
                           const unsigned char *p, size_t n) {
  run_t whole, r;
  u16model_t model;
  unsigned char *want = fuzz_alloc(3 * n + 4);
  size_t wn;
  text_t first;

  /* In one write, against the reference. */
  run_open(&whole, e, v, "one write");
  run_write(&whole, p, n);
  run_end(&whole);
  wn = ref_decode(whole.enc, p, n, want);
  FUZZ_CHECK_SAME(whole.name, whole.text.s, whole.text.len, want, wn);
  free(want);

  /* The same decoder once more, after its end(). */
  first = whole.text;
  whole.text = (text_t){0};
  whole.how = "one write after end()";
  run_write(&whole, p, n);
  run_end(&whole);
  FUZZ_CHECK_SAME(whole.how, whole.text.s, whole.text.len, first.s, first.len);
  free(whole.text.s);

  /* Cut: the input's chunk lengths, then one byte per write (for the first
   * BYTEWISE_MAX bytes, the rest in one: a longer stream has no split point
   * a shorter input lacks, and each write costs allocations). */
  for (int pass = 0; pass < 2; pass++) {
    if ((pass == 0 && k == 0) || (pass == 1 && n < 2))
      continue;
    run_open(&r, e, v, pass == 0 ? "input's chunks" : "a byte per write");
    if (r.enc == CNET_ENC_UTF16LE) {
      model = (u16model_t){p, 0, 0, 0};
      r.model = &model;
    }
    r.huge = pass == 0; /* the input picks the states; bytewise adds cost */
    for (size_t at = 0, i = 0; at < n; i++) {
      size_t len = pass == 0 ? lens[i % k] : at < BYTEWISE_MAX ? 1 : n - at;

      if (len > n - at)
        len = n - at;
      run_write(&r, p + at, len);
      at += len;
    }
    run_end(&r);
    check_chunked(&r, &first);
    free(r.text.s);
  }
  free(first.s);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  size_t lens[MAX_LENGTHS], k = 0, progress = 0;
  unsigned v = 0;

  fuzz_begin(data, size);
  if (size > 0) {
    k = data[0] & 0x0F;
    v = data[0] >> 4;
    data++;
    size--;
  }
  if (k > size)
    k = size;
  for (size_t i = 0; i < k; i++)
    progress += lens[i] = data[i];
  data += k;
  size -= k;
  if (progress == 0)
    k = 0; /* all zero: one write, rather than none forever */
  for (size_t e = 0; e < N_ENCODINGS; e++) {
    check_encoding(e, v, lens, k, data, size);
    check_unknown_name(e);
  }
  return 0;
}
