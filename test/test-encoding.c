/* Encodings: normalizeEncoding, string_decoder (RD-03, section 7 correction
 * 11) and Buffer.from(string, encoding) (WR-10).
 *
 * Part 1: fixed cases, each one behaviour, with Node v20's answers written
 * out (the decoder's output is shown as the hex of the UTF-8 text, streams as
 * their chunks in hex separated by ',').
 * Part 2: differential cases against the real node (CNET_NODE; the case
 * fails if it is not set or node cannot run). For every encoding, a few
 * thousand random streams, biased towards the bytes that matter for it
 * (UTF-8 sequences, cut and broken; surrogates in utf16le; lengths around
 * multiples of 3 for base64), cut at random points, go through cnet's
 * decoder and through new StringDecoder(enc) in one node process
 * (test/node/decoder-diff.js); every write() and end() result must agree.
 * The same for cnet_encode against Buffer.from(text, enc), and for
 * encoding names. The seed is fixed; CNET_ENC_SEED=<n> picks another.
 */
#include "harness.h"
#include "node-diff.h"

#include <stdint.h>

/* ---- helpers: hex ------------------------------------------------------- */

static const char hexdig[] = "0123456789abcdef";

static size_t from_hex(const char *h, unsigned char *out) {
  size_t n = 0;

  for (; h[0] != '\0' && h[1] != '\0'; h += 2) {
    unsigned v = 0;

    for (int k = 0; k < 2; k++) {
      char c = h[k];
      v = v << 4 | (unsigned)(c <= '9' ? c - '0' : (c | 0x20) - 'a' + 10);
    }
    out[n++] = (unsigned char)v;
  }
  return n;
}

/* ---- helpers: hex text (text_t is node-diff.h's) ------------------------ */

static void text_char(text_t *t, char c) {
  text_put(t, &c, 1);
}

static void text_hex(text_t *t, const void *p, size_t n) {
  const unsigned char *b = p;

  text_reserve(t, 2 * n);
  for (size_t i = 0; i < n; i++) {
    t->s[t->len++] = hexdig[b[i] >> 4];
    t->s[t->len++] = hexdig[b[i] & 0x0F];
  }
  t->s[t->len] = '\0';
}

/* ---- helpers: cnet's answers in the node script's format ----------------- */

/* Decodes one stream given as chunks (byte ranges of p cut at cuts[]),
 * appending each write()'s and then end()'s text as hex, ','-separated, the
 * way decoder-diff.js prints Node's. Checks the max_length promises. */
static void decode_stream(text_t *t, cnet_encoding_t enc,
                          const unsigned char *p, const size_t *cuts,
                          size_t ncuts, size_t len) {
  cnet_decoder_t d;
  size_t start = 0;
  char end_out[CNET_DECODER_END_MAX];

  memset(&d, 0, sizeof(d));
  d.encoding = enc; /* as cnet_decoder_init(name) would set it */
  for (size_t c = 0; c <= ncuts; c++) {
    size_t stop = c < ncuts ? cuts[c] : len;
    size_t max = cnet_decoder_max_length(&d, stop - start);
    char *out = malloc(max + 1);
    size_t n;

    ASSERT_NOT_NULL(out);
    n = cnet_decoder_write(&d, p + start, stop - start, out);
    ASSERT(n <= max);
    text_hex(t, out, n);
    text_char(t, ',');
    free(out);
    start = stop;
  }
  {
    size_t n = cnet_decoder_end(&d, end_out);

    ASSERT(n <= CNET_DECODER_END_MAX);
    text_hex(t, end_out, n);
  }
  ASSERT_EQ(0, d.pending_len);
  ASSERT_EQ(0, d.need);
}

/* The hex of cnet_encode(enc, p[0..n)). */
static void encode_text(text_t *t, cnet_encoding_t enc, const unsigned char *p,
                        size_t n) {
  size_t max = cnet_encode_max_length(enc, n);
  unsigned char *out = malloc(max + 1);
  size_t got;

  ASSERT_NOT_NULL(out);
  got = cnet_encode(enc, (const char *)p, n, out);
  ASSERT(got <= max);
  text_hex(t, out, got);
  free(out);
}

/* dec("utf8", "e2,82ac") -> ",e282ac,": chunks in hex separated by ',',
 * answer as write results then end's, hex of UTF-8, ','-separated. */
static const char *dec(const char *name, const char *chunks) {
  static text_t t;
  unsigned char bytes[512];
  size_t cuts[32], ncuts = 0, len = 0;
  cnet_decoder_t d;
  char hexbuf[1024];
  const char *c = chunks;

  ASSERT_EQ(0, cnet_decoder_init(&d, name));
  for (;;) {
    const char *comma = strchr(c, ',');
    size_t n = comma != NULL ? (size_t)(comma - c) : strlen(c);

    ASSERT(n < sizeof(hexbuf));
    memcpy(hexbuf, c, n);
    hexbuf[n] = '\0';
    len += from_hex(hexbuf, bytes + len);
    if (comma == NULL)
      break;
    ASSERT(ncuts < ARRAY_LEN(cuts));
    cuts[ncuts++] = len;
    c = comma + 1;
  }
  t.len = 0;
  text_put(&t, "", 0);
  decode_stream(&t, d.encoding, bytes, cuts, ncuts, len);
  return t.s;
}

