/* net.Socket over loopback TCP and IPC: connect outcome and order, flags,
 * lookup, writing (return values, 'drain', callbacks), half-close, destroy,
 * pipe, counters and addresses (NODE-NET-BEHAVIOURS 1.12-1.20, 7).
 *
 * The expected orders come from Node v20.20.2 running the same scenarios:
 *   EN-11 client end("hi"):   client connect ready finish end close(false)
 *                             server connection data end finish close(false)
 *   CE-01 server end("bye"):  client connect ready data end finish close(false)
 *   EN-03 local end first:    client connect ready finish end close(false)
 *   WR-12 write after end:    cb:ERR_STREAM_WRITE_AFTER_END error close(true)
 *   WR-13 write after destroy: cb:ERR_STREAM_DESTROYED close(false)
 *   EN-04 end(data, cb):      endcb finish (a later end(cb) gets
 *                             ERR_STREAM_ALREADY_FINISHED) end close(false) */
#include "harness.h"

#include "one-connection.h"

/* ---- CE-01, EN-11 ----------------------------------------------------------
 */

static void end_hi(cnet_socket_t *s, const cnet_event_t *ev, void *ctx) {
  (void)ev;
  (void)ctx;
  ASSERT_EQ(0, cnet_socket_end(s, "hi", 2, NULL, NULL));
}

/* EN-11: the client sends and ends; the server auto-ends after 'end'. */
TEST_CASE(en11_server_order_client_sends_and_ends) {
  uv_loop_t *loop = loop_new();
  int port;

  reset();
  port = start_server(loop, NULL);
  connect_client(loop, port, end_hi, NULL);
  run_bounded(loop, 3000);
  ASSERT_STR_EQ(ST.buf, "connection data end finish close(false)");
  ASSERT_STR_EQ(CT.buf, "connect ready finish end close(false)");
  ASSERT_EQ(2, S.rx.len);
  ASSERT_MEM_EQ(S.rx.buf, "hi", 2);
  finish(loop);
}

static void server_end_bye(cnet_socket_t *s) {
  ASSERT_EQ(0, cnet_socket_end(s, "bye", 3, NULL, NULL));
}

static void write_in_end(cnet_socket_t *s, const cnet_event_t *ev, void *ctx) {
  (void)ev;
  (void)ctx;
  /* EN-01: still writable inside 'end', not destroyed. */
  ASSERT(!cnet_socket_destroyed(s));
  ASSERT_STR_EQ(cnet_socket_ready_state(s), "writeOnly");
  ASSERT_EQ(1, cnet_socket_write(s, "late", 4, NULL, NULL));
}

/* CE-01 and EN-01: the server sends and ends; the client's automatic end()
 * comes after its 'end', whose listener may still write. */
TEST_CASE(ce01_client_order_and_en01_auto_end) {
  uv_loop_t *loop = loop_new();
  cnet_socket_t *c;
  int port;

  reset();
  port = start_server(loop, server_end_bye);
  c = connect_client(loop, port, NULL, NULL);
  ASSERT_EQ(0, cnet_socket_on(c, CNET_EV_END, write_in_end, NULL));
  run_bounded(loop, 3000);
  ASSERT_STR_EQ(CT.buf, "connect ready data end finish close(false)");
  ASSERT_STR_EQ(ST.buf, "connection finish data end close(false)");
  ASSERT_EQ(3, CRX.len);
  ASSERT_MEM_EQ(CRX.buf, "bye", 3);
  ASSERT_EQ(4, S.rx.len);
  ASSERT_MEM_EQ(S.rx.buf, "late", 4);
  finish(loop);
}

/* ---- CE-02 -----------------------------------------------------------------
 */

static void check_connected(cnet_socket_t *s, const cnet_event_t *ev,
                            void *ctx) {
  cnet_address_t a;

  (void)ev;
  (void)ctx;
  ASSERT(!cnet_socket_connecting(s));
  ASSERT(!cnet_socket_pending(s));
  ASSERT(!cnet_socket_destroyed(s));
  ASSERT_STR_EQ(cnet_socket_ready_state(s), "open");
  ASSERT_EQ(0, cnet_socket_remote_address(s, &a));
  ASSERT_STR_EQ(a.address, "127.0.0.1");
  ASSERT_EQ(S.port, a.port);
  ASSERT_EQ(4, a.family);
  trace_add(&CT, "checked");
  cnet_socket_end(s, NULL, 0, NULL, NULL);
}

TEST_CASE(ce02_connecting_and_pending_flags) {
  uv_loop_t *loop = loop_new();
  cnet_socket_t *s = cnet_socket_new(loop, NULL);
  cnet_address_t a;
  int port;

  reset();
  port = start_server(loop, NULL);
  /* A fresh socket: not connecting, pending, "open" (SC-01). */
  ASSERT(!cnet_socket_connecting(s));
  ASSERT(cnet_socket_pending(s));
  ASSERT(!cnet_socket_destroyed(s));
  ASSERT_EQ(UV_ENOTCONN, cnet_socket_remote_address(s, &a));
  ASSERT_EQ(UV_ENOTCONN, cnet_socket_address(s, &a));
  ASSERT_EQ(
      0, cnet_socket_connect_port(s, port, "127.0.0.1", check_connected, NULL));
  ASSERT(cnet_socket_connecting(s));
  ASSERT(cnet_socket_pending(s));
  ASSERT_STR_EQ(cnet_socket_ready_state(s), "opening");
  ASSERT_EQ(UV_ENOTCONN, cnet_socket_remote_address(s, &a));
  /* UV_EBUSY: already connecting. */
  ASSERT_EQ(UV_EBUSY,
            cnet_socket_connect_port(s, port, "127.0.0.1", NULL, NULL));
  trace_client(s);
  run_bounded(loop, 3000);
  ASSERT_STR_EQ(CT.buf, "checked connect ready finish end close(false)");
  ASSERT(cnet_socket_destroyed(s));
  ASSERT(cnet_socket_pending(s));
  ASSERT_STR_EQ(cnet_socket_ready_state(s), "closed");
  cnet_socket_free(s);
  finish(loop);
}

