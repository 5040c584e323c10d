/* Node's encodings: normalizeEncoding(), string_decoder and the string half
 * of Buffer.from(string, encoding), with Node v20's exact results.
 *
 * Text on the C side is UTF-8, so every result here is "what Node's string
 * would look like as UTF-8" (Buffer.from(str, 'utf8')): a lone surrogate in
 * a JS string becomes U+FFFD, a pair becomes one 4-byte character.
 *
 * The decoder is a transcription of src/string_decoder.cc (DecodeData and
 * FlushData): the same state (up to four kept bytes, how many are missing),
 * the same decisions about which bytes to keep, and each piece turned into
 * a string on its own, as MakeString() does. That last point is what makes
 * the output exact: the kept bytes of a cut character and the body of a
 * chunk are decoded separately and then concatenated as JS strings. For
 * UTF-8 that changes nothing visible (V8's decoder never yields a lone
 * surrogate), for utf16le it matters: a high surrogate at the end of the
 * completed piece and a low one at the start of the body make one pair, and
 * whatever is left unpaired when write() returns is a lone surrogate in
 * that write's string.
 *
 * V8 decodes UTF-8 the WHATWG way: the longest prefix of a valid sequence
 * (a "maximal subpart") becomes one U+FFFD, and the byte that broke it is
 * decoded again as the start of something new.
 *
 * Buffer.from(string, 'hex' | 'base64') reads each UTF-16 code unit through
 * static_cast<uint8_t>, so U+0141 counts as 'A' and the second half of a
 * surrogate pair as whatever its low byte is; decoding stops at '=' for
 * base64. Both quirks are reproduced on purpose.
 *
 * Nothing here allocates: every function writes into the caller's buffer,
 * sized by the _max_length functions.
 */
#include "internal.h"

#include <stdint.h>

#define REPLACEMENT 0xFFFDu

/* ---- names --------------------------------------------------------------- */

static const char *const names[] = {
    [CNET_ENC_UTF8] = "utf8",     [CNET_ENC_UTF16LE] = "utf16le",
    [CNET_ENC_LATIN1] = "latin1", [CNET_ENC_ASCII] = "ascii",
    [CNET_ENC_BASE64] = "base64", [CNET_ENC_BASE64URL] = "base64url",
    [CNET_ENC_HEX] = "hex",
};

static const struct {
  const char *name;
  cnet_encoding_t enc;
} aliases[] = {
    {"utf8", CNET_ENC_UTF8},       {"utf-8", CNET_ENC_UTF8},
    {"ucs2", CNET_ENC_UTF16LE},    {"ucs-2", CNET_ENC_UTF16LE},
    {"utf16le", CNET_ENC_UTF16LE}, {"utf-16le", CNET_ENC_UTF16LE},
    {"latin1", CNET_ENC_LATIN1},   {"binary", CNET_ENC_LATIN1},
    {"base64", CNET_ENC_BASE64},   {"base64url", CNET_ENC_BASE64URL},
    {"hex", CNET_ENC_HEX},         {"ascii", CNET_ENC_ASCII},
};

static unsigned char ascii_lower(unsigned char c) {
  return c >= 'A' && c <= 'Z' ? (unsigned char)(c + ('a' - 'A')) : c;
}

/* Node lower-cases with String.prototype.toLowerCase(). No non-ASCII
 * character lower-cases to a letter used in these names (U+212A, the
 * Kelvin sign, becomes 'k', which none of them has), so ASCII folding on
 * bytes gives the same answers. */
static bool name_equal(const char *a, const char *b) {
  for (; *a != '\0' && *b != '\0'; a++, b++) {
    if (ascii_lower((unsigned char)*a) != (unsigned char)*b)
      return false;
  }
  return *a == '\0' && *b == '\0';
}

cnet_encoding_t cnet_encoding_from_name(const char *name) {
  if (name == NULL || name[0] == '\0')
    return CNET_ENC_UTF8;
  for (size_t i = 0; i < ARRAY_SIZE(aliases); i++) {
    if (name_equal(name, aliases[i].name))
      return aliases[i].enc;
  }
  return CNET_ENC_UNKNOWN;
}

const char *cnet_encoding_name(cnet_encoding_t enc) {
  if ((unsigned)enc >= ARRAY_SIZE(names))
    return NULL;
  return names[enc]; /* NULL for CNET_ENC_UNKNOWN */
}

/* ---- output: code points and UTF-16 code units as UTF-8 -------------------
 *
 * A sink collects one JS string as UTF-8. `high` holds a high surrogate
 * until the next code unit shows whether it is half of a pair. */