/* dec() with the answers as text rather than hex (for base64's). */
static const char *dec_text(const char *name, const char *chunks) {
  static char out[1024];
  const char *h = dec(name, chunks);
  size_t n = 0;

  for (; *h != '\0'; h++) {
    if (*h == ',') {
      out[n++] = ',';
      continue;
    }
    ASSERT(h[1] != '\0' && h[1] != ',');
    ASSERT(n + 2 < sizeof(out));
    n += from_hex((char[]){h[0], h[1], '\0'}, (unsigned char *)out + n);
    h++;
  }
  out[n] = '\0';
  return out;
}

/* enc("hex", "343167") -> "41": text and answer in hex. */
static const char *enc(const char *name, const char *text_hex_in) {
  static text_t t;
  unsigned char bytes[512];
  size_t n = from_hex(text_hex_in, bytes);
  cnet_encoding_t e = cnet_encoding_from_name(name);

  ASSERT_NE(CNET_ENC_UNKNOWN, e);
  t.len = 0;
  text_put(&t, "", 0);
  encode_text(&t, e, bytes, n);
  return t.s;
}

/* enc() for plain text. */
static const char *enc_s(const char *name, const char *text) {
  text_t h = {0};
  const char *r;

  text_hex(&h, text, strlen(text));
  if (h.s == NULL)
    text_put(&h, "", 0);
  r = enc(name, h.s);
  text_free(&h);
  return r;
}

/* ---- Part 1: names --------------------------------------------------------
 */

TEST_CASE(enc_names_normalized_like_node) {
  static const struct {
    const char *name;
    cnet_encoding_t want;
  } cases[] = {
      {"utf8", CNET_ENC_UTF8},       {"UTF8", CNET_ENC_UTF8},
      {"utf-8", CNET_ENC_UTF8},      {"Utf-8", CNET_ENC_UTF8},
      {"ucs2", CNET_ENC_UTF16LE},    {"UCS-2", CNET_ENC_UTF16LE},
      {"utf16le", CNET_ENC_UTF16LE}, {"UTF-16LE", CNET_ENC_UTF16LE},
      {"latin1", CNET_ENC_LATIN1},   {"BINARY", CNET_ENC_LATIN1},
      {"base64", CNET_ENC_BASE64},   {"Base64Url", CNET_ENC_BASE64URL},
      {"hex", CNET_ENC_HEX},         {"HeX", CNET_ENC_HEX},
      {"ascii", CNET_ENC_ASCII},     {"ASCII", CNET_ENC_ASCII},
      {"", CNET_ENC_UTF8},           {NULL, CNET_ENC_UTF8},
      {"utf16", CNET_ENC_UNKNOWN},   {"utf-16", CNET_ENC_UNKNOWN},
      {"utf16be", CNET_ENC_UNKNOWN}, {"latin-1", CNET_ENC_UNKNOWN},
      {"utf8 ", CNET_ENC_UNKNOWN},   {" hex", CNET_ENC_UNKNOWN},
      {"base-64", CNET_ENC_UNKNOWN}, {"nope", CNET_ENC_UNKNOWN},
      {"utf32", CNET_ENC_UNKNOWN},   {"u", CNET_ENC_UNKNOWN},
  };

  for (size_t i = 0; i < ARRAY_LEN(cases); i++) {
    if (cnet_encoding_from_name(cases[i].name) != cases[i].want)
      FAIL("cnet_encoding_from_name(\"%s\") = %d, want %d",
           cases[i].name ? cases[i].name : "(null)",
           (int)cnet_encoding_from_name(cases[i].name), (int)cases[i].want);
  }
}

TEST_CASE(enc_canonical_names) {
  ASSERT_STR_EQ(cnet_encoding_name(CNET_ENC_UTF8), "utf8");
  ASSERT_STR_EQ(cnet_encoding_name(CNET_ENC_UTF16LE), "utf16le");
  ASSERT_STR_EQ(cnet_encoding_name(CNET_ENC_LATIN1), "latin1");
  ASSERT_STR_EQ(cnet_encoding_name(CNET_ENC_ASCII), "ascii");
  ASSERT_STR_EQ(cnet_encoding_name(CNET_ENC_BASE64), "base64");
  ASSERT_STR_EQ(cnet_encoding_name(CNET_ENC_BASE64URL), "base64url");
  ASSERT_STR_EQ(cnet_encoding_name(CNET_ENC_HEX), "hex");
  ASSERT_NULL(cnet_encoding_name(CNET_ENC_UNKNOWN));
  ASSERT_NULL(cnet_encoding_name((cnet_encoding_t)99));
}

TEST_CASE(enc_unknown_encoding_error) {
  cnet_decoder_t d;

  ASSERT_EQ(CNET_ERR_UNKNOWN_ENCODING, cnet_decoder_init(&d, "nope"));
  ASSERT_EQ(CNET_ERR_UNKNOWN_ENCODING, cnet_last_error()->errnum);
  ASSERT_STR_EQ(cnet_last_error()->code, "ERR_UNKNOWN_ENCODING");
  ASSERT_STR_EQ(cnet_last_error()->message, "Unknown encoding: nope");
  ASSERT_EQ(0, cnet_decoder_init(&d, "UCS-2"));
  ASSERT_EQ(CNET_ENC_UTF16LE, d.encoding);
  ASSERT_EQ(0, cnet_decoder_init(&d, NULL));
  ASSERT_EQ(CNET_ENC_UTF8, d.encoding);
}

