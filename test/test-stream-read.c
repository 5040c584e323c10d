/* Sockets as readable streams over loopback: pause/resume and bytesRead
 * (RD-01, RD-02, RD-04), setEncoding on real connections (RD-03), the
 * onread option (RD-05..RD-07), the idle timeout (TO-01..TO-09, ST-12,
 * RF-05), socket options before connect (OP-02, OP-03), socket ref/unref
 * (RF-03) and socket properties (SC-01, ST-01, ST-02, ST-07, ST-10, ST-11,
 * correction 5) -- NODE-NET-BEHAVIOURS 1.9, 1.10, 1.16, 1.19, 1.21, 1.22, 7.
 * SV-07 (pause_on_connect) is in test-server-limits.c; the decoder itself,
 * without sockets, in test-encoding.c.
 *
 * What Node v20.20.2 gives for the same scenarios (short scripts):
 *   setEncoding, one write every 30 ms, then end():
 *     utf8 e2|82|ac|f0|9f|98|80  -> data "€", data "😀", end
 *     utf8 41|f0|9f              -> data "A", data "\ufffd", end
 *     base64 01020304            -> data "AQID", data "BA==", end
 *     hex dead|be|ef             -> data "dead", data "be", data "ef", end
 *     utf16le 41003d|d800de      -> data "A", data "😀", end
 *     utf16le 410042             -> data "A", end (the odd byte is dropped)
 *   onread, the peer sends end("hello world"):
 *     buffer() returning 2-byte buffers: 7 calls, reads he|ll|o |wo|rl|d,
 *     no 'data', 'end', bytesRead 11
 *     a 4-byte static buffer, the first callback returns false, resume()
 *     100 ms later: "hell" resume "o wo" "rld" end; the callback's buffer
 *     is the static one every time
 *   setTimeout: s.setTimeout(3e9) -> s.timeout 3000000000 (the timer is
 *     clamped, the property is not); after destroy(), setTimeout(-1) does
 *     not throw; on a live socket it throws ERR_OUT_OF_RANGE "The value of
 *     "msecs" is out of range. It must be a non-negative finite number.
 *     Received -1".
 *   new net.Socket(): timeout undefined (cnet: 0), readyState "open",
 *     pending true, connecting false, destroyed false, bytesRead 0,
 *     server null, isPaused() false.
 *
 * Timing cases measure on the loop's clock (uv_now), the one libuv's timers
 * and cnet's idle check use, so lower bounds are exact; upper bounds leave
 * generous room (valgrind). */
#include "harness.h"

#include <netinet/tcp.h>

static uint64_t now_ms(void) {
  return uv_hrtime() / 1000000u;
}


static void nothing(void *arg) {
  (void)arg;
}

/* ---- recording a socket's events ---------------------------------------- */

typedef struct {
  trace_t t;
  int data, ends, finishes, closes, errors;
  char buf[4096]; /* every byte of every 'data', in order */
  size_t len;
  bool words;   /* each 'data' is a word "data:<content>" */
  bool text;    /* ...content as text, else hex */
  bool decoded; /* setEncoding: a NUL must follow each 'data' */
  uint64_t bytes_read_at_end, bytes_read_at_close;
} rec_t;

static rec_t SR, CR; /* the accepted socket, the client */

static void rec_data_word(rec_t *r, const char *base, size_t len) {
  char w[160];
  size_t n = (size_t)snprintf(w, sizeof(w), "data:");

  for (size_t i = 0; i < len && n + 3 < sizeof(w); i++)
    n += (size_t)(r->text ? snprintf(w + n, sizeof(w) - n, "%c", base[i])
                          : snprintf(w + n, sizeof(w) - n, "%02x",
                                     (unsigned char)base[i]));
  trace_add(&r->t, w);
}

static void rec_event(cnet_socket_t *s, const cnet_event_t *ev, void *ctx) {
  rec_t *r = ctx;

  switch (ev->type) {
  case CNET_EV_DATA:
    ASSERT_GT(ev->data.len, 0);
    if (r->decoded)
      ASSERT_EQ(0, ev->data.base[ev->data.len]);
    ASSERT(r->len + ev->data.len <= sizeof(r->buf));
    memcpy(r->buf + r->len, ev->data.base, ev->data.len); /* valid only now */
    r->len += ev->data.len;
    r->data++;
    if (r->words)
      rec_data_word(r, ev->data.base, ev->data.len);
    else if (r->t.len < 4 || strcmp(r->t.buf + r->t.len - 4, "data") != 0)
      trace_add(&r->t, "data"); /* consecutive reads are one word */
    break;
  case CNET_EV_END:
    r->ends++;
    r->bytes_read_at_end = cnet_socket_bytes_read(s);
    trace_add(&r->t, "end");
    break;
  case CNET_EV_FINISH:
    r->finishes++;
    trace_add(&r->t, "finish");
    break;
  case CNET_EV_ERROR:
    r->errors++;
    trace_add(&r->t, "error");
    break;
  case CNET_EV_CLOSE:
    r->closes++;
    r->bytes_read_at_close = cnet_socket_bytes_read(s);
    trace_add(&r->t, ev->close.had_error ? "close(true)" : "close(false)");
    break;
  default:
    trace_add(&r->t, cnet_event_name(ev->type));
    break;
  }
}

/* data, end, finish, error, close into r. */
static void rec_on(cnet_socket_t *s, rec_t *r) {
  static const cnet_event_type_t types[] = {
      CNET_EV_DATA, CNET_EV_END, CNET_EV_FINISH, CNET_EV_ERROR, CNET_EV_CLOSE};

  for (size_t i = 0; i < ARRAY_LEN(types); i++)
    ASSERT_EQ(0, cnet_socket_on(s, types[i], rec_event, r));
}

/* ---- a server for one connection ---------------------------------------- */

typedef void (*conn_hook_fn)(cnet_socket_t *s);

static struct {
  cnet_server_t *srv;
  cnet_socket_t *conn; /* the accepted socket; NULL after its 'close' */
  int port;
  int connections;
  conn_hook_fn hook;
} S;

static void conn_gone(cnet_socket_t *s, const cnet_event_t *ev, void *ctx) {
  (void)ev;
  (void)ctx;
  if (S.conn == s)
    S.conn = NULL;
}

static void on_connection(cnet_server_t *srv, const cnet_event_t *ev,
                          void *ctx) {
  (void)ctx;
  S.conn = ev->connection;
  S.connections++;
  ASSERT_EQ(0, cnet_server_close(srv, NULL, NULL)); /* one per test */
  if (S.hook != NULL)
    S.hook(S.conn);
  /* Last: it runs after the hook's own 'close' listeners. */
  ASSERT_EQ(0, cnet_socket_on(S.conn, CNET_EV_CLOSE, conn_gone, NULL));
}

static void reset(void) {
  memset(&S, 0, sizeof(S));
  memset(&SR, 0, sizeof(SR));
  memset(&CR, 0, sizeof(CR));
}

/* Listens on 127.0.0.1 port 0; returns the port. */
static int start_server(uv_loop_t *loop, conn_hook_fn hook) {
  S.srv = cnet_create_server(loop, NULL, on_connection, NULL);
  ASSERT_NOT_NULL(S.srv);
  S.hook = hook;
  ASSERT_EQ(0, cnet_server_listen_port(S.srv, 0, "127.0.0.1", 0, NULL, NULL));
  S.port = server_port(S.srv);
  return S.port;
}

static cnet_socket_t *client(uv_loop_t *loop, int port, cnet_socket_listener cb,
                             void *ctx) {
  cnet_connect_options_t o = {.port = port, .host = "127.0.0.1"};
  cnet_socket_t *c = cnet_create_connection(loop, &o, cb, ctx);

  ASSERT_NOT_NULL(c);
  return c;
}

static void finish(uv_loop_t *loop) {
  cnet_server_free(S.srv);
  loop_finish(loop);
}

/* ---- drip: pieces written one at a time, each once the reader has read
 * the previous one, at least 20 ms apart ---------------------------------- */

#define DRIP_MAX 16

static struct {
  uv_timer_t timer;
  cnet_socket_t *writer;
  cnet_socket_t **reader; /* where the reading end is (may still be NULL) */
  const unsigned char *bytes;
  size_t lens[DRIP_MAX];
  size_t npieces, next, sent;
  void (*step)(size_t done); /* after `done` pieces were read */
  bool end;                  /* end() the writer after the last piece */
} D;

static void drip_tick(uv_timer_t *t) {
  cnet_socket_t *r = *D.reader;

  if (D.next > 0) {
    if (r == NULL || cnet_socket_bytes_read(r) < D.sent)
      return; /* not read yet: look again on the next tick */
    ASSERT_EQ(D.sent, cnet_socket_bytes_read(r));
    if (D.step != NULL)
      D.step(D.next);
  }
  if (D.next == D.npieces) {
    uv_close((uv_handle_t *)t, NULL);
    if (D.end)
      ASSERT_EQ(0, cnet_socket_end(D.writer, NULL, 0, NULL, NULL));
    return;
  }
  ASSERT_GE(
      cnet_socket_write(D.writer, D.bytes + D.sent, D.lens[D.next], NULL, NULL),
      0);
  D.sent += D.lens[D.next];
  D.next++;
}

/* lens: piece sizes, 0-terminated. */
static void drip_start(cnet_socket_t *writer, cnet_socket_t **reader,
                       const void *bytes, const size_t *lens,
                       void (*step)(size_t), bool end) {
  D.writer = writer;
  D.reader = reader;
  D.bytes = bytes;
  D.npieces = 0;
  while (lens[D.npieces] != 0) {
    ASSERT(D.npieces < DRIP_MAX);
    D.lens[D.npieces] = lens[D.npieces];
    D.npieces++;
  }
  D.next = D.sent = 0;
  D.step = step;
  D.end = end;
  cnet_socket_set_no_delay(writer, true); /* no Nagle merging */
  ASSERT_EQ(0, uv_timer_init(cnet_socket_loop(writer), &D.timer));
  ASSERT_EQ(0, uv_timer_start(&D.timer, drip_tick, 20, 20));
}

