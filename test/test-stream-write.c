/* The writable side of a socket as a stream: write_string in every encoding,
 * bytesWritten / writableLength, callbacks, cork/uncork, end(), write after
 * end / destroy / the peer's FIN, destroy and resetAndDestroy, allowHalfOpen
 * and readyState, and pipe under a slow reader (NODE-NET-BEHAVIOURS 1.16-1.20
 * and 7; docs/decisions.md 5, 9, 20, 21).
 *
 * What test-socket.c and test-lifetime.c already cover is not repeated here.
 * Expected bytes and orders come from Node v20.20.2 running the same
 * scenarios; each case quotes what Node did. Where cnet differs on purpose
 * (cnet.h, README, decisions.md) the case checks cnet's documented
 * behaviour and says so; where it differs without saying so, the case
 * checks Node's behaviour. */
#include "harness.h"

#define ONE_CONNECTION_ERROR_CODES 1
#define ONE_CONNECTION_UNHANDLED_FAILS 1
#include "one-connection.h"

/* A write callback that records "cb:OK" or "cb:<code>" in CT and, for the
 * Node errors, checks Node's exact message. */
static void trace_cb(cnet_socket_t *s, const cnet_error_t *err, void *ctx) {
  char w[160];

  (void)s;
  snprintf(w, sizeof(w), "%s%scb:%s", ctx ? (const char *)ctx : "",
           ctx ? "-" : "", err ? err->code : "OK");
  trace_add(&CT, w);
  if (err == NULL)
    return;
  if (err->errnum == CNET_ERR_STREAM_DESTROYED)
    ASSERT_STR_EQ(err->message,
                  "Cannot call write after a stream was destroyed");
  if (err->errnum == CNET_ERR_STREAM_WRITE_AFTER_END)
    ASSERT_STR_EQ(err->message, "write after end");
  if (err->errnum == CNET_ERR_SOCKET_CLOSED_BEFORE_CONNECTION)
    ASSERT_STR_EQ(err->message,
                  "Socket closed before the connection was established");
}

static unsigned char pat(size_t i) {
  return (unsigned char)(i ^ (i >> 8) ^ (i >> 16) ^ (i >> 24));
}

/* ---- WR-05, WR-10: write_string in every encoding ------------------------ */

/* Buffer.from(str, enc) in Node v20.20.2 (test/node: node -e
 * 'console.log(Buffer.from(str, enc))'); a net.Socket writing the same
 * strings sends exactly these 53 bytes, bytesWritten 14 24 28 32 43 47 53. */
static const struct {
  const char *enc;
  const char *str;
  size_t len;
  const char *bytes;
} ENCODED[] = {
    {"utf8", "h\xc3\xa9llo \xe2\x82\xac\xf0\x9d\x84\x9e", 14,
     "\x68\xc3\xa9\x6c\x6c\x6f\x20\xe2\x82\xac\xf0\x9d\x84\x9e"},
    {"utf16le", "h\xc3\xa9\xe2\x82\xac\xf0\x9d\x84\x9e", 10,
     "\x68\x00\xe9\x00\xac\x20\x34\xd8\x1e\xdd"},
    {"latin1", "h\xc3\xa9\xe2\x82\xac\xc3\xbf", 4, "\x68\xe9\xac\xff"},
    {"ascii", "h\xc3\xa9\xe2\x82\xac\xc3\xbf", 4, "\x68\xe9\xac\xff"},
    {"base64", "aGVsbG8gd29ybGQ=", 11, "hello world"},
    {"base64url", "aGk_-w", 4, "\x68\x69\x3f\xfb"},
    {"hex", "deadBEEF00ff", 6, "\xde\xad\xbe\xef\x00\xff"},
};

static int enc_cbs;

static void enc_cb(cnet_socket_t *s, const cnet_error_t *err, void *ctx) {
  (void)s;
  ASSERT_NULL(err);
  ASSERT_EQ(enc_cbs, (intptr_t)ctx);
  enc_cbs++;
}

static void write_every_encoding(cnet_socket_t *s, const cnet_event_t *ev,
                                 void *ctx) {
  uint64_t total = 0;

  (void)ev;
  (void)ctx;
  for (size_t i = 0; i < ARRAY_LEN(ENCODED); i++) {
    ASSERT_EQ(1, cnet_socket_write_string(s, ENCODED[i].str, ENCODED[i].enc,
                                          enc_cb, (void *)(intptr_t)i));
    total += ENCODED[i].len;
    ASSERT_EQ(total, cnet_socket_bytes_written(s)); /* encoded bytes */
  }
  ASSERT_EQ(0, enc_cbs); /* never inside the call */
  ASSERT_EQ(0, cnet_socket_end(s, NULL, 0, NULL, NULL));
}

TEST_CASE(wr10_write_string_every_encoding_is_buffer_from) {
  uv_loop_t *loop = loop_new();
  size_t off = 0;

  reset();
  enc_cbs = 0;
  connect_client(loop, start_server(loop, NULL), write_every_encoding, NULL);
  run_bounded(loop, 3000);
  ASSERT_EQ((int)ARRAY_LEN(ENCODED), enc_cbs);
  ASSERT_EQ(53, S.rx.len);
  for (size_t i = 0; i < ARRAY_LEN(ENCODED); i++) {
    ASSERT_MEM_EQ(S.rx.buf + off, ENCODED[i].bytes, ENCODED[i].len);
    off += ENCODED[i].len;
  }
  ASSERT_STR_EQ(CT.buf, "connect ready finish end close(false)");
  ASSERT_STR_EQ(ST.buf, "connection data end finish close(false)");
  finish(loop);
}

/* Node's other names for the same encodings, and NULL for utf8. */
static void write_aliases(cnet_socket_t *s, const cnet_event_t *ev, void *ctx) {
  (void)ev;
  (void)ctx;
  ASSERT_EQ(1, cnet_socket_write_string(s, "\xc3\xa9", NULL, NULL, NULL));
  ASSERT_EQ(1, cnet_socket_write_string(s, "\xc3\xa9", "UTF-8", NULL, NULL));
  ASSERT_EQ(1, cnet_socket_write_string(s, "\xc3\xa9", "ucs2", NULL, NULL));
  ASSERT_EQ(1, cnet_socket_write_string(s, "\xc3\xa9", "UTF-16LE", NULL, NULL));
  ASSERT_EQ(1, cnet_socket_write_string(s, "\xc3\xa9", "binary", NULL, NULL));
  ASSERT_EQ(1, cnet_socket_write_string(s, "0A", "HEX", NULL, NULL));
  ASSERT_EQ(1, cnet_socket_write_string(s, "", "utf8", NULL, NULL));
  ASSERT_EQ(10, cnet_socket_bytes_written(s));
  ASSERT_EQ(0, cnet_socket_end(s, NULL, 0, NULL, NULL));
}

TEST_CASE(wr10_write_string_encoding_aliases) {
  uv_loop_t *loop = loop_new();

  reset();
  connect_client(loop, start_server(loop, NULL), write_aliases, NULL);
  run_bounded(loop, 3000);
  ASSERT_EQ(10, S.rx.len);
  ASSERT_MEM_EQ(S.rx.buf, "\xc3\xa9\xc3\xa9\xe9\x00\xe9\x00\xe9\x0a", 10);
  finish(loop);
}

/* ---- unknown encoding: refused at once, nothing written ------------------ */

static void write_unknown_encoding(cnet_socket_t *s, const cnet_event_t *ev,
                                   void *ctx) {
  const cnet_error_t *e;

  (void)ev;
  (void)ctx;
  ASSERT_EQ(CNET_ERR_UNKNOWN_ENCODING,
            cnet_socket_write_string(s, "abc", "utf-7", trace_cb, NULL));
  e = cnet_last_error();
  ASSERT_EQ(CNET_ERR_UNKNOWN_ENCODING, e->errnum);
  ASSERT_STR_EQ(e->code, "ERR_UNKNOWN_ENCODING");
  ASSERT_STR_EQ(e->message, "Unknown encoding: utf-7");
  ASSERT_EQ(1,
            cnet_socket_write_string(s, "abc", "", trace_cb, NULL)); /* utf8 */
  ASSERT_EQ(3, cnet_socket_bytes_written(s));
  ASSERT_EQ(CNET_ERR_UNKNOWN_ENCODING,
            cnet_socket_write_string(s, "abc", "base 64", trace_cb, NULL));
  ASSERT_STR_EQ(cnet_last_error()->message, "Unknown encoding: base 64");
  ASSERT_EQ(3, cnet_socket_bytes_written(s));
  ASSERT_EQ(0, cnet_socket_writable_length(s));
  ASSERT(!cnet_socket_destroyed(s));
  ASSERT_STR_EQ(cnet_socket_ready_state(s), "open");
  trace_add(&CT, "refused");
  ASSERT_EQ(0, cnet_socket_end(s, NULL, 0, NULL, NULL));
}

TEST_CASE(wr_write_string_unknown_encoding_refused_at_once) {
  uv_loop_t *loop = loop_new();

  reset();
  connect_client(loop, start_server(loop, NULL), write_unknown_encoding, NULL);
  run_bounded(loop, 3000);
  /* Only the "" (utf8) write happened; no callback, no 'error'. */
  ASSERT_STR_EQ(CT.buf, "refused connect ready cb:OK finish end close(false)");
  ASSERT_EQ(3, S.rx.len);
  ASSERT_MEM_EQ(S.rx.buf, "abc", 3);
  finish(loop);
}

/* ---- WR-05: bytesWritten counts encoded bytes, queued ones too ----------- */

static void wr05_on_close(cnet_socket_t *s, const cnet_event_t *ev, void *ctx) {
  (void)ev;
  (void)ctx;
  ASSERT_EQ(15 + 26, cnet_socket_bytes_written(s)); /* not counted twice */
}

TEST_CASE(wr05_bytes_written_counts_encoded_bytes_while_connecting) {
  uv_loop_t *loop = loop_new();
  cnet_socket_t *s = cnet_socket_new(loop, NULL);

  reset();
  trace_client(s);
  ASSERT_EQ(0, cnet_socket_connect_port(s, start_server(loop, NULL),
                                        "127.0.0.1", NULL, NULL));
  /* "L'État, c'est " is 14 characters, 15 UTF-8 bytes. */
  ASSERT_EQ(0, cnet_socket_write_string(s, "L'\xc3\x89tat, c'est ", "utf8",
                                        trace_cb, "a"));
  ASSERT_EQ(15, cnet_socket_bytes_written(s));
  ASSERT_EQ(15, cnet_socket_writable_length(s)); /* cnet counts bytes */
  /* "moi, à Paris." is 13 characters: 26 bytes in utf16le. */
  ASSERT_EQ(0, cnet_socket_write_string(s, "moi, \xc3\xa0 Paris.", "utf16le",
                                        trace_cb, "b"));
  ASSERT_EQ(15 + 26, cnet_socket_bytes_written(s));
  ASSERT_EQ(15 + 26, cnet_socket_writable_length(s));
  ASSERT_EQ(15 + 26, cnet_socket_buffer_size(s));
  ASSERT_EQ(0, cnet_socket_on(s, CNET_EV_CLOSE, wr05_on_close, NULL));
  ASSERT_EQ(0, cnet_socket_end(s, NULL, 0, NULL, NULL));
  run_bounded(loop, 3000);
  ASSERT_STR_EQ(CT.buf,
                "connect ready a-cb:OK b-cb:OK finish end close(false)");
  ASSERT_EQ(41, S.rx.len);
  ASSERT_MEM_EQ(S.rx.buf, "L'\xc3\x89tat, c'est ", 15);
  ASSERT_MEM_EQ(S.rx.buf + 15, "m\0o\0i\0,\0 \0\xe0\0 \0P\0a\0r\0i\0s\0.\0",
                26);
  ASSERT_EQ(41, cnet_socket_bytes_written(s));
  cnet_socket_free(s);
  finish(loop);
}