/* ---- Part 1: the decoder, utf8 ------------------------------------------ */

TEST_CASE(rd03_utf8_char_split_across_writes) {
  /* "€" (e2 82 ac) cut anywhere; "😀" one byte per packet. */
  ASSERT_STR_EQ(dec("utf8", "e2,82ac"), ",e282ac,");
  ASSERT_STR_EQ(dec("utf8", "e282,ac"), ",e282ac,");
  ASSERT_STR_EQ(dec("utf8", "41e2,82ac42"), "41,e282ac42,");
  ASSERT_STR_EQ(dec("utf8", "f0,9f,98,80"), ",,,f09f9880,");
  ASSERT_STR_EQ(dec("utf8", "f09f,,9880"), ",,f09f9880,");
}

TEST_CASE(rd03_utf8_partial_packet_gives_no_text) {
  /* The 'data' layer emits nothing for an empty string: write() must
   * return 0 for a packet holding only part of a character. */
  cnet_decoder_t d;
  char out[64];

  ASSERT_EQ(0, cnet_decoder_init(&d, "utf8"));
  ASSERT_EQ(0, cnet_decoder_write(&d, "\xf0\x9f", 2, out));
  ASSERT_EQ(0, cnet_decoder_write(&d, "\x98", 1, out));
  ASSERT_EQ(4, cnet_decoder_write(&d, "\x80", 1, out));
  ASSERT_MEM_EQ(out, "\xf0\x9f\x98\x80", 4);
  ASSERT_EQ(0, cnet_decoder_end(&d, out));
}

TEST_CASE(rd03_utf8_cut_char_flushed_at_end_as_one_replacement) {
  ASSERT_STR_EQ(dec("utf8", "e282"), ",efbfbd");
  ASSERT_STR_EQ(dec("utf8", "41f09f98"), "41,efbfbd");
  ASSERT_STR_EQ(dec("utf8", "c3"), ",efbfbd");
  /* The decoder is empty afterwards. */
  ASSERT_STR_EQ(dec("utf8", "e2,82"), ",,efbfbd");
}

TEST_CASE(enc_utf8_invalid_maximal_subparts) {
  /* V8 (WHATWG): one U+FFFD per maximal subpart of a broken sequence; the
   * byte that broke it starts over. */
  ASSERT_STR_EQ(dec("utf8", "80"), "efbfbd,");
  ASSERT_STR_EQ(dec("utf8", "c0af"), "efbfbdefbfbd,");
  ASSERT_STR_EQ(dec("utf8", "e08080"), "efbfbdefbfbdefbfbd,");
  ASSERT_STR_EQ(dec("utf8", "eda080"), "efbfbdefbfbdefbfbd,");
  ASSERT_STR_EQ(dec("utf8", "f4908080"), "efbfbdefbfbdefbfbdefbfbd,");
  ASSERT_STR_EQ(dec("utf8", "e28241"), "efbfbd41,");
  ASSERT_STR_EQ(dec("utf8", "f09f9841"), "efbfbd41,");
  ASSERT_STR_EQ(dec("utf8", "ff41fe"), "efbfbd41efbfbd,");
  /* A BOM is text like any other. */
  ASSERT_STR_EQ(dec("utf8", "efbbbf41"), "efbbbf41,");
  /* A cut "character" that can never be valid is still kept whole, then
   * decoded as V8 decodes those bytes: E0 80 is two subparts. */
  ASSERT_STR_EQ(dec("utf8", "e080"), ",efbfbdefbfbd");
  ASSERT_STR_EQ(dec("utf8", "e080,80"), ",efbfbdefbfbdefbfbd,");
}

TEST_CASE(enc_utf8_cut_char_ended_by_next_packet) {
  /* The next packet starts with something that is not a continuation:
   * the kept bytes become U+FFFD in front of it. */
  ASSERT_STR_EQ(dec("utf8", "e2,41"), ",efbfbd41,");
  ASSERT_STR_EQ(dec("utf8", "f09f,4142"), ",efbfbd4142,");
  ASSERT_STR_EQ(dec("utf8", "f0,9f41"), ",efbfbd41,");
  ASSERT_STR_EQ(dec("utf8", "e2,e282ac"), ",efbfbde282ac,");
}

TEST_CASE(enc_zeroed_decoder_is_utf8) {
  cnet_decoder_t d;
  char out[16];

  memset(&d, 0, sizeof(d));
  ASSERT_EQ(0, cnet_decoder_write(&d, "\xe2\x82", 2, out));
  ASSERT_EQ(3, cnet_decoder_write(&d, "\xac", 1, out));
  ASSERT_MEM_EQ(out, "\xe2\x82\xac", 3);
}

/* ---- Part 1: the decoder, utf16le ------------------------------------ */

TEST_CASE(enc_utf16le_odd_byte_kept_for_next_write) {
  ASSERT_STR_EQ(dec("utf16le", "41,00"), ",41,");
  ASSERT_STR_EQ(dec("utf16le", "410042,00"), "41,42,");
  ASSERT_STR_EQ(dec("ucs2", "ac,20"), ",e282ac,");
}