/* ---- RD-01: pause / resume ------------------------------------------------
 */

static void rd01_resume(void *arg) {
  cnet_socket_t *s = arg;

  /* 150 ms after the client sent everything and its FIN: paused, nothing
   * read (a paused cnet socket reads nothing at all), no 'end'. */
  ASSERT(cnet_socket_is_paused(s));
  ASSERT_EQ(0, SR.data);
  ASSERT_EQ(0, SR.ends);
  ASSERT_EQ(0, cnet_socket_bytes_read(s));
  ASSERT_STR_EQ(cnet_socket_ready_state(s), "open");
  trace_add(&SR.t, "resume");
  cnet_socket_resume(s);
  ASSERT(!cnet_socket_is_paused(s));
  cnet_socket_release(s);
}

static void rd01_pause_hook(cnet_socket_t *s) {
  rec_on(s, &SR); /* the 'data' listener starts the flow... */
  ASSERT(!cnet_socket_is_paused(s));
  cnet_socket_pause(s); /* ...and pause() stops it */
  ASSERT(cnet_socket_is_paused(s));
  cnet_socket_retain(s);
  later(cnet_socket_loop(s), 150, rd01_resume, s, true);
}

static void rd01_send(cnet_socket_t *s, const cnet_event_t *ev, void *ctx) {
  (void)ev;
  (void)ctx;
  ASSERT_GE(cnet_socket_write(s, "abc", 3, NULL, NULL), 0);
  ASSERT_EQ(0, cnet_socket_end(s, "def", 3, NULL, NULL));
}

TEST_CASE(rd01_paused_socket_gets_no_data_and_loses_nothing) {
  uv_loop_t *loop = loop_new();
  int port;

  reset();
  port = start_server(loop, rd01_pause_hook);
  client(loop, port, rd01_send, NULL);
  run_bounded(loop, 3000);
  ASSERT_STR_EQ(SR.t.buf, "resume data end finish close(false)");
  ASSERT_EQ(6, SR.len);
  ASSERT_MEM_EQ(SR.buf, "abcdef", 6);
  ASSERT_EQ(1, SR.ends);
  ASSERT_EQ(6, SR.bytes_read_at_end);
  finish(loop);
}

/* RD-01, calls made while connecting: the final state wins. */
static void end_hi(cnet_socket_t *s) {
  ASSERT_EQ(0, cnet_socket_end(s, "hi", 2, NULL, NULL));
}

TEST_CASE(rd01_connecting_pause_then_resume_reads) {
  uv_loop_t *loop = loop_new();
  cnet_socket_t *c = cnet_socket_new(loop, NULL);
  int port;

  reset();
  port = start_server(loop, end_hi);
  rec_on(c, &CR);
  ASSERT_EQ(0, cnet_socket_connect_port(c, port, "127.0.0.1", NULL, NULL));
  cnet_socket_pause(c);
  cnet_socket_resume(c);
  ASSERT(!cnet_socket_is_paused(c));
  run_bounded(loop, 3000);
  ASSERT_STR_EQ(CR.t.buf, "data end finish close(false)");
  ASSERT_EQ(2, CR.len);
  ASSERT_MEM_EQ(CR.buf, "hi", 2);
  ASSERT_EQ(1, CR.ends);
  cnet_socket_free(c);
  finish(loop);
}

static void rd01_check_then_resume(void *arg) {
  cnet_socket_t *c = arg;

  ASSERT(cnet_socket_is_paused(c));
  ASSERT(!cnet_socket_connecting(c));
  ASSERT_EQ(0, CR.data);
  ASSERT_EQ(0, CR.ends);
  ASSERT_EQ(0, cnet_socket_bytes_read(c));
  trace_add(&CR.t, "resume");
  cnet_socket_resume(c);
}

static void trace_connect(cnet_socket_t *s, const cnet_event_t *ev, void *ctx) {
  (void)s;
  (void)ev;
  trace_add(&((rec_t *)ctx)->t, "connect");
}

TEST_CASE(rd01_connecting_resume_then_pause_reads_nothing) {
  uv_loop_t *loop = loop_new();
  cnet_socket_t *c = cnet_socket_new(loop, NULL);
  int port;

  reset();
  port = start_server(loop, end_hi);
  rec_on(c, &CR);
  ASSERT_EQ(0,
            cnet_socket_connect_port(c, port, "127.0.0.1", trace_connect, &CR));
  cnet_socket_resume(c);
  cnet_socket_pause(c);
  ASSERT(cnet_socket_is_paused(c));
  later(loop, 200, rd01_check_then_resume, c, true);
  run_bounded(loop, 3000);
  ASSERT_STR_EQ(CR.t.buf, "connect resume data end finish close(false)");
  ASSERT_EQ(2, CR.len);
  ASSERT_MEM_EQ(CR.buf, "hi", 2);
  cnet_socket_free(c);
  finish(loop);
}

/* ---- RD-02: pause() inside 'data' ---------------------------------------- */

static cnet_socket_t *rd02_client;

static void rd02_resume(void *arg) {
  cnet_socket_t *s = arg;

  ASSERT(cnet_socket_is_paused(s));
  ASSERT_EQ(1, SR.data);
  ASSERT_EQ(5, cnet_socket_bytes_read(s)); /* "second" is not read */
  trace_add(&SR.t, "resume");
  cnet_socket_resume(s);
  cnet_socket_release(s);
}

static void rd02_data(cnet_socket_t *s, const cnet_event_t *ev, void *ctx) {
  (void)ev;
  (void)ctx;
  if (SR.data != 1)
    return;
  cnet_socket_pause(s);
  trace_add(&SR.t, "pause");
  /* Only now does the client send the rest, and its FIN. */
  ASSERT_EQ(0, cnet_socket_end(rd02_client, "second", 6, NULL, NULL));
  cnet_socket_retain(s);
  later(cnet_socket_loop(s), 100, rd02_resume, s, true);
}

static void rd02_hook(cnet_socket_t *s) {
  SR.words = SR.text = true;
  rec_on(s, &SR);
  ASSERT_EQ(0, cnet_socket_on(s, CNET_EV_DATA, rd02_data, NULL));
}

static void write_first(cnet_socket_t *s, const cnet_event_t *ev, void *ctx) {
  (void)ev;
  (void)ctx;
  ASSERT_GE(cnet_socket_write(s, "first", 5, NULL, NULL), 0);
}

TEST_CASE(rd02_pause_inside_data_holds_further_data_until_resume) {
  uv_loop_t *loop = loop_new();
  int port;

  reset();
  port = start_server(loop, rd02_hook);
  rd02_client = client(loop, port, write_first, NULL);
  run_bounded(loop, 3000);
  ASSERT_STR_EQ(SR.t.buf,
                "data:first pause resume data:second end finish close(false)");
  ASSERT_EQ(1, SR.ends);
  ASSERT_EQ(11, SR.bytes_read_at_close);
  finish(loop);
}

/* ---- RD-04: bytesRead -----------------------------------------------------
 */

static cnet_socket_t *rd04_client;
static char rd04_growth[64];

static void rd04_data(cnet_socket_t *s, const cnet_event_t *ev, void *ctx) {
  size_t n = strlen(rd04_growth);

  (void)ev;
  (void)ctx;
  /* rec_event ran first: CR.len counts this chunk already. */
  ASSERT_EQ(CR.len, cnet_socket_bytes_read(s));
  snprintf(rd04_growth + n, sizeof(rd04_growth) - n, "%s%llu", n ? " " : "",
           (unsigned long long)cnet_socket_bytes_read(s));
}

static void rd04_hook(cnet_socket_t *s) {
  static const size_t lens[] = {3, 5, 1, 0};

  drip_start(s, &rd04_client, "aaabbbbbc", lens, NULL, true);
}

TEST_CASE(rd04_bytes_read_grows_equals_total_at_end_survives_close) {
  uv_loop_t *loop = loop_new();
  cnet_socket_t *c = cnet_socket_new(loop, NULL);
  int port;

  reset();
  memset(rd04_growth, 0, sizeof(rd04_growth));
  rd04_client = c;
  port = start_server(loop, rd04_hook);
  rec_on(c, &CR);
  ASSERT_EQ(0, cnet_socket_on(c, CNET_EV_DATA, rd04_data, NULL));
  ASSERT_EQ(0, cnet_socket_connect_port(c, port, "127.0.0.1", NULL, NULL));
  ASSERT_EQ(0, cnet_socket_bytes_read(c));
  run_bounded(loop, 3000);
  ASSERT_STR_EQ(rd04_growth, "3 8 9");
  ASSERT_STR_EQ(CR.t.buf, "data end finish close(false)");
  ASSERT_EQ(1, CR.ends);
  ASSERT_EQ(9, CR.bytes_read_at_end);
  ASSERT_EQ(9, CR.bytes_read_at_close);
  ASSERT(cnet_socket_destroyed(c));
  ASSERT_EQ(9, cnet_socket_bytes_read(c)); /* the handle is gone */
  ASSERT_MEM_EQ(CR.buf, "aaabbbbbc", 9);
  cnet_socket_free(c);
  finish(loop);
}

/* ---- RD-03: setEncoding on real connections ------------------------------ */

static struct {
  const char *encoding;
  const int *want_data; /* 'data' count after each piece was read */
} E;

static void enc_hook(cnet_socket_t *s) {
  ASSERT_EQ(0, cnet_socket_set_encoding(s, E.encoding));
  SR.words = SR.decoded = true;
  rec_on(s, &SR);
}

static void enc_step(size_t done) {
  if (E.want_data != NULL && E.want_data[done - 1] != SR.data)
    FAIL("after %zu pieces read: %d 'data' events, want %d (trace: %s)", done,
         SR.data, E.want_data[done - 1], SR.t.buf);
}

static const void *enc_bytes;
static const size_t *enc_lens;

static void enc_drip(cnet_socket_t *c, const cnet_event_t *ev, void *ctx) {
  (void)ev;
  (void)ctx;
  drip_start(c, &S.conn, enc_bytes, enc_lens, enc_step, true);
}