/* ---- WR-06: 10 MB counted in full at once and in the callback ------------ */

#define TEN_MB 10000000u

static struct {
  char *buf, *str, *hex;
  int step;
} wr06;

static void wr06_next(cnet_socket_t *s, const cnet_error_t *err, void *ctx);

/* Step 0: a Buffer; 1: a string; 2: corked Buffer + string. Each step
 * starts in the callback of the one before. */
static void wr06_start(cnet_socket_t *s, int step) {
  wr06.step = step;
  if (step == 0) {
    ASSERT_GE(cnet_socket_write(s, wr06.buf, TEN_MB, wr06_next, NULL), 0);
    ASSERT_EQ(TEN_MB, cnet_socket_bytes_written(s));
    ASSERT_GT(cnet_socket_writable_length(s), 0); /* it did not all fit */
  } else if (step == 1) {
    ASSERT_GE(cnet_socket_write_string(s, wr06.str, "latin1", wr06_next, NULL),
              0);
    ASSERT_EQ(2ull * TEN_MB, cnet_socket_bytes_written(s));
  } else {
    cnet_socket_cork(s);
    ASSERT_EQ(0, cnet_socket_write(s, wr06.buf, TEN_MB / 2, NULL, NULL));
    ASSERT_EQ(0, cnet_socket_write_string(s, wr06.hex, "hex", wr06_next, NULL));
    ASSERT_EQ(3ull * TEN_MB, cnet_socket_bytes_written(s));
    cnet_socket_uncork(s);
    ASSERT_EQ(3ull * TEN_MB, cnet_socket_bytes_written(s));
  }
}

static void wr06_next(cnet_socket_t *s, const cnet_error_t *err, void *ctx) {
  (void)ctx;
  ASSERT_NULL(err);
  ASSERT_EQ((uint64_t)(wr06.step + 1) * TEN_MB, cnet_socket_bytes_written(s));
  trace_add(&CT, wr06.step == 0 ? "cb0" : wr06.step == 1 ? "cb1" : "cb2");
  if (wr06.step < 2)
    wr06_start(s, wr06.step + 1);
  else
    ASSERT_EQ(0, cnet_socket_end(s, NULL, 0, NULL, NULL));
}

static void wr06_connect(cnet_socket_t *s, const cnet_event_t *ev, void *ctx) {
  (void)ev;
  (void)ctx;
  wr06_start(s, 0);
}

TEST_CASE(wr06_ten_mb_counted_at_once_and_in_callback) {
  uv_loop_t *loop = loop_new();
  cnet_socket_t *c;

  reset();
  S.no_rx = true;
  wr06.buf = malloc(TEN_MB);
  wr06.str = malloc(TEN_MB + 1);
  wr06.hex = malloc(TEN_MB + 1);
  ASSERT_NOT_NULL(wr06.buf);
  ASSERT_NOT_NULL(wr06.str);
  ASSERT_NOT_NULL(wr06.hex);
  memset(wr06.buf, 'b', TEN_MB);
  memset(wr06.str, 's', TEN_MB);
  wr06.str[TEN_MB] = '\0';
  memset(wr06.hex, 'a', TEN_MB); /* 10M hex digits: 5 MB of 0xaa */
  wr06.hex[TEN_MB] = '\0';
  c = connect_client(loop, start_server(loop, NULL), wr06_connect, NULL);
  (void)c;
  run_bounded(loop, 8000);
  ASSERT_STR_EQ(CT.buf, "connect ready drain cb0 drain cb1 drain cb2 finish "
                        "end close(false)");
  ASSERT_EQ(TEN_MB * 2 + TEN_MB / 2 + TEN_MB / 2, S.received);
  free(wr06.buf);
  free(wr06.str);
  free(wr06.hex);
  finish(loop);
}

/* ---- WR-08: 100000 callbacks, once each, in order, across write,
 * write_string and write_owned ------------------------------------------- */

#define NW 100000

static struct {
  char *expect; /* "%07d," for every index */
  int next_cb;
} wr08;

static void wr08_cb(cnet_socket_t *s, const cnet_error_t *err, void *ctx) {
  (void)s;
  ASSERT_NULL(err);
  if (wr08.next_cb != (intptr_t)ctx)
    FAIL("callback %d ran when %d was due", (int)(intptr_t)ctx, wr08.next_cb);
  wr08.next_cb++;
}

static void wr08_connect(cnet_socket_t *s, const cnet_event_t *ev, void *ctx) {
  char w[16];

  (void)ev;
  (void)ctx;
  for (intptr_t i = 0; i < NW; i++) {
    char *mine = wr08.expect + i * 8;
    int r;
    if (i % 3 == 0) {
      r = cnet_socket_write(s, mine, 8, wr08_cb, (void *)i);
    } else if (i % 3 == 1) {
      memcpy(w, mine, 8);
      w[8] = '\0';
      r = cnet_socket_write_string(s, w, "latin1", wr08_cb, (void *)i);
    } else {
      r = cnet_socket_write_owned(s, mine, 8, NULL, NULL, wr08_cb, (void *)i);
    }
    ASSERT(r == 0 || r == 1);
    if (i % 1000 == 999) { /* a few corked batches in between */
      cnet_socket_cork(s);
      ASSERT_EQ(0, cnet_socket_write(s, "", 0, NULL, NULL));
      cnet_socket_uncork(s);
    }
  }
  ASSERT_EQ(0, wr08.next_cb); /* never inside a write */
  ASSERT_EQ(NW * 8, cnet_socket_bytes_written(s));
  ASSERT_EQ(0, cnet_socket_end(s, NULL, 0, NULL, NULL));
}

TEST_CASE(wr08_100000_callbacks_in_order_mixed_writes) {
  uv_loop_t *loop = loop_new();
  char w[16];

  reset();
  memset(&wr08, 0, sizeof(wr08));
  wr08.expect = malloc(NW * 8 + 1);
  ASSERT_NOT_NULL(wr08.expect);
  for (int i = 0; i < NW; i++) {
    snprintf(w, sizeof(w), "%07d,", i);
    memcpy(wr08.expect + i * 8, w, 8);
  }
  S.no_rx = true;
  S.expect = wr08.expect;
  connect_client(loop, start_server(loop, NULL), wr08_connect, NULL);
  run_bounded(loop, 8000);
  ASSERT_EQ(NW, wr08.next_cb);
  ASSERT_EQ(NW * 8, S.received);
  ASSERT_STR_EQ(ST.buf, "connection data end finish close(false)");
  free(wr08.expect);
  finish(loop);
}

/* ---- WR-09: cork / uncork --------------------------------------------------
 * Decision 20: under cork every write returns 0 (Node: true below the
 * high-water mark) and 'drain' follows the flush at uncork(). */

static uv_timer_t cork_timer;
static int corks_left;

static void cork_check_then_uncork(uv_timer_t *t) {
  cnet_socket_t *s = t->data;

  /* 50 ms later the peer has still received nothing. */
  ASSERT_EQ(0, S.received);
  trace_add(&CT, "nothing-yet");
  cnet_socket_uncork(s);
  if (--corks_left > 0) {
    /* the nested case: one uncork is not enough */
    trace_add(&CT, "still-corked");
    ASSERT_EQ(0, uv_timer_start(t, cork_check_then_uncork, 50, 0));
    return;
  }
  ASSERT_EQ(6, cnet_socket_bytes_written(s)); /* right after uncork */
  trace_add(&CT, "uncorked");
  uv_close((uv_handle_t *)t, NULL);
}

static void cork_end_on_last(cnet_socket_t *s, const cnet_error_t *err,
                             void *ctx) {
  trace_cb(s, err, ctx);
  ASSERT_EQ(0, cnet_socket_end(s, NULL, 0, NULL, NULL));
}

static void cork_writes(cnet_socket_t *s, int corks) {
  static char owned[] = "cc";

  corks_left = corks;
  for (int i = 0; i < corks; i++)
    cnet_socket_cork(s);
  ASSERT_EQ(0, cnet_socket_write(s, "aa", 2, trace_cb, "a"));
  ASSERT_EQ(0, cnet_socket_write_string(s, "6262", "hex", trace_cb, "b"));
  ASSERT_EQ(0, cnet_socket_write_owned(s, owned, 2, NULL, NULL,
                                       cork_end_on_last, "c"));
  ASSERT_EQ(6, cnet_socket_bytes_written(s));
  ASSERT_EQ(6, cnet_socket_writable_length(s));
  ASSERT_EQ(0, uv_timer_init(cnet_socket_loop(s), &cork_timer));
  cork_timer.data = s;
  ASSERT_EQ(0, uv_timer_start(&cork_timer, cork_check_then_uncork, 50, 0));
}

static void cork_once(cnet_socket_t *s, const cnet_event_t *ev, void *ctx) {
  (void)ev;
  (void)ctx;
  cork_writes(s, 1);
}

TEST_CASE(wr09_corked_writes_return_0_and_wait_for_uncork) {
  uv_loop_t *loop = loop_new();

  reset();
  connect_client(loop, start_server(loop, NULL), cork_once, NULL);
  run_bounded(loop, 3000);
  ASSERT_STR_EQ(CT.buf, "connect ready nothing-yet uncorked drain a-cb:OK "
                        "b-cb:OK c-cb:OK finish end close(false)");
  ASSERT_EQ(6, S.rx.len);
  ASSERT_MEM_EQ(S.rx.buf, "aabbcc", 6);
  finish(loop);
}

static void cork_twice(cnet_socket_t *s, const cnet_event_t *ev, void *ctx) {
  (void)ev;
  (void)ctx;
  cork_writes(s, 2);
}

TEST_CASE(wr09_nested_cork_needs_two_uncorks) {
  uv_loop_t *loop = loop_new();

  reset();
  connect_client(loop, start_server(loop, NULL), cork_twice, NULL);
  run_bounded(loop, 3000);
  ASSERT_STR_EQ(CT.buf, "connect ready nothing-yet still-corked nothing-yet "
                        "uncorked drain a-cb:OK b-cb:OK c-cb:OK finish end "
                        "close(false)");
  ASSERT_EQ(6, S.rx.len);
  ASSERT_MEM_EQ(S.rx.buf, "aabbcc", 6);
  finish(loop);
}