/* ---- CE-03, IP-C-02, DS-04
 * --------------------------------------------------------- */

static cnet_error_t kept_error;
static int errors_seen;

static void keep_error(cnet_socket_t *s, const cnet_event_t *ev, void *ctx) {
  (void)ctx;
  kept_error = *ev->error;
  errors_seen++;
  ASSERT(!cnet_socket_connecting(s));
  trace_add(&CT, "error");
}

static void close_had_error(cnet_socket_t *s, const cnet_event_t *ev,
                            void *ctx) {
  (void)s;
  (void)ctx;
  trace_add(&CT, ev->close.had_error ? "close(true)" : "close(false)");
}

TEST_CASE(ce03_econnrefused) {
  uv_loop_t *loop = loop_new();
  cnet_socket_t *s = cnet_socket_new(loop, NULL);
  int port = closed_port();
  char want[64];

  reset();
  errors_seen = 0;
  ASSERT_EQ(0, cnet_socket_on(s, CNET_EV_ERROR, keep_error, NULL));
  ASSERT_EQ(0, cnet_socket_on(s, CNET_EV_CLOSE, close_had_error, NULL));
  ASSERT_EQ(0, cnet_socket_on(s, CNET_EV_CONNECT, client_event, NULL));
  ASSERT_EQ(0, cnet_socket_connect_port(s, port, "127.0.0.1", NULL, NULL));
  run_bounded(loop, 3000);
  ASSERT_STR_EQ(CT.buf, "error close(true)");
  ASSERT_EQ(UV_ECONNREFUSED, kept_error.errnum);
  ASSERT_STR_EQ(kept_error.code, "ECONNREFUSED");
  ASSERT_STR_EQ(kept_error.syscall, "connect");
  ASSERT_STR_EQ(kept_error.address, "127.0.0.1");
  ASSERT_EQ(port, kept_error.port);
  snprintf(want, sizeof(want), "connect ECONNREFUSED 127.0.0.1:%d", port);
  ASSERT_STR_EQ(kept_error.message, want);
  ASSERT(cnet_socket_destroyed(s));
  ASSERT(cnet_socket_pending(s));
  ASSERT(!cnet_socket_connecting(s));
  ASSERT_STR_EQ(cnet_socket_ready_state(s), "closed");
  cnet_socket_free(s);
  loop_finish(loop);
}

TEST_CASE(ipc02_connect_missing_path) {
  uv_loop_t *loop = loop_new();
  cnet_socket_t *s = cnet_socket_new(loop, NULL);
  const char *path = temp_socket_path();
  char want[128];

  reset();
  errors_seen = 0;
  ASSERT_EQ(0, cnet_socket_on(s, CNET_EV_ERROR, keep_error, NULL));
  ASSERT_EQ(0, cnet_socket_on(s, CNET_EV_CLOSE, close_had_error, NULL));
  ASSERT_EQ(0, cnet_socket_connect_path(s, path, NULL, NULL));
  run_bounded(loop, 3000);
  ASSERT_STR_EQ(CT.buf, "error close(true)");
  ASSERT_STR_EQ(kept_error.code, "ENOENT");
  ASSERT_EQ(UV_ENOENT, kept_error.errnum);
  ASSERT_STR_EQ(kept_error.syscall, "connect");
  ASSERT_STR_EQ(kept_error.address, path);
  snprintf(want, sizeof(want), "connect ENOENT %s", path);
  ASSERT_STR_EQ(kept_error.message, want);
  cnet_socket_free(s);
  loop_finish(loop);
}

static void destroy_in_error(cnet_socket_t *s, const cnet_event_t *ev,
                             void *ctx) {
  cnet_error_t other = *ev->error;

  (void)ctx;
  errors_seen++;
  trace_add(&CT, "error");
  snprintf(other.message, sizeof(other.message), "second");
  cnet_socket_destroy(s, NULL);
  cnet_socket_destroy(s, &other); /* EN-10: no second 'error' */
}

TEST_CASE(ds04_destroy_from_error_handler_one_close) {
  uv_loop_t *loop = loop_new();
  cnet_connect_options_t o = {.port = closed_port(), .host = "127.0.0.1"};
  cnet_socket_t *s;

  reset();
  errors_seen = 0;
  s = cnet_create_connection(loop, &o, NULL, NULL);
  ASSERT_NOT_NULL(s);
  ASSERT_EQ(0, cnet_socket_on(s, CNET_EV_ERROR, destroy_in_error, NULL));
  ASSERT_EQ(0, cnet_socket_on(s, CNET_EV_CLOSE, close_had_error, NULL));
  run_bounded(loop, 3000);
  ASSERT_STR_EQ(CT.buf, "error close(true)");
  ASSERT_EQ(1, errors_seen);
  loop_finish(loop);
}