/* The client writes the pieces, each once the server has read the one
 * before, then ends; returns the server's trace. text: words show the
 * decoded text as is (base64, hex), else in hex (utf8, utf16le). */
static const char *enc_run(const char *encoding, bool text, const void *bytes,
                           const size_t *lens, const int *want_data) {
  uv_loop_t *loop = loop_new();
  int port;

  reset();
  E.encoding = encoding;
  E.want_data = want_data;
  enc_bytes = bytes;
  enc_lens = lens;
  port = start_server(loop, enc_hook);
  SR.text = text;
  client(loop, port, enc_drip, NULL);
  run_bounded(loop, 5000);
  ASSERT_EQ(1, SR.ends);
  finish(loop);
  return SR.t.buf;
}

/* A 3-byte and a 4-byte character, one byte per write: no 'data' for the
 * partial ones, each character whole in one 'data'. */
TEST_CASE(rd03_utf8_one_byte_per_write_whole_characters_only) {
  static const size_t lens[] = {1, 1, 1, 1, 1, 1, 1, 0};
  static const int want[] = {0, 0, 1, 1, 1, 1, 2};

  ASSERT_STR_EQ(
      enc_run("utf8", false, "\xe2\x82\xac\xf0\x9f\x98\x80", lens, want),
      "data:e282ac data:f09f9880 end finish close(false)");
  ASSERT_EQ(2, SR.data);
  ASSERT_EQ(7, SR.len);
  ASSERT_MEM_EQ(SR.buf, "\xe2\x82\xac\xf0\x9f\x98\x80", 7);
  ASSERT_EQ(7, SR.bytes_read_at_end);
}

/* Correction 11: a character cut by the FIN arrives as one U+FFFD, in a
 * last 'data' just before 'end'. */
TEST_CASE(rd03_utf8_cut_character_at_fin_is_one_replacement_before_end) {
  static const size_t lens[] = {1, 1, 1, 0};
  static const int want[] = {1, 1, 1};

  ASSERT_STR_EQ(enc_run("utf8", false, "A\xf0\x9f", lens, want),
                "data:41 data:efbfbd end finish close(false)");
  ASSERT_EQ(3, SR.bytes_read_at_end);
}

/* 4 bytes in one write: "AQID" at once, the last byte kept and flushed,
 * padded, at the FIN. */
TEST_CASE(rd03_base64_remainder_flushed_padded_at_fin) {
  static const size_t lens[] = {4, 0};
  static const int want[] = {1};

  ASSERT_STR_EQ(enc_run("base64", true, "\x01\x02\x03\x04", lens, want),
                "data:AQID data:BA== end finish close(false)");
}

/* Two bytes alone make no 'data'; the remainder is carried into the next
 * packet. */
TEST_CASE(rd03_base64_remainder_carried_to_next_packet) {
  static const size_t lens[] = {2, 4, 0};
  static const int want[] = {0, 1};

  ASSERT_STR_EQ(enc_run("base64", true, "\x01\x02\x03\x04\x05\x06", lens, want),
                "data:AQIDBAUG end finish close(false)");
}

TEST_CASE(rd03_hex_every_packet_at_once) {
  static const size_t lens[] = {2, 1, 1, 0};
  static const int want[] = {1, 2, 3};

  ASSERT_STR_EQ(enc_run("hex", true, "\xde\xad\xbe\xef", lens, want),
                "data:dead data:be data:ef end finish close(false)");
}

/* "A😀" as 41 00 3d | d8 00 de: the odd byte waits for its pair, the
 * surrogate pair is one character. */
TEST_CASE(rd03_utf16le_odd_byte_and_surrogate_pair_across_packets) {
  static const size_t lens[] = {3, 3, 0};
  static const int want[] = {1, 2};

  ASSERT_STR_EQ(
      enc_run("utf16le", false, "\x41\x00\x3d\xd8\x00\xde", lens, want),
      "data:41 data:f09f9880 end finish close(false)");
}

/* An odd byte left at the FIN is dropped: no last 'data'. */
TEST_CASE(rd03_utf16le_odd_byte_at_fin_dropped) {
  static const size_t lens[] = {3, 0};
  static const int want[] = {1};

  ASSERT_STR_EQ(enc_run("utf16le", false, "\x41\x00\x42", lens, want),
                "data:41 end finish close(false)");
  ASSERT_EQ(3, SR.bytes_read_at_end);
}

TEST_CASE(rd03_set_encoding_unknown_name) {
  uv_loop_t *loop = loop_new();
  cnet_socket_t *s = cnet_socket_new(loop, NULL);

  ASSERT_EQ(CNET_ERR_UNKNOWN_ENCODING, cnet_socket_set_encoding(s, "nope"));
  ASSERT_EQ(CNET_ERR_UNKNOWN_ENCODING, cnet_last_error()->errnum);
  ASSERT_STR_EQ(cnet_last_error()->code, "ERR_UNKNOWN_ENCODING");
  ASSERT_STR_EQ(cnet_last_error()->message, "Unknown encoding: nope");
  ASSERT_EQ(0, cnet_socket_set_encoding(s, NULL)); /* utf8 */
  ASSERT_EQ(0, cnet_socket_set_encoding(s, "HEX"));
  cnet_socket_free(s);
  loop_finish(loop);
}

/* ---- RD-05..RD-07: the onread option --------------------------------------
 */

static struct {
  char buffer[4];   /* the static buffer */
  char pool[16][2]; /* what get_buffer hands out, a new one each call */
  int get_calls, reads, same, data_events, ends, resumes;
  bool pause_first;  /* the first callback returns false */
  bool pause_inside; /* the first callback calls pause() and returns true */
  trace_t t;         /* reads as "r:<bytes>", and what else happens */
  uint64_t bytes_read_at_close;
} OR;

static bool or_callback(cnet_socket_t *s, char *data, size_t nread, void *ctx) {
  char w[32];

  ASSERT(ctx == &OR);
  ASSERT_GT(nread, 0);
  if (data == OR.buffer)
    OR.same++;
  else /* get_buffer: the memory it handed out for this very read */
    ASSERT(OR.get_calls > 0 && data == OR.pool[OR.get_calls - 1]);
  snprintf(w, sizeof(w), "r:%.*s", (int)nread, data);
  trace_add(&OR.t, w);
  if (OR.reads++ == 0) {
    if (OR.pause_inside) {
      cnet_socket_pause(s);
      return true;
    }
    if (OR.pause_first)
      return false;
  }
  return true;
}

static char *or_get_buffer(cnet_socket_t *s, size_t *len, void *ctx) {
  (void)s;
  ASSERT(ctx == &OR);
  ASSERT(OR.get_calls < (int)ARRAY_LEN(OR.pool));
  *len = sizeof(OR.pool[0]);
  return OR.pool[OR.get_calls++];
}

static void or_event(cnet_socket_t *s, const cnet_event_t *ev, void *ctx) {
  (void)ctx;
  if (ev->type == CNET_EV_DATA) {
    OR.data_events++;
    trace_add(&OR.t, "DATA");
  } else if (ev->type == CNET_EV_END) {
    OR.ends++;
    trace_add(&OR.t, "end");
  } else if (ev->type == CNET_EV_CLOSE) {
    OR.bytes_read_at_close = cnet_socket_bytes_read(s);
    trace_add(&OR.t, "close");
  }
}

/* A 'data' listener too: it must never be called. */
static void or_listen(cnet_socket_t *s) {
  ASSERT_EQ(0, cnet_socket_on(s, CNET_EV_DATA, or_event, NULL));
  ASSERT_EQ(0, cnet_socket_on(s, CNET_EV_END, or_event, NULL));
  ASSERT_EQ(0, cnet_socket_on(s, CNET_EV_CLOSE, or_event, NULL));
}

static void end_hello_world(cnet_socket_t *s) {
  ASSERT_EQ(0, cnet_socket_end(s, "hello world", 11, NULL, NULL));
}

/* The server sends end("hello world"); the client reads with onread. */
static cnet_socket_t *or_client(uv_loop_t *loop, const cnet_onread_t *onread) {
  cnet_connect_options_t o = {.host = "127.0.0.1", .onread = onread};
  cnet_socket_t *c;

  o.port = start_server(loop, end_hello_world);
  c = cnet_create_connection(loop, &o, NULL, NULL);
  ASSERT_NOT_NULL(c);
  or_listen(c);
  return c;
}

TEST_CASE(rd05_onread_static_buffer_reused_no_data_events) {
  uv_loop_t *loop = loop_new();
  cnet_onread_t onread = {.buffer = OR.buffer,
                          .len = sizeof(OR.buffer),
                          .callback = or_callback,
                          .ctx = &OR};

  reset();
  memset(&OR, 0, sizeof(OR));
  or_client(loop, &onread);
  run_bounded(loop, 3000);
  /* The 11 bytes arrive together: 4 + 4 + 3 into the same buffer. */
  ASSERT_STR_EQ(OR.t.buf, "r:hell r:o wo r:rld end close");
  ASSERT_EQ(3, OR.reads);
  ASSERT_EQ(3, OR.same);
  ASSERT_EQ(0, OR.data_events);
  ASSERT_EQ(1, OR.ends);
  ASSERT_EQ(11, OR.bytes_read_at_close);
  finish(loop);
}

/* RD-06: get_buffer before every read, including the one that sees the
 * FIN: 11 bytes in 2-byte buffers -> 6 reads, 7 calls (Node: 7). */
TEST_CASE(rd06_onread_get_buffer_called_before_each_read) {
  uv_loop_t *loop = loop_new();
  cnet_onread_t onread = {
      .get_buffer = or_get_buffer, .callback = or_callback, .ctx = &OR};

  reset();
  memset(&OR, 0, sizeof(OR));
  or_client(loop, &onread);
  run_bounded(loop, 3000);
  ASSERT_STR_EQ(OR.t.buf, "r:he r:ll r:o  r:wo r:rl r:d end close");
  ASSERT_EQ(7, OR.get_calls);
  ASSERT_EQ(6, OR.reads);
  ASSERT_EQ(0, OR.same);
  ASSERT_EQ(0, OR.data_events);
  ASSERT_EQ(11, OR.bytes_read_at_close);
  finish(loop);
}