static void cork_then_end(cnet_socket_t *s, const cnet_event_t *ev, void *ctx) {
  (void)ev;
  (void)ctx;
  cnet_socket_cork(s);
  cnet_socket_cork(s);
  ASSERT_EQ(0, cnet_socket_write(s, "corked ", 7, trace_cb, "w"));
  ASSERT_EQ(0, cnet_socket_end(s, "then ended", 10, trace_cb, "end"));
  ASSERT_EQ(17, cnet_socket_bytes_written(s));
  ASSERT_STR_EQ(cnet_socket_ready_state(s), "readOnly");
  cnet_socket_uncork(s); /* harmless: end() uncorked already */
}

TEST_CASE(wr09_end_uncorks) {
  uv_loop_t *loop = loop_new();

  reset();
  connect_client(loop, start_server(loop, NULL), cork_then_end, NULL);
  run_bounded(loop, 3000);
  /* No 'drain' once end() was called (Node: none after ending). */
  ASSERT_STR_EQ(CT.buf,
                "connect ready w-cb:OK end-cb:OK finish end close(false)");
  ASSERT_EQ(17, S.rx.len);
  ASSERT_MEM_EQ(S.rx.buf, "corked then ended", 17);
  ASSERT_STR_EQ(ST.buf, "connection data end finish close(false)");
  finish(loop);
}

#define CYCLES 1000

static void cork_cycles(cnet_socket_t *s, const cnet_event_t *ev, void *ctx) {
  char w[16];

  (void)ev;
  (void)ctx;
  for (int i = 0; i < CYCLES; i++) {
    snprintf(w, sizeof(w), "%05d,", i);
    cnet_socket_cork(s);
    ASSERT_EQ(0, cnet_socket_write(s, w, 6, NULL, NULL));
    ASSERT_EQ(0, cnet_socket_write_string(s, "|", NULL, NULL, NULL));
    cnet_socket_uncork(s);
    ASSERT_EQ((uint64_t)(i + 1) * 7, cnet_socket_bytes_written(s));
  }
}

static void end_on_drain(cnet_socket_t *s, const cnet_event_t *ev, void *ctx) {
  (void)ev;
  (void)ctx;
  ASSERT_EQ(0, cnet_socket_writable_length(s));
  ASSERT_EQ(0, cnet_socket_end(s, NULL, 0, NULL, NULL));
}

TEST_CASE(wr09_cork_write_uncork_loop_in_order_one_drain) {
  uv_loop_t *loop = loop_new();
  cnet_socket_t *c;
  char w[16];

  reset();
  c = connect_client(loop, start_server(loop, NULL), cork_cycles, NULL);
  ASSERT_EQ(0, cnet_socket_on(c, CNET_EV_DRAIN, end_on_drain, NULL));
  run_bounded(loop, 3000);
  ASSERT_STR_EQ(CT.buf, "connect ready drain finish end close(false)");
  ASSERT_EQ(CYCLES * 7, S.rx.len);
  for (int i = 0; i < CYCLES; i++) {
    snprintf(w, sizeof(w), "%05d,|", i);
    ASSERT_MEM_EQ(S.rx.buf + i * 7, w, 7);
  }
  finish(loop);
}

/* ---- WR-03: "before" while connecting, " after" in 'connect' ------------- */

static void write_after_in_connect(cnet_socket_t *s, const cnet_event_t *ev,
                                   void *ctx) {
  (void)ev;
  (void)ctx;
  ASSERT_EQ(6, cnet_socket_writable_length(s)); /* "before" not sent yet */
  ASSERT_EQ(0, cnet_socket_write(s, " after", 6, trace_cb, "after"));
  ASSERT_EQ(12, cnet_socket_bytes_written(s));
  ASSERT_EQ(0, cnet_socket_end(s, NULL, 0, NULL, NULL));
}

TEST_CASE(wr03_before_then_after_in_connect_arrive_in_order) {
  uv_loop_t *loop = loop_new();
  cnet_socket_t *s = cnet_socket_new(loop, NULL);

  reset();
  ASSERT_EQ(0,
            cnet_socket_connect_port(s, start_server(loop, NULL), "127.0.0.1",
                                     write_after_in_connect, NULL));
  trace_client(s);
  ASSERT_EQ(0, cnet_socket_write(s, "before", 6, trace_cb, "before"));
  ASSERT_EQ(6, cnet_socket_bytes_written(s));
  run_bounded(loop, 3000);
  ASSERT_EQ(12, S.rx.len);
  ASSERT_MEM_EQ(S.rx.buf, "before after", 12);
  ASSERT_STR_EQ(CT.buf, "connect ready before-cb:OK after-cb:OK finish end "
                        "close(false)");
  cnet_socket_free(s);
  finish(loop);
}

/* ---- WR-07: bufferSize is writableLength; both 0 at 'finish' ------------- */

#define MB (1u << 20)

static struct {
  cnet_socket_t *accepted;
  char *buf;
  size_t finish_len, finish_bs, drain_len;
  int drains;
} wr07;

static void wr07_finish(cnet_socket_t *s, const cnet_event_t *ev, void *ctx) {
  (void)ev;
  (void)ctx;
  wr07.finish_len = cnet_socket_writable_length(s);
  wr07.finish_bs = cnet_socket_buffer_size(s);
}

static void wr07_drain(cnet_socket_t *s, const cnet_event_t *ev, void *ctx) {
  (void)ev;
  (void)ctx;
  wr07.drains++;
  wr07.drain_len = cnet_socket_writable_length(s);
  ASSERT_EQ(0, cnet_socket_end(s, NULL, 0, NULL, NULL));
}

static void wr07_hook(cnet_socket_t *s) {
  wr07.accepted = s; /* paused: pause_on_connect */
}

static uv_timer_t wr07_timer;

static void wr07_resume(uv_timer_t *t) {
  cnet_socket_resume(wr07.accepted);
  uv_close((uv_handle_t *)t, NULL);
}

static void wr07_connect(cnet_socket_t *s, const cnet_event_t *ev, void *ctx) {
  size_t queued;
  int r, i = 0;

  (void)ev;
  (void)ctx;
  /* Fill the kernel's buffers: the first write that returns 0 queued. */
  do {
    ASSERT_EQ(cnet_socket_writable_length(s), cnet_socket_buffer_size(s));
    ASSERT_EQ(0, cnet_socket_writable_length(s));
    r = cnet_socket_write(s, wr07.buf, MB, NULL, NULL);
    ASSERT_LT(++i, 200);
  } while (r == 1);
  queued = cnet_socket_writable_length(s);
  ASSERT_GT(queued, 0);
  ASSERT_EQ(queued, cnet_socket_buffer_size(s));
  /* Behind a queue every write is queued whole: 1, 2, ... as in Node. */
  for (size_t n = 1; n <= 5; n++) {
    ASSERT_EQ(0, cnet_socket_write(s, "x", 1, NULL, NULL));
    ASSERT_EQ(queued + n, cnet_socket_writable_length(s));
    ASSERT_EQ(queued + n, cnet_socket_buffer_size(s));
  }
  ASSERT_EQ((uint64_t)i * MB + 5, cnet_socket_bytes_written(s));
  ASSERT_EQ(0, uv_timer_init(cnet_socket_loop(s), &wr07_timer));
  ASSERT_EQ(0, uv_timer_start(&wr07_timer, wr07_resume, 20, 0));
}

TEST_CASE(wr07_buffer_size_is_writable_length_zero_at_finish) {
  uv_loop_t *loop = loop_new();
  cnet_server_options_t so = {.pause_on_connect = true};
  cnet_socket_t *c;

  reset();
  memset(&wr07, 0, sizeof(wr07));
  wr07.buf = calloc(1, MB);
  ASSERT_NOT_NULL(wr07.buf);
  S.no_rx = true;
  c = connect_client(loop, start_server_opts(loop, &so, NULL, wr07_hook),
                     wr07_connect, NULL);
  /* While connecting: 1, 2. */
  ASSERT_EQ(0, cnet_socket_writable_length(c));
  ASSERT_EQ(0, cnet_socket_buffer_size(c));
  ASSERT_EQ(0, cnet_socket_on(c, CNET_EV_FINISH, wr07_finish, NULL));
  ASSERT_EQ(0, cnet_socket_on(c, CNET_EV_DRAIN, wr07_drain, NULL));
  run_bounded(loop, 5000);
  ASSERT_EQ(1, wr07.drains);
  ASSERT_EQ(0, wr07.drain_len);
  ASSERT_EQ(0, wr07.finish_len);
  ASSERT_EQ(0, wr07.finish_bs);
  ASSERT_STR_EQ(CT.buf, "connect ready drain finish end close(false)");
  free(wr07.buf);
  finish(loop);
}

static void wr07_connecting_end(cnet_socket_t *s, const cnet_event_t *ev,
                                void *ctx) {
  (void)ev;
  (void)ctx;
  ASSERT_EQ(0, cnet_socket_end(s, NULL, 0, NULL, NULL));
}

TEST_CASE(wr07_writable_length_rises_while_connecting) {
  uv_loop_t *loop = loop_new();
  cnet_socket_t *c;

  reset();
  c = connect_client(loop, start_server(loop, NULL), wr07_connecting_end, NULL);
  ASSERT_EQ(0, cnet_socket_write(c, "a", 1, NULL, NULL));
  ASSERT_EQ(1, cnet_socket_writable_length(c));
  ASSERT_EQ(1, cnet_socket_buffer_size(c));
  ASSERT_EQ(0, cnet_socket_write(c, "b", 1, NULL, NULL));
  ASSERT_EQ(2, cnet_socket_writable_length(c));
  ASSERT_EQ(2, cnet_socket_buffer_size(c));
  ASSERT_EQ(0, cnet_socket_on(c, CNET_EV_FINISH, wr07_finish, NULL));
  wr07.finish_len = wr07.finish_bs = 99;
  run_bounded(loop, 3000);
  ASSERT_EQ(0, wr07.finish_len);
  ASSERT_EQ(0, wr07.finish_bs);
  ASSERT_EQ(2, S.rx.len);
  ASSERT_MEM_EQ(S.rx.buf, "ab", 2);
  finish(loop);
}

/* ---- WR-12 (correction 8): write after end() while still connecting ------
 * Node v20.20.2: const c = net.connect(port); c.end(); c.write('x', cb)
 *   -> false, destroyed at once, readyState 'closed', bytesWritten 0;
 *   cb:ERR_STREAM_WRITE_AFTER_END error:ERR_STREAM_WRITE_AFTER_END
 *   close(true), never 'connect' or 'finish'. */

static int releases;