/* ---- DN-01, DN-02
 * ------------------------------------------------------------- */

static uv_timer_t dn01_timer;

static void close_timer(uv_timer_t *t) {
  uv_close((uv_handle_t *)t, NULL);
}

TEST_CASE(dn01_destroy_right_after_connect_to_ip) {
  uv_loop_t *loop = loop_new();
  cnet_socket_t *s = cnet_socket_new(loop, NULL);
  int port;

  reset();
  port = start_server(loop, NULL);
  trace_client(s);
  ASSERT_EQ(0, cnet_socket_connect_port(s, port, "127.0.0.1", NULL, NULL));
  cnet_socket_destroy(s, NULL);
  ASSERT_STR_EQ(CT.buf, ""); /* nothing inside destroy() */
  /* Give a connection that should not exist time to reach the server. */
  cnet_server_unref(S.srv);
  ASSERT_EQ(0, uv_timer_init(loop, &dn01_timer));
  ASSERT_EQ(0, uv_timer_start(&dn01_timer, close_timer, 50, 0));
  run_bounded(loop, 3000);
  ASSERT_STR_EQ(CT.buf, "close(false)");
  ASSERT_EQ(0, S.connections);
  cnet_socket_free(s);
  finish(loop);
}

static void on_lookup(cnet_socket_t *s, const cnet_event_t *ev, void *ctx) {
  (void)s;
  (void)ctx;
  ASSERT_EQ(CNET_EV_LOOKUP, ev->type);
  ASSERT_NULL(ev->lookup.error);
  ASSERT_STR_EQ(ev->lookup.host, "localhost");
  ASSERT_NOT_NULL(ev->lookup.address);
  if (ev->lookup.family == 4)
    ASSERT_STR_EQ(ev->lookup.address, "127.0.0.1");
  else if (ev->lookup.family == 6)
    ASSERT_STR_EQ(ev->lookup.address, "::1");
  else
    FAIL("lookup family %d", ev->lookup.family);
  trace_add(&CT, "lookup");
}

static void end_now(cnet_socket_t *s, const cnet_event_t *ev, void *ctx) {
  (void)ev;
  (void)ctx;
  cnet_socket_end(s, NULL, 0, NULL, NULL);
}

TEST_CASE(dn02_lookup_event_for_localhost_only) {
  uv_loop_t *loop = loop_new();
  cnet_socket_t *a = cnet_socket_new(loop, NULL);
  cnet_socket_t *b = cnet_socket_new(loop, NULL);
  cnet_server_t *srv;
  int port;

  reset();
  /* Default host: "::" dual-stack, so both ::1 and 127.0.0.1 reach it. */
  srv = cnet_create_server(loop, NULL, NULL, NULL);
  ASSERT_EQ(0, cnet_server_listen_port(srv, 0, NULL, 0, NULL, NULL));
  port = server_port(srv);
  cnet_server_unref(srv);
  ASSERT_EQ(0, cnet_socket_on(a, CNET_EV_LOOKUP, on_lookup, NULL));
  ASSERT_EQ(0, cnet_socket_on(a, CNET_EV_CONNECT, client_event, NULL));
  ASSERT_EQ(0, cnet_socket_on(a, CNET_EV_READY, client_event, NULL));
  ASSERT_EQ(0, cnet_socket_connect_port(a, port, "localhost", end_now, NULL));
  run_bounded(loop, 3000);
  ASSERT_STR_EQ(CT.buf, "lookup connect ready");
  /* An IP literal: no 'lookup'. */
  memset(&CT, 0, sizeof(CT));
  ASSERT_EQ(0, cnet_socket_on(b, CNET_EV_LOOKUP, on_lookup, NULL));
  ASSERT_EQ(0, cnet_socket_on(b, CNET_EV_CONNECT, client_event, NULL));
  ASSERT_EQ(0, cnet_socket_connect_port(b, port, "127.0.0.1", end_now, NULL));
  run_bounded(loop, 3000);
  ASSERT_STR_EQ(CT.buf, "connect");
  cnet_socket_free(a);
  cnet_socket_free(b);
  cnet_server_free(srv);
  loop_finish(loop);
}

/* ---- WR-01/WR-02: return values, 'drain', 64 MiB to a paused peer
 * ---------------- */

#define BIG (64u << 20)
#define SMALL 1000u

static unsigned char pat(size_t i) {
  return (unsigned char)(i ^ (i >> 8) ^ (i >> 16) ^ (i >> 24));
}

static struct {
  bool client_wrote, server_accepted;
  cnet_socket_t *accepted;
  size_t received;
  int drains, cbs;
  bool resumed;
} big;

static void big_maybe_resume(void) {
  if (big.client_wrote && big.server_accepted && !big.resumed) {
    big.resumed = true;
    ASSERT(cnet_socket_is_paused(big.accepted));
    ASSERT_EQ(0, cnet_socket_bytes_read(big.accepted)); /* SV-07 */
    cnet_socket_resume(big.accepted);
    ASSERT(!cnet_socket_is_paused(big.accepted));
  }
}

static void big_server_data(cnet_socket_t *s, const cnet_event_t *ev,
                            void *ctx) {
  (void)s;
  (void)ctx;
  ASSERT(big.resumed);
  for (size_t i = 0; i < ev->data.len; i++)
    if ((unsigned char)ev->data.base[i] != pat(big.received + i))
      FAIL("byte %zu differs", big.received + i);
  big.received += ev->data.len;
}