TEST_CASE(enc_utf16le_surrogate_pair_split) {
  /* U+1F600 is 3d d8 00 de. */
  ASSERT_STR_EQ(dec("utf16le", "3dd8,00de"), ",f09f9880,");
  ASSERT_STR_EQ(dec("utf16le", "3dd8,00,de"), ",,f09f9880,");
  /* An odd cut: the completed unit and the body are separate pieces of one
   * write's string, and a pair across them still joins. */
  ASSERT_STR_EQ(dec("utf16le", "41003d,d800de"), "41,f09f9880,");
  /* ...but Node only waits for a low surrogate when the chunk has an even
   * length: an odd one keeps just its last byte, so the high surrogate
   * before it is lone in that write's string. */
  ASSERT_STR_EQ(dec("utf16le", "3d,d800,de"), ",efbfbd,efbfbd,");
  ASSERT_STR_EQ(dec("utf16le", "3dd841,00de"), "efbfbd,41,");
}

TEST_CASE(enc_utf16le_lone_surrogates_become_replacement) {
  ASSERT_STR_EQ(dec("utf16le", "00dc4100"), "efbfbd41,");
  ASSERT_STR_EQ(dec("utf16le", "3dd84100"), "efbfbd41,");
  ASSERT_STR_EQ(dec("utf16le", "3dd8,4100"), ",efbfbd41,");
  /* the first of two high surrogates is lone; the second waits */
  ASSERT_STR_EQ(dec("utf16le", "3dd83dd8,00de"), "efbfbd,f09f9880,");
}

TEST_CASE(enc_utf16le_end_drops_odd_byte) {
  ASSERT_STR_EQ(dec("utf16le", "410042"), "41,");
  /* a kept high surrogate plus one byte: the byte goes, the surrogate is
   * lone */
  ASSERT_STR_EQ(dec("utf16le", "3dd8,00"), ",,efbfbd");
  ASSERT_STR_EQ(dec("utf16le", "3dd8"), ",efbfbd");
}

/* ---- Part 1: the decoder, base64 and the byte encodings -------------- */

TEST_CASE(enc_base64_remainder_carried_across_writes) {
  /* 3-byte groups only; the rest waits for the next packet. */
  ASSERT_STR_EQ(dec_text("base64", "01020304,0506"), "AQID,BAUG,");
  ASSERT_STR_EQ(dec_text("base64", "01,02,03"), ",,AQID,");
  ASSERT_STR_EQ(dec_text("base64", "0102,030405060708"), ",AQIDBAUG,Bwg=");
}

TEST_CASE(enc_base64_remainder_flushed_at_end) {
  /* ...and at the end it is flushed, padded. */
  ASSERT_STR_EQ(dec_text("base64", "01020304"), "AQID,BA==");
  ASSERT_STR_EQ(dec_text("base64", "0102030405"), "AQID,BAU=");
  ASSERT_STR_EQ(dec_text("base64", "fb,ff"), ",,+/8=");
}

TEST_CASE(enc_base64url_remainder_flushed_unpadded) {
  ASSERT_STR_EQ(dec_text("base64url", "01020304"), "AQID,BA");
  ASSERT_STR_EQ(dec_text("base64url", "fb,ff"), ",,-_8");
  ASSERT_STR_EQ(dec_text("base64url", "fbff,bf"), ",-_-_,");
}

TEST_CASE(enc_hex_latin1_ascii_never_keep_bytes) {
  ASSERT_STR_EQ(dec("hex", "ab01,ff"), "61623031,6666,");
  ASSERT_STR_EQ(dec("latin1", "e941,ff"), "c3a941,c3bf,");
  /* Node v20's 'ascii' clears the high bit: 0xe9 is "i". */
  ASSERT_STR_EQ(dec("ascii", "e941,80ff"), "6941,007f,");
  ASSERT_STR_EQ(dec("binary", "e2,82ac"), "c3a2,c282c2ac,");
}

/* ---- Part 1: Buffer.from(string, encoding) ---------------------------- */

TEST_CASE(enc_encode_utf8_replaces_invalid) {
  ASSERT_STR_EQ(enc("utf8", "41e282ac"), "41e282ac");
  ASSERT_STR_EQ(enc("utf8", "41e282"), "41efbfbd");
  ASSERT_STR_EQ(enc("utf8", "eda080"), "efbfbdefbfbdefbfbd");
  ASSERT_STR_EQ(enc("utf8", ""), "");
}

TEST_CASE(enc_encode_utf16le) {
  ASSERT_STR_EQ(enc("utf16le", "41e282ac"), "4100ac20");
  ASSERT_STR_EQ(enc("ucs2", "f09f9880"), "3dd800de");
  ASSERT_STR_EQ(enc("utf16le", "ff"), "fdff");
}

TEST_CASE(enc_encode_latin1_ascii_take_low_byte) {
  /* U+0141 -> 0x41; U+1F600 is d83d de00 -> 3d 00. */
  ASSERT_STR_EQ(enc("latin1", "c5819f"), "41fd");
  ASSERT_STR_EQ(enc("latin1", "c3a9f09f9880"), "e93d00");
  ASSERT_STR_EQ(enc("ascii", "c3a9f09f9880"), "e93d00");
  ASSERT_STR_EQ(enc("binary", "e282ac"), "ac");
}