static void or_resume(void *arg) {
  cnet_socket_t *c = arg;

  ASSERT(cnet_socket_is_paused(c));
  ASSERT_EQ(1, OR.reads);
  ASSERT_EQ(4, cnet_socket_bytes_read(c)); /* nothing more read */
  ASSERT_EQ(0, OR.ends);
  trace_add(&OR.t, "resume");
  cnet_socket_resume(c);
  cnet_socket_release(c);
}

static void or_run_pausing(void) {
  uv_loop_t *loop = loop_new();
  cnet_onread_t onread = {.buffer = OR.buffer,
                          .len = sizeof(OR.buffer),
                          .callback = or_callback,
                          .ctx = &OR};
  cnet_socket_t *c;

  reset();
  c = or_client(loop, &onread);
  cnet_socket_retain(c);
  later(loop, 100, or_resume, c, true);
  run_bounded(loop, 3000);
  ASSERT_STR_EQ(OR.t.buf, "r:hell resume r:o wo r:rld end close");
  ASSERT_EQ(3, OR.same);
  ASSERT_EQ(0, OR.data_events);
  ASSERT_EQ(11, OR.bytes_read_at_close);
  finish(loop);
}

/* RD-07: returning false pauses until resume(). */
TEST_CASE(rd07_onread_callback_false_pauses_until_resume) {
  memset(&OR, 0, sizeof(OR));
  OR.pause_first = true;
  or_run_pausing();
}

/* RD-07: pause() inside the callback does the same. */
TEST_CASE(rd07_onread_pause_inside_callback) {
  memset(&OR, 0, sizeof(OR));
  OR.pause_inside = true;
  or_run_pausing();
}

/* cnet_socket_set_onread on an accepted socket, inside 'connection'. */
static void or_accept_hook(cnet_socket_t *s) {
  cnet_onread_t onread = {.buffer = OR.buffer,
                          .len = sizeof(OR.buffer),
                          .callback = or_callback,
                          .ctx = &OR}; /* copied */

  ASSERT_EQ(0, cnet_socket_set_onread(s, &onread));
  or_listen(s);
}

static void send_ping_and_end(cnet_socket_t *s, const cnet_event_t *ev,
                              void *ctx) {
  (void)ev;
  (void)ctx;
  ASSERT_EQ(0, cnet_socket_end(s, "ping", 4, NULL, NULL));
}

TEST_CASE(rd05_set_onread_on_accepted_socket_in_connection) {
  uv_loop_t *loop = loop_new();
  int port;

  reset();
  memset(&OR, 0, sizeof(OR));
  port = start_server(loop, or_accept_hook);
  client(loop, port, send_ping_and_end, NULL);
  run_bounded(loop, 3000);
  ASSERT_STR_EQ(OR.t.buf, "r:ping end close");
  ASSERT_EQ(1, OR.same);
  ASSERT_EQ(0, OR.data_events);
  ASSERT_EQ(4, OR.bytes_read_at_close);
  finish(loop);
}

/* ---- TO-01..TO-09: the idle timeout ----------------------------------------
 */

static struct {
  int count;        /* 'timeout' events seen by tmo_count */
  int once_calls;   /* calls of the listener given to set_timeout */
  uint64_t t0;      /* when set_timeout was called (loop time) */
  uint64_t at[8];   /* when each 'timeout' came, ms after t0 */
  uint64_t last_io; /* the last write made / 'data' seen, ms after t0 */
  int writes;       /* writes made by a ticker */
  cnet_socket_t *c;
  uv_loop_t *loop;
} TM;

static void tmo_reset(void) {
  memset(&TM, 0, sizeof(TM));
}

/* Times are the loop's (uv_now), the clock libuv's timers run on: a timer
 * started at loop time t for ms fires at loop time >= t + ms exactly,
 * however slow the process (valgrind). */
static void tmo_start(uv_loop_t *loop) {
  TM.loop = loop;
  TM.t0 = uv_now(loop);
}

static uint64_t tmo_now(void) {
  return uv_now(TM.loop) - TM.t0;
}

/* Counts every 'timeout'; the socket stays open and not destroyed. */
static void tmo_count(cnet_socket_t *s, const cnet_event_t *ev, void *ctx) {
  (void)ev;
  (void)ctx;
  ASSERT(TM.count < (int)ARRAY_LEN(TM.at));
  TM.at[TM.count++] = tmo_now();
  ASSERT(!cnet_socket_destroyed(s));
  ASSERT_STR_EQ(cnet_socket_ready_state(s), "open");
}

static void tmo_once(cnet_socket_t *s, const cnet_event_t *ev, void *ctx) {
  (void)s;
  (void)ev;
  (void)ctx;
  TM.once_calls++;
}

static void end_socket(void *arg) {
  ASSERT_EQ(0, cnet_socket_end(arg, NULL, 0, NULL, NULL));
}

static void end_socket_l(cnet_socket_t *s, const cnet_event_t *ev, void *ctx) {
  (void)ev;
  (void)ctx;
  ASSERT_EQ(0, cnet_socket_end(s, NULL, 0, NULL, NULL));
}

static void server_reads(cnet_socket_t *s) {
  rec_on(s, &SR);
}

/* TO-01, TO-04: 'timeout' once after the idle period; the socket stays
 * open; the listener given to set_timeout is a once listener. */
static void to01_connect(cnet_socket_t *c, const cnet_event_t *ev, void *ctx) {
  (void)ev;
  (void)ctx;
  tmo_start(cnet_socket_loop(c));
  ASSERT_EQ(0, cnet_socket_on(c, CNET_EV_TIMEOUT, tmo_count, NULL));
  ASSERT_EQ(0, cnet_socket_set_timeout(c, 50, tmo_once, NULL));
  ASSERT_EQ(2, cnet_socket_listener_count(c, CNET_EV_TIMEOUT));
  ASSERT_EQ(50, cnet_socket_timeout(c));
}

static void to01_check(void *arg) {
  cnet_socket_t *c = arg;

  ASSERT_EQ(1, TM.count);
  ASSERT_EQ(1, TM.once_calls);
  ASSERT_EQ(1, cnet_socket_listener_count(c, CNET_EV_TIMEOUT));
  ASSERT(!cnet_socket_destroyed(c));
  ASSERT_STR_EQ(cnet_socket_ready_state(c), "open");
  ASSERT_EQ(50, cnet_socket_timeout(c));
  ASSERT_EQ(0, cnet_socket_end(c, NULL, 0, NULL, NULL));
}

TEST_CASE(to01_timeout_once_after_idle_period_socket_stays_open) {
  uv_loop_t *loop = loop_new();
  cnet_socket_t *c;

  reset();
  tmo_reset();
  c = client(loop, start_server(loop, server_reads), to01_connect, NULL);
  later(loop, 300, to01_check, c, true);
  run_bounded(loop, 3000);
  ASSERT_EQ(1, TM.count);
  ASSERT_GE(TM.at[0], 50);
  ASSERT_LT(TM.at[0], 200);
  finish(loop);
}

/* TO-04: idle 50 ms, data at 200 ms: 'timeout' at ~50 and ~250 ms, and
 * nothing else within 400 ms. */
static void to04_data(cnet_socket_t *s, const cnet_event_t *ev, void *ctx) {
  (void)s;
  (void)ev;
  (void)ctx;
  TM.last_io = tmo_now();
}

static void to04_server_write(void *arg) {
  (void)arg;
  ASSERT_NOT_NULL(S.conn);
  ASSERT_GE(cnet_socket_write(S.conn, "x", 1, NULL, NULL), 0);
}

static void to04_connect(cnet_socket_t *c, const cnet_event_t *ev, void *ctx) {
  (void)ev;
  (void)ctx;
  tmo_start(cnet_socket_loop(c));
  ASSERT_EQ(0, cnet_socket_on(c, CNET_EV_TIMEOUT, tmo_count, NULL));
  ASSERT_EQ(0, cnet_socket_on(c, CNET_EV_DATA, to04_data, NULL));
  ASSERT_EQ(0, cnet_socket_set_timeout(c, 50, NULL, NULL));
  later(cnet_socket_loop(c), 200, to04_server_write, NULL, true);
  later(cnet_socket_loop(c), 400, end_socket, c, true);
}

TEST_CASE(to04_timeout_once_per_idle_period_rearmed_by_data) {
  uv_loop_t *loop = loop_new();

  reset();
  tmo_reset();
  client(loop, start_server(loop, server_reads), to04_connect, NULL);
  run_bounded(loop, 3000);
  ASSERT_EQ(2, TM.count);
  ASSERT_GE(TM.at[0], 50);
  ASSERT_LT(TM.at[0], 190);
  ASSERT_GE(TM.last_io, 200);
  ASSERT_GE(TM.at[1], TM.last_io + 50);
  ASSERT_LT(TM.at[1], TM.last_io + 140);
  finish(loop);
}

/* TO-05: writes every 40 ms for 240 ms keep a 100 ms timeout away. */
static void to05_write_tick(uv_timer_t *t) {
  if (TM.writes == 6) {
    uv_close((uv_handle_t *)t, NULL);
    return;
  }
  ASSERT_GE(cnet_socket_write(TM.c, "w", 1, NULL, NULL), 0);
  TM.writes++;
  TM.last_io = tmo_now();
}

static uv_timer_t to05_timer;

static void to05_connect(cnet_socket_t *c, const cnet_event_t *ev, void *ctx) {
  (void)ev;
  (void)ctx;
  tmo_start(cnet_socket_loop(c));
  TM.c = c;
  cnet_socket_set_no_delay(c, true);
  ASSERT_EQ(0, cnet_socket_on(c, CNET_EV_TIMEOUT, tmo_count, NULL));
  ASSERT_EQ(0, cnet_socket_on(c, CNET_EV_TIMEOUT, end_socket_l, NULL));
  ASSERT_EQ(0, cnet_socket_set_timeout(c, 100, NULL, NULL));
  ASSERT_EQ(0, uv_timer_init(cnet_socket_loop(c), &to05_timer));
  ASSERT_EQ(0, uv_timer_start(&to05_timer, to05_write_tick, 40, 40));
}