static void big_server_end(cnet_socket_t *s, const cnet_event_t *ev,
                           void *ctx) {
  (void)s;
  (void)ev;
  (void)ctx;
  trace_add(&ST, "end");
  ASSERT_EQ(BIG, big.received);
}

static void big_hook(cnet_socket_t *s) {
  big.accepted = s;
  big.server_accepted = true;
  ASSERT(cnet_socket_is_paused(s));
  /* A 'data' listener does not resume a pause_on_connect socket. */
  ASSERT_EQ(0, cnet_socket_on(s, CNET_EV_DATA, big_server_data, NULL));
  ASSERT(cnet_socket_is_paused(s));
  ASSERT_EQ(0, cnet_socket_on(s, CNET_EV_END, big_server_end, NULL));
  big_maybe_resume();
}

static void big_cb(cnet_socket_t *s, const cnet_error_t *err, void *ctx) {
  (void)s;
  ASSERT_NULL(err);
  big.cbs++;
  trace_add(&CT, ctx);
}

static void big_drain(cnet_socket_t *s, const cnet_event_t *ev, void *ctx) {
  (void)ev;
  (void)ctx;
  big.drains++;
  trace_add(&CT, "drain");
  ASSERT_EQ(0, cnet_socket_writable_length(s));
  cnet_socket_end(s, NULL, 0, NULL, NULL);
}

static void big_connect(cnet_socket_t *s, const cnet_event_t *ev, void *ctx) {
  unsigned char *buf = malloc(BIG);

  (void)ev;
  (void)ctx;
  ASSERT_NOT_NULL(buf);
  for (size_t i = 0; i < BIG; i++)
    buf[i] = pat(i);
  ASSERT_EQ(1, cnet_socket_write(s, buf, SMALL, big_cb, "cb1"));
  ASSERT_EQ(0, cnet_socket_write(s, buf + SMALL, BIG - SMALL, big_cb, "cb2"));
  ASSERT_GT(cnet_socket_writable_length(s), 0);
  ASSERT_EQ(BIG, cnet_socket_bytes_written(s)); /* queued bytes count */
  memset(buf, 0, BIG); /* the bytes were ours again when write returned */
  free(buf);
  big.client_wrote = true;
  big_maybe_resume();
}

TEST_CASE(wr01_write_returns_0_when_queued_then_drain) {
  uv_loop_t *loop = loop_new();
  cnet_server_options_t so = {.pause_on_connect = true};
  cnet_socket_t *c;
  int port;

  reset();
  memset(&big, 0, sizeof(big));
  S.no_rx = true;
  port = start_server_opts(loop, &so, "127.0.0.1", big_hook);
  c = connect_client(loop, port, big_connect, NULL);
  ASSERT_EQ(0, cnet_socket_on(c, CNET_EV_DRAIN, big_drain, NULL));
  run_bounded(loop, 8000);
  ASSERT_EQ(1, big.drains);
  ASSERT_EQ(2, big.cbs);
  ASSERT_EQ(BIG, big.received);
  /* WR-02: 'drain' before the callback of the write that caused it (the
   * word twice: trace_client's listener and big_drain). */
  ASSERT_STR_EQ(CT.buf, "connect ready cb1 drain drain cb2 finish end "
                        "close(false)");
  ASSERT_EQ(BIG, S.bytes_read);
  finish(loop);
}

/* ---- WR-03, WR-08
 * ------------------------------------------------------------------ */

static char order[64];

static void order_cb(cnet_socket_t *s, const cnet_error_t *err, void *ctx) {
  (void)s;
  ASSERT_NULL(err);
  strncat(order, ctx, sizeof(order) - strlen(order) - 1);
}

TEST_CASE(wr03_writes_before_connect_sent_in_order) {
  uv_loop_t *loop = loop_new();
  cnet_socket_t *s = cnet_socket_new(loop, NULL);
  int port;

  reset();
  order[0] = '\0';
  port = start_server(loop, NULL);
  trace_client(s);
  ASSERT_EQ(0, cnet_socket_connect_port(s, port, "127.0.0.1", NULL, NULL));
  ASSERT_EQ(0, cnet_socket_write(s, "one,", 4, order_cb, "1"));
  ASSERT_EQ(0, cnet_socket_write(s, "two,", 4, order_cb, "2"));
  ASSERT_EQ(0, cnet_socket_write(s, "three", 5, order_cb, "3"));
  ASSERT_EQ(13, cnet_socket_bytes_written(s));
  ASSERT_EQ(13, cnet_socket_writable_length(s));
  ASSERT_EQ(0, cnet_socket_end(s, NULL, 0, order_cb, "E"));
  ASSERT_STR_EQ(cnet_socket_ready_state(s), "opening");
  run_bounded(loop, 3000);
  ASSERT_STR_EQ(order, "123E");
  ASSERT_EQ(13, S.rx.len);
  ASSERT_MEM_EQ(S.rx.buf, "one,two,three", 13);
  ASSERT_STR_EQ(CT.buf, "connect ready finish end close(false)");
  ASSERT_STR_EQ(ST.buf, "connection data end finish close(false)");
  cnet_socket_free(s);
  finish(loop);
}

#define NWRITES 10000