typedef struct {
  char *out;
  size_t len;
  unsigned high; /* 0, or a pending 0xD800..0xDBFF */
} sink_t;

static void put_byte(sink_t *s, unsigned b) {
  s->out[s->len++] = (char)b;
}

static void put_code_point(sink_t *s, uint32_t cp) {
  if (cp < 0x80) {
    put_byte(s, cp);
  } else if (cp < 0x800) {
    put_byte(s, 0xC0 | (cp >> 6));
    put_byte(s, 0x80 | (cp & 0x3F));
  } else if (cp < 0x10000) {
    put_byte(s, 0xE0 | (cp >> 12));
    put_byte(s, 0x80 | ((cp >> 6) & 0x3F));
    put_byte(s, 0x80 | (cp & 0x3F));
  } else {
    put_byte(s, 0xF0 | (cp >> 18));
    put_byte(s, 0x80 | ((cp >> 12) & 0x3F));
    put_byte(s, 0x80 | ((cp >> 6) & 0x3F));
    put_byte(s, 0x80 | (cp & 0x3F));
  }
}

static void put_unit(sink_t *s, unsigned u) {
  if (s->high != 0) {
    unsigned high = s->high;

    s->high = 0;
    if (u >= 0xDC00 && u <= 0xDFFF) {
      put_code_point(s, 0x10000 + ((high - 0xD800) << 10) + (u - 0xDC00));
      return;
    }
    put_code_point(s, REPLACEMENT); /* a lone high surrogate */
  }
  if (u >= 0xD800 && u <= 0xDBFF)
    s->high = u;
  else if (u >= 0xDC00 && u <= 0xDFFF)
    put_code_point(s, REPLACEMENT); /* a lone low surrogate */
  else
    put_code_point(s, u);
}

/* The string is complete: an unpaired high surrogate is lone. */
static size_t sink_finish(sink_t *s) {
  if (s->high != 0) {
    s->high = 0;
    put_code_point(s, REPLACEMENT);
  }
  return s->len;
}

/* ---- UTF-8 in, as V8 reads it -------------------------------------------- */

/* The code point at s[*pos], advancing *pos. An ill-formed sequence gives
 * U+FFFD for its maximal subpart (at least one byte), leaving the byte that
 * broke it for the next call: V8's Utf8Decoder, the WHATWG algorithm. */
static uint32_t next_code_point(const unsigned char *s, size_t len,
                                size_t *pos) {
  size_t i = *pos;
  unsigned c = s[i++];
  unsigned need, lo = 0x80, hi = 0xBF;
  uint32_t cp;

  if (c < 0x80) {
    *pos = i;
    return c;
  }
  if (c >= 0xC2 && c <= 0xDF) {
    need = 1;
    cp = c & 0x1F;
  } else if (c >= 0xE0 && c <= 0xEF) {
    need = 2;
    cp = c & 0x0F;
    if (c == 0xE0)
      lo = 0xA0; /* no overlong forms */
    else if (c == 0xED)
      hi = 0x9F; /* no surrogates */
  } else if (c >= 0xF0 && c <= 0xF4) {
    need = 3;
    cp = c & 0x07;
    if (c == 0xF0)
      lo = 0x90;
    else if (c == 0xF4)
      hi = 0x8F; /* nothing past U+10FFFF */
  } else {
    *pos = i; /* 80..C1, F5..FF never start a character */
    return REPLACEMENT;
  }
  for (; need > 0; need--) {
    if (i == len || s[i] < lo || s[i] > hi) {
      *pos = i;
      return REPLACEMENT;
    }
    cp = (cp << 6) | (s[i++] & 0x3F);
    lo = 0x80;
    hi = 0xBF;
  }
  *pos = i;
  return cp;
}

/* ---- MakeString: bytes to a string, one encoding ---------------------------
 */

static const char b64_chars[] =
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
static const char b64url_chars[] =
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
static const char hex_chars[] = "0123456789abcdef";

/* base64 with '=' padding; base64url without, as Node prints them. */
static void put_base64(sink_t *s, const unsigned char *p, size_t n, bool url) {
  const char *abc = url ? b64url_chars : b64_chars;
  size_t i = 0;

  for (; i + 3 <= n; i += 3) {
    uint32_t v = (uint32_t)p[i] << 16 | (uint32_t)p[i + 1] << 8 | p[i + 2];

    put_byte(s, (unsigned char)abc[v >> 18]);
    put_byte(s, (unsigned char)abc[(v >> 12) & 0x3F]);
    put_byte(s, (unsigned char)abc[(v >> 6) & 0x3F]);
    put_byte(s, (unsigned char)abc[v & 0x3F]);
  }
  if (n - i == 1) {
    put_byte(s, (unsigned char)abc[p[i] >> 2]);
    put_byte(s, (unsigned char)abc[(p[i] & 0x03) << 4]);
    if (!url) {
      put_byte(s, '=');
      put_byte(s, '=');
    }
  } else if (n - i == 2) {
    put_byte(s, (unsigned char)abc[p[i] >> 2]);
    put_byte(s, (unsigned char)abc[(p[i] & 0x03) << 4 | p[i + 1] >> 4]);
    put_byte(s, (unsigned char)abc[(p[i + 1] & 0x0F) << 2]);
    if (!url)
      put_byte(s, '=');
  }
}

