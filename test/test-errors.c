/* Error names and messages, cnet_last_error() for the misuse Node throws
 * for (NODE-NET-BEHAVIOURS 1.4, LE-06, 3.3), and the handler for 'error'
 * events nobody listens to. */
#include "harness.h"

static trace_t T;

static void reset(void) {
  memset(&T, 0, sizeof(T));
}

TEST_CASE(er01_err_name_and_strerror_for_uv_codes) {
  /* Every libuv code: its own name and libuv's text. */
#define XX(code, msg)                                                          \
  ASSERT_STR_EQ(cnet_err_name(UV_##code), #code);                              \
  ASSERT_STR_EQ(cnet_strerror(UV_##code), msg);
  UV_ERRNO_MAP(XX)
#undef XX
  ASSERT_STR_EQ(cnet_err_name(UV_EADDRINUSE), "EADDRINUSE");
  ASSERT_STR_EQ(cnet_strerror(UV_EADDRINUSE), "address already in use");
  ASSERT_STR_EQ(cnet_err_name(UV_ECONNREFUSED), "ECONNREFUSED");
  ASSERT_STR_EQ(cnet_strerror(UV_ECONNREFUSED), "connection refused");
  ASSERT_STR_EQ(cnet_err_name(UV_ENOENT), "ENOENT");
  ASSERT_STR_EQ(cnet_err_name(UV_EOF), "EOF");
  ASSERT_STR_EQ(cnet_err_name(UV_EAI_NONAME), "EAI_NONAME");
}

TEST_CASE(er02_err_name_and_strerror_for_every_node_code) {
  int n = 0;

#define XX(code, fmt)                                                          \
  ASSERT_STR_EQ(cnet_err_name(CNET_##code), #code);                            \
  ASSERT_STR_EQ(cnet_strerror(CNET_##code), fmt);                              \
  ASSERT_GT(CNET_##code, CNET_ERR_BASE_);                                      \
  ASSERT_LT(CNET_##code, -4095); /* never a libuv code */                      \
  n++;
  CNET_NODE_ERROR_MAP(XX)
#undef XX
  ASSERT_EQ(CNET_ERR_END_ - CNET_ERR_BASE_ - 1, n);
  ASSERT_STR_EQ(cnet_err_name(CNET_ERR_SOCKET_BAD_PORT), "ERR_SOCKET_BAD_PORT");
  ASSERT_STR_EQ(cnet_strerror(CNET_ERR_SERVER_NOT_RUNNING),
                "Server is not running.");
  ASSERT_STR_EQ(cnet_strerror(CNET_ERR_STREAM_WRITE_AFTER_END),
                "write after end");
  /* Unformatted when the message takes arguments. */
  ASSERT_STR_EQ(cnet_strerror(CNET_ERR_STREAM_DESTROYED),
                "Cannot call %s after a stream was destroyed");
}

TEST_CASE(er03_unknown_codes) {
  static const int unknown[] = {
      0, 1, 12345, -6001, CNET_ERR_BASE_, CNET_ERR_END_, -6500, -2999, -100000};

  for (size_t i = 0; i < ARRAY_LEN(unknown); i++) {
    ASSERT_STR_EQ(cnet_err_name(unknown[i]), "UNKNOWN");
    ASSERT_NOT_NULL(cnet_strerror(unknown[i]));
  }
}

static void last_error_in_thread(void *arg) {
  const cnet_error_t *e = cnet_last_error();

  *(int *)arg = e != NULL ? e->errnum : -1;
}

TEST_CASE(er04_last_error_is_per_thread_and_never_null) {
  uv_loop_t *loop = loop_new();
  cnet_server_t *srv = cnet_create_server(loop, NULL, NULL, NULL);
  uv_thread_t th;
  int other = 1;

  ASSERT_NOT_NULL(cnet_last_error());
  ASSERT_EQ(0, cnet_last_error()->errnum);
  ASSERT_EQ(CNET_ERR_SOCKET_BAD_PORT,
            cnet_server_listen_port(srv, -1, NULL, 0, NULL, NULL));
  ASSERT_EQ(CNET_ERR_SOCKET_BAD_PORT, cnet_last_error()->errnum);
  /* Another thread has its own, still empty. */
  ASSERT_EQ(0, uv_thread_create(&th, last_error_in_thread, &other));
  ASSERT_EQ(0, uv_thread_join(&th));
  ASSERT_EQ(0, other);
  /* A call that succeeds leaves the last failure in place. */
  ASSERT_EQ(0, cnet_server_listen_port(srv, 0, "127.0.0.1", 0, NULL, NULL));
  ASSERT_EQ(CNET_ERR_SOCKET_BAD_PORT, cnet_last_error()->errnum);
  cnet_server_free(srv);
  loop_finish(loop);
}

static void count_event(cnet_server_t *srv, const cnet_event_t *ev, void *ctx) {
  (void)srv;
  trace_add(&T, cnet_event_name(ev->type));
  (void)ctx;
}

/* PT-01/PT-03: listen names the port "options.port". Nothing happens: no
 * event, no listener added, not listening. */
TEST_CASE(pt03_listen_bad_port_message) {
  uv_loop_t *loop = loop_new();
  cnet_server_t *srv = cnet_create_server(loop, NULL, NULL, NULL);
  const cnet_error_t *e;

  reset();
  ASSERT_EQ(0, cnet_server_on(srv, CNET_EV_ERROR, count_event, NULL));
  ASSERT_EQ(0, cnet_server_on(srv, CNET_EV_CLOSE, count_event, NULL));
  ASSERT_EQ(CNET_ERR_SOCKET_BAD_PORT,
            cnet_server_listen_port(srv, 65536, NULL, 0, count_event, NULL));
  e = cnet_last_error();
  ASSERT_EQ(CNET_ERR_SOCKET_BAD_PORT, e->errnum);
  ASSERT_STR_EQ(e->code, "ERR_SOCKET_BAD_PORT");
  ASSERT_STR_EQ(e->message, "options.port should be >= 0 and < 65536. "
                            "Received type number (65536).");
  ASSERT_NULL(e->syscall);
  ASSERT_EQ(0, cnet_server_listener_count(srv, CNET_EV_LISTENING));
  ASSERT(!cnet_server_listening(srv));

  /* LS-10: a bad port fails even with a good path. */
  {
    cnet_listen_options_t o = {.port = -1, .path = temp_socket_path()};
    ASSERT_EQ(CNET_ERR_SOCKET_BAD_PORT,
              cnet_server_listen(srv, &o, NULL, NULL));
    ASSERT_STR_EQ(cnet_last_error()->message,
                  "options.port should be >= 0 and < 65536. "
                  "Received type number (-1).");
    ASSERT_EQ(-1, access(o.path, F_OK));
  }
  run_bounded(loop, 2000);
  ASSERT_STR_EQ(T.buf, "");
  cnet_server_free(srv);
  loop_finish(loop);
}

static void sock_trace(cnet_socket_t *s, const cnet_event_t *ev, void *ctx) {
  (void)s;
  (void)ctx;
  trace_add(&T, cnet_event_name(ev->type));
}

/* PT-03: connect names it "Port"; the socket is left as it was. */
TEST_CASE(pt03_connect_bad_port_message) {
  uv_loop_t *loop = loop_new();
  cnet_socket_t *s = cnet_socket_new(loop, NULL);
  cnet_connect_options_t o = {.port = 65536, .host = "127.0.0.1"};

  reset();
  ASSERT_EQ(0, cnet_socket_on(s, CNET_EV_ERROR, sock_trace, NULL));
  ASSERT_EQ(0, cnet_socket_on(s, CNET_EV_CLOSE, sock_trace, NULL));
  ASSERT_EQ(CNET_ERR_SOCKET_BAD_PORT,
            cnet_socket_connect_port(s, -1, "127.0.0.1", sock_trace, NULL));
  ASSERT_STR_EQ(cnet_last_error()->code, "ERR_SOCKET_BAD_PORT");
  ASSERT_STR_EQ(cnet_last_error()->message,
                "Port should be >= 0 and < 65536. Received type number (-1).");
  ASSERT_EQ(0, cnet_socket_listener_count(s, CNET_EV_CONNECT));
  ASSERT(!cnet_socket_connecting(s));
  ASSERT(!cnet_socket_destroyed(s));
  ASSERT_EQ(CNET_ERR_SOCKET_BAD_PORT, cnet_socket_connect(s, &o, NULL, NULL));
  ASSERT_STR_EQ(cnet_last_error()->message, "Port should be >= 0 and < 65536. "
                                            "Received type number (65536).");
  /* cnet_create_connection: NULL, the same message, nothing left behind. */
  ASSERT_NULL(cnet_create_connection(loop, &o, NULL, NULL));
  ASSERT_EQ(CNET_ERR_SOCKET_BAD_PORT, cnet_last_error()->errnum);
  run_bounded(loop, 2000);
  ASSERT_STR_EQ(T.buf, "");
  cnet_socket_free(s);
  run_bounded(loop, 2000);
  ASSERT_STR_EQ(T.buf, "close");
  loop_finish(loop);
}

TEST_CASE(cn_missing_args_message) {
  uv_loop_t *loop = loop_new();
  cnet_socket_t *s = cnet_socket_new(loop, NULL);
  cnet_connect_options_t none = {0};

  ASSERT_EQ(CNET_ERR_MISSING_ARGS, cnet_socket_connect(s, &none, NULL, NULL));
  ASSERT_STR_EQ(cnet_last_error()->code, "ERR_MISSING_ARGS");
  ASSERT_STR_EQ(cnet_last_error()->message,
                "The \"options\" or \"port\" or \"path\" argument must be "
                "specified");
  ASSERT_NULL(cnet_create_connection(loop, &none, NULL, NULL));
  ASSERT_EQ(CNET_ERR_MISSING_ARGS, cnet_last_error()->errnum);
  ASSERT(!cnet_socket_connecting(s));
  cnet_socket_free(s);
  loop_finish(loop);
}

/* Node checks the family when it has a name to look up. */
TEST_CASE(cn_bad_family_message) {
  uv_loop_t *loop = loop_new();
  cnet_socket_t *s = cnet_socket_new(loop, NULL);
  cnet_connect_options_t o = {.port = 80, .host = "localhost", .family = 5};

  ASSERT_EQ(CNET_ERR_INVALID_ARG_VALUE, cnet_socket_connect(s, &o, NULL, NULL));
  ASSERT_STR_EQ(cnet_last_error()->code, "ERR_INVALID_ARG_VALUE");
  ASSERT_STR_EQ(cnet_last_error()->message,
                "The property 'options.family' must be one of: 0, 4, 6. "
                "Received 5");
  cnet_socket_free(s);
  loop_finish(loop);
}

/* LE-06 */
TEST_CASE(le06_already_listen_message) {
  uv_loop_t *loop = loop_new();
  cnet_server_t *srv = cnet_create_server(loop, NULL, NULL, NULL);

  reset();
  ASSERT_EQ(0,
            cnet_server_listen_port(srv, 0, "127.0.0.1", 0, count_event, NULL));
  ASSERT_EQ(CNET_ERR_SERVER_ALREADY_LISTEN,
            cnet_server_listen_port(srv, 0, "127.0.0.1", 0, count_event, NULL));
  ASSERT_STR_EQ(cnet_last_error()->code, "ERR_SERVER_ALREADY_LISTEN");
  ASSERT_STR_EQ(cnet_last_error()->message,
                "Listen method has been called more than once without "
                "closing.");
  ASSERT_EQ(1, cnet_server_listener_count(srv, CNET_EV_LISTENING));
  ASSERT(cnet_server_listening(srv));
  cnet_server_unref(srv);
  run_bounded(loop, 2000);
  ASSERT_STR_EQ(T.buf, "listening"); /* once: the second cb was not added */
  cnet_server_free(srv);
  loop_finish(loop);
}

TEST_CASE(wr_null_values_message) {
  uv_loop_t *loop = loop_new();
  cnet_socket_t *s = cnet_socket_new(loop, NULL);

  ASSERT_EQ(CNET_ERR_STREAM_NULL_VALUES,
            cnet_socket_write(s, NULL, 5, NULL, NULL));
  ASSERT_STR_EQ(cnet_last_error()->message,
                "May not write null values to stream");
  ASSERT_EQ(CNET_ERR_STREAM_NULL_VALUES,
            cnet_socket_end(s, NULL, 1, NULL, NULL));
  ASSERT_EQ(0, cnet_socket_bytes_written(s));
  cnet_socket_free(s);
  loop_finish(loop);
}

/* ---- unhandled 'error' --------------------------------------------------- */

static struct {
  int calls;
  char what[16];
  cnet_error_t err;
} unhandled;

static void on_unhandled(const char *what, const cnet_error_t *err, void *ctx) {
  ASSERT_EQ((intptr_t)&unhandled, (intptr_t)ctx);
  unhandled.calls++;
  snprintf(unhandled.what, sizeof(unhandled.what), "%s", what);
  unhandled.err = *err;
  trace_add(&T, "unhandled");
}

static void on_close_had_error(cnet_socket_t *s, const cnet_event_t *ev,
                               void *ctx) {
  (void)s;
  (void)ctx;
  trace_add(&T, ev->close.had_error ? "close(true)" : "close(false)");
}

TEST_CASE(er05_unhandled_socket_error_goes_to_handler) {
  uv_loop_t *loop = loop_new();
  int port = closed_port();
  cnet_connect_options_t o = {.port = port, .host = "127.0.0.1"};
  char want[128];
  cnet_socket_t *s;

  reset();
  memset(&unhandled, 0, sizeof(unhandled));
  cnet_set_unhandled_error_handler(on_unhandled, &unhandled);
  s = cnet_create_connection(loop, &o, NULL, NULL);
  ASSERT_NOT_NULL(s);
  ASSERT_EQ(0, cnet_socket_on(s, CNET_EV_CLOSE, on_close_had_error, NULL));
  run_bounded(loop, 3000);
  /* The process lives on; the socket is destroyed as Node would. */
  ASSERT_STR_EQ(T.buf, "unhandled close(true)");
  ASSERT_EQ(1, unhandled.calls);
  ASSERT_STR_EQ(unhandled.what, "socket");
  ASSERT_STR_EQ(unhandled.err.code, "ECONNREFUSED");
  ASSERT_EQ(UV_ECONNREFUSED, unhandled.err.errnum);
  ASSERT_STR_EQ(unhandled.err.syscall, "connect");
  snprintf(want, sizeof(want), "connect ECONNREFUSED 127.0.0.1:%d", port);
  ASSERT_STR_EQ(unhandled.err.message, want);
  cnet_set_unhandled_error_handler(NULL, NULL);
  loop_finish(loop);
}

TEST_CASE(er06_unhandled_server_error_goes_to_handler) {
  uv_loop_t *loop = loop_new();
  cnet_server_t *a = cnet_create_server(loop, NULL, NULL, NULL);
  cnet_server_t *b = cnet_create_server(loop, NULL, NULL, NULL);
  char want[128];
  int port;

  reset();
  memset(&unhandled, 0, sizeof(unhandled));
  cnet_set_unhandled_error_handler(on_unhandled, &unhandled);
  ASSERT_EQ(0, cnet_server_listen_port(a, 0, "127.0.0.1", 0, NULL, NULL));
  port = server_port(a);
  ASSERT_EQ(0, cnet_server_listen_port(b, port, "127.0.0.1", 0, NULL, NULL));
  ASSERT_EQ(0, unhandled.calls); /* deferred */
  cnet_server_unref(a);
  run_bounded(loop, 2000);
  ASSERT_EQ(1, unhandled.calls);
  ASSERT_STR_EQ(unhandled.what, "server");
  snprintf(want, sizeof(want),
           "listen EADDRINUSE: address already in use 127.0.0.1:%d", port);
  ASSERT_STR_EQ(unhandled.err.message, want);
  ASSERT(!cnet_server_listening(b));
  cnet_set_unhandled_error_handler(NULL, NULL);
  cnet_server_free(a);
  cnet_server_free(b);
  loop_finish(loop);
}

/* The default handler prints one line to stderr and the process goes on. */
TEST_CASE(er07_default_unhandled_handler_prints_one_line) {
  uv_loop_t *loop = loop_new();
  int port = closed_port();
  cnet_connect_options_t o = {.port = port, .host = "127.0.0.1"};
  char want[128], buf[1024] = "";
  FILE *f = tmpfile();
  int saved = dup(2);
  size_t n;

  ASSERT_NOT_NULL(f);
  ASSERT_GE(saved, 0);
  cnet_set_unhandled_error_handler(NULL, NULL);
  ASSERT_NOT_NULL(cnet_create_connection(loop, &o, NULL, NULL));
  fflush(stderr);
  ASSERT_GE(dup2(fileno(f), 2), 0);
  run_bounded(loop, 3000);
  fflush(stderr);
  dup2(saved, 2);
  close(saved);
  rewind(f);
  n = fread(buf, 1, sizeof(buf) - 1, f);
  buf[n] = '\0';
  fclose(f);
  snprintf(want, sizeof(want), "connect ECONNREFUSED 127.0.0.1:%d\n", port);
  ASSERT_NOT_NULL(strstr(buf, want));
  ASSERT_NOT_NULL(strstr(buf, "socket"));
  ASSERT_EQ(n - 1, (size_t)(strchr(buf, '\n') - buf)); /* one line */
  loop_finish(loop);
}

/* With an 'error' listener the handler is not involved. */
static void on_error_record(cnet_socket_t *s, const cnet_event_t *ev,
                            void *ctx) {
  (void)s;
  *(cnet_error_t *)ctx = *ev->error; /* a plain value: copying keeps it */
  trace_add(&T, "error");
}

TEST_CASE(er08_error_listener_bypasses_handler) {
  uv_loop_t *loop = loop_new();
  int port = closed_port();
  cnet_connect_options_t o = {.port = port, .host = "127.0.0.1"};
  cnet_error_t kept;
  cnet_socket_t *s;
  char want[128];

  reset();
  memset(&unhandled, 0, sizeof(unhandled));
  cnet_set_unhandled_error_handler(on_unhandled, &unhandled);
  s = cnet_create_connection(loop, &o, NULL, NULL);
  ASSERT_EQ(0, cnet_socket_on(s, CNET_EV_ERROR, on_error_record, &kept));
  ASSERT_EQ(0, cnet_socket_on(s, CNET_EV_CLOSE, on_close_had_error, NULL));
  run_bounded(loop, 3000);
  ASSERT_STR_EQ(T.buf, "error close(true)");
  ASSERT_EQ(0, unhandled.calls);
  snprintf(want, sizeof(want), "connect ECONNREFUSED 127.0.0.1:%d", port);
  ASSERT_STR_EQ(kept.message, want);
  ASSERT_STR_EQ(kept.address, "127.0.0.1");
  ASSERT_EQ(port, kept.port);
  ASSERT_EQ(0, kept.local_port);
  ASSERT_STR_EQ(kept.local_address, "");
  cnet_set_unhandled_error_handler(NULL, NULL);
  loop_finish(loop);
}