static int next_cb;

static void seq_cb(cnet_socket_t *s, const cnet_error_t *err, void *ctx) {
  (void)s;
  ASSERT_NULL(err);
  ASSERT_EQ(next_cb, (intptr_t)ctx);
  next_cb++;
}

static void many_writes(cnet_socket_t *s, const cnet_event_t *ev, void *ctx) {
  char w[16];

  (void)ev;
  (void)ctx;
  for (intptr_t i = 0; i < NWRITES; i++) {
    snprintf(w, sizeof(w), "%07d,", (int)i);
    ASSERT_GE(cnet_socket_write(s, w, 8, seq_cb, (void *)i), 0);
  }
  ASSERT_EQ(0, next_cb); /* never inside write() */
  cnet_socket_end(s, NULL, 0, NULL, NULL);
}

TEST_CASE(wr08_write_callbacks_in_order) {
  uv_loop_t *loop = loop_new();
  char w[16];
  int port;

  reset();
  next_cb = 0;
  port = start_server(loop, NULL);
  connect_client(loop, port, many_writes, NULL);
  run_bounded(loop, 5000);
  ASSERT_EQ(NWRITES, next_cb);
  ASSERT_EQ(NWRITES * 8, S.rx.len);
  for (int i = 0; i < NWRITES; i++) {
    snprintf(w, sizeof(w), "%07d,", i);
    ASSERT_MEM_EQ(S.rx.buf + i * 8, w, 8);
  }
  finish(loop);
}

/* ---- WR-12, WR-13
 * ------------------------------------------------------------------ */

static void err_cb(cnet_socket_t *s, const cnet_error_t *err, void *ctx) {
  char w[128];

  (void)s;
  (void)ctx;
  ASSERT_NOT_NULL(err);
  snprintf(w, sizeof(w), "cb:%s", err->code);
  trace_add(&CT, w);
  if (err->errnum == CNET_ERR_STREAM_DESTROYED)
    ASSERT_STR_EQ(err->message,
                  "Cannot call write after a stream was destroyed");
  if (err->errnum == CNET_ERR_STREAM_WRITE_AFTER_END)
    ASSERT_STR_EQ(err->message, "write after end");
}

static void error_code(cnet_socket_t *s, const cnet_event_t *ev, void *ctx) {
  char w[128];

  (void)s;
  (void)ctx;
  snprintf(w, sizeof(w), "error:%s", ev->error->code);
  trace_add(&CT, w);
}

static void write_after_end(cnet_socket_t *s, const cnet_event_t *ev,
                            void *ctx) {
  (void)ev;
  (void)ctx;
  ASSERT_EQ(0, cnet_socket_end(s, NULL, 0, NULL, NULL));
  ASSERT_EQ(0, cnet_socket_write(s, "x", 1, err_cb, NULL));
  ASSERT(cnet_socket_destroyed(s)); /* correction 8: before write returns */
  trace_add(&CT, "written");
}

TEST_CASE(wr12_write_after_end) {
  uv_loop_t *loop = loop_new();
  cnet_connect_options_t o = {.port = 0, .host = "127.0.0.1"};
  cnet_socket_t *c;

  reset();
  o.port = start_server(loop, NULL);
  c = cnet_create_connection(loop, &o, write_after_end, NULL);
  ASSERT_EQ(0, cnet_socket_on(c, CNET_EV_ERROR, error_code, NULL));
  ASSERT_EQ(0, cnet_socket_on(c, CNET_EV_FINISH, client_event, NULL));
  ASSERT_EQ(0, cnet_socket_on(c, CNET_EV_CLOSE, client_event, NULL));
  run_bounded(loop, 3000);
  ASSERT_STR_EQ(CT.buf, "written cb:ERR_STREAM_WRITE_AFTER_END "
                        "error:ERR_STREAM_WRITE_AFTER_END close(true)");
  finish(loop);
}

static void write_after_destroy(cnet_socket_t *s, const cnet_event_t *ev,
                                void *ctx) {
  (void)ev;
  (void)ctx;
  cnet_socket_destroy(s, NULL);
  ASSERT_EQ(0, cnet_socket_write(s, "x", 1, err_cb, NULL));
  trace_add(&CT, "written");
}

TEST_CASE(wr13_write_after_destroy) {
  uv_loop_t *loop = loop_new();
  cnet_connect_options_t o = {.port = 0, .host = "127.0.0.1"};
  cnet_socket_t *c;

  reset();
  o.port = start_server(loop, NULL);
  c = cnet_create_connection(loop, &o, write_after_destroy, NULL);
  ASSERT_EQ(0, cnet_socket_on(c, CNET_EV_ERROR, error_code, NULL));
  ASSERT_EQ(0, cnet_socket_on(c, CNET_EV_CLOSE, client_event, NULL));
  run_bounded(loop, 3000);
  ASSERT_STR_EQ(CT.buf, "written cb:ERR_STREAM_DESTROYED close(false)");
  finish(loop);
}

/* ---- EN-02, EN-03, EN-04
 * ------------------------------------------------------------ */

static void half_open_later(uv_timer_t *t) {
  cnet_socket_t *s = t->data;

  /* The automatic end() would have happened by now: it did not. */
  ASSERT(!cnet_socket_destroyed(s));
  ASSERT_STR_EQ(cnet_socket_ready_state(s), "writeOnly");
  ASSERT_EQ(1, cnet_socket_write(s, "after", 5, NULL, NULL));
  ASSERT_EQ(0, cnet_socket_end(s, NULL, 0, NULL, NULL));
  uv_close((uv_handle_t *)t, NULL);
}