static void make_string(sink_t *s, cnet_encoding_t enc, const unsigned char *p,
                        size_t n) {
  size_t i = 0;

  switch (enc) {
  case CNET_ENC_UTF16LE:
    for (; i + 2 <= n; i += 2) /* an odd last byte is dropped, as V8 does */
      put_unit(s, (unsigned)p[i] | (unsigned)p[i + 1] << 8);
    break;
  case CNET_ENC_LATIN1:
    for (; i < n; i++)
      put_code_point(s, p[i]);
    break;
  case CNET_ENC_ASCII:
    for (; i < n; i++) /* Node clears the high bit */
      put_byte(s, p[i] & 0x7F);
    break;
  case CNET_ENC_HEX:
    for (; i < n; i++) {
      put_byte(s, (unsigned char)hex_chars[p[i] >> 4]);
      put_byte(s, (unsigned char)hex_chars[p[i] & 0x0F]);
    }
    break;
  case CNET_ENC_BASE64:
  case CNET_ENC_BASE64URL:
    put_base64(s, p, n, enc == CNET_ENC_BASE64URL);
    break;
  case CNET_ENC_UTF8:
  case CNET_ENC_UNKNOWN:
  default:
    while (i < n)
      put_code_point(s, next_code_point(p, n, &i));
    break;
  }
}

/* ---- the decoder: string_decoder.cc --------------------------------------
 *
 * d->pending / d->pending_len / d->need are Node's kIncompleteCharacters,
 * kBufferedBytes and kMissingBytes. */

/* CNET_ENC_UNKNOWN (and anything that is not an encoding) means utf8, Node's
 * default: a zeroed decoder is new StringDecoder(). */
static cnet_encoding_t known(cnet_encoding_t enc) {
  return enc > CNET_ENC_UNKNOWN && enc <= CNET_ENC_HEX ? enc : CNET_ENC_UTF8;
}

static cnet_encoding_t decoder_encoding(const cnet_decoder_t *d) {
  return known(d->encoding);
}

int cnet_decoder_init(cnet_decoder_t *d, const char *encoding) {
  cnet_encoding_t enc = cnet_encoding_from_name(encoding);

  if (d == NULL)
    return cnet__fail(UV_EINVAL);
  memset(d, 0, sizeof(*d));
  if (enc == CNET_ENC_UNKNOWN)
    return cnet__fail(CNET_ERR_UNKNOWN_ENCODING, encoding);
  d->encoding = enc;
  return 0;
}

/* n * k + c, or SIZE_MAX if that does not fit. */
static size_t size_mul_add(size_t n, size_t k, size_t c) {
  if (n > (SIZE_MAX - c) / k)
    return SIZE_MAX;
  return n * k + c;
}

size_t cnet_decoder_max_length(const cnet_decoder_t *d, size_t len) {
  size_t kept;

  if (d == NULL)
    return 0;
  kept = d->pending_len;

  if (len > SIZE_MAX - kept)
    return SIZE_MAX;
  switch (decoder_encoding(d)) {
  case CNET_ENC_UTF16LE:
    /* one code unit per two bytes, at most 3 bytes of UTF-8 each (a pair:
     * 4 bytes for 4) */
    return size_mul_add((len + kept) / 2, 3, 0);
  case CNET_ENC_LATIN1:
  case CNET_ENC_HEX:
    return size_mul_add(len, 2, 0);
  case CNET_ENC_ASCII:
    return len;
  case CNET_ENC_BASE64:
  case CNET_ENC_BASE64URL:
    return size_mul_add((len + kept) / 3, 4, 0); /* whole groups only */
  case CNET_ENC_UTF8:
  case CNET_ENC_UNKNOWN:
  default:
    return size_mul_add(len + kept, 3, 0); /* U+FFFD for every byte */
  }
}