static void count_release(void *data, size_t len, void *ctx) {
  (void)data;
  (void)ctx;
  ASSERT_EQ(4, len);
  releases++;
  trace_add(&CT, "released");
}

static void keep_error_message(cnet_socket_t *s, const cnet_event_t *ev,
                               void *ctx) {
  (void)s;
  (void)ctx;
  S.error = *ev->error; /* the client's, here */
}

TEST_CASE(wr12_write_after_end_while_connecting) {
  uv_loop_t *loop = loop_new();
  cnet_socket_t *c = cnet_socket_new(loop, NULL);
  static char data[] = "data";

  reset();
  releases = 0;
  start_server(loop, NULL);
  cnet_server_unref(S.srv); /* the connection may never reach it */
  trace_client(c);
  ASSERT_EQ(0, cnet_socket_on(c, CNET_EV_ERROR, keep_error_message, NULL));
  ASSERT_EQ(0, cnet_socket_connect_port(c, S.port, "127.0.0.1", NULL, NULL));
  ASSERT_EQ(0, cnet_socket_end(c, NULL, 0, NULL, NULL));
  ASSERT_EQ(0, cnet_socket_write_owned(c, data, 4, count_release, NULL,
                                       trace_cb, "w"));
  ASSERT(cnet_socket_destroyed(c));
  ASSERT_STR_EQ(cnet_socket_ready_state(c), "closed");
  ASSERT_EQ(0, cnet_socket_bytes_written(c));
  ASSERT_STR_EQ(CT.buf, ""); /* nothing inside the calls */
  run_bounded(loop, 3000);
  ASSERT_STR_EQ(CT.buf, "w-cb:ERR_STREAM_WRITE_AFTER_END released "
                        "error:ERR_STREAM_WRITE_AFTER_END close(true)");
  ASSERT_EQ(1, releases);
  ASSERT_EQ(CNET_ERR_STREAM_WRITE_AFTER_END, S.error.errnum);
  ASSERT_STR_EQ(S.error.message, "write after end");
  cnet_socket_free(c);
  finish(loop);
}

/* Node v20.20.2, in 'ready': c.end(endcb); c.write('x', cb) ->
 *   connect ready cb:ERR_STREAM_WRITE_AFTER_END
 *   endcb:ERR_STREAM_WRITE_AFTER_END error:ERR_STREAM_WRITE_AFTER_END
 *   close(true)
 * (the pending end() callback gets the error before 'error' is emitted). */
static void end_cb_then_write(cnet_socket_t *s, const cnet_event_t *ev,
                              void *ctx) {
  (void)ev;
  (void)ctx;
  ASSERT_EQ(0, cnet_socket_end(s, NULL, 0, trace_cb, "end"));
  ASSERT_EQ(0, cnet_socket_write(s, "x", 1, trace_cb, "x"));
}

TEST_CASE(wr12_end_callback_gets_write_after_end_before_error) {
  uv_loop_t *loop = loop_new();
  cnet_socket_t *c;

  reset();
  c = connect_client(loop, start_server(loop, NULL), NULL, NULL);
  ASSERT_EQ(0, cnet_socket_once(c, CNET_EV_READY, end_cb_then_write, NULL));
  run_bounded(loop, 3000);
  ASSERT_STR_EQ(CT.buf, "connect ready x-cb:ERR_STREAM_WRITE_AFTER_END "
                        "end-cb:ERR_STREAM_WRITE_AFTER_END "
                        "error:ERR_STREAM_WRITE_AFTER_END close(true)");
  finish(loop);
}

/* Node v20.20.2, in 'ready': c.end(); c.write('x', cb1); c.write('y', cb2);
 * and 20 ms later c.write('z', cb3) ->
 *   connect ready x-cb:ERR_STREAM_WRITE_AFTER_END
 *   error:ERR_STREAM_WRITE_AFTER_END y-cb:ERR_STREAM_WRITE_AFTER_END
 *   close(true) z-cb:ERR_STREAM_WRITE_AFTER_END
 * Writable.write checks `ending` before `destroyed`: once end() was called
 * every later write is "write after end", destroyed or not (and only the
 * first one emits 'error'). */
static uv_timer_t wae_timer;

static void write_z_later(uv_timer_t *t) {
  ASSERT_EQ(0, cnet_socket_write(t->data, "z", 1, trace_cb, "z"));
  cnet_socket_release(t->data);
  uv_close((uv_handle_t *)t, NULL);
}

static void end_then_three_writes(cnet_socket_t *s, const cnet_event_t *ev,
                                  void *ctx) {
  (void)ev;
  (void)ctx;
  ASSERT_EQ(0, cnet_socket_end(s, NULL, 0, NULL, NULL));
  ASSERT_EQ(0, cnet_socket_write(s, "x", 1, trace_cb, "x"));
  ASSERT_EQ(0, cnet_socket_write(s, "y", 1, trace_cb, "y"));
  cnet_socket_retain(s);
  ASSERT_EQ(0, uv_timer_init(cnet_socket_loop(s), &wae_timer));
  wae_timer.data = s;
  ASSERT_EQ(0, uv_timer_start(&wae_timer, write_z_later, 20, 0));
}

TEST_CASE(wr12_every_write_after_end_is_write_after_end) {
  uv_loop_t *loop = loop_new();
  cnet_socket_t *c;

  reset();
  c = connect_client(loop, start_server(loop, NULL), NULL, NULL);
  ASSERT_EQ(0, cnet_socket_once(c, CNET_EV_READY, end_then_three_writes, NULL));
  run_bounded(loop, 3000);
  ASSERT_STR_EQ(CT.buf, "connect ready x-cb:ERR_STREAM_WRITE_AFTER_END "
                        "error:ERR_STREAM_WRITE_AFTER_END "
                        "y-cb:ERR_STREAM_WRITE_AFTER_END close(true) "
                        "z-cb:ERR_STREAM_WRITE_AFTER_END");
  finish(loop);
}

/* ---- WR-13: write_string / write_owned after destroy --------------------- */

static void strings_after_destroy(cnet_socket_t *s, const cnet_event_t *ev,
                                  void *ctx) {
  static char data[] = "data";

  (void)ev;
  (void)ctx;
  ASSERT_EQ(1, cnet_socket_write(s, "1234", 4, NULL, NULL));
  cnet_socket_destroy(s, NULL);
  ASSERT_EQ(0, cnet_socket_write_string(s, "abcd", "hex", trace_cb, "str"));
  ASSERT_EQ(0, cnet_socket_write_owned(s, data, 4, count_release, NULL,
                                       trace_cb, "owned"));
  ASSERT_EQ(0, cnet_socket_write(s, NULL, 0, trace_cb, "empty"));
  ASSERT_EQ(4, cnet_socket_bytes_written(s)); /* refused ones not counted */
  ASSERT_EQ(0, cnet_socket_writable_length(s));
  trace_add(&CT, "written");
}

TEST_CASE(wr13_write_string_and_owned_after_destroy) {
  uv_loop_t *loop = loop_new();
  cnet_socket_t *c;

  reset();
  releases = 0;
  c = connect_client(loop, start_server(loop, NULL), strings_after_destroy,
                     NULL);
  (void)c;
  run_bounded(loop, 3000);
  /* (the connect listener runs before trace_client's) */
  ASSERT_STR_EQ(CT.buf, "written connect ready str-cb:ERR_STREAM_DESTROYED "
                        "owned-cb:ERR_STREAM_DESTROYED released "
                        "empty-cb:ERR_STREAM_DESTROYED close(false)");
  ASSERT_EQ(1, releases);
  finish(loop);
}

/* ---- WR-16: writes queued while connecting, then destroy -----------------
 * Node v20.20.2: c = net.connect(port); c.write('x', cb); c.destroy() ->
 * cb gets ERR_SOCKET_CLOSED_BEFORE_CONNECTION; no 'connect', no 'error';
 * close(false). (Node calls the write callback from a 'close' listener that
 * write() adds -- correction 9 -- so a 'close' listener added after the
 * write runs after the callback, as here.) */

TEST_CASE(wr16_writes_while_connecting_then_destroy) {
  uv_loop_t *loop = loop_new();
  cnet_socket_t *c = cnet_socket_new(loop, NULL);
  static char data[] = "data";

  reset();
  releases = 0;
  start_server(loop, NULL);
  cnet_server_unref(S.srv);
  ASSERT_EQ(0, cnet_socket_connect_port(c, S.port, "127.0.0.1", NULL, NULL));
  ASSERT_EQ(0, cnet_socket_write(c, "one", 3, trace_cb, "1"));
  ASSERT_EQ(0, cnet_socket_write_string(c, "two", NULL, trace_cb, "2"));
  ASSERT_EQ(0, cnet_socket_write_owned(c, data, 4, count_release, NULL,
                                       trace_cb, "3"));
  ASSERT_EQ(10, cnet_socket_writable_length(c));
  trace_client(c);
  cnet_socket_destroy(c, NULL);
  ASSERT_EQ(0, cnet_socket_writable_length(c));
  ASSERT_STR_EQ(CT.buf, "");
  run_bounded(loop, 3000);
  ASSERT_STR_EQ(CT.buf, "1-cb:ERR_SOCKET_CLOSED_BEFORE_CONNECTION "
                        "2-cb:ERR_SOCKET_CLOSED_BEFORE_CONNECTION "
                        "3-cb:ERR_SOCKET_CLOSED_BEFORE_CONNECTION released "
                        "close(false)");
  ASSERT_EQ(1, releases);
  cnet_socket_free(c);
  finish(loop);
}

/* ---- WR-14 / correction 7: writing after the peer's FIN -------------------
 * Node v20.20.2, server end('bye'), client default (no allowHalfOpen):
 *   in the client's 'finish' (after the automatic end()):
 *     write -> false, destroyed at once; data end finish
 *     cb:EPIPE "This socket has been ended by the other party" (no errno,
 *     no syscall) error:EPIPE close(true)
 *   in the client's 'close' (already destroyed):
 *     write -> false; data end finish close(false) cb:EPIPE (same message),
 *     no 'error'. */

static cnet_error_t fin_err;

/* Traces the callback and keeps its error: the checks come after the run,
 * so a failure shows the whole trace. */
static void check_fin_epipe(cnet_socket_t *s, const cnet_error_t *err,
                            void *ctx) {
  trace_cb(s, err, ctx);
  if (err != NULL)
    fin_err = *err;
}

static void assert_fin_epipe(void) {
  ASSERT_EQ(UV_EPIPE, fin_err.errnum);
  ASSERT_STR_EQ(fin_err.code, "EPIPE");
  ASSERT_STR_EQ(fin_err.message,
                "This socket has been ended by the other party");
  ASSERT_NULL(fin_err.syscall);
}

static void write_in_finish(cnet_socket_t *s, const cnet_event_t *ev,
                            void *ctx) {
  (void)ev;
  (void)ctx;
  ASSERT_EQ(0, cnet_socket_write(s, "x", 1, check_fin_epipe, "fin"));
  ASSERT(cnet_socket_destroyed(s));
  trace_add(&CT, "written");
}