static uv_timer_t half_open_timer;

static void half_open_end(cnet_socket_t *s, const cnet_event_t *ev, void *ctx) {
  (void)ev;
  (void)ctx;
  ASSERT_STR_EQ(cnet_socket_ready_state(s), "writeOnly");
  ASSERT_EQ(0, uv_timer_init(cnet_socket_loop(s), &half_open_timer));
  half_open_timer.data = s;
  ASSERT_EQ(0, uv_timer_start(&half_open_timer, half_open_later, 20, 0));
}

static void server_end_x(cnet_socket_t *s) {
  ASSERT_EQ(0, cnet_socket_end(s, "x", 1, NULL, NULL));
}

TEST_CASE(en02_allow_half_open_stays_writable) {
  uv_loop_t *loop = loop_new();
  cnet_connect_options_t o = {.host = "127.0.0.1", .allow_half_open = true};
  cnet_socket_t *c;

  reset();
  o.port = start_server(loop, server_end_x);
  c = cnet_create_connection(loop, &o, NULL, NULL);
  ASSERT_NOT_NULL(c);
  trace_client(c);
  ASSERT_EQ(0, cnet_socket_on(c, CNET_EV_END, half_open_end, NULL));
  run_bounded(loop, 3000);
  ASSERT_STR_EQ(CT.buf, "connect ready data end finish close(false)");
  ASSERT_STR_EQ(ST.buf, "connection finish data end close(false)");
  ASSERT_EQ(5, S.rx.len);
  ASSERT_MEM_EQ(S.rx.buf, "after", 5);
  finish(loop);
}

static void end_first(cnet_socket_t *s, const cnet_event_t *ev, void *ctx) {
  (void)ev;
  (void)ctx;
  ASSERT_EQ(0, cnet_socket_end(s, NULL, 0, NULL, NULL));
  ASSERT_STR_EQ(cnet_socket_ready_state(s), "readOnly");
  ASSERT_EQ(0, cnet_socket_end(s, NULL, 0, NULL, NULL)); /* harmless */
  trace_add(&CT, "rs=readOnly");
}

TEST_CASE(en03_local_end_first_read_only) {
  uv_loop_t *loop = loop_new();
  int port;

  reset();
  port = start_server(loop, NULL);
  connect_client(loop, port, end_first, NULL);
  run_bounded(loop, 3000);
  ASSERT_STR_EQ(CT.buf, "rs=readOnly connect ready finish end close(false)");
  ASSERT_STR_EQ(ST.buf, "connection end finish close(false)");
  finish(loop);
}

static void end_cb2(cnet_socket_t *s, const cnet_error_t *err, void *ctx) {
  (void)s;
  (void)ctx;
  ASSERT_NOT_NULL(err);
  ASSERT_STR_EQ(err->code, "ERR_STREAM_ALREADY_FINISHED");
  ASSERT_STR_EQ(err->message, "Cannot call end after a stream was finished");
  trace_add(&CT, "cb2");
}

static void end_cb(cnet_socket_t *s, const cnet_error_t *err, void *ctx) {
  (void)s;
  (void)ctx;
  ASSERT_NULL(err);
  trace_add(&CT, "endcb");
}

static void end_again_in_finish(cnet_socket_t *s, const cnet_event_t *ev,
                                void *ctx) {
  (void)ev;
  (void)ctx;
  ASSERT_EQ(0, cnet_socket_end(s, NULL, 0, end_cb2, NULL));
}

static void end_with_data(cnet_socket_t *s, const cnet_event_t *ev, void *ctx) {
  (void)ev;
  (void)ctx;
  ASSERT_EQ(0, cnet_socket_end(s, "payload", 7, end_cb, NULL));
  ASSERT_EQ(0, cnet_socket_on(s, CNET_EV_FINISH, end_again_in_finish, NULL));
}

TEST_CASE(en04_end_data_cb_before_finish) {
  uv_loop_t *loop = loop_new();
  int port;

  reset();
  port = start_server(loop, NULL);
  connect_client(loop, port, end_with_data, NULL);
  run_bounded(loop, 3000);
  ASSERT_STR_EQ(CT.buf, "connect ready endcb finish cb2 end close(false)");
  ASSERT_EQ(7, S.rx.len);
  ASSERT_MEM_EQ(S.rx.buf, "payload", 7);
  finish(loop);
}

/* ---- DS-01, DS-02
 * ---------------------------------------------------------------- */

TEST_CASE(ds01_destroy_never_connected_close_deferred) {
  uv_loop_t *loop = loop_new();
  cnet_socket_t *s = cnet_socket_new(loop, NULL);

  reset();
  trace_client(s);
  cnet_socket_destroy(s, NULL);
  trace_add(&CT, "destroyed");
  ASSERT(cnet_socket_destroyed(s));
  ASSERT_STR_EQ(cnet_socket_ready_state(s), "closed");
  cnet_socket_destroy(s, NULL); /* idempotent */
  run_bounded(loop, 2000);
  ASSERT_STR_EQ(CT.buf, "destroyed close(false)");
  cnet_socket_free(s);
  loop_finish(loop);
}