TEST_CASE(to05_writes_restart_the_idle_clock) {
  uv_loop_t *loop = loop_new();

  reset();
  tmo_reset();
  client(loop, start_server(loop, server_reads), to05_connect, NULL);
  run_bounded(loop, 3000);
  ASSERT_EQ(6, TM.writes);
  ASSERT_EQ(6, SR.len);
  ASSERT_EQ(1, TM.count);
  ASSERT_GE(TM.last_io, 240);
  ASSERT_GE(TM.at[0], TM.last_io + 100);
  ASSERT_LT(TM.at[0], TM.last_io + 200);
  finish(loop);
}

/* TO-05: reads do too (the server writes every 40 ms). */
static void to05_server_tick(uv_timer_t *t) {
  if (TM.writes == 6 || S.conn == NULL) {
    uv_close((uv_handle_t *)t, NULL);
    return;
  }
  ASSERT_GE(cnet_socket_write(S.conn, "r", 1, NULL, NULL), 0);
  TM.writes++;
}

static void to05_reader_connect(cnet_socket_t *c, const cnet_event_t *ev,
                                void *ctx) {
  (void)ev;
  (void)ctx;
  tmo_start(cnet_socket_loop(c));
  ASSERT_EQ(0, cnet_socket_on(c, CNET_EV_TIMEOUT, tmo_count, NULL));
  ASSERT_EQ(0, cnet_socket_on(c, CNET_EV_TIMEOUT, end_socket_l, NULL));
  ASSERT_EQ(0, cnet_socket_on(c, CNET_EV_DATA, to04_data, NULL));
  ASSERT_EQ(0, cnet_socket_set_timeout(c, 100, NULL, NULL));
}

static void to05_server_hook(cnet_socket_t *s) {
  cnet_socket_set_no_delay(s, true);
  ASSERT_EQ(0, uv_timer_init(cnet_socket_loop(s), &to05_timer));
  ASSERT_EQ(0, uv_timer_start(&to05_timer, to05_server_tick, 40, 40));
}

TEST_CASE(to05_reads_restart_the_idle_clock) {
  uv_loop_t *loop = loop_new();

  reset();
  tmo_reset();
  client(loop, start_server(loop, to05_server_hook), to05_reader_connect, NULL);
  run_bounded(loop, 3000);
  ASSERT_EQ(6, TM.writes);
  ASSERT_EQ(1, TM.count);
  ASSERT_GE(TM.last_io, 150);
  ASSERT_GE(TM.at[0], TM.last_io + 100);
  ASSERT_LT(TM.at[0], TM.last_io + 200);
  finish(loop);
}

/* TO-05: a write inside the 'timeout' listener re-arms it: three
 * 'timeout's, one period apart, then end(). */
static void to05_rearm(cnet_socket_t *s, const cnet_event_t *ev, void *ctx) {
  (void)ev;
  (void)ctx;
  if (TM.count < 3)
    ASSERT_GE(cnet_socket_write(s, "x", 1, NULL, NULL), 0);
  else
    ASSERT_EQ(0, cnet_socket_end(s, NULL, 0, NULL, NULL));
}

static void to05_rearm_connect(cnet_socket_t *c, const cnet_event_t *ev,
                               void *ctx) {
  (void)ev;
  (void)ctx;
  tmo_start(cnet_socket_loop(c));
  ASSERT_EQ(0, cnet_socket_on(c, CNET_EV_TIMEOUT, tmo_count, NULL));
  ASSERT_EQ(0, cnet_socket_on(c, CNET_EV_TIMEOUT, to05_rearm, NULL));
  ASSERT_EQ(0, cnet_socket_set_timeout(c, 50, NULL, NULL));
}

TEST_CASE(to05_write_inside_timeout_listener_rearms) {
  uv_loop_t *loop = loop_new();

  reset();
  tmo_reset();
  client(loop, start_server(loop, server_reads), to05_rearm_connect, NULL);
  run_bounded(loop, 3000);
  ASSERT_EQ(3, TM.count);
  ASSERT_EQ(2, SR.len);
  ASSERT_MEM_EQ(SR.buf, "xx", 2);
  ASSERT_GE(TM.at[0], 50);
  ASSERT_GE(TM.at[1], TM.at[0] + 50);
  ASSERT_GE(TM.at[2], TM.at[1] + 50);
  ASSERT_LT(TM.at[2], 600);
  finish(loop);
}

/* TO-03: set_timeout(0, cb) turns the timer off and removes cb; other
 * 'timeout' listeners stay but hear nothing. */
static void to03_connect(cnet_socket_t *c, const cnet_event_t *ev, void *ctx) {
  (void)ev;
  (void)ctx;
  ASSERT_EQ(0, cnet_socket_on(c, CNET_EV_TIMEOUT, tmo_count, NULL));
  ASSERT_EQ(0, cnet_socket_set_timeout(c, 30, tmo_once, NULL));
  ASSERT_EQ(2, cnet_socket_listener_count(c, CNET_EV_TIMEOUT));
  ASSERT_EQ(0, cnet_socket_set_timeout(c, 0, tmo_once, NULL));
  ASSERT_EQ(1, cnet_socket_listener_count(c, CNET_EV_TIMEOUT));
  ASSERT_EQ(0, cnet_socket_timeout(c)); /* ST-12 */
  later(cnet_socket_loop(c), 200, end_socket, c, true);
}

TEST_CASE(to03_set_timeout_zero_disables_and_removes_listener) {
  uv_loop_t *loop = loop_new();

  reset();
  tmo_reset();
  client(loop, start_server(loop, server_reads), to03_connect, NULL);
  run_bounded(loop, 3000);
  ASSERT_EQ(0, TM.count);
  ASSERT_EQ(0, TM.once_calls);
  finish(loop);
}

/* TO-02: a negative msecs changes nothing and says so in Node's words. */
TEST_CASE(to02_negative_msecs_out_of_range) {
  uv_loop_t *loop = loop_new();
  cnet_socket_t *s = cnet_socket_new(loop, NULL);

  ASSERT_EQ(0, cnet_socket_set_timeout(s, 100, NULL, NULL));
  ASSERT_EQ(CNET_ERR_OUT_OF_RANGE,
            cnet_socket_set_timeout(s, -1, tmo_once, NULL));
  ASSERT_EQ(CNET_ERR_OUT_OF_RANGE, cnet_last_error()->errnum);
  ASSERT_STR_EQ(cnet_last_error()->code, "ERR_OUT_OF_RANGE");
  ASSERT_STR_EQ(cnet_last_error()->message,
                "The value of \"msecs\" is out of range. It must be a "
                "non-negative finite number. Received -1");
  ASSERT_EQ(0, cnet_socket_listener_count(s, CNET_EV_TIMEOUT));
  ASSERT_EQ(100, cnet_socket_timeout(s));
  cnet_socket_free(s);
  loop_finish(loop);
}

/* TO-07: a socket that never connects still times out (the timer is
 * unref'd: something else keeps the loop running meanwhile). */
static void to07_timeout(cnet_socket_t *s, const cnet_event_t *ev, void *ctx) {
  tmo_count(s, ev, ctx);
  ASSERT(!cnet_socket_connecting(s));
  ASSERT(cnet_socket_pending(s));
}

TEST_CASE(to07_timeout_fires_on_never_connected_socket) {
  uv_loop_t *loop = loop_new();
  cnet_socket_t *s = cnet_socket_new(loop, NULL);

  tmo_reset();
  tmo_start(loop);
  ASSERT_EQ(0, cnet_socket_set_timeout(s, 30, to07_timeout, NULL));
  later(loop, 200, nothing, NULL, true);
  run_bounded(loop, 3000);
  ASSERT_EQ(1, TM.count);
  ASSERT_GE(TM.at[0], 30);
  ASSERT_LT(TM.at[0], 190);
  ASSERT_EQ(0, cnet_socket_listener_count(s, CNET_EV_TIMEOUT));
  cnet_socket_free(s);
  loop_finish(loop);
}

/* TO-08: destroy() cancels a pending timeout; set_timeout afterwards does
 * nothing (no listener added, the value unchanged) and returns 0. */
TEST_CASE(to08_no_timeout_after_destroy_and_set_timeout_is_noop) {
  uv_loop_t *loop = loop_new();
  cnet_socket_t *s = cnet_socket_new(loop, NULL);

  tmo_reset();
  ASSERT_EQ(0, cnet_socket_on(s, CNET_EV_TIMEOUT, tmo_count, NULL));
  ASSERT_EQ(0, cnet_socket_set_timeout(s, 30, tmo_once, NULL));
  cnet_socket_destroy(s, NULL);
  ASSERT_EQ(0, cnet_socket_set_timeout(s, 40, tmo_once, NULL));
  ASSERT_EQ(2, cnet_socket_listener_count(s, CNET_EV_TIMEOUT));
  ASSERT_EQ(30, cnet_socket_timeout(s));
  later(loop, 200, nothing, NULL, true);
  run_bounded(loop, 3000);
  ASSERT_EQ(0, TM.count);
  ASSERT_EQ(0, TM.once_calls);
  cnet_socket_free(s);
  loop_finish(loop);
}

/* TO-08 on a connected socket: destroyed 10 ms before the deadline. */
static void destroy_socket(void *arg) {
  cnet_socket_destroy(arg, NULL);
}

static void to08_connect(cnet_socket_t *c, const cnet_event_t *ev, void *ctx) {
  (void)ev;
  (void)ctx;
  ASSERT_EQ(0, cnet_socket_set_timeout(c, 40, tmo_count, NULL));
  later(cnet_socket_loop(c), 30, destroy_socket, c, true);
  later(cnet_socket_loop(c), 200, nothing, NULL, true);
}