static void server_end_bye(cnet_socket_t *s) {
  ASSERT_EQ(0, cnet_socket_end(s, "bye", 3, NULL, NULL));
}

TEST_CASE(wr14_write_after_peer_fin_and_auto_end_is_epipe) {
  uv_loop_t *loop = loop_new();
  cnet_socket_t *c;

  reset();
  memset(&fin_err, 0, sizeof(fin_err));
  c = connect_client(loop, start_server(loop, server_end_bye), NULL, NULL);
  ASSERT_EQ(0, cnet_socket_on(c, CNET_EV_ERROR, keep_error_message, NULL));
  ASSERT_EQ(0, cnet_socket_on(c, CNET_EV_FINISH, write_in_finish, NULL));
  run_bounded(loop, 3000);
  ASSERT_STR_EQ(CT.buf, "connect ready data end finish written fin-cb:EPIPE "
                        "error:EPIPE close(true)");
  ASSERT_EQ(UV_EPIPE, S.error.errnum);
  ASSERT_STR_EQ(S.error.code, "EPIPE");
  ASSERT_STR_EQ(S.error.message,
                "This socket has been ended by the other party");
  assert_fin_epipe();
  finish(loop);
}

static void write_in_close(cnet_socket_t *s, const cnet_event_t *ev,
                           void *ctx) {
  (void)ev;
  (void)ctx;
  ASSERT_EQ(0, cnet_socket_write(s, "x", 1, check_fin_epipe, "late"));
}

TEST_CASE(wr14_write_after_auto_end_close_still_epipe_no_error) {
  uv_loop_t *loop = loop_new();
  cnet_socket_t *c;

  reset();
  memset(&fin_err, 0, sizeof(fin_err));
  c = connect_client(loop, start_server(loop, server_end_bye), NULL, NULL);
  ASSERT_EQ(0, cnet_socket_on(c, CNET_EV_CLOSE, write_in_close, NULL));
  run_bounded(loop, 3000);
  ASSERT_STR_EQ(CT.buf,
                "connect ready data end finish close(false) late-cb:EPIPE");
  assert_fin_epipe();
  finish(loop);
}

/* ---- EN-02 on the server side, EN-01 readyState, ST-03 ------------------- */

static uv_timer_t half_timer;

static void server_half_open_later(uv_timer_t *t) {
  cnet_socket_t *s = t->data;

  /* An automatic end() would have happened long ago. */
  ASSERT(!cnet_socket_destroyed(s));
  ASSERT_STR_EQ(cnet_socket_ready_state(s), "writeOnly");
  ASSERT_EQ(1, cnet_socket_write(s, "late", 4, NULL, NULL));
  ASSERT_EQ(0, cnet_socket_end(s, "!", 1, NULL, NULL));
  ASSERT_STR_EQ(cnet_socket_ready_state(s), "closed");
  trace_add(&ST, "wrote");
  uv_close((uv_handle_t *)t, NULL);
}

static void server_half_open_end(cnet_socket_t *s, const cnet_event_t *ev,
                                 void *ctx) {
  (void)ev;
  (void)ctx;
  ASSERT_STR_EQ(cnet_socket_ready_state(s), "writeOnly");
  ASSERT_EQ(0, uv_timer_init(cnet_socket_loop(s), &half_timer));
  half_timer.data = s;
  ASSERT_EQ(0, uv_timer_start(&half_timer, server_half_open_later, 30, 0));
}

static void hook_half_open_end(cnet_socket_t *s) {
  ASSERT_EQ(0, cnet_socket_on(s, CNET_EV_END, server_half_open_end, NULL));
}

static void client_end_hi(cnet_socket_t *s, const cnet_event_t *ev, void *ctx) {
  (void)ev;
  (void)ctx;
  ASSERT_STR_EQ(cnet_socket_ready_state(s), "open");
  ASSERT_EQ(0, cnet_socket_end(s, "hi", 2, NULL, NULL));
  ASSERT_STR_EQ(cnet_socket_ready_state(s), "readOnly");
}

/* Node v20.20.2: C:finish S:data S:end(writeOnly) ... S:write -> true,
 * S:end('!') -> 'closed', S:finish, C:data "late!" C:end C:close(false)
 * S:close(false). */
TEST_CASE(en02_server_allow_half_open_writes_until_end) {
  uv_loop_t *loop = loop_new();
  cnet_server_options_t so = {.allow_half_open = true};

  reset();
  connect_client(loop, start_server_opts(loop, &so, NULL, hook_half_open_end),
                 client_end_hi, NULL);
  run_bounded(loop, 3000);
  ASSERT_STR_EQ(ST.buf, "connection data end wrote finish close(false)");
  ASSERT_STR_EQ(CT.buf, "connect ready finish data end close(false)");
  ASSERT_EQ(2, S.rx.len);
  ASSERT_MEM_EQ(S.rx.buf, "hi", 2);
  ASSERT_EQ(5, CRX.len);
  ASSERT_MEM_EQ(CRX.buf, "late!", 5);
  finish(loop);
}

static char server_states[128], client_states[128];

static void note_state(cnet_socket_t *s, const cnet_event_t *ev, void *ctx) {
  char *states = ctx;
  size_t n = strlen(states);

  snprintf(states + n, 128 - n, "%s%s:%s", n ? " " : "",
           cnet_event_name(ev->type), cnet_socket_ready_state(s));
}

static void hook_note_states(cnet_socket_t *s) {
  ASSERT_EQ(0, cnet_socket_on(s, CNET_EV_END, note_state, server_states));
  ASSERT_EQ(0, cnet_socket_on(s, CNET_EV_FINISH, note_state, server_states));
  ASSERT_EQ(0, cnet_socket_on(s, CNET_EV_CLOSE, note_state, server_states));
}

/* EN-01 on the server (default allowHalfOpen false): after 'end' it ends
 * itself. Node v20.20.2: S:end (writeOnly) S:finish (closed) S:close;
 * the half-open client: C:finish C:end (closed) C:close. */
TEST_CASE(en01_server_auto_ends_after_end_ready_states) {
  uv_loop_t *loop = loop_new();
  cnet_connect_options_t o = {.host = "127.0.0.1", .allow_half_open = true};
  cnet_socket_t *c;

  reset();
  server_states[0] = client_states[0] = '\0';
  o.port = start_server(loop, hook_note_states);
  c = cnet_create_connection(loop, &o, client_end_hi, NULL);
  ASSERT_NOT_NULL(c);
  trace_client(c);
  ASSERT_EQ(0, cnet_socket_on(c, CNET_EV_FINISH, note_state, client_states));
  ASSERT_EQ(0, cnet_socket_on(c, CNET_EV_END, note_state, client_states));
  ASSERT_EQ(0, cnet_socket_on(c, CNET_EV_CLOSE, note_state, client_states));
  run_bounded(loop, 3000);
  ASSERT_STR_EQ(ST.buf, "connection data end finish close(false)");
  ASSERT_STR_EQ(server_states, "end:writeOnly finish:closed close:closed");
  ASSERT_STR_EQ(CT.buf, "connect ready finish end close(false)");
  ASSERT_STR_EQ(client_states, "finish:readOnly end:closed close:closed");
  finish(loop);
}

/* ST-03: opening, open, readOnly (local end first, half-open client),
 * closed. Node v20.20.2: new:open connecting:opening connect:open
 * ended:readOnly finish:readOnly end:closed close:closed. */
static void st03_connect(cnet_socket_t *s, const cnet_event_t *ev, void *ctx) {
  (void)ev;
  note_state(s, &(cnet_event_t){.type = CNET_EV_CONNECT}, ctx);
  ASSERT_EQ(0, cnet_socket_end(s, NULL, 0, NULL, NULL));
  strcat(client_states, " ended:");
  strcat(client_states, cnet_socket_ready_state(s));
}

static uv_timer_t st03_timer;

static void st03_server_end_later(uv_timer_t *t) {
  ASSERT_EQ(0, cnet_socket_end(t->data, NULL, 0, NULL, NULL));
  uv_close((uv_handle_t *)t, NULL);
}

static void st03_server_end(cnet_socket_t *s, const cnet_event_t *ev,
                            void *ctx) {
  (void)ev;
  (void)ctx;
  ASSERT_EQ(0, uv_timer_init(cnet_socket_loop(s), &st03_timer));
  st03_timer.data = s;
  ASSERT_EQ(0, uv_timer_start(&st03_timer, st03_server_end_later, 30, 0));
}

static void st03_hook(cnet_socket_t *s) {
  ASSERT_EQ(0, cnet_socket_on(s, CNET_EV_END, st03_server_end, NULL));
}

TEST_CASE(st03_ready_state_through_a_half_open_client_lifetime) {
  uv_loop_t *loop = loop_new();
  cnet_socket_options_t so = {.allow_half_open = true};
  cnet_server_options_t sso = {.allow_half_open = true};
  cnet_socket_t *c = cnet_socket_new(loop, &so);

  reset();
  client_states[0] = '\0';
  start_server_opts(loop, &sso, NULL, st03_hook);
  strcat(client_states, "new:");
  strcat(client_states, cnet_socket_ready_state(c));
  ASSERT_EQ(0, cnet_socket_connect_port(c, S.port, "127.0.0.1", st03_connect,
                                        client_states));
  strcat(client_states, " connecting:");
  strcat(client_states, cnet_socket_ready_state(c));
  ASSERT_EQ(0, cnet_socket_on(c, CNET_EV_FINISH, note_state, client_states));
  ASSERT_EQ(0, cnet_socket_on(c, CNET_EV_END, note_state, client_states));
  ASSERT_EQ(0, cnet_socket_on(c, CNET_EV_CLOSE, note_state, client_states));
  run_bounded(loop, 3000);
  ASSERT_STR_EQ(client_states,
                "new:open connecting:opening connect:open ended:readOnly "
                "finish:readOnly end:closed close:closed");
  ASSERT_STR_EQ(cnet_socket_ready_state(c), "closed");
  cnet_socket_free(c);
  finish(loop);
}

/* ST-04, EN-06: write and end(data, cb) while connecting. Node v20.20.2:
 * readyState 'opening', bytesWritten 6, writableLength 6; then
 * C:connect (readOnly) C:ready endcb C:finish ... C:end C:close(false);
 * the server gets "prefin", end, finish, close(false). */
static void st04_connect(cnet_socket_t *s, const cnet_event_t *ev, void *ctx) {
  (void)ev;
  (void)ctx;
  ASSERT_STR_EQ(cnet_socket_ready_state(s), "readOnly");
  trace_add(&CT, "rs=readOnly");
}