TEST_CASE(wr10_latin1_round_trips_all_byte_values) {
  unsigned char all[256], back[256];
  char text[512];
  cnet_decoder_t d;
  size_t n;

  for (int i = 0; i < 256; i++)
    all[i] = (unsigned char)i;
  ASSERT_EQ(0, cnet_decoder_init(&d, "latin1"));
  ASSERT(cnet_decoder_max_length(&d, 256) <= sizeof(text));
  n = cnet_decoder_write(&d, all, 256, text);
  ASSERT_EQ(128 + 2 * 128, n);
  ASSERT(cnet_encode_max_length(CNET_ENC_LATIN1, n) >= 256);
  ASSERT_EQ(256, cnet_encode(CNET_ENC_LATIN1, text, n, back));
  ASSERT_MEM_EQ(all, back, 256);
  ASSERT_EQ(256, cnet_encode(cnet_encoding_from_name("binary"), text, n, back));
  ASSERT_MEM_EQ(all, back, 256);
}

TEST_CASE(wr10_hex_string_decoded_before_sending) {
  ASSERT_STR_EQ(enc_s("hex", "48656c6C6f"), "48656c6c6f");
  ASSERT_STR_EQ(enc_s("hex", "414"), "41");    /* odd digit dropped */
  ASSERT_STR_EQ(enc_s("hex", "41zz42"), "41"); /* stops at a bad pair */
  ASSERT_STR_EQ(enc_s("hex", "4g41"), "");
  ASSERT_STR_EQ(enc_s("hex", ""), "");
}

TEST_CASE(enc_encode_hex_reads_low_byte_of_code_units) {
  /* Node casts each UTF-16 code unit to uint8_t: U+0130 U+0131 is "01",
   * U+0141 is 'A'. node -p "Buffer.from('\u0130\u0131', 'hex')" */
  ASSERT_STR_EQ(enc("hex", "c4b0c4b1"), "01");
  ASSERT_STR_EQ(enc("hex", "3431c581c581"), "41aa");
}

TEST_CASE(enc_encode_base64_lenient) {
  ASSERT_STR_EQ(enc_s("base64", "QUJD"), "414243");
  ASSERT_STR_EQ(enc_s("base64", "QUJDRA"), "41424344");
  ASSERT_STR_EQ(enc_s("base64", "QUJDRA=="), "41424344");
  ASSERT_STR_EQ(enc_s("base64", "Q U\nJ\tD"), "414243"); /* junk skipped */
  ASSERT_STR_EQ(enc_s("base64", "Q*UJD!"), "414243");
  ASSERT_STR_EQ(enc_s("base64", "Q-_Q"), "43efd0"); /* both alphabets */
  ASSERT_STR_EQ(enc_s("base64url", "Q+/Q"), "43efd0");
  ASSERT_STR_EQ(enc_s("base64", "Q"), "");
  ASSERT_STR_EQ(enc_s("base64", "QR"), "41"); /* extra bits ignored */
}

TEST_CASE(enc_encode_base64_stops_at_equals) {
  ASSERT_STR_EQ(enc_s("base64", "QQ==QUJD"), "41");
  ASSERT_STR_EQ(enc_s("base64", "QUJD=QUJD"), "414243");
  /* U+1F600 is d83d de00: its first code unit reads as '='. */
  ASSERT_STR_EQ(enc("base64", "51554a44f09f988051554a44"), "414243");
  /* U+0141 reads as 'A'. */
  ASSERT_STR_EQ(enc("base64", "51554a44c581c581"), "41424300");
}

/* ---- Part 1: the promises about room -------------------------------- */

TEST_CASE(enc_max_lengths_are_upper_bounds) {
  /* Worst cases: every byte its own U+FFFD; base64 of whole groups. */
  static const cnet_encoding_t all[] = {
      CNET_ENC_UTF8,   CNET_ENC_UTF16LE,   CNET_ENC_LATIN1, CNET_ENC_ASCII,
      CNET_ENC_BASE64, CNET_ENC_BASE64URL, CNET_ENC_HEX};
  unsigned char ff[64];
  char out[1024];
  cnet_decoder_t d;

  memset(ff, 0xff, sizeof(ff));
  for (size_t e = 0; e < ARRAY_LEN(all); e++) {
    for (size_t n = 0; n <= sizeof(ff); n++) {
      memset(&d, 0, sizeof(d));
      d.encoding = all[e];
      ASSERT(cnet_decoder_write(&d, ff, n, out) <=
             cnet_decoder_max_length(&d, n));
      ASSERT(cnet_encode(all[e], (const char *)ff, n, out) <=
             cnet_encode_max_length(all[e], n));
    }
  }
  memset(&d, 0, sizeof(d));
  ASSERT_EQ(3 * 64, cnet_decoder_write(&d, ff, 64, out));
  ASSERT_EQ(3 * 64, cnet_encode(CNET_ENC_UTF8, (const char *)ff, 64, out));
  ASSERT_EQ(SIZE_MAX, cnet_encode_max_length(CNET_ENC_UTF8, SIZE_MAX / 2));
  ASSERT_EQ(SIZE_MAX, cnet_decoder_max_length(&d, SIZE_MAX - 1));
  /* end(): three kept bytes that are three subparts. */
  ASSERT_EQ(0, cnet_decoder_write(&d, "\xf5\x80\x80", 3, out));
  ASSERT_EQ(9, cnet_decoder_end(&d, out));
  ASSERT(9 <= CNET_DECODER_END_MAX);
}

/* ---- Part 2: differential runs against node ----------------------------
 */

#define DIFF_STREAMS 4000 /* per encoding */
#define DIFF_SHOWN 8      /* disagreements printed in full */

static uint64_t rng;