static void destroy_with_error(cnet_socket_t *s, const cnet_event_t *ev,
                               void *ctx) {
  cnet_error_t err = {.errnum = CNET_ERR_SOCKET_CLOSED,
                      .code = "ERR_SOCKET_CLOSED",
                      .message = "boom"};
  cnet_error_t other = err;

  (void)ev;
  (void)ctx;
  snprintf(other.message, sizeof(other.message), "two");
  cnet_socket_destroy(s, &err);
  memset(&err, 0, sizeof(err)); /* destroy kept a copy */
  cnet_socket_destroy(s, &other);
}

static void error_message(cnet_socket_t *s, const cnet_event_t *ev, void *ctx) {
  char w[128];

  (void)s;
  (void)ctx;
  snprintf(w, sizeof(w), "error:%.100s", ev->error->message);
  trace_add(&CT, w);
}

TEST_CASE(ds02_destroy_with_error_then_close_had_error) {
  uv_loop_t *loop = loop_new();
  cnet_connect_options_t o = {.host = "127.0.0.1"};
  cnet_socket_t *c;

  reset();
  o.port = start_server(loop, NULL);
  c = cnet_create_connection(loop, &o, destroy_with_error, NULL);
  ASSERT_EQ(0, cnet_socket_on(c, CNET_EV_ERROR, error_message, NULL));
  ASSERT_EQ(0, cnet_socket_on(c, CNET_EV_CLOSE, client_event, NULL));
  run_bounded(loop, 3000);
  ASSERT_STR_EQ(CT.buf, "error:boom close(true)");
  ASSERT_STR_EQ(ST.buf, "connection end finish close(false)");
  finish(loop);
}

/* ---- pipe echo, counters, addresses (ST-07, ST-09)
 * ------------------------------------- */

#define ECHO_N 100000u

static void echo_hook(cnet_socket_t *s) {
  ASSERT_EQ(0, cnet_socket_pipe(s, s, NULL));
}

static struct {
  cnet_address_t client_local, client_remote, server_local, server_remote;
  cnet_address_t after_close_remote;
  int after_close_local;
} addr;

static void echo_connect(cnet_socket_t *s, const cnet_event_t *ev, void *ctx) {
  static char buf[ECHO_N];

  (void)ev;
  (void)ctx;
  for (size_t i = 0; i < ECHO_N; i++)
    buf[i] = (char)pat(i);
  ASSERT_EQ(0, cnet_socket_address(s, &addr.client_local));
  ASSERT_EQ(0, cnet_socket_remote_address(s, &addr.client_remote));
  ASSERT_GE(cnet_socket_write(s, buf, ECHO_N, NULL, NULL), 0);
  ASSERT_EQ(ECHO_N, cnet_socket_bytes_written(s));
}

/* End once everything came back, so the order is fixed. */
static void end_when_all_back(cnet_socket_t *s, const cnet_event_t *ev,
                              void *ctx) {
  (void)ev;
  if (CRX.len == (size_t)(intptr_t)ctx)
    ASSERT_EQ(0, cnet_socket_end(s, NULL, 0, NULL, NULL));
}

static void echo_close(cnet_socket_t *s, const cnet_event_t *ev, void *ctx) {
  (void)ev;
  (void)ctx;
  ASSERT_EQ(ECHO_N, cnet_socket_bytes_read(s));
  ASSERT_EQ(ECHO_N, cnet_socket_bytes_written(s));
  /* ST-06/correction 5: only the remote end survives 'close'. */
  addr.after_close_local = cnet_socket_address(s, &addr.after_close_remote);
  ASSERT_EQ(0, cnet_socket_remote_address(s, &addr.after_close_remote));
}

static void echo_server_addresses(cnet_server_t *srv, const cnet_event_t *ev,
                                  void *ctx) {
  (void)srv;
  (void)ctx;
  ASSERT_EQ(0, cnet_socket_address(ev->connection, &addr.server_local));
  ASSERT_EQ(0, cnet_socket_remote_address(ev->connection, &addr.server_remote));
}

TEST_CASE(pipe_echo_counters_and_addresses) {
  uv_loop_t *loop = loop_new();
  cnet_socket_t *c;
  int port;

  reset();
  memset(&addr, 0, sizeof(addr));
  port = start_server(loop, echo_hook);
  ASSERT_EQ(0, cnet_server_on(S.srv, CNET_EV_CONNECTION, echo_server_addresses,
                              NULL));
  c = connect_client(loop, port, echo_connect, NULL);
  ASSERT_EQ(0, cnet_socket_on(c, CNET_EV_DATA, end_when_all_back,
                              (void *)(intptr_t)ECHO_N));
  ASSERT_EQ(0, cnet_socket_on(c, CNET_EV_CLOSE, echo_close, NULL));
  run_bounded(loop, 5000);
  ASSERT_STR_EQ(CT.buf, "connect ready data finish end close(false)");
  ASSERT_STR_EQ(ST.buf, "connection data end finish close(false)");
  ASSERT_EQ(ECHO_N, CRX.len);
  for (size_t i = 0; i < ECHO_N; i++)
    if ((unsigned char)CRX.buf[i] != pat(i))
      FAIL("echoed byte %zu differs", i);
  ASSERT_EQ(ECHO_N, S.bytes_read);
  ASSERT_EQ(ECHO_N, S.bytes_written);
  /* ST-07 / ST-09: each side's local end is the other's remote end. */
  ASSERT_STR_EQ(addr.client_local.address, "127.0.0.1");
  ASSERT_EQ(4, addr.client_local.family);
  ASSERT_STR_EQ(addr.client_remote.address, "127.0.0.1");
  ASSERT_EQ(port, addr.client_remote.port);
  ASSERT_STR_EQ(addr.server_local.address, "127.0.0.1");
  ASSERT_EQ(port, addr.server_local.port);
  ASSERT_STR_EQ(addr.server_remote.address, "127.0.0.1");
  ASSERT_EQ(4, addr.server_remote.family);
  ASSERT_EQ(addr.client_local.port, addr.server_remote.port);
  ASSERT_EQ(UV_ENOTCONN, addr.after_close_local);
  ASSERT_STR_EQ(addr.after_close_remote.address, "127.0.0.1");
  ASSERT_EQ(port, addr.after_close_remote.port);
  finish(loop);
}