TEST_CASE(st04_en06_end_with_data_while_connecting) {
  uv_loop_t *loop = loop_new();
  cnet_socket_t *c;

  reset();
  c = connect_client(loop, start_server(loop, NULL), st04_connect, NULL);
  ASSERT_EQ(0, cnet_socket_write(c, "pre", 3, NULL, NULL));
  ASSERT_EQ(0, cnet_socket_end(c, "fin", 3, trace_cb, "end"));
  ASSERT_STR_EQ(cnet_socket_ready_state(c), "opening");
  ASSERT_EQ(6, cnet_socket_bytes_written(c));
  ASSERT_EQ(6, cnet_socket_writable_length(c));
  run_bounded(loop, 3000);
  /* (the connect listener runs before trace_client's) */
  ASSERT_STR_EQ(CT.buf, "rs=readOnly connect ready end-cb:OK finish end "
                        "close(false)");
  ASSERT_STR_EQ(ST.buf, "connection data end finish close(false)");
  ASSERT_EQ(6, S.rx.len);
  ASSERT_MEM_EQ(S.rx.buf, "prefin", 6);
  finish(loop);
}

/* EN-04 (correction 3): two end() callbacks before 'finish', in order. */
static void end_twice(cnet_socket_t *s, const cnet_event_t *ev, void *ctx) {
  (void)ev;
  (void)ctx;
  ASSERT_EQ(0, cnet_socket_end(s, "a", 1, trace_cb, "end1"));
  ASSERT_EQ(0, cnet_socket_end(s, NULL, 0, trace_cb, "end2"));
}

TEST_CASE(en04_every_end_callback_runs_before_finish) {
  uv_loop_t *loop = loop_new();

  reset();
  connect_client(loop, start_server(loop, NULL), end_twice, NULL);
  run_bounded(loop, 3000);
  ASSERT_STR_EQ(CT.buf, "connect ready end1-cb:OK end2-cb:OK finish end "
                        "close(false)");
  ASSERT_EQ(1, S.rx.len);
  finish(loop);
}

/* EN-05 with decision 9: end(cb) on a socket that never connects runs its
 * callback on the next tick (newer Node; v20 never calls it); readyState
 * is readOnly, as Node's. */
TEST_CASE(en05_end_never_connected_runs_callback) {
  uv_loop_t *loop = loop_new();
  cnet_socket_t *c = cnet_socket_new(loop, NULL);

  reset();
  trace_client(c);
  ASSERT_EQ(0, cnet_socket_end(c, NULL, 0, trace_cb, "end"));
  ASSERT_STR_EQ(cnet_socket_ready_state(c), "readOnly");
  ASSERT(!cnet_socket_destroyed(c));
  ASSERT_STR_EQ(CT.buf, "");
  run_bounded(loop, 2000);
  ASSERT_STR_EQ(CT.buf, "end-cb:OK finish");
  cnet_socket_free(c);
  loop_finish(loop);
}

/* ---- DS-02: destroy(err) with writes queued behind a full window ---------
 * cnet.h: queued callbacks get ERR_STREAM_DESTROYED, the one already handed
 * to libuv ECANCELED; every callback once, in submission order (cnet.h:
 * "Called once per write, in order"; WR-08). Node v20.20.2 keeps the same
 * order -- the finished ones, 'error', the one in flight, the queued ones,
 * close(true) -- though it passes the queued callbacks err itself and the
 * one in flight none. */

#define DS02_QUEUED 5

static struct {
  int ok_writes;    /* writes the kernel took whole */
  int inflight_idx; /* the first write that returned 0 */
  char want[1024];
  char *buf;
} ds02;

static void ds02_connect(cnet_socket_t *s, const cnet_event_t *ev, void *ctx) {
  static char names[64][8];
  cnet_error_t err = {.errnum = UV_EINVAL, .code = "EBOOM", .message = "boom"};
  int r, i = 0;

  (void)ev;
  (void)ctx;
  do {
    ASSERT_LT(i, 64 - DS02_QUEUED);
    snprintf(names[i], sizeof(names[i]), "%d", i);
    r = cnet_socket_write(s, ds02.buf, 256 * 1024, trace_cb, names[i]);
    i++;
  } while (r == 1);
  ds02.ok_writes = i - 1;
  ds02.inflight_idx = i - 1;
  for (int k = 0; k < DS02_QUEUED; k++, i++) {
    snprintf(names[i], sizeof(names[i]), "%d", i);
    ASSERT_EQ(0, cnet_socket_write(s, "q", 1, trace_cb, names[i]));
  }
  cnet_socket_destroy(s, &err);
  ASSERT_LT(cnet_socket_writable_length(s), 256 * 1024 + 1); /* in flight */
  /* What the trace must be. */
  ds02.want[0] = '\0';
  strcat(ds02.want, "connect ready"); /* Node emits 'ready' regardless */
  for (int k = 0; k < ds02.ok_writes; k++)
    snprintf(ds02.want + strlen(ds02.want), 32, " %d-cb:OK", k);
  strcat(ds02.want, " error:EBOOM");
  snprintf(ds02.want + strlen(ds02.want), 32, " %d-cb:ECANCELED",
           ds02.inflight_idx);
  /* The queued writes get destroy()'s own error, as Node's errored. */
  for (int k = ds02.inflight_idx + 1; k < i; k++)
    snprintf(ds02.want + strlen(ds02.want), 48, " %d-cb:EBOOM", k);
  strcat(ds02.want, " close(true)");
}

TEST_CASE(ds02_destroy_err_fails_queued_writes_in_order) {
  uv_loop_t *loop = loop_new();
  cnet_server_options_t so = {.pause_on_connect = true};
  cnet_socket_t *c;

  reset();
  memset(&ds02, 0, sizeof(ds02));
  ds02.buf = calloc(1, 256 * 1024);
  ASSERT_NOT_NULL(ds02.buf);
  S.no_rx = true;
  c = connect_client(loop, start_server_opts(loop, &so, NULL, NULL),
                     ds02_connect, NULL);
  (void)c;
  run_bounded(loop, 3000);
  ASSERT_STR_EQ(CT.buf, ds02.want);
  free(ds02.buf);
  if (S.conn != NULL) /* paused, it never hears the client go */
    cnet_socket_destroy(S.conn, NULL);
  run_bounded(loop, 3000);
  finish(loop);
}

/* ---- DS-05, DS-04: resetAndDestroy on a connected TCP socket -------------
 * Node v20.20.2: C:connect C:ready; resetAndDestroy() returns the socket,
 * destroyed true, readyState 'closed'; a write then gets
 * ERR_STREAM_DESTROYED; C:close(false), no 'error'; the peer gets 'error'
 * ECONNRESET "read ECONNRESET" (syscall read), then close(true). */

static struct {
  cnet_socket_t *client;
  bool client_ready, server_accepted;
  int server_errors;
} ds05;

static void ds05_maybe_reset(void) {
  cnet_socket_t *c = ds05.client;

  if (!ds05.client_ready || !ds05.server_accepted)
    return;
  ds05.client_ready = false;
  ASSERT_EQ(0, cnet_socket_reset_and_destroy(c));
  ASSERT(cnet_socket_destroyed(c));
  ASSERT_STR_EQ(cnet_socket_ready_state(c), "closed");
  trace_add(&CT, "reset");
  ASSERT_EQ(0, cnet_socket_write(c, "x", 1, trace_cb, "w"));
  ASSERT_EQ(0, cnet_socket_reset_and_destroy(c)); /* idempotent */
}

static void ds05_ready(cnet_socket_t *s, const cnet_event_t *ev, void *ctx) {
  (void)s;
  (void)ev;
  (void)ctx;
  ds05.client_ready = true;
  ds05_maybe_reset();
}

static void ds05_server_error(cnet_socket_t *s, const cnet_event_t *ev,
                              void *ctx) {
  (void)ev;
  (void)ctx;
  ds05.server_errors++;
  cnet_socket_destroy(s, NULL); /* DS-04: still one 'close' */
  cnet_socket_destroy(s, NULL);
}

static void ds05_hook(cnet_socket_t *s) {
  ASSERT_EQ(0, cnet_socket_on(s, CNET_EV_ERROR, ds05_server_error, NULL));
  ds05.server_accepted = true;
  ds05_maybe_reset();
}

TEST_CASE(ds05_reset_and_destroy_peer_sees_econnreset) {
  uv_loop_t *loop = loop_new();

  reset();
  memset(&ds05, 0, sizeof(ds05));
  ds05.client = connect_client(loop, start_server(loop, ds05_hook), NULL, NULL);
  ASSERT_EQ(0, cnet_socket_on(ds05.client, CNET_EV_READY, ds05_ready, NULL));
  run_bounded(loop, 3000);
  ASSERT_STR_EQ(CT.buf, "connect ready reset w-cb:ERR_STREAM_DESTROYED "
                        "close(false)");
  ASSERT_STR_EQ(ST.buf, "connection error:ECONNRESET close(true)");
  ASSERT_EQ(1, ds05.server_errors);
  ASSERT_EQ(UV_ECONNRESET, S.error.errnum);
  ASSERT_STR_EQ(S.error.code, "ECONNRESET");
  ASSERT_STR_EQ(S.error.syscall, "read");
  ASSERT_STR_EQ(S.error.message, "read ECONNRESET");
  finish(loop);
}

/* ---- DS-06: resetAndDestroy while connecting -----------------------------
 * Node v20.20.2: right after net.connect(): resetAndDestroy() -> readyState
 * 'opening', destroyed false; then C:connect C:ready C:close(false); the
 * peer: error ECONNRESET, close(true). */

static char ds06_states[64];

static void ds06_connect(cnet_socket_t *s, const cnet_event_t *ev, void *ctx) {
  (void)ev;
  (void)ctx;
  snprintf(ds06_states, sizeof(ds06_states), "destroyed=%d",
           cnet_socket_destroyed(s));
}

TEST_CASE(ds06_reset_and_destroy_while_connecting_waits_then_resets) {
  uv_loop_t *loop = loop_new();
  cnet_socket_t *c;

  reset();
  ds06_states[0] = '\0';
  c = connect_client(loop, start_server(loop, NULL), NULL, NULL);
  ASSERT_EQ(0, cnet_socket_on(c, CNET_EV_CONNECT, ds06_connect, NULL));
  ASSERT(cnet_socket_connecting(c));
  ASSERT_EQ(0, cnet_socket_reset_and_destroy(c));
  ASSERT_STR_EQ(cnet_socket_ready_state(c), "opening");
  ASSERT(!cnet_socket_destroyed(c));
  run_bounded(loop, 3000);
  ASSERT_STR_EQ(ds06_states, "destroyed=0"); /* connect listeners first */
  ASSERT_STR_EQ(CT.buf, "connect ready close(false)");
  ASSERT_STR_EQ(ST.buf, "connection error:ECONNRESET close(true)");
  ASSERT_STR_EQ(S.error.message, "read ECONNRESET");
  finish(loop);
}

/* ---- DS-07: resetAndDestroy with no connection at all --------------------
 * Node v20.20.2: destroyed at once; 'error' ERR_SOCKET_CLOSED "Socket is
 * closed" (no syscall), then 'close' -- with no argument, since there never
 * was a handle (EN-09); cnet's had_error is true after an 'error'. */