static void rng_seed(uint64_t salt) {
  const char *s = getenv("CNET_ENC_SEED");

  rng = (s != NULL && *s != '\0' ? strtoull(s, NULL, 10) : 20240611u) ^
        (salt * 0x9E3779B97F4A7C15ull);
  if (rng == 0)
    rng = 1;
}

static uint32_t rnd(void) { /* xorshift64* */
  rng ^= rng >> 12;
  rng ^= rng << 25;
  rng ^= rng >> 27;
  return (uint32_t)((rng * 0x2545F4914F6CDD1Dull) >> 32);
}

static uint32_t below(uint32_t n) {
  return rnd() % n;
}

static size_t put_utf8(unsigned char *p, uint32_t cp) {
  if (cp < 0x80) {
    p[0] = (unsigned char)cp;
    return 1;
  }
  if (cp < 0x800) {
    p[0] = (unsigned char)(0xC0 | cp >> 6);
    p[1] = (unsigned char)(0x80 | (cp & 0x3F));
    return 2;
  }
  if (cp < 0x10000) {
    p[0] = (unsigned char)(0xE0 | cp >> 12);
    p[1] = (unsigned char)(0x80 | ((cp >> 6) & 0x3F));
    p[2] = (unsigned char)(0x80 | (cp & 0x3F));
    return 3;
  }
  p[0] = (unsigned char)(0xF0 | cp >> 18);
  p[1] = (unsigned char)(0x80 | ((cp >> 12) & 0x3F));
  p[2] = (unsigned char)(0x80 | ((cp >> 6) & 0x3F));
  p[3] = (unsigned char)(0x80 | (cp & 0x3F));
  return 4;
}

static uint32_t random_code_point(void) {
  static const uint32_t edges[] = {0x80,   0x7FF,   0x800,    0xFFFF,
                                   0xFFFD, 0xFEFF,  0xD7FF,   0xE000,
                                   0xFFFE, 0x10000, 0x10FFFF, 0x1F600};
  uint32_t cp;

  switch (below(5)) {
  case 0:
    return edges[below(ARRAY_LEN(edges))];
  case 1:
    return 0x80 + below(0x800 - 0x80);
  case 2:
    do
      cp = 0x800 + below(0x10000 - 0x800);
    while (cp >= 0xD800 && cp <= 0xDFFF);
    return cp;
  case 3:
    return 0x10000 + below(0x110000 - 0x10000);
  default:
    return 0xA0 + below(0x200);
  }
}

/* Appends one piece of UTF-8-ish text at p (at most 8 bytes): mostly valid
 * characters, then cut ones, stray continuations, encoded surrogates,
 * overlong forms, bytes that never appear in UTF-8. */
static size_t utf8ish_piece(unsigned char *p) {
  unsigned char tmp[4];
  size_t n;
  uint32_t r = below(100);

  if (r < 30) {
    p[0] = (unsigned char)(0x20 + below(0x5F));
    return 1;
  }
  if (r < 68)
    return put_utf8(p, random_code_point());
  if (r < 76) { /* a character cut short */
    do
      n = put_utf8(tmp, random_code_point());
    while (n < 2);
    n = 1 + below((uint32_t)n - 1);
    memcpy(p, tmp, n);
    return n;
  }
  if (r < 81) { /* continuation bytes with no lead */
    n = 1 + below(3);
    for (size_t i = 0; i < n; i++)
      p[i] = (unsigned char)(0x80 + below(0x40));
    return n;
  }
  if (r < 85) { /* an encoded surrogate */
    p[0] = 0xED;
    p[1] = (unsigned char)(0xA0 + below(0x20));
    p[2] = (unsigned char)(0x80 + below(0x40));
    return 3;
  }
  if (r < 90) { /* overlong forms */
    switch (below(3)) {
    case 0:
      p[0] = (unsigned char)(0xC0 + below(2));
      p[1] = (unsigned char)(0x80 + below(0x40));
      return 2;
    case 1:
      p[0] = 0xE0;
      p[1] = (unsigned char)(0x80 + below(0x20));
      p[2] = (unsigned char)(0x80 + below(0x40));
      return 3;
    default:
      p[0] = 0xF0;
      p[1] = (unsigned char)(0x80 + below(0x10));
      p[2] = (unsigned char)(0x80 + below(0x40));
      p[3] = (unsigned char)(0x80 + below(0x40));
      return 4;
    }
  }
  if (r < 94) { /* past U+10FFFF, and leads that do not exist */
    if (below(2) == 0) {
      p[0] = 0xF4;
      p[1] = (unsigned char)(0x90 + below(0x30));
      p[2] = (unsigned char)(0x80 + below(0x40));
      p[3] = (unsigned char)(0x80 + below(0x40));
      return 4;
    }
    p[0] = (unsigned char)(0xF5 + below(11));
    return 1;
  }
  p[0] = (unsigned char)rnd();
  return 1;
}

/* One UTF-16LE piece: ASCII, BMP, pairs, lone high or low surrogates, and
 * now and then a single byte that shifts everything after it. */