size_t cnet_decoder_write(cnet_decoder_t *d, const void *in, size_t len,
                          char *out) {
  const unsigned char *data = in;
  cnet_encoding_t enc;
  sink_t s = {out, 0, 0};

  if (d == NULL || out == NULL || (in == NULL && len != 0))
    return 0; /* nothing to decode from or into: nothing done */
  enc = decoder_encoding(d);

  if (enc == CNET_ENC_LATIN1 || enc == CNET_ENC_ASCII || enc == CNET_ENC_HEX) {
    make_string(&s, enc, data, len); /* nothing is ever kept */
    return s.len;
  }

  /* Finish the character the previous chunk cut. */
  if (d->need > 0) {
    size_t found;

    assert(d->pending_len + d->need <= sizeof(d->pending));
    if (enc == CNET_ENC_UTF8) {
      /* Node's rule, to agree with V8: a byte that is not a continuation
       * ends the cut character early (the bytes before it still belong to
       * it) and starts the body. */
      for (size_t i = 0; i < len && i < d->need; i++) {
        if ((data[i] & 0xC0) != 0x80) {
          d->need = 0;
          memcpy(d->pending + d->pending_len, data, i);
          d->pending_len = (uint8_t)(d->pending_len + i);
          data += i;
          len -= i;
          break;
        }
      }
    }
    found = len < d->need ? len : d->need;
    if (found > 0)
      memcpy(d->pending + d->pending_len, data, found);
    data += found;
    len -= found;
    d->need = (uint8_t)(d->need - found);
    d->pending_len = (uint8_t)(d->pending_len + found);
    if (d->need == 0) {
      make_string(&s, enc, d->pending, d->pending_len);
      d->pending_len = 0;
    }
  }
  if (len == 0)
    return sink_finish(&s);

  /* Keep the start of a character this chunk cuts. */
  assert(d->need == 0 && d->pending_len == 0);
  if (enc == CNET_ENC_UTF8 && (data[len - 1] & 0x80)) {
    unsigned kept = 0, need = 0;

    for (size_t i = len - 1;; i--) {
      kept++;
      if ((data[i] & 0xC0) == 0x80) {
        /* a continuation byte: its lead is further back, or nowhere */
        if (kept >= 4 || i == 0) {
          kept = 0;
          break;
        }
        continue;
      }
      if ((data[i] & 0xE0) == 0xC0)
        need = 2;
      else if ((data[i] & 0xF0) == 0xE0)
        need = 3;
      else if ((data[i] & 0xF8) == 0xF0)
        need = 4; /* F5..F7 too: V8 rejects them later */
      else
        kept = 0; /* ASCII or F8..FF: nothing to wait for */
      if (kept >= need)
        kept = need = 0; /* complete, or too long to ever be valid */
      else
        need -= kept;
      break;
    }
    d->pending_len = (uint8_t)kept;
    d->need = (uint8_t)need;
  } else if (enc == CNET_ENC_UTF16LE) {
    if (len % 2 == 1) {
      d->pending_len = 1; /* half a code unit */
      d->need = 1;
    } else if ((data[len - 1] & 0xFC) == 0xD8) {
      d->pending_len = 2; /* a high surrogate: wait for its pair */
      d->need = 2;
    }
  } else if (enc == CNET_ENC_BASE64 || enc == CNET_ENC_BASE64URL) {
    d->pending_len = (uint8_t)(len % 3);
    if (d->pending_len > 0)
      d->need = (uint8_t)(3 - d->pending_len);
  }
  if (d->pending_len > 0) {
    len -= d->pending_len;
    memcpy(d->pending, data + len, d->pending_len);
  }
  if (len > 0)
    make_string(&s, enc, data, len);
  return sink_finish(&s);
}

size_t cnet_decoder_end(cnet_decoder_t *d, char *out) {
  cnet_encoding_t enc;
  sink_t s = {out, 0, 0};

  if (d == NULL || out == NULL)
    return 0; /* what is kept stays kept */
  enc = decoder_encoding(d);

  /* utf16le ignores an odd last byte (the first bytes of a pair may still
   * make a lone high surrogate). */
  if (enc == CNET_ENC_UTF16LE && d->pending_len % 2 == 1)
    d->pending_len--;
  if (d->pending_len > 0)
    make_string(&s, enc, d->pending, d->pending_len);
  d->pending_len = 0;
  d->need = 0;
  return sink_finish(&s);
}

/* ---- Buffer.from(string, encoding) ------------------------------------- */