TEST_CASE(ds07_reset_and_destroy_never_connected_socket_closed) {
  uv_loop_t *loop = loop_new();
  cnet_socket_t *c = cnet_socket_new(loop, NULL);

  reset();
  trace_client(c);
  ASSERT_EQ(0, cnet_socket_on(c, CNET_EV_ERROR, keep_error_message, NULL));
  ASSERT_EQ(0, cnet_socket_reset_and_destroy(c));
  ASSERT(cnet_socket_destroyed(c));
  ASSERT_STR_EQ(CT.buf, "");
  run_bounded(loop, 2000);
  ASSERT_STR_EQ(CT.buf, "error:ERR_SOCKET_CLOSED close(true)");
  ASSERT_EQ(CNET_ERR_SOCKET_CLOSED, S.error.errnum);
  ASSERT_STR_EQ(S.error.message, "Socket is closed");
  ASSERT_NULL(S.error.syscall);
  cnet_socket_free(c);
  loop_finish(loop);
}

/* ---- DS-08: resetAndDestroy on an IPC socket throws ---------------------- */

static void ds08_connect(cnet_socket_t *s, const cnet_event_t *ev, void *ctx) {
  const cnet_error_t *e;

  (void)ev;
  (void)ctx;
  ASSERT_EQ(CNET_ERR_INVALID_HANDLE_TYPE, cnet_socket_reset_and_destroy(s));
  e = cnet_last_error();
  ASSERT_EQ(CNET_ERR_INVALID_HANDLE_TYPE, e->errnum);
  ASSERT_STR_EQ(e->code, "ERR_INVALID_HANDLE_TYPE");
  ASSERT_STR_EQ(e->message, "This handle type cannot be sent");
  /* Nothing else happened: the socket still works. */
  ASSERT(!cnet_socket_destroyed(s));
  ASSERT_STR_EQ(cnet_socket_ready_state(s), "open");
  ASSERT_EQ(0, cnet_socket_end(s, "still fine", 10, NULL, NULL));
}

TEST_CASE(ds08_reset_and_destroy_on_ipc_invalid_handle_type) {
  uv_loop_t *loop = loop_new();
  const char *path = temp_socket_path();
  cnet_socket_t *c = cnet_socket_new(loop, NULL);

  reset();
  S.srv = cnet_create_server(loop, NULL, on_connection, NULL);
  ASSERT_NOT_NULL(S.srv);
  ASSERT_EQ(0, cnet_server_listen_path(S.srv, path, 0, NULL, NULL));
  trace_client(c);
  ASSERT_EQ(0, cnet_socket_connect_path(c, path, ds08_connect, NULL));
  run_bounded(loop, 3000);
  ASSERT_STR_EQ(CT.buf, "connect ready finish end close(false)");
  ASSERT_STR_EQ(ST.buf, "connection data end finish close(false)");
  ASSERT_EQ(10, S.rx.len);
  ASSERT_MEM_EQ(S.rx.buf, "still fine", 10);
  cnet_socket_free(c);
  finish(loop);
}

/* ---- DS-09: resetAndDestroy inside the socket's own 'error' --------------
 * Node v20.20.2 (test-socket-reset-twice): error:ECONNREFUSED close(true),
 * one 'close'. */

static int ds09_errors;

static void reset_in_error(cnet_socket_t *s, const cnet_event_t *ev,
                           void *ctx) {
  (void)ev;
  (void)ctx;
  ds09_errors++;
  ASSERT_EQ(0, cnet_socket_reset_and_destroy(s));
  ASSERT_EQ(0, cnet_socket_reset_and_destroy(s));
}

TEST_CASE(ds09_reset_and_destroy_in_error_listener_one_close) {
  uv_loop_t *loop = loop_new();
  cnet_socket_t *c = cnet_socket_new(loop, NULL);
  int port = closed_port();

  reset();
  ds09_errors = 0;
  ASSERT_EQ(0, cnet_socket_on(c, CNET_EV_ERROR, reset_in_error, NULL));
  trace_client(c);
  ASSERT_EQ(0, cnet_socket_connect_port(c, port, "127.0.0.1", NULL, NULL));
  run_bounded(loop, 3000);
  ASSERT_STR_EQ(CT.buf, "error:ECONNREFUSED close(true)");
  ASSERT_EQ(1, ds09_errors);
  cnet_socket_free(c);
  loop_finish(loop);
}

/* The same on a connected socket destroyed with an error. */
static void destroy_with_boom(cnet_socket_t *s, const cnet_event_t *ev,
                              void *ctx) {
  cnet_error_t err = {.errnum = UV_EINVAL, .code = "EBOOM", .message = "b"};

  (void)ev;
  (void)ctx;
  cnet_socket_destroy(s, &err);
}

TEST_CASE(ds09_reset_and_destroy_in_error_after_destroy_err_one_close) {
  uv_loop_t *loop = loop_new();
  cnet_socket_t *c;

  reset();
  ds09_errors = 0;
  c = connect_client(loop, start_server(loop, NULL), destroy_with_boom, NULL);
  ASSERT_EQ(
      0, cnet_socket_prepend_listener(c, CNET_EV_ERROR, reset_in_error, NULL));
  run_bounded(loop, 3000);
  ASSERT_STR_EQ(CT.buf, "connect ready error:EBOOM close(true)");
  ASSERT_EQ(1, ds09_errors);
  /* An ordinary close on the peer's side: no RST after a plain destroy. */
  ASSERT_STR_EQ(ST.buf, "connection end finish close(false)");
  finish(loop);
}

/* ---- pipe: A -> S1 ==pipe==> S2 -> B, B paused for 300 ms ----------------
 * Decision 21: while piped, S1 reads at most S2's high-water mark at a
 * time, and pauses as soon as a write to S2 queues (decision 5), so S2's
 * queue stays within about one high-water mark whatever the sizes. We
 * sample writableLength(S2) at every 'data' of S1 (before and, adding the
 * read, after its pipe write), at every 'drain' of S2 and once per loop
 * iteration, and insist on max <= hwm + one read <= 2 * hwm. */

#define PIPE_BYTES (8u << 20)

static struct {
  size_t hwm;
  bool s2_is_client; /* S2 made by cnet_socket_new with the option */
  bool meddle;       /* resume S1 whenever the pipe has paused it */
  unsigned meddles;
  cnet_server_t *srv;
  cnet_socket_t *a, *b, *s1, *s2;
  char *buf;
  uint64_t b_received;
  size_t max_before, max_read, max_after, max_loop, max_drain;
  unsigned s1_datas, s2_drains, a_drains;
  int closes;
  bool b_end;
  uv_timer_t resume_timer;
  uv_check_t check;
} P;

static void pipe_sample_loop(uv_check_t *h) {
  size_t n;

  (void)h;
  if (P.s2 == NULL)
    return;
  n = cnet_socket_writable_length(P.s2);
  if (n > P.max_loop)
    P.max_loop = n;
  if (P.meddle && P.meddles < 3 && P.s1 != NULL &&
      cnet_socket_is_paused(P.s1) && P.b_received == 0) {
    P.meddles++;
    cnet_socket_resume(P.s1);
  }
}

static void pipe_s1_data(cnet_socket_t *s, const cnet_event_t *ev, void *ctx) {
  size_t before = cnet_socket_writable_length(P.s2);

  (void)s;
  (void)ctx;
  P.s1_datas++;
  if (before > P.max_before)
    P.max_before = before;
  if (ev->data.len > P.max_read)
    P.max_read = ev->data.len;
  if (before + ev->data.len > P.max_after)
    P.max_after = before + ev->data.len;
}

static void pipe_s2_drain(cnet_socket_t *s, const cnet_event_t *ev, void *ctx) {
  size_t n = cnet_socket_writable_length(s);

  (void)ev;
  (void)ctx;
  P.s2_drains++;
  if (n > P.max_drain)
    P.max_drain = n;
}

static void pipe_a_drain(cnet_socket_t *s, const cnet_event_t *ev, void *ctx) {
  (void)s;
  (void)ev;
  (void)ctx;
  P.a_drains++;
}

static void pipe_b_data(cnet_socket_t *s, const cnet_event_t *ev, void *ctx) {
  (void)s;
  (void)ctx;
  for (size_t i = 0; i < ev->data.len; i++)
    if ((unsigned char)ev->data.base[i] != pat(P.b_received + i))
      FAIL("B: byte %llu differs", (unsigned long long)(P.b_received + i));
  P.b_received += ev->data.len;
}

static void pipe_b_end(cnet_socket_t *s, const cnet_event_t *ev, void *ctx) {
  (void)s;
  (void)ev;
  (void)ctx;
  P.b_end = true;
  ASSERT_EQ(PIPE_BYTES, P.b_received);
}

static void pipe_close(cnet_socket_t *s, const cnet_event_t *ev, void *ctx) {
  (void)s;
  (void)ctx;
  ASSERT(!ev->close.had_error);
  if (++P.closes == 4)
    uv_close((uv_handle_t *)&P.check, NULL);
}

static void pipe_resume_b(uv_timer_t *t) {
  ASSERT(cnet_socket_is_paused(P.b));
  ASSERT_EQ(0, P.b_received);
  ASSERT_GT(P.s2_drains + cnet_socket_writable_length(P.s2), 0);
  cnet_socket_resume(P.b);
  uv_close((uv_handle_t *)t, NULL);
}

static void pipe_on_connection(cnet_server_t *srv, const cnet_event_t *ev,
                               void *ctx) {
  cnet_socket_t *s = ev->connection;
  uv_loop_t *loop = cnet_server_loop(srv);
  cnet_connect_options_t o = {.host = "127.0.0.1", .port = server_port(srv)};

  (void)ctx;
  ASSERT_EQ(0, cnet_socket_on(s, CNET_EV_CLOSE, pipe_close, NULL));
  if (P.s2_is_client && P.s1 == NULL) {
    cnet_socket_options_t so = {.high_water_mark = P.hwm};
    P.s1 = s; /* paused (pause_on_connect); pipe() resumes it */
    P.s2 = cnet_socket_new(loop, &so);
    ASSERT_NOT_NULL(P.s2);
    ASSERT_EQ(0, cnet_socket_on(P.s2, CNET_EV_CLOSE, pipe_close, NULL));
    ASSERT_EQ(0, cnet_socket_connect(P.s2, &o, NULL, NULL));
    return;
  }
  if (P.s2_is_client) {
    P.b = s; /* paused (pause_on_connect) */
    ASSERT(cnet_socket_is_paused(P.b));
    ASSERT_EQ(0, cnet_socket_on(P.b, CNET_EV_DATA, pipe_b_data, NULL));
    ASSERT_EQ(0, cnet_socket_on(P.b, CNET_EV_END, pipe_b_end, NULL));
  } else if (P.s1 == NULL) {
    P.s1 = s;
    P.b = cnet_create_connection(loop, &o, NULL, NULL);
    ASSERT_NOT_NULL(P.b);
    cnet_socket_pause(P.b); /* honoured while connecting (RD-01) */
    ASSERT_EQ(0, cnet_socket_on(P.b, CNET_EV_DATA, pipe_b_data, NULL));
    ASSERT(cnet_socket_is_paused(P.b));
    ASSERT_EQ(0, cnet_socket_on(P.b, CNET_EV_END, pipe_b_end, NULL));
    ASSERT_EQ(0, cnet_socket_on(P.b, CNET_EV_CLOSE, pipe_close, NULL));
    return;
  } else {
    P.s2 = s;
  }
  cnet_server_close(srv, NULL, NULL);
  ASSERT_EQ(0, cnet_socket_on(P.s1, CNET_EV_DATA, pipe_s1_data, NULL));
  ASSERT_EQ(0, cnet_socket_on(P.s2, CNET_EV_DRAIN, pipe_s2_drain, NULL));
  ASSERT_EQ(0, cnet_socket_pipe(P.s1, P.s2, NULL));
  /* Only now does A send: nothing was read by S1 before the pipe. */
  ASSERT_EQ(0, cnet_socket_write(P.a, P.buf, PIPE_BYTES, NULL, NULL));
  ASSERT_EQ(0, cnet_socket_end(P.a, NULL, 0, NULL, NULL));
  ASSERT_EQ(0, uv_timer_init(loop, &P.resume_timer));
  ASSERT_EQ(0, uv_timer_start(&P.resume_timer, pipe_resume_b, 300, 0));
}