/* ---- IPC echo
 * -----------------------------------------------------------------------------
 */

static void ipc_connect(cnet_socket_t *s, const cnet_event_t *ev, void *ctx) {
  cnet_address_t a;

  (void)ev;
  (void)ctx;
  ASSERT(!cnet_socket_connecting(s));
  ASSERT_EQ(UV_ENOTCONN, cnet_socket_remote_address(s, &a)); /* no IP */
  ASSERT_EQ(1, cnet_socket_write(s, "hello ipc", 9, NULL, NULL));
}

TEST_CASE(ipc_connect_and_echo_via_path) {
  uv_loop_t *loop = loop_new();
  const char *path = temp_socket_path();
  cnet_socket_t *c = cnet_socket_new(loop, NULL);

  reset();
  S.srv = cnet_create_server(loop, NULL, on_connection, NULL);
  S.hook = echo_hook;
  ASSERT_EQ(0, cnet_server_listen_path(S.srv, path, 0, NULL, NULL));
  trace_client(c);
  ASSERT_EQ(0, cnet_socket_on(c, CNET_EV_DATA, end_when_all_back,
                              (void *)(intptr_t)9));
  ASSERT_EQ(0, cnet_socket_connect_path(c, path, ipc_connect, NULL));
  ASSERT(cnet_socket_connecting(c));
  run_bounded(loop, 3000);
  ASSERT_STR_EQ(CT.buf, "connect ready data finish end close(false)");
  ASSERT_STR_EQ(ST.buf, "connection data end finish close(false)");
  ASSERT_EQ(9, CRX.len);
  ASSERT_MEM_EQ(CRX.buf, "hello ipc", 9);
  ASSERT_EQ(9, cnet_socket_bytes_read(c));
  cnet_socket_free(c);
  finish(loop);
  ASSERT_EQ(-1, access(path, F_OK));
}

/* ---- WR-15: writing to a peer that has gone is an error, never SIGPIPE ----
 */

static uv_timer_t epipe_timer;
static const char *epipe_code;
static int epipe_errors;

static void epipe_write_cb(cnet_socket_t *s, const cnet_error_t *err,
                           void *ctx) {
  (void)s;
  (void)ctx;
  if (err != NULL && epipe_errors++ == 0) {
    epipe_code = err->code;
    ASSERT_STR_EQ(err->syscall, "write");
  }
}

static void epipe_tick(uv_timer_t *t) {
  cnet_socket_t *c = t->data;

  if (epipe_errors > 0 || cnet_socket_destroyed(c)) {
    uv_close((uv_handle_t *)t, NULL);
    return;
  }
  cnet_socket_write(c, "x", 1, epipe_write_cb, NULL);
}

static void epipe_on_end(cnet_socket_t *c, const cnet_event_t *ev, void *ctx) {
  (void)ev;
  (void)ctx;
  ASSERT_EQ(0, uv_timer_init(cnet_socket_loop(c), &epipe_timer));
  epipe_timer.data = c;
  ASSERT_EQ(0, uv_timer_start(&epipe_timer, epipe_tick, 1, 5));
}

static void destroy_at_once(cnet_socket_t *s) {
  cnet_socket_destroy(s, NULL);
}

TEST_CASE(wr15_write_to_gone_peer_is_error_not_sigpipe) {
  uv_loop_t *loop = loop_new();
  cnet_connect_options_t o = {.host = "127.0.0.1", .allow_half_open = true};
  cnet_socket_t *c;

  reset();
  epipe_errors = 0;
  o.port = start_server(loop, destroy_at_once);
  c = cnet_create_connection(loop, &o, NULL, NULL);
  ASSERT_NOT_NULL(c);
  ASSERT_EQ(0, cnet_socket_on(c, CNET_EV_END, epipe_on_end, NULL));
  ASSERT_EQ(0, cnet_socket_on(c, CNET_EV_DATA, client_event, NULL));
  ASSERT_EQ(0, cnet_socket_on(c, CNET_EV_ERROR, client_event, NULL));
  ASSERT_EQ(0, cnet_socket_on(c, CNET_EV_CLOSE, client_event, NULL));
  run_bounded(loop, 3000);
  ASSERT_EQ(1, epipe_errors);
  ASSERT(strcmp(epipe_code, "EPIPE") == 0 ||
         strcmp(epipe_code, "ECONNRESET") == 0);
  ASSERT(strstr(CT.buf, "error") != NULL);
  ASSERT(strstr(CT.buf, "close(true)") != NULL);
  finish(loop);
}