static size_t utf16ish_piece(unsigned char *p) {
  uint32_t r = below(100), u, cp;

  if (r < 6) {
    p[0] = (unsigned char)rnd();
    return 1;
  }
  if (r < 30)
    u = 0x20 + below(0x5F);
  else if (r < 50)
    u = random_code_point() & 0xFFFF;
  else if (r < 70) {
    cp = 0x10000 + below(0x100000);
    u = 0xD800 + ((cp - 0x10000) >> 10);
    u = u | (uint32_t)(0xDC00 + ((cp - 0x10000) & 0x3FF)) << 16;
    memcpy(p,
           (unsigned char[]){(unsigned char)u, (unsigned char)(u >> 8),
                             (unsigned char)(u >> 16),
                             (unsigned char)(u >> 24)},
           4);
    return 4;
  } else if (r < 82)
    u = 0xD800 + below(0x400);
  else if (r < 94)
    u = 0xDC00 + below(0x400);
  else
    u = rnd() & 0xFFFF;
  p[0] = (unsigned char)u;
  p[1] = (unsigned char)(u >> 8);
  return 2;
}

/* A stream (or text) of up to max bytes for enc. */
static size_t random_stream(cnet_encoding_t e, unsigned char *p, size_t max) {
  size_t target, n = 0;

  /* mostly short, sometimes long */
  target = below(10) == 0 ? below((uint32_t)max - 8) : below(48);
  while (n < target) {
    switch (e) {
    case CNET_ENC_UTF8:
      n += utf8ish_piece(p + n);
      break;
    case CNET_ENC_UTF16LE:
      n += utf16ish_piece(p + n);
      break;
    default: /* every byte counts the same: half random, half text-like */
      if (below(2) == 0)
        p[n++] = (unsigned char)rnd();
      else
        n += utf8ish_piece(p + n);
      break;
    }
  }
  return n;
}

static int cmp_size(const void *a, const void *b) {
  size_t x = *(const size_t *)a, y = *(const size_t *)b;

  return x < y ? -1 : x > y;
}

/* Runs `node decoder-diff.js mode encoding <file holding input>` and
 * compares its answers (after a version line, one per line) with cnet's,
 * line for line; prints the first disagreements and a summary. Fails the
 * case if node is not configured or does not run cleanly. */
static void compare_with_node(const char *mode, const char *encoding,
                              const text_t *input, const text_t *mine,
                              size_t count) {
  const char *node = getenv("CNET_NODE");
  char what[64];
  text_t theirs;
  size_t bad;

  if (node == NULL || *node == '\0')
    FAIL("CNET_NODE is not set: the differential cases compare cnet with "
         "node (ctest sets it; by hand run with CNET_NODE=$(command -v node))");
  theirs = node_replay("decoder-diff.js", input, mode, encoding, NULL);
  snprintf(what, sizeof(what), "%s %s", mode, encoding);
  bad = node_diff_lines(what, "case", input, mine, &theirs, count, DIFF_SHOWN);
  printf("differential %-6s %-9s: %zu cases, %zu disagreements (node %.*s)\n",
         mode, encoding, count, bad, (int)strcspn(theirs.s, "\n"), theirs.s);
  text_free(&theirs);
  ASSERT_EQ(0, bad);
}

/* DIFF_STREAMS random streams cut at random points, through cnet and
 * through new StringDecoder(name). */
static void diff_decode(const char *name) {
  cnet_encoding_t e = cnet_encoding_from_name(name);
  text_t input = {0}, mine = {0};
  static unsigned char buf[4096 + 16];
  size_t cuts[8];

  rng_seed((uint64_t)e);
  for (int s = 0; s < DIFF_STREAMS; s++) {
    size_t len = random_stream(e, buf, 4096);
    size_t ncuts = below(ARRAY_LEN(cuts) + 1), start = 0;

    /* near the ends of characters is where it matters: cut anywhere */
    for (size_t c = 0; c < ncuts; c++)
      cuts[c] = below((uint32_t)len + 1);
    qsort(cuts, ncuts, sizeof(cuts[0]), cmp_size);
    for (size_t c = 0; c <= ncuts; c++) {
      size_t stop = c < ncuts ? cuts[c] : len;

      text_hex(&input, buf + start, stop - start);
      text_char(&input, c < ncuts ? ',' : '\n');
      start = stop;
    }
    decode_stream(&mine, e, buf, cuts, ncuts, len);
    text_char(&mine, '\n');
  }
  compare_with_node("decode", name, &input, &mine, DIFF_STREAMS);
  text_free(&input);
  text_free(&mine);
}

/* Text meant for hex or base64: mostly the alphabet, with the things Node
 * treats specially mixed in. Code points whose low byte is in the alphabet
 * (U+0130 '0', U+0141 'A', U+0161 'a', U+012B '+', U+013D '=', U+015F '_')
 * and U+1F600 (whose first code unit reads as '=') test the uint8_t cast. */
static size_t alphabet_text(unsigned char *p, size_t max, bool hex) {
  static const char hexabc[] = "0123456789abcdefABCDEF";
  static const char b64abc[] =
      "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/-_";
  static const uint32_t tricky[] = {0x130, 0x131, 0x141,   0x161,   0x12B,
                                    0x13D, 0x15F, 0x1F600, 0x1F630, 0xE9,
                                    0x2F,  0x166, 0x3D};
  size_t target = below(10) == 0 ? below((uint32_t)max - 8) : below(64);
  size_t n = 0;

  while (n < target) {
    uint32_t r = below(1000);

    if (hex ? r < 960 : r < 880) {
      p[n++] = (unsigned char)(hex ? hexabc[below(sizeof(hexabc) - 1)]
                                   : b64abc[below(sizeof(b64abc) - 1)]);
    } else if (r < (hex ? 975u : 920u)) {
      n += put_utf8(p + n, tricky[below(ARRAY_LEN(tricky))]);
    } else if (r < (hex ? 985u : 960u)) {
      static const char junk[] = " \t\r\n.!*=gxz\x7f";

      p[n++] = (unsigned char)junk[below(sizeof(junk) - 1)];
    } else if (r < 990) {
      if (!hex && below(2) == 0) { /* padding in the middle, or at the end */
        p[n++] = '=';
        if (below(2) == 0)
          p[n++] = '=';
      } else {
        n += utf8ish_piece(p + n);
      }
    } else {
      n += utf8ish_piece(p + n);
    }
  }
  if (!hex && below(4) == 0) {
    p[n++] = '=';
    if (below(2) == 0)
      p[n++] = '=';
  }
  return n;
}