static void run_slow_reader_pipe(size_t hwm_option, size_t hwm,
                                 bool s2_is_client, bool meddle) {
  uv_loop_t *loop = loop_new();
  cnet_server_options_t so = {.high_water_mark = hwm_option};
  cnet_connect_options_t o = {.host = "127.0.0.1"};

  reset();
  memset(&P, 0, sizeof(P));
  P.hwm = hwm;
  P.s2_is_client = s2_is_client;
  P.meddle = meddle;
  if (s2_is_client) {
    so.high_water_mark = 0; /* the option is S2's own */
    so.pause_on_connect = true;
  }
  P.buf = malloc(PIPE_BYTES);
  ASSERT_NOT_NULL(P.buf);
  for (size_t i = 0; i < PIPE_BYTES; i++)
    P.buf[i] = (char)pat(i);
  P.srv = cnet_create_server(loop, &so, pipe_on_connection, NULL);
  ASSERT_NOT_NULL(P.srv);
  ASSERT_EQ(0, cnet_server_listen_port(P.srv, 0, "127.0.0.1", 0, NULL, NULL));
  o.port = server_port(P.srv);
  ASSERT_EQ(0, uv_check_init(loop, &P.check));
  ASSERT_EQ(0, uv_check_start(&P.check, pipe_sample_loop));
  uv_unref((uv_handle_t *)&P.check);
  P.a = cnet_create_connection(loop, &o, NULL, NULL);
  ASSERT_NOT_NULL(P.a);
  ASSERT_EQ(0, cnet_socket_on(P.a, CNET_EV_DRAIN, pipe_a_drain, NULL));
  ASSERT_EQ(0, cnet_socket_on(P.a, CNET_EV_CLOSE, pipe_close, NULL));
  run_bounded(loop, 8000);
  fprintf(stderr,
          "  [hwm %zu] S1 reads %u (max %zu); S2 queue max: before a write "
          "%zu, after %zu, per loop %zu, at drain %zu; S2 drains %u\n",
          hwm, P.s1_datas, P.max_read, P.max_before, P.max_after, P.max_loop,
          P.max_drain, P.s2_drains);
  ASSERT_EQ(PIPE_BYTES, P.b_received);
  ASSERT(P.b_end);
  ASSERT_EQ(4, P.closes);
  ASSERT_GT(P.s2_drains, 0); /* the slow reader did push back */
  ASSERT_EQ(0, P.a_drains);  /* A ended right away: no 'drain' after end() */
  /* Decision 21: one read is at most the loop's 64 KiB slab, and a slow
   * destination holds at most one read past its high-water mark. */
  ASSERT_LT(P.max_read, 65536 + 1);
  if (meddle) { /* each resume() lets one more read in, then it pauses */
    ASSERT_EQ(3, P.meddles);
    ASSERT_LT(P.max_after, hwm + 4 * 65536 + 1);
    ASSERT_LT(P.max_loop, hwm + 4 * 65536 + 1);
  } else {
    ASSERT_LT(P.max_after, hwm + 65536 + 1);
    ASSERT_LT(P.max_loop, hwm + 65536 + 1);
  }
  ASSERT_EQ(0, P.max_drain);
  free(P.buf);
  if (s2_is_client)
    cnet_socket_free(P.s2);
  cnet_server_free(P.srv);
  loop_finish(loop);
}

TEST_CASE(pipe_slow_reader_queue_within_default_high_water_mark) {
  run_slow_reader_pipe(0, 16384, false, false);
}

TEST_CASE(pipe_slow_reader_queue_within_high_water_mark_4096) {
  run_slow_reader_pipe(4096, 4096, false, false);
}

/* Node's pipe pauses its source on every write() that returns false, so a
 * user's resume() of a source the pipe paused lets one read through, no
 * more: after three such resume()s S2's queue is still within hwm + four
 * reads (before the fix the pipe never paused it again: 4.4 MB). */
TEST_CASE(pipe_slow_reader_resumed_source_pauses_again) {
  run_slow_reader_pipe(4096, 4096, false, true);
}

/* The same with S2 a client socket given high_water_mark 4096 through
 * cnet_socket_options_t, and B the server's (paused) side. */
TEST_CASE(pipe_slow_reader_queue_within_socket_option_4096) {
  run_slow_reader_pipe(4096, 4096, true, false);
}

/* ---- unpipe stops the flow -------------------------------------------------
 * Node v20.20.2 (A -> S1 ==pipe==> S2 -> B): B gets "first"; then
 * S1.unpipe(S2) -> S1.isPaused() true (readableFlowing false: unpipe of
 * the last destination pauses the source); A writes "second": B gets
 * nothing more, and the bytes wait in S1 until a 'data' listener and
 * resume() take them: S1:second. Nothing is lost. */

static struct {
  cnet_socket_t *a, *b, *s1, *s2;
  trace_t t;
  size_t b_len;
  uv_timer_t timer;
  int step;
} U;

static void unpipe_s1_data(cnet_socket_t *s, const cnet_event_t *ev,
                           void *ctx) {
  char w[64];

  (void)s;
  (void)ctx;
  snprintf(w, sizeof(w), "S1:%.*s", (int)ev->data.len, ev->data.base);
  trace_add(&U.t, w);
}

static void unpipe_step(uv_timer_t *t) {
  char w[64];

  if (U.step++ == 0) {
    snprintf(w, sizeof(w), "later:B=%zu,S1read=%llu", U.b_len,
             (unsigned long long)cnet_socket_bytes_read(U.s1));
    trace_add(&U.t, w);
    ASSERT_EQ(0, cnet_socket_on(U.s1, CNET_EV_DATA, unpipe_s1_data, NULL));
    cnet_socket_resume(U.s1);
    ASSERT_EQ(0, uv_timer_start(t, unpipe_step, 100, 0));
    return;
  }
  snprintf(w, sizeof(w), "end:B=%zu", U.b_len);
  trace_add(&U.t, w);
  ASSERT_EQ(0, cnet_socket_end(U.a, NULL, 0, NULL, NULL));
  ASSERT_EQ(0, cnet_socket_end(U.s2, NULL, 0, NULL, NULL));
  uv_close((uv_handle_t *)t, NULL);
}

static void unpipe_b_data(cnet_socket_t *s, const cnet_event_t *ev, void *ctx) {
  char w[64];

  (void)s;
  (void)ctx;
  U.b_len += ev->data.len;
  snprintf(w, sizeof(w), "B:%.*s", (int)ev->data.len, ev->data.base);
  trace_add(&U.t, w);
  if (U.b_len != 5)
    return;
  ASSERT_EQ(0, cnet_socket_unpipe(U.s1, U.s2));
  snprintf(w, sizeof(w), "unpiped paused=%d", cnet_socket_is_paused(U.s1));
  trace_add(&U.t, w);
  ASSERT_EQ(1, cnet_socket_write(U.a, "second", 6, NULL, NULL));
  ASSERT_EQ(0, uv_timer_init(cnet_socket_loop(s), &U.timer));
  ASSERT_EQ(0, uv_timer_start(&U.timer, unpipe_step, 100, 0));
}

static void unpipe_on_connection(cnet_server_t *srv, const cnet_event_t *ev,
                                 void *ctx) {
  cnet_connect_options_t o = {.host = "127.0.0.1", .port = server_port(srv)};

  (void)ctx;
  if (U.s1 == NULL) {
    U.s1 = ev->connection;
    U.b = cnet_create_connection(cnet_server_loop(srv), &o, NULL, NULL);
    ASSERT_NOT_NULL(U.b);
    ASSERT_EQ(0, cnet_socket_on(U.b, CNET_EV_DATA, unpipe_b_data, NULL));
    return;
  }
  U.s2 = ev->connection;
  cnet_server_close(srv, NULL, NULL);
  ASSERT_EQ(0, cnet_socket_pipe(U.s1, U.s2, NULL));
  ASSERT_GE(cnet_socket_write(U.a, "first", 5, NULL, NULL), 0);
}

static void run_unpipe(void) {
  uv_loop_t *loop = loop_new();
  cnet_connect_options_t o = {.host = "127.0.0.1"};
  cnet_server_t *srv;

  reset();
  memset(&U, 0, sizeof(U));
  srv = cnet_create_server(loop, NULL, unpipe_on_connection, NULL);
  ASSERT_NOT_NULL(srv);
  ASSERT_EQ(0, cnet_server_listen_port(srv, 0, "127.0.0.1", 0, NULL, NULL));
  o.port = server_port(srv);
  U.a = cnet_create_connection(loop, &o, NULL, NULL);
  ASSERT_NOT_NULL(U.a);
  run_bounded(loop, 3000);
  cnet_server_free(srv);
  loop_finish(loop);
}

TEST_CASE(pipe_unpipe_stops_the_flow) {
  run_unpipe();
  /* B never sees "second". */
  ASSERT_NOT_NULL(strstr(U.t.buf, "later:B=5,"));
  ASSERT_NOT_NULL(strstr(U.t.buf, "end:B=5"));
  ASSERT_NULL(strstr(U.t.buf, "B:second"));
}

TEST_CASE(pipe_unpipe_pauses_the_source_nothing_lost) {
  run_unpipe();
  /* S1read: Node reads on into its buffer while paused (11); cnet reads
   * nothing while paused (decision 4), so "second" waits in the kernel. */
  ASSERT_STR_EQ(U.t.buf, "B:first unpiped paused=1 later:B=5,S1read=5 "
                         "S1:second end:B=5");
}