size_t cnet_encode_max_length(cnet_encoding_t enc, size_t len) {
  /* A JS string from len bytes of UTF-8 has at most len code units. */
  switch (known(enc)) {
  case CNET_ENC_UTF16LE:
    return size_mul_add(len, 2, 0);
  case CNET_ENC_LATIN1:
  case CNET_ENC_ASCII:
    return len;
  case CNET_ENC_HEX:
    return len / 2;
  case CNET_ENC_BASE64:
  case CNET_ENC_BASE64URL:
    return len / 4 * 3 + 2; /* 3 bytes per 4 characters */
  case CNET_ENC_UTF8:
  case CNET_ENC_UNKNOWN:
  default:
    return size_mul_add(len, 3, 0); /* U+FFFD for every byte */
  }
}

/* Walks the JS string that text[0..len) decodes to, one UTF-16 code unit at
 * a time. */
typedef struct {
  const unsigned char *text;
  size_t len, pos;
  unsigned low; /* the second half of a pair, still to come */
} units_t;

static bool next_unit(units_t *it, unsigned *u) {
  uint32_t cp;

  if (it->low != 0) {
    *u = it->low;
    it->low = 0;
    return true;
  }
  if (it->pos == it->len)
    return false;
  cp = next_code_point(it->text, it->len, &it->pos);
  if (cp >= 0x10000) {
    *u = 0xD800 + ((cp - 0x10000) >> 10);
    it->low = 0xDC00 + ((cp - 0x10000) & 0x3FF);
  } else {
    *u = cp;
  }
  return true;
}

static int unhex(unsigned c) {
  if (c >= '0' && c <= '9')
    return (int)(c - '0');
  if (c >= 'a' && c <= 'f')
    return (int)(c - 'a' + 10);
  if (c >= 'A' && c <= 'F')
    return (int)(c - 'A' + 10);
  return -1;
}

/* Node's base64 alphabet for decoding: both '+' '/' and '-' '_'. */
static int unbase64(unsigned c) {
  if (c >= 'A' && c <= 'Z')
    return (int)(c - 'A');
  if (c >= 'a' && c <= 'z')
    return (int)(c - 'a' + 26);
  if (c >= '0' && c <= '9')
    return (int)(c - '0' + 52);
  if (c == '+' || c == '-')
    return 62;
  if (c == '/' || c == '_')
    return 63;
  return -1;
}

size_t cnet_encode(cnet_encoding_t enc, const char *text, size_t len,
                   void *out) {
  units_t it = {(const unsigned char *)text, len, 0, 0};
  unsigned char *o = out;
  size_t n = 0;
  unsigned u;

  if (out == NULL || (text == NULL && len != 0))
    return 0; /* nothing to encode from or into: nothing written */

  switch (known(enc)) {
  case CNET_ENC_UTF16LE:
    while (next_unit(&it, &u)) {
      o[n++] = (unsigned char)(u & 0xFF);
      o[n++] = (unsigned char)(u >> 8);
    }
    return n;
  case CNET_ENC_LATIN1:
  case CNET_ENC_ASCII:
    while (next_unit(&it, &u)) /* V8's WriteOneByte: the low byte */
      o[n++] = (unsigned char)(u & 0xFF);
    return n;
  case CNET_ENC_HEX: {
    /* Pairs until the first one that is not two hex digits; an odd last
     * digit is dropped. Each code unit is cast to uint8_t first. */
    int high = -1, v;

    while (next_unit(&it, &u)) {
      if ((v = unhex(u & 0xFF)) < 0)
        break;
      if (high < 0) {
        high = v;
      } else {
        o[n++] = (unsigned char)(high << 4 | v);
        high = -1;
      }
    }
    return n;
  }
  case CNET_ENC_BASE64:
  case CNET_ENC_BASE64URL: {
    /* Node's base64_decode: characters outside both alphabets are skipped,
     * '=' ends the data wherever it is, and a group of 2 or 3 characters
     * at the end still gives 1 or 2 bytes. */
    unsigned group = 0, have = 0;
    int v;

    while (next_unit(&it, &u)) {
      unsigned c = u & 0xFF; /* static_cast<uint8_t> of the code unit */

      if ((v = unbase64(c)) < 0) {
        if (c == '=')
          break;
        continue;
      }
      group = group << 6 | (unsigned)v;
      have++;
      if (have == 2)
        o[n++] = (unsigned char)(group >> 4);
      else if (have == 3)
        o[n++] = (unsigned char)(group >> 2);
      else if (have == 4) {
        o[n++] = (unsigned char)group;
        group = have = 0;
      }
    }
    return n;
  }
  case CNET_ENC_UTF8:
  case CNET_ENC_UNKNOWN:
  default: {
    sink_t s = {out, 0, 0};

    while (it.pos < len)
      put_code_point(&s, next_code_point(it.text, len, &it.pos));
    return s.len;
  }
  }
}