/* DIFF_STREAMS random texts through cnet_encode and Buffer.from(text, name).
 * For hex and base64 half of them are made of the alphabet. Some are long
 * (up to 6000 bytes): Buffer.from takes another path past 4 KiB. */
static void diff_encode(const char *name) {
  cnet_encoding_t e = cnet_encoding_from_name(name);
  text_t input = {0}, mine = {0};
  static unsigned char buf[6000 + 16];

  rng_seed(0x100 + (uint64_t)e);
  for (int s = 0; s < DIFF_STREAMS; s++) {
    size_t len;

    if ((e == CNET_ENC_HEX || e == CNET_ENC_BASE64 ||
         e == CNET_ENC_BASE64URL) &&
        below(2) == 0)
      len = alphabet_text(buf, 6000, e == CNET_ENC_HEX);
    else
      len = random_stream(CNET_ENC_UTF8, buf, 6000);
    text_hex(&input, buf, len);
    text_char(&input, '\n');
    encode_text(&mine, e, buf, len);
    text_char(&mine, '\n');
  }
  compare_with_node("encode", name, &input, &mine, DIFF_STREAMS);
  text_free(&input);
  text_free(&mine);
}

TEST_CASE(diff_decode_utf8) {
  diff_decode("utf8");
}

TEST_CASE(diff_decode_utf16le) {
  diff_decode("utf16le");
}

TEST_CASE(diff_decode_latin1) {
  diff_decode("latin1");
}

TEST_CASE(diff_decode_ascii) {
  diff_decode("ascii");
}

TEST_CASE(diff_decode_base64) {
  diff_decode("base64");
}

TEST_CASE(diff_decode_base64url) {
  diff_decode("base64url");
}

TEST_CASE(diff_decode_hex) {
  diff_decode("hex");
}

TEST_CASE(diff_encode_utf8) {
  diff_encode("utf8");
}

TEST_CASE(diff_encode_utf16le) {
  diff_encode("utf16le");
}

TEST_CASE(diff_encode_latin1) {
  diff_encode("latin1");
}

TEST_CASE(diff_encode_ascii) {
  diff_encode("ascii");
}

TEST_CASE(diff_encode_base64) {
  diff_encode("base64");
}

TEST_CASE(diff_encode_base64url) {
  diff_encode("base64url");
}

TEST_CASE(diff_encode_hex) {
  diff_encode("hex");
}

/* Names: every alias in random letter case, and near misses. */
TEST_CASE(diff_encoding_names) {
  static const char *const base[] = {
      "utf8",     "utf-8",  "ucs2",   "ucs-2",   "utf16le",
      "utf-16le", "latin1", "binary", "base64",  "base64url",
      "hex",      "ascii",  "utf16",  "utf-16",  "latin-1",
      "base-64",  "utf32",  "ucs4",   "utf16be", "",
      "raw",      "buffer", "b64",    "hexx",    "asci"};
  static const char *const odd[] = {
      "\xc4\xb0", "\xe2\x84\xaa", " ", "-", "\xc3\xa9", "8", "_"};
  text_t input = {0}, mine = {0};
  enum { NAMES = 3000 };

  rng_seed(0x200);
  for (int i = 0; i < NAMES; i++) {
    char name[64];
    size_t n = 0;
    const char *b = base[below(ARRAY_LEN(base))];
    cnet_decoder_t d;

    for (; *b != '\0'; b++) {
      char c = *b;

      if (c >= 'a' && c <= 'z' && below(2) == 0)
        c = (char)(c - 'a' + 'A');
      name[n++] = c;
    }
    if (below(5) == 0) { /* a near miss: something added or dropped */
      const char *o = odd[below(ARRAY_LEN(odd))];
      size_t at = below((uint32_t)n + 1), ol = strlen(o);

      if (n > 0 && below(2) == 0) {
        memmove(name + at, name + at + 1, n - at);
        n -= at < n ? 1 : 0;
      } else {
        memmove(name + at + ol, name + at, n - at);
        memcpy(name + at, o, ol);
        n += ol;
      }
    }
    name[n] = '\0';
    text_hex(&input, name, n);
    text_char(&input, '\n');
    if (cnet_decoder_init(&d, name) == 0) {
      text_put(&mine, cnet_encoding_name(d.encoding),
               strlen(cnet_encoding_name(d.encoding)));
    } else {
      text_char(&mine, '!');
      text_put(&mine, cnet_last_error()->code, strlen(cnet_last_error()->code));
      text_char(&mine, ' ');
      text_put(&mine, cnet_last_error()->message,
               strlen(cnet_last_error()->message));
    }
    text_char(&mine, '\n');
  }
  compare_with_node("names", "-", &input, &mine, NAMES);
  text_free(&input);
  text_free(&mine);
}