TEST_CASE(to08_connected_socket_destroyed_before_deadline_never_times_out) {
  uv_loop_t *loop = loop_new();

  reset();
  tmo_reset();
  client(loop, start_server(loop, server_reads), to08_connect, NULL);
  run_bounded(loop, 3000);
  ASSERT_EQ(0, TM.count);
  finish(loop);
}

/* TO-08: Node checks destroyed before validating, so even a negative
 * msecs is a silent no-op on a destroyed socket (v20: no throw). */
TEST_CASE(to08_negative_msecs_after_destroy_is_noop) {
  uv_loop_t *loop = loop_new();
  cnet_socket_t *s = cnet_socket_new(loop, NULL);

  cnet_socket_destroy(s, NULL);
  ASSERT_EQ(0, cnet_socket_set_timeout(s, -1, NULL, NULL));
  ASSERT_EQ(0, cnet_socket_timeout(s));
  cnet_socket_free(s);
  loop_finish(loop);
}

/* ST-12: socket.timeout is the last value given. */
TEST_CASE(st12_timeout_property_reads_back) {
  uv_loop_t *loop = loop_new();
  cnet_socket_t *s = cnet_socket_new(loop, NULL);

  ASSERT_EQ(0, cnet_socket_timeout(s));
  ASSERT_EQ(0, cnet_socket_set_timeout(s, 1234, NULL, NULL));
  ASSERT_EQ(1234, cnet_socket_timeout(s));
  ASSERT_EQ(0, cnet_socket_set_timeout(s, 1, NULL, NULL));
  ASSERT_EQ(1, cnet_socket_timeout(s));
  ASSERT_EQ(0, cnet_socket_set_timeout(s, 0, NULL, NULL));
  ASSERT_EQ(0, cnet_socket_timeout(s));
  cnet_socket_free(s);
  loop_finish(loop);
}

/* TO-09 and ST-12: above 2^31-1 the timer is clamped, but Node's
 * socket.timeout keeps the value given (s.setTimeout(3e9); s.timeout ->
 * 3000000000), and cnet.h says "the last msecs given to set_timeout". */
TEST_CASE(to09_large_timeout_property_keeps_value_given) {
  uv_loop_t *loop = loop_new();
  cnet_socket_t *s = cnet_socket_new(loop, NULL);

  ASSERT_EQ(0, cnet_socket_set_timeout(s, 3000000000LL, NULL, NULL));
  ASSERT_EQ(3000000000LL, cnet_socket_timeout(s));
  cnet_socket_free(s);
  loop_finish(loop);
}

/* The `timeout` connect option is set_timeout at once. */
/* Not tmo_count: under valgrind the connect alone may take longer than the
 * 80 ms, and the timeout then fires while "opening", as Node's would. */
static void to_option_timeout(cnet_socket_t *s, const cnet_event_t *ev,
                              void *ctx) {
  (void)ev;
  (void)ctx;
  ASSERT(TM.count < (int)ARRAY_LEN(TM.at));
  TM.at[TM.count++] = tmo_now();
  ASSERT(!cnet_socket_destroyed(s));
  ASSERT_EQ(0, cnet_socket_end(s, NULL, 0, NULL, NULL));
}

TEST_CASE(to01_connect_option_timeout_sets_it) {
  uv_loop_t *loop = loop_new();
  cnet_connect_options_t o = {.host = "127.0.0.1", .timeout = 80};
  cnet_socket_t *c;

  reset();
  tmo_reset();
  o.port = start_server(loop, server_reads);
  tmo_start(loop);
  c = cnet_create_connection(loop, &o, NULL, NULL);
  ASSERT_NOT_NULL(c);
  ASSERT_EQ(80, cnet_socket_timeout(c));
  ASSERT_EQ(0, cnet_socket_on(c, CNET_EV_TIMEOUT, to_option_timeout, NULL));
  run_bounded(loop, 3000);
  ASSERT_EQ(1, TM.count);
  ASSERT_GE(TM.at[0], 80);
  ASSERT_LT(TM.at[0], 300);
  finish(loop);
}

/* RF-05: an idle timer never keeps the loop alive: uv_run returns at once
 * with only a never-connected socket with set_timeout(2000)... */
TEST_CASE(rf05_timeout_on_unconnected_socket_does_not_keep_loop) {
  uv_loop_t *loop = loop_new();
  cnet_socket_t *s = cnet_socket_new(loop, NULL);
  uint64_t t0 = now_ms();

  ASSERT_EQ(0, cnet_socket_set_timeout(s, 2000, tmo_once, NULL));
  run_bounded(loop, 1000);
  ASSERT_LT(now_ms() - t0, 500);
  ASSERT(!cnet_socket_destroyed(s));
  cnet_socket_free(s);
  loop_finish(loop);
}

/* ...and with an unref'd connection whose client has set_timeout(2000). */
static cnet_socket_t *rf_client;

static void rf05_connect(cnet_socket_t *c, const cnet_event_t *ev, void *ctx) {
  (void)ev;
  (void)ctx;
  cnet_socket_unref(c);
  ASSERT_EQ(0, cnet_socket_set_timeout(c, 2000, tmo_once, NULL));
}

static void unref_hook(cnet_socket_t *s) {
  rec_on(s, &SR);
  cnet_socket_unref(s);
}

/* After uv_run returned with both ends still open: close them (and free
 * the client if it is ours). */
static void rf_teardown(uv_loop_t *loop, bool owned) {
  ASSERT_NOT_NULL(S.conn);
  ASSERT(!cnet_socket_connecting(rf_client));
  ASSERT_STR_EQ(cnet_socket_ready_state(rf_client), "open");
  ASSERT_STR_EQ(cnet_socket_ready_state(S.conn), "open");
  cnet_socket_destroy(rf_client, NULL);
  cnet_socket_destroy(S.conn, NULL);
  if (owned)
    cnet_socket_free(rf_client);
  finish(loop);
}

TEST_CASE(rf05_timeout_on_unrefd_connection_does_not_keep_loop) {
  uv_loop_t *loop = loop_new();
  uint64_t t0 = now_ms();

  reset();
  tmo_reset();
  rf_client = client(loop, start_server(loop, unref_hook), rf05_connect, NULL);
  run_bounded(loop, 1500);
  ASSERT_LT(now_ms() - t0, 1000);
  ASSERT_EQ(0, TM.once_calls);
  ASSERT_EQ(2000, cnet_socket_timeout(rf_client));
  rf_teardown(loop, false);
}

/* ---- RF-03: socket ref / unref ---------------------------------------------
 */

static void unref_in_connect(cnet_socket_t *c, const cnet_event_t *ev,
                             void *ctx) {
  (void)ev;
  (void)ctx;
  cnet_socket_unref(c);
}

/* An unref'd connected socket does not keep the loop alive. */
TEST_CASE(rf03_unrefd_connected_socket_lets_loop_end) {
  uv_loop_t *loop = loop_new();
  uint64_t t0 = now_ms();

  reset();
  rf_client =
      client(loop, start_server(loop, unref_hook), unref_in_connect, NULL);
  run_bounded(loop, 1500);
  ASSERT_LT(now_ms() - t0, 1000);
  ASSERT(!cnet_socket_connecting(rf_client));
  ASSERT_EQ(0, SR.ends);
  rf_teardown(loop, false);
}

/* unref() before connect is remembered: once connected, an unref'd client
 * alone lets the loop end. */
TEST_CASE(rf03_unref_before_connect_applied_after_connect) {
  uv_loop_t *loop = loop_new();
  cnet_socket_t *c = cnet_socket_new(loop, NULL);
  int port;

  reset();
  port = start_server(loop, unref_hook);
  cnet_socket_unref(c);
  ASSERT_EQ(0, cnet_socket_connect_port(c, port, "127.0.0.1", NULL, NULL));
  rf_client = c;
  run_bounded(loop, 1500);
  ASSERT_EQ(1, S.connections); /* the server's accept came first */
  rf_teardown(loop, true);
}

/* RF-03: unref() then ref() before connect, applied in call order: the
 * socket keeps the loop alive (the server end is unref'd). */
static int rf03_still_running;

static void rf03_alive(void *arg) {
  cnet_socket_t *c = arg;

  rf03_still_running++;
  ASSERT_STR_EQ(cnet_socket_ready_state(c), "open");
  cnet_socket_destroy(c, NULL);
}

TEST_CASE(rf03_unref_then_ref_before_connect_keeps_loop) {
  uv_loop_t *loop = loop_new();
  cnet_socket_t *c = cnet_socket_new(loop, NULL);
  int port;

  reset();
  rf03_still_running = 0;
  port = start_server(loop, unref_hook);
  cnet_socket_unref(c);
  cnet_socket_ref(c);
  ASSERT_EQ(0, cnet_socket_connect_port(c, port, "127.0.0.1", NULL, NULL));
  later(loop, 200, rf03_alive, c, false); /* only if the loop lives on */
  run_bounded(loop, 3000);
  ASSERT_EQ(1, rf03_still_running);
  ASSERT_EQ(1, SR.closes); /* the client's destroy ended the server end */
  cnet_socket_free(c);
  finish(loop);
}

/* ---- OP-01..OP-03: TCP_NODELAY and SO_KEEPALIVE on the descriptor ----------
 */


typedef struct {
  int nodelay, keepalive, keepidle;
} sockopts_t;

static struct {
  sockopts_t at_connect, after; /* after: once op_after_connect ran */
  void (*after_connect)(cnet_socket_t *c);
  int checks;
} OP;

static sockopts_t client_sockopts(cnet_socket_t *c) {
  cnet_address_t local, remote;
  sockopts_t o;
  int fd;

  ASSERT_EQ(0, cnet_socket_address(c, &local));
  ASSERT_EQ(0, cnet_socket_remote_address(c, &remote));
  fd = find_tcp_fd(local.port, remote.port);
  ASSERT_GE(fd, 0);
  o.nodelay = int_sockopt(fd, IPPROTO_TCP, TCP_NODELAY) != 0;
  o.keepalive = int_sockopt(fd, SOL_SOCKET, SO_KEEPALIVE) != 0;
  o.keepidle = int_sockopt(fd, IPPROTO_TCP, TCP_KEEPIDLE);
  return o;
}

static void op_connect(cnet_socket_t *c, const cnet_event_t *ev, void *ctx) {
  (void)ev;
  (void)ctx;
  OP.at_connect = client_sockopts(c);
  if (OP.after_connect != NULL) {
    OP.after_connect(c);
    OP.after = client_sockopts(c);
  }
  OP.checks++;
  ASSERT_EQ(0, cnet_socket_end(c, NULL, 0, NULL, NULL));
}

/* Connects c (or a new socket with the options) and runs op_connect. */
static void op_run(cnet_socket_t *c, const cnet_connect_options_t *opts) {
  uv_loop_t *loop = cnet_socket_loop(c);
  cnet_connect_options_t o = {.host = "127.0.0.1"};

  if (opts != NULL)
    o = *opts;
  o.port = S.port;
  ASSERT_EQ(0, cnet_socket_connect(c, &o, op_connect, NULL));
  run_bounded(loop, 3000);
  ASSERT_EQ(1, OP.checks);
  cnet_socket_free(c);
  finish(loop);
}

static cnet_socket_t *op_setup(uv_loop_t *loop) {
  reset();
  memset(&OP, 0, sizeof(OP));
  start_server(loop, server_reads);
  return cnet_socket_new(loop, NULL);
}

static int system_keepidle(void) {
  FILE *f = fopen("/proc/sys/net/ipv4/tcp_keepalive_time", "r");
  int v = -1;

  ASSERT_NOT_NULL(f);
  ASSERT_EQ(1, fscanf(f, "%d", &v));
  fclose(f);
  return v;
}

TEST_CASE(op02_defaults_no_delay_off_keep_alive_off) {
  uv_loop_t *loop = loop_new();
  cnet_socket_t *c = op_setup(loop);

  op_run(c, NULL);
  ASSERT_EQ(0, OP.at_connect.nodelay);
  ASSERT_EQ(0, OP.at_connect.keepalive);
}

/* OP-02, OP-03: set before connect, applied once connected; the delay in
 * whole seconds, truncated (2999 ms -> 2 s). */
TEST_CASE(op02_no_delay_and_keep_alive_before_connect_applied) {
  uv_loop_t *loop = loop_new();
  cnet_socket_t *c = op_setup(loop);

  cnet_socket_set_no_delay(c, true);
  cnet_socket_set_keep_alive(c, true, 2999);
  op_run(c, NULL);
  ASSERT_EQ(1, OP.at_connect.nodelay);
  ASSERT_EQ(1, OP.at_connect.keepalive);
  ASSERT_EQ(2, OP.at_connect.keepidle);
}

/* The last call before connect wins. */
TEST_CASE(op02_last_setting_before_connect_wins) {
  uv_loop_t *loop = loop_new();
  cnet_socket_t *c = op_setup(loop);

  cnet_socket_set_no_delay(c, true);
  cnet_socket_set_no_delay(c, false);
  cnet_socket_set_keep_alive(c, true, 5000);
  cnet_socket_set_keep_alive(c, false, 0);
  op_run(c, NULL);
  ASSERT_EQ(0, OP.at_connect.nodelay);
  ASSERT_EQ(0, OP.at_connect.keepalive);
}

/* The connect options do the same. */
TEST_CASE(op02_connect_options_no_delay_keep_alive) {
  uv_loop_t *loop = loop_new();
  cnet_socket_t *c = op_setup(loop);
  cnet_connect_options_t o = {.host = "127.0.0.1",
                              .no_delay = true,
                              .keep_alive = true,
                              .keep_alive_initial_delay = 5500};

  op_run(c, &o);
  ASSERT_EQ(1, OP.at_connect.nodelay);
  ASSERT_EQ(1, OP.at_connect.keepalive);
  ASSERT_EQ(5, OP.at_connect.keepidle);
}

/* Keep-alive without a delay: SO_KEEPALIVE on, the system's idle time
 * untouched. */
TEST_CASE(op03_keep_alive_without_delay_keeps_system_idle_time) {
  uv_loop_t *loop = loop_new();
  cnet_socket_t *c = op_setup(loop);
  int want = system_keepidle();

  cnet_socket_set_keep_alive(c, true, 0);
  op_run(c, NULL);
  ASSERT_EQ(1, OP.at_connect.keepalive);
  ASSERT_EQ(want, OP.at_connect.keepidle);
}

/* OP-01/OP-03 on a connected socket: the descriptor changes at once. */
static void op_change(cnet_socket_t *c) {
  cnet_socket_set_no_delay(c, true);
  ASSERT_EQ(1, client_sockopts(c).nodelay);
  cnet_socket_set_keep_alive(c, true, 10999);
  ASSERT_EQ(1, client_sockopts(c).keepalive);
  ASSERT_EQ(10, client_sockopts(c).keepidle);
  cnet_socket_set_no_delay(c, false);
  cnet_socket_set_keep_alive(c, false, 0);
}

TEST_CASE(op01_set_on_connected_socket_applies_at_once) {
  uv_loop_t *loop = loop_new();
  cnet_socket_t *c = op_setup(loop);

  OP.after_connect = op_change;
  op_run(c, NULL);
  ASSERT_EQ(0, OP.at_connect.nodelay);
  ASSERT_EQ(0, OP.after.nodelay);
  ASSERT_EQ(0, OP.after.keepalive);
}

/* ---- SC-01, ST-01..ST-11: properties
 * ----------------------------------------- */

/* SC-01 (v20): a fresh socket is pending, not connecting, not destroyed,
 * and "open"; nothing counted, no addresses, no server, no timeout. */
TEST_CASE(sc01_fresh_socket_properties) {
  uv_loop_t *loop = loop_new();
  cnet_socket_t *s = cnet_socket_new(loop, NULL);
  cnet_address_t a;

  ASSERT_NOT_NULL(s);
  ASSERT(cnet_socket_pending(s));
  ASSERT(!cnet_socket_connecting(s));
  ASSERT(!cnet_socket_destroyed(s));
  ASSERT_STR_EQ(cnet_socket_ready_state(s), "open");
  ASSERT(!cnet_socket_is_paused(s));
  ASSERT_EQ(0, cnet_socket_bytes_read(s));
  ASSERT_EQ(0, cnet_socket_bytes_written(s));
  ASSERT_EQ(0, cnet_socket_writable_length(s));
  ASSERT_EQ(0, cnet_socket_buffer_size(s));
  ASSERT_EQ(0, cnet_socket_timeout(s));
  ASSERT_NULL(cnet_socket_server(s));
  ASSERT_EQ(UV_ENOTCONN, cnet_socket_address(s, &a));
  ASSERT_EQ(UV_ENOTCONN, cnet_socket_remote_address(s, &a));
  ASSERT(cnet_socket_loop(s) == loop);
  /* SC-07: none of these throw (here: crash) on a never-connected socket. */
  cnet_socket_set_no_delay(s, true);
  cnet_socket_set_keep_alive(s, true, 1000);
  cnet_socket_pause(s);
  ASSERT(cnet_socket_is_paused(s));
  cnet_socket_resume(s);
  ASSERT(!cnet_socket_is_paused(s));
  cnet_socket_free(s);
  loop_finish(loop);
}

/* ST-01, ST-02 over IPC: connecting and pending until 'connect'; pending
 * again after 'close'. */
static void st01_connect(cnet_socket_t *c, const cnet_event_t *ev, void *ctx) {
  (void)ev;
  (void)ctx;
  ASSERT(!cnet_socket_connecting(c));
  ASSERT(!cnet_socket_pending(c));
  ASSERT_STR_EQ(cnet_socket_ready_state(c), "open");
  trace_add(&CR.t, "connect");
  ASSERT_EQ(0, cnet_socket_end(c, NULL, 0, NULL, NULL));
}

static void st01_close(cnet_socket_t *c, const cnet_event_t *ev, void *ctx) {
  (void)ev;
  (void)ctx;
  ASSERT(!cnet_socket_connecting(c));
  ASSERT(cnet_socket_pending(c));
  ASSERT(cnet_socket_destroyed(c));
  ASSERT_STR_EQ(cnet_socket_ready_state(c), "closed");
}

TEST_CASE(st01_st02_ipc_connecting_and_pending_through_connect) {
  uv_loop_t *loop = loop_new();
  const char *path = temp_socket_path();
  cnet_socket_t *c = cnet_socket_new(loop, NULL);

  reset();
  S.srv = cnet_create_server(loop, NULL, on_connection, NULL);
  ASSERT_NOT_NULL(S.srv);
  S.hook = server_reads;
  ASSERT_EQ(0, cnet_server_listen_path(S.srv, path, 0, NULL, NULL));
  rec_on(c, &CR);
  ASSERT_EQ(0, cnet_socket_on(c, CNET_EV_CLOSE, st01_close, NULL));
  ASSERT_EQ(0, cnet_socket_connect_path(c, path, st01_connect, NULL));
  ASSERT(cnet_socket_connecting(c));
  ASSERT(cnet_socket_pending(c));
  ASSERT_STR_EQ(cnet_socket_ready_state(c), "opening");
  run_bounded(loop, 3000);
  ASSERT_STR_EQ(CR.t.buf, "connect finish end close(false)");
  ASSERT(cnet_socket_pending(c));
  cnet_socket_free(c);
  finish(loop);
}

/* ST-07, ST-09, ST-10: the accepted socket's ends and server; the
 * client's address() and server. */
static struct {
  cnet_address_t srv_local, srv_remote, cli_local, cli_remote, listen;
  cnet_server_t *server_of_conn, *server_of_client;
  int seen;
} AD;

static void ad_hook(cnet_socket_t *s) {
  rec_on(s, &SR);
  ASSERT_EQ(0, cnet_socket_address(s, &AD.srv_local));
  ASSERT_EQ(0, cnet_socket_remote_address(s, &AD.srv_remote));
  AD.server_of_conn = cnet_socket_server(s);
  AD.seen++;
}

static void ad_connect(cnet_socket_t *c, const cnet_event_t *ev, void *ctx) {
  (void)ev;
  (void)ctx;
  ASSERT_EQ(0, cnet_socket_address(c, &AD.cli_local));
  ASSERT_EQ(0, cnet_socket_remote_address(c, &AD.cli_remote));
  AD.server_of_client = cnet_socket_server(c);
  AD.seen++;
  ASSERT_EQ(0, cnet_socket_end(c, NULL, 0, NULL, NULL));
}

TEST_CASE(st07_st09_st10_addresses_and_server_of_both_ends) {
  uv_loop_t *loop = loop_new();
  int port;

  reset();
  memset(&AD, 0, sizeof(AD));
  port = start_server(loop, ad_hook);
  ASSERT_EQ(0, cnet_server_address(S.srv, &AD.listen));
  client(loop, port, ad_connect, NULL);
  run_bounded(loop, 3000);
  ASSERT_EQ(2, AD.seen);
  ASSERT(AD.server_of_conn == S.srv);
  ASSERT_NULL(AD.server_of_client);
  /* ST-07: local = the server's address and port and family. */
  ASSERT_STR_EQ(AD.srv_local.address, "127.0.0.1");
  ASSERT_EQ(port, AD.srv_local.port);
  ASSERT_EQ(AD.listen.family, AD.srv_local.family);
  ASSERT_EQ(4, AD.srv_local.family);
  ASSERT_STR_EQ(AD.srv_remote.address, "127.0.0.1");
  ASSERT_EQ(4, AD.srv_remote.family);
  ASSERT_NE(port, AD.srv_remote.port);
  /* ST-09: the client's address() is its local end = the server's remote. */
  ASSERT_STR_EQ(AD.cli_local.address, "127.0.0.1");
  ASSERT_EQ(4, AD.cli_local.family);
  ASSERT_EQ(AD.srv_remote.port, AD.cli_local.port);
  ASSERT_GT(AD.cli_local.port, 0);
  ASSERT_EQ(port, AD.cli_remote.port);
  ASSERT_STR_EQ(cnet_family_name(AD.cli_local.family), "IPv4");
  finish(loop);
}

/* ST-11: destroyed is true as soon as destroy() returns; 'close' comes
 * later. Correction 5: the remote end (never read while connected) is
 * still there after 'close', the local one is not. */
static struct {
  int remote_rc, local_rc, conn_remote_rc, conn_local_rc;
  cnet_address_t remote, conn_remote, client_local;
  cnet_socket_t *conn;
} DS;

static void st11_connect(cnet_socket_t *c, const cnet_event_t *ev, void *ctx) {
  (void)ev;
  (void)ctx;
  ASSERT_EQ(0, cnet_socket_address(c, &DS.client_local));
  trace_add(&CR.t, "destroy");
  cnet_socket_destroy(c, NULL);
  ASSERT(cnet_socket_destroyed(c));
  ASSERT_STR_EQ(cnet_socket_ready_state(c), "closed");
  ASSERT(cnet_socket_pending(c));
  trace_add(&CR.t, "returned");
}

static void st11_client_close(cnet_socket_t *c, const cnet_event_t *ev,
                              void *ctx) {
  cnet_address_t a;

  (void)ev;
  (void)ctx;
  DS.remote_rc = cnet_socket_remote_address(c, &DS.remote);
  DS.local_rc = cnet_socket_address(c, &a);
}

static void st11_hook(cnet_socket_t *s) {
  cnet_address_t a;

  ASSERT_EQ(0, cnet_socket_remote_address(s, &a)); /* ST-06: read while open */
  rec_on(s, &SR);
  cnet_socket_retain(s);
  DS.conn = s;
}

TEST_CASE(st11_destroyed_at_once_and_addresses_after_close) {
  uv_loop_t *loop = loop_new();
  cnet_socket_t *c;
  int port;

  reset();
  memset(&DS, 0, sizeof(DS));
  port = start_server(loop, st11_hook);
  c = cnet_socket_new(loop, NULL);
  rec_on(c, &CR);
  ASSERT_EQ(0, cnet_socket_on(c, CNET_EV_CLOSE, st11_client_close, NULL));
  ASSERT_EQ(0,
            cnet_socket_connect_port(c, port, "127.0.0.1", st11_connect, NULL));
  run_bounded(loop, 3000);
  ASSERT_STR_EQ(CR.t.buf, "destroy returned close(false)");
  ASSERT_EQ(0, DS.remote_rc);
  ASSERT_STR_EQ(DS.remote.address, "127.0.0.1");
  ASSERT_EQ(port, DS.remote.port);
  ASSERT_EQ(4, DS.remote.family);
  ASSERT_EQ(UV_ENOTCONN, DS.local_rc);
  /* The same on the accepted end, read while open and again now. */
  ASSERT_NOT_NULL(DS.conn);
  ASSERT_EQ(1, SR.closes);
  ASSERT(cnet_socket_destroyed(DS.conn));
  ASSERT_EQ(0, cnet_socket_remote_address(DS.conn, &DS.conn_remote));
  ASSERT_STR_EQ(DS.conn_remote.address, "127.0.0.1");
  ASSERT_EQ(DS.client_local.port, DS.conn_remote.port);
  ASSERT_EQ(UV_ENOTCONN, cnet_socket_address(DS.conn, &DS.conn_remote));
  cnet_socket_release(DS.conn);
  cnet_socket_free(c);
  finish(loop);
}

/* ---- TO-06: a write still making progress is activity ----------------------
 */

#define TO06_TOTAL (4u << 20)
#define TO06_PULSE (128u << 10)

static struct {
  uv_timer_t pulse_timer;
  cnet_socket_t *conn;
  size_t got, pulse_got;
  int pulses;
  uint64_t last_pulse; /* ms after TM.t0 */
  uint64_t full_resume;
  int ends;
} P6;

static void to06_data(cnet_socket_t *s, const cnet_event_t *ev, void *ctx) {
  (void)ctx;
  P6.got += ev->data.len;
  P6.pulse_got += ev->data.len;
  if (P6.full_resume == 0 && P6.pulse_got >= TO06_PULSE)
    cnet_socket_pause(s);
}

static void to06_end(cnet_socket_t *s, const cnet_event_t *ev, void *ctx) {
  (void)s;
  (void)ev;
  (void)ctx;
  P6.ends++;
}

/* Every 50 ms the server reads about 128 KiB, eight times; then nothing
 * until 750 ms, when it reads everything. */
static void to06_pulse(uv_timer_t *t) {
  if (P6.pulses == 8) {
    if (tmo_now() < 750)
      return;
    P6.full_resume = tmo_now();
    uv_close((uv_handle_t *)t, NULL);
    cnet_socket_resume(P6.conn);
    cnet_socket_release(P6.conn);
    return;
  }
  P6.pulses++;
  P6.last_pulse = tmo_now();
  P6.pulse_got = 0;
  cnet_socket_resume(P6.conn);
}

static void set_buf(int fd, int name, int bytes) {
  ASSERT_EQ(0, setsockopt(fd, SOL_SOCKET, name, &bytes, sizeof(bytes)));
}

static void to06_hook(cnet_socket_t *s) {
  cnet_address_t local, remote;

  ASSERT_EQ(0, cnet_socket_on(s, CNET_EV_DATA, to06_data, NULL));
  ASSERT_EQ(0, cnet_socket_on(s, CNET_EV_END, to06_end, NULL));
  cnet_socket_pause(s);
  ASSERT_EQ(0, cnet_socket_address(s, &local));
  ASSERT_EQ(0, cnet_socket_remote_address(s, &remote));
  set_buf(find_tcp_fd(local.port, remote.port), SO_RCVBUF, 64 << 10);
  cnet_socket_retain(s);
  P6.conn = s;
}

static void to06_written(cnet_socket_t *c, const cnet_error_t *err, void *ctx) {
  (void)ctx;
  ASSERT_NULL(err);
  ASSERT_EQ(0, cnet_socket_end(c, NULL, 0, NULL, NULL));
}

static void to06_connect(cnet_socket_t *c, const cnet_event_t *ev, void *ctx) {
  cnet_address_t local, remote;
  char *big = malloc(TO06_TOTAL);

  (void)ev;
  (void)ctx;
  ASSERT_NOT_NULL(big);
  memset(big, 'w', TO06_TOTAL);
  ASSERT_EQ(0, cnet_socket_address(c, &local));
  ASSERT_EQ(0, cnet_socket_remote_address(c, &remote));
  set_buf(find_tcp_fd(local.port, remote.port), SO_SNDBUF, 64 << 10);
  tmo_start(cnet_socket_loop(c));
  ASSERT_EQ(0, cnet_socket_on(c, CNET_EV_TIMEOUT, tmo_count, NULL));
  ASSERT_EQ(0, cnet_socket_set_timeout(c, 100, NULL, NULL));
  ASSERT_EQ(0, cnet_socket_write(c, big, TO06_TOTAL, to06_written, NULL));
  free(big);
  ASSERT_EQ(0, uv_timer_init(cnet_socket_loop(c), &P6.pulse_timer));
  ASSERT_EQ(0, uv_timer_start(&P6.pulse_timer, to06_pulse, 50, 50));
}

TEST_CASE(to06_write_making_progress_suppresses_timeout) {
  uv_loop_t *loop = loop_new();

  reset();
  tmo_reset();
  memset(&P6, 0, sizeof(P6));
  client(loop, start_server(loop, to06_hook), to06_connect, NULL);
  run_bounded(loop, 5000);
  ASSERT_EQ(TO06_TOTAL, P6.got);
  ASSERT_EQ(1, P6.ends);
  ASSERT_EQ(8, P6.pulses);
  /* Nothing while the server kept reading; once when it stopped. */
  ASSERT_EQ(1, TM.count);
  ASSERT_GE(TM.at[0], P6.last_pulse + 100);
  ASSERT_LT(TM.at[0], P6.full_resume);
  finish(loop);
}
