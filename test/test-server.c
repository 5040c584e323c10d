/* net.Server: createServer, listen, address, errors, close, connection
 * counting, ref/unref (NODE-NET-BEHAVIOURS 1.2-1.9, 3.2, 7.4).
 *
 * Orders were checked against Node v20 with small scripts, e.g. CL-01:
 *   connection sock:data sock:end sock:finish server:close close-cb
 *   sock:close client:close
 * and CL-06: listening listening=false close listening again:true close. */
#include "harness.h"

#include <fcntl.h>

static trace_t T;

static void reset(void) {
  memset(&T, 0, sizeof(T));
}

/* Records "prefix:event" (or just the event when ctx is NULL). */
static void word(const char *prefix, const char *what) {
  char w[64];

  snprintf(w, sizeof(w), "%s%s%s", prefix ? prefix : "", prefix ? ":" : "",
           what);
  trace_add(&T, w);
}

static void srv_trace(cnet_server_t *srv, const cnet_event_t *ev, void *ctx) {
  (void)srv;
  word(ctx, cnet_event_name(ev->type));
}

static void sock_trace(cnet_socket_t *s, const cnet_event_t *ev, void *ctx) {
  (void)s;
  word(ctx, cnet_event_name(ev->type));
}

static cnet_server_t *server_new(uv_loop_t *loop, cnet_server_listener fn,
                                 void *ctx) {
  cnet_server_t *srv = cnet_create_server(loop, NULL, fn, ctx);

  ASSERT_NOT_NULL(srv);
  return srv;
}

static cnet_socket_t *client(uv_loop_t *loop, int port, cnet_socket_listener cb,
                             void *ctx) {
  cnet_connect_options_t o = {.port = port, .host = "127.0.0.1"};
  cnet_socket_t *c = cnet_create_connection(loop, &o, cb, ctx);

  ASSERT_NOT_NULL(c);
  return c;
}

static void end_on_connect(cnet_socket_t *s, const cnet_event_t *ev,
                           void *ctx) {
  (void)ev;
  ASSERT_EQ(0, cnet_socket_end(s, ctx, ctx ? strlen(ctx) : 0, NULL, NULL));
}

/* ---- SV-01 ----------------------------------------------------------------
 */

static struct {
  int connections;
  cnet_server_t *srv;
  cnet_socket_t *accepted[4];
} sv;

static void on_connection_basic(cnet_server_t *srv, const cnet_event_t *ev,
                                void *ctx) {
  ASSERT_EQ((intptr_t)&sv, (intptr_t)ctx);
  ASSERT_EQ(CNET_EV_CONNECTION, ev->type);
  ASSERT_NOT_NULL(ev->connection);
  ASSERT_EQ((intptr_t)srv, (intptr_t)cnet_socket_server(ev->connection));
  ASSERT(!cnet_socket_connecting(ev->connection));
  ASSERT(!cnet_socket_pending(ev->connection));
  ASSERT_STR_EQ(cnet_socket_ready_state(ev->connection), "open");
  sv.connections++;
  cnet_server_close(srv, NULL, NULL);
}

TEST_CASE(sv01_connection_listener_registered) {
  uv_loop_t *loop = loop_new();
  cnet_server_t *srv;

  memset(&sv, 0, sizeof(sv));
  srv = server_new(loop, on_connection_basic, &sv);
  ASSERT_EQ(1, cnet_server_listener_count(srv, CNET_EV_CONNECTION));
  ASSERT_EQ((intptr_t)loop, (intptr_t)cnet_server_loop(srv));
  ASSERT_EQ(0, cnet_server_listen_port(srv, 0, "127.0.0.1", 0, NULL, NULL));
  client(loop, server_port(srv), end_on_connect, NULL);
  run_bounded(loop, 3000);
  ASSERT_EQ(1, sv.connections);
  cnet_server_free(srv);
  loop_finish(loop);
}

/* ---- LS-02, LS-06, LS-07, AD-01, AD-05 --------------------------------------
 */

TEST_CASE(ls02_port0_gets_assigned_port) {
  uv_loop_t *loop = loop_new();
  cnet_server_t *srv = server_new(loop, NULL, NULL);
  cnet_address_t a;

  reset();
  ASSERT_EQ(0, cnet_server_on(srv, CNET_EV_LISTENING, srv_trace, NULL));
  ASSERT_EQ(0, cnet_server_listen_port(srv, 0, "127.0.0.1", 0, NULL, NULL));
  cnet_server_unref(srv);
  run_bounded(loop, 2000);
  ASSERT_STR_EQ(T.buf, "listening");
  ASSERT_EQ(0, cnet_server_address(srv, &a));
  ASSERT_STR_EQ(a.address, "127.0.0.1");
  ASSERT_EQ(strlen("127.0.0.1"), a.address_len);
  ASSERT_EQ(4, a.family);
  ASSERT_STR_EQ(cnet_family_name(a.family), "IPv4");
  ASSERT_GT(a.port, 0);
  ASSERT_LT(a.port, 65536);
  cnet_server_free(srv);
  loop_finish(loop);
}

static void check_listening_in_listener(cnet_server_t *srv,
                                        const cnet_event_t *ev, void *ctx) {
  cnet_address_t a;

  (void)ev;
  ASSERT(cnet_server_listening(srv));
  ASSERT_EQ(0, cnet_server_address(srv, &a));
  ASSERT_EQ(*(int *)ctx, a.port);
  trace_add(&T, "listening");
}

/* LS-06 and LS-07: no host binds "::" (dual-stack) synchronously: listening
 * and address() are there before 'listening'. */
TEST_CASE(ls06_default_host_is_ipv6_any) {
  uv_loop_t *loop = loop_new();
  cnet_server_t *srv = server_new(loop, NULL, NULL);
  cnet_address_t a;
  int port;

  reset();
  ASSERT(!cnet_server_listening(srv)); /* AD-05 */
  ASSERT_EQ(0, cnet_server_listen_port(srv, 0, NULL, 0,
                                       check_listening_in_listener, &port));
  ASSERT(cnet_server_listening(srv));
  ASSERT_EQ(0, cnet_server_address(srv, &a));
  port = a.port;
  ASSERT_GT(port, 0);
  if (have_ipv6()) {
    ASSERT_STR_EQ(a.address, "::");
    ASSERT_EQ(6, a.family);
    ASSERT_STR_EQ(cnet_family_name(a.family), "IPv6");
  } else {
    printf("# no IPv6 here: LS-06 checked with the 0.0.0.0 fallback\n");
    ASSERT_STR_EQ(a.address, "0.0.0.0");
    ASSERT_EQ(4, a.family);
  }
  ASSERT_STR_EQ(T.buf, "");
  /* Dual-stack: an IPv4 client reaches it. */
  client(loop, port, end_on_connect, NULL);
  ASSERT_EQ(0, cnet_server_on(srv, CNET_EV_CONNECTION, srv_trace, NULL));
  cnet_server_unref(srv);
  run_bounded(loop, 3000);
  ASSERT_STR_EQ(T.buf, "listening connection");
  cnet_server_free(srv);
  loop_finish(loop);
}

static void listening_cb(cnet_server_t *srv, const cnet_event_t *ev,
                         void *ctx) {
  (void)ev;
  trace_add(&T, ctx);
  ASSERT_EQ(0, cnet_server_listener_count(srv, CNET_EV_LISTENING));
  cnet_server_close(srv, NULL, NULL);
}

/* LS-05: the callback is a once('listening'); nothing is left behind, and a
 * new listen with a new callback calls only the new one. */
TEST_CASE(ls05_listen_callback_added_once) {
  uv_loop_t *loop = loop_new();
  cnet_server_t *srv = server_new(loop, NULL, NULL);

  reset();
  ASSERT_EQ(
      0, cnet_server_listen_port(srv, 0, "127.0.0.1", 0, listening_cb, "cb1"));
  ASSERT_EQ(1, cnet_server_listener_count(srv, CNET_EV_LISTENING));
  run_bounded(loop, 2000);
  ASSERT_STR_EQ(T.buf, "cb1");
  ASSERT_EQ(0, cnet_server_listener_count(srv, CNET_EV_LISTENING));
  ASSERT_EQ(
      0, cnet_server_listen_port(srv, 0, "127.0.0.1", 0, listening_cb, "cb2"));
  run_bounded(loop, 2000);
  ASSERT_STR_EQ(T.buf, "cb1 cb2");
  cnet_server_free(srv);
  loop_finish(loop);
}

/* ---- LE-01, LE-02
 * ------------------------------------------------------------ */

static struct {
  int errors;
  cnet_error_t err;
  bool listening_at_error;
  bool relisten;
} le;

static void on_listen_error(cnet_server_t *srv, const cnet_event_t *ev,
                            void *ctx) {
  (void)ctx;
  ASSERT_EQ(CNET_EV_ERROR, ev->type);
  le.errors++;
  le.err = *ev->error;
  le.listening_at_error = cnet_server_listening(srv);
  trace_add(&T, "error");
  if (le.relisten) /* LE-02: at once, from the error listener */
    ASSERT_EQ(0,
              cnet_server_listen_port(srv, 0, "127.0.0.1", 0, srv_trace, NULL));
}

static void eaddrinuse(const char *host, const char *shown) {
  uv_loop_t *loop = loop_new();
  cnet_server_t *a = server_new(loop, NULL, NULL);
  cnet_server_t *b = server_new(loop, NULL, NULL);
  char want[128];
  int port;

  reset();
  memset(&le, 0, sizeof(le));
  ASSERT_EQ(0, cnet_server_listen_port(a, 0, host, 0, NULL, NULL));
  port = server_port(a);
  ASSERT_EQ(0, cnet_server_on(b, CNET_EV_ERROR, on_listen_error, NULL));
  ASSERT_EQ(0, cnet_server_on(b, CNET_EV_CLOSE, srv_trace, NULL));
  ASSERT_EQ(0, cnet_server_listen_port(b, port, host, 0, srv_trace, NULL));
  ASSERT_EQ(0, le.errors); /* emitted, later */
  cnet_server_unref(a);
  run_bounded(loop, 2000);
  ASSERT_STR_EQ(T.buf, "error"); /* no 'listening', no 'close' */
  ASSERT_EQ(1, le.errors);
  ASSERT_EQ(UV_EADDRINUSE, le.err.errnum);
  ASSERT_STR_EQ(le.err.code, "EADDRINUSE");
  ASSERT_STR_EQ(le.err.syscall, "listen");
  ASSERT_STR_EQ(le.err.address, shown);
  ASSERT_EQ(port, le.err.port);
  snprintf(want, sizeof(want),
           "listen EADDRINUSE: address already in use %s:%d", shown, port);
  ASSERT_STR_EQ(le.err.message, want);
  ASSERT(!le.listening_at_error);
  ASSERT(!cnet_server_listening(b));
  /* The once(listening) callback stays, as in Node, until it runs. */
  ASSERT_EQ(1, cnet_server_listener_count(b, CNET_EV_LISTENING));
  cnet_server_free(a);
  cnet_server_free(b);
  loop_finish(loop);
}

TEST_CASE(le01_listen_eaddrinuse_error) {
  eaddrinuse("127.0.0.1", "127.0.0.1");
}

TEST_CASE(le01_listen_eaddrinuse_default_host) {
  if (have_ipv6())
    eaddrinuse(NULL, "::");
  else
    printf("# no IPv6 here: skipped\n");
}

TEST_CASE(le02_listen_again_after_error) {
  uv_loop_t *loop = loop_new();
  cnet_server_t *a = server_new(loop, NULL, NULL);
  cnet_server_t *b = server_new(loop, NULL, NULL);
  int port;

  reset();
  memset(&le, 0, sizeof(le));
  le.relisten = true;
  ASSERT_EQ(0, cnet_server_listen_port(a, 0, "127.0.0.1", 0, NULL, NULL));
  port = server_port(a);
  ASSERT_EQ(0, cnet_server_on(b, CNET_EV_ERROR, on_listen_error, NULL));
  ASSERT_EQ(0, cnet_server_listen_port(b, port, "127.0.0.1", 0, NULL, NULL));
  cnet_server_unref(a);
  cnet_server_unref(b);
  run_bounded(loop, 2000);
  ASSERT_STR_EQ(T.buf, "error listening");
  ASSERT_EQ(1, le.errors);
  ASSERT(cnet_server_listening(b));
  ASSERT_NE(port, server_port(b));
  cnet_server_free(a);
  cnet_server_free(b);
  loop_finish(loop);
}

/* ---- LE-06, AD-03, AD-05
 * ------------------------------------------------------ */

static void relisten_inside_listening(cnet_server_t *srv,
                                      const cnet_event_t *ev, void *ctx) {
  (void)ev;
  (void)ctx;
  trace_add(&T, "listening");
  ASSERT_EQ(CNET_ERR_SERVER_ALREADY_LISTEN,
            cnet_server_listen_port(srv, 0, NULL, 0, NULL, NULL));
  ASSERT_EQ(CNET_ERR_SERVER_ALREADY_LISTEN,
            cnet_server_listen_path(srv, "/tmp/never-bound", 0, NULL, NULL));
  ASSERT_STR_EQ(cnet_last_error()->message,
                "Listen method has been called more than once without "
                "closing.");
  ASSERT(cnet_server_listening(srv));
  cnet_server_close(srv, NULL, NULL);
}

TEST_CASE(le06_listen_twice_throws) {
  uv_loop_t *loop = loop_new();
  cnet_server_t *srv = server_new(loop, NULL, NULL);

  reset();
  ASSERT_EQ(0, cnet_server_listen_port(srv, 0, "127.0.0.1", 0,
                                       relisten_inside_listening, NULL));
  ASSERT_EQ(CNET_ERR_SERVER_ALREADY_LISTEN,
            cnet_server_listen_port(srv, 0, "127.0.0.1", 0, NULL, NULL));
  ASSERT_EQ(0, cnet_server_on(srv, CNET_EV_CLOSE, srv_trace, NULL));
  run_bounded(loop, 2000);
  ASSERT_STR_EQ(T.buf, "listening close");
  ASSERT_EQ(-1, access("/tmp/never-bound", F_OK));
  cnet_server_free(srv);
  loop_finish(loop);
}

static void address_in_close(cnet_server_t *srv, const cnet_event_t *ev,
                             void *ctx) {
  cnet_address_t a;

  (void)ctx;
  ASSERT_NULL(ev->close.error); /* CL-02: it was listening */
  ASSERT(!cnet_server_listening(srv));
  ASSERT_EQ(UV_ENOTCONN, cnet_server_address(srv, &a));
  trace_add(&T, "close");
}

TEST_CASE(ad03_ad05_address_and_listening_around_close) {
  uv_loop_t *loop = loop_new();
  cnet_server_t *srv = server_new(loop, NULL, NULL);
  cnet_address_t a;

  reset();
  memset(&a, 0x55, sizeof(a));
  ASSERT_EQ(UV_ENOTCONN, cnet_server_address(srv, &a));
  ASSERT_EQ(0, a.port);
  ASSERT_EQ(0, a.family);
  ASSERT_STR_EQ(a.address, "");
  ASSERT_EQ(UV_ENOTCONN, cnet_server_address(NULL, &a));
  ASSERT_EQ(UV_EINVAL, cnet_server_address(srv, NULL));
  ASSERT(!cnet_server_listening(srv));
  ASSERT(!cnet_server_listening(NULL));
  ASSERT_EQ(0, cnet_server_listen_port(srv, 0, "127.0.0.1", 0, NULL, NULL));
  ASSERT(cnet_server_listening(srv));
  ASSERT_EQ(0, cnet_server_address(srv, &a));
  ASSERT_EQ(0, cnet_server_close(srv, address_in_close, NULL));
  /* CL-01: stops at once. */
  ASSERT(!cnet_server_listening(srv));
  ASSERT_EQ(UV_ENOTCONN, cnet_server_address(srv, &a));
  run_bounded(loop, 2000);
  ASSERT_STR_EQ(T.buf, "close");
  ASSERT_EQ(UV_ENOTCONN, cnet_server_address(srv, &a));
  cnet_server_free(srv);
  loop_finish(loop);
}

/* ---- CL-01 ------------------------------------------------------------------
 */

static void close_cb_trace(cnet_server_t *srv, const cnet_event_t *ev,
                           void *ctx) {
  (void)srv;
  (void)ctx;
  ASSERT_NULL(ev->close.error);
  trace_add(&T, "close-cb");
}

static void sock_data(cnet_socket_t *s, const cnet_event_t *ev, void *ctx) {
  (void)s;
  ASSERT_EQ(2, ev->data.len);
  ASSERT_MEM_EQ(ev->data.base, "hi", 2);
  word(ctx, "data");
}

static void cl01_on_connection(cnet_server_t *srv, const cnet_event_t *ev,
                               void *ctx) {
  cnet_socket_t *s = ev->connection;

  (void)ctx;
  trace_add(&T, "connection");
  ASSERT_EQ(0, cnet_server_close(srv, close_cb_trace, NULL));
  ASSERT(!cnet_server_listening(srv));
  ASSERT_EQ(1, cnet_server_connections(srv));
  ASSERT_EQ(0, cnet_socket_on(s, CNET_EV_DATA, sock_data, "sock"));
  ASSERT_EQ(0, cnet_socket_on(s, CNET_EV_END, sock_trace, "sock"));
  ASSERT_EQ(0, cnet_socket_on(s, CNET_EV_FINISH, sock_trace, "sock"));
  ASSERT_EQ(0, cnet_socket_on(s, CNET_EV_CLOSE, sock_trace, "sock"));
}

TEST_CASE(cl01_close_waits_for_connections) {
  uv_loop_t *loop = loop_new();
  cnet_server_t *srv = server_new(loop, cl01_on_connection, NULL);
  cnet_socket_t *c;

  reset();
  ASSERT_EQ(0, cnet_server_on(srv, CNET_EV_CLOSE, srv_trace, "server"));
  ASSERT_EQ(0, cnet_server_listen_port(srv, 0, "127.0.0.1", 0, NULL, NULL));
  c = client(loop, server_port(srv), end_on_connect, "hi");
  ASSERT_EQ(0, cnet_socket_on(c, CNET_EV_CLOSE, sock_trace, "client"));
  run_bounded(loop, 3000);
  ASSERT_STR_EQ(T.buf, "connection sock:data sock:end sock:finish "
                       "server:close close-cb sock:close client:close");
  ASSERT_EQ(0, cnet_server_connections(srv));
  cnet_server_free(srv);
  loop_finish(loop);
}

/* ---- CL-03, CL-05, CL-06
 * -------------------------------------------------------- */

static int not_running_seen;

static void not_running(cnet_server_t *srv, const cnet_event_t *ev, void *ctx) {
  (void)srv;
  ASSERT_NOT_NULL(ev->close.error);
  ASSERT_EQ(CNET_ERR_SERVER_NOT_RUNNING, ev->close.error->errnum);
  ASSERT_STR_EQ(ev->close.error->code, "ERR_SERVER_NOT_RUNNING");
  ASSERT_STR_EQ(ev->close.error->message, "Server is not running.");
  not_running_seen++;
  trace_add(&T, ctx);
}

TEST_CASE(cl03_close_when_not_listening) {
  uv_loop_t *loop = loop_new();
  cnet_server_t *srv = server_new(loop, NULL, NULL);

  reset();
  not_running_seen = 0;
  ASSERT_EQ(0, cnet_server_on(srv, CNET_EV_CLOSE, not_running, "close"));
  ASSERT_EQ(0, cnet_server_close(srv, not_running, "cb"));
  trace_add(&T, "sync"); /* nothing emitted inside close() */
  run_bounded(loop, 2000);
  ASSERT_STR_EQ(T.buf, "sync close cb");
  ASSERT_EQ(2, not_running_seen);
  ASSERT_EQ(1, cnet_server_listener_count(srv, CNET_EV_CLOSE));
  cnet_server_free(srv);
  loop_finish(loop);
}

static void close_cb_no_error(cnet_server_t *srv, const cnet_event_t *ev,
                              void *ctx) {
  (void)srv;
  (void)ctx;
  ASSERT_NULL(ev->close.error);
  trace_add(&T, "cb");
}

TEST_CASE(cl05_listen_then_close_same_tick) {
  uv_loop_t *loop = loop_new();
  cnet_server_t *srv = server_new(loop, NULL, NULL);

  reset();
  ASSERT_EQ(0, cnet_server_on(srv, CNET_EV_LISTENING, srv_trace, NULL));
  ASSERT_EQ(0, cnet_server_on(srv, CNET_EV_ERROR, srv_trace, NULL));
  ASSERT_EQ(0, cnet_server_on(srv, CNET_EV_CLOSE, srv_trace, NULL));
  ASSERT_EQ(0, cnet_server_listen_port(srv, 0, NULL, 0, NULL, NULL));
  ASSERT_EQ(0, cnet_server_close(srv, close_cb_no_error, NULL));
  run_bounded(loop, 2000);
  ASSERT_STR_EQ(T.buf, "close cb");
  cnet_server_free(srv);
  loop_finish(loop);
}

/* The same with a name to resolve: the late lookup answer is ignored. */
TEST_CASE(cl05_listen_localhost_then_close_before_lookup) {
  uv_loop_t *loop = loop_new();
  cnet_server_t *srv = server_new(loop, NULL, NULL);

  reset();
  ASSERT_EQ(0, cnet_server_on(srv, CNET_EV_LISTENING, srv_trace, NULL));
  ASSERT_EQ(0, cnet_server_on(srv, CNET_EV_ERROR, srv_trace, NULL));
  ASSERT_EQ(0, cnet_server_on(srv, CNET_EV_CLOSE, srv_trace, NULL));
  ASSERT_EQ(0, cnet_server_listen_port(srv, 0, "localhost", 0, NULL, NULL));
  ASSERT(!cnet_server_listening(srv)); /* LS-07: resolving first */
  ASSERT_EQ(0, cnet_server_close(srv, NULL, NULL));
  run_bounded(loop, 3000);
  /* Node passes ERR_SERVER_NOT_RUNNING to the close callback here too: no
   * handle existed yet. */
  ASSERT_STR_EQ(T.buf, "close");
  ASSERT(!cnet_server_listening(srv));
  cnet_server_free(srv);
  loop_finish(loop);
}

static int cl06_port;

static void cl06_second(cnet_server_t *srv, const cnet_event_t *ev, void *ctx) {
  (void)ev;
  (void)ctx;
  ASSERT_EQ(cl06_port, server_port(srv));
  trace_add(&T, "again");
  cnet_server_close(srv, NULL, NULL);
}

static void cl06_first(cnet_server_t *srv, const cnet_event_t *ev, void *ctx) {
  (void)ev;
  (void)ctx;
  cl06_port = server_port(srv);
  ASSERT_EQ(0, cnet_server_close(srv, NULL, NULL));
  trace_add(&T,
            cnet_server_listening(srv) ? "listening=true" : "listening=false");
  /* Before 'close', on the very same port. */
  ASSERT_EQ(
      0, cnet_server_listen_port(srv, cl06_port, NULL, 0, cl06_second, NULL));
}

TEST_CASE(cl06_listen_again_right_after_close) {
  uv_loop_t *loop = loop_new();
  cnet_server_t *srv = server_new(loop, NULL, NULL);

  reset();
  ASSERT_EQ(0, cnet_server_on(srv, CNET_EV_LISTENING, srv_trace, NULL));
  ASSERT_EQ(0, cnet_server_on(srv, CNET_EV_CLOSE, srv_trace, NULL));
  ASSERT_EQ(0, cnet_server_listen_port(srv, 0, NULL, 0, cl06_first, NULL));
  run_bounded(loop, 2000);
  ASSERT_STR_EQ(T.buf, "listening listening=false close listening again close");
  cnet_server_free(srv);
  loop_finish(loop);
}

/* ---- IPC: CL-07, IP-C-07, AD-02, path too long
 * ------------------------------------ */

static void ipc_echo_connection(cnet_server_t *srv, const cnet_event_t *ev,
                                void *ctx) {
  (void)ctx;
  trace_add(&T, "connection");
  ASSERT_EQ(0, cnet_socket_pipe(ev->connection, ev->connection, NULL));
  cnet_server_close(srv, NULL, NULL);
}

static void ipc_client_data(cnet_socket_t *s, const cnet_event_t *ev,
                            void *ctx) {
  (void)s;
  (void)ctx;
  ASSERT_EQ(4, ev->data.len);
  ASSERT_MEM_EQ(ev->data.base, "ping", 4);
  trace_add(&T, "data");
}

TEST_CASE(cl07_ipc_path_unlinked_on_close) {
  uv_loop_t *loop = loop_new();
  cnet_server_t *srv = server_new(loop, ipc_echo_connection, NULL);
  const char *path = temp_socket_path();
  cnet_connect_options_t o = {.path = path};
  cnet_address_t a;
  cnet_socket_t *c;

  reset();
  ASSERT_EQ(0, cnet_server_on(srv, CNET_EV_CLOSE, srv_trace, "server"));
  ASSERT_EQ(0, cnet_server_listen_path(srv, path, 0, NULL, NULL));
  ASSERT(cnet_server_listening(srv));
  ASSERT_EQ(0, access(path, F_OK));
  ASSERT_EQ(0, cnet_server_address(srv, &a)); /* AD-02 */
  ASSERT_STR_EQ(a.address, path);
  ASSERT_EQ(strlen(path), a.address_len);
  ASSERT_EQ(-1, a.port);
  ASSERT_EQ(0, a.family);
  ASSERT_NULL(cnet_family_name(a.family));
  c = cnet_create_connection(loop, &o, end_on_connect, "ping");
  ASSERT_NOT_NULL(c);
  ASSERT_EQ(0, cnet_socket_on(c, CNET_EV_DATA, ipc_client_data, NULL));
  ASSERT_EQ(0, cnet_socket_on(c, CNET_EV_CLOSE, sock_trace, "client"));
  run_bounded(loop, 3000);
  ASSERT_EQ(-1, access(path, F_OK));
  ASSERT_EQ(ENOENT, errno);
  ASSERT_NOT_NULL(strstr(T.buf, "connection"));
  ASSERT_NOT_NULL(strstr(T.buf, "data"));
  ASSERT_NOT_NULL(strstr(T.buf, "server:close"));
  ASSERT_NOT_NULL(strstr(T.buf, "client:close"));
  cnet_server_free(srv);
  loop_finish(loop);
}

/* IP-C-07 / LE-05: a file already at the path. */
TEST_CASE(ipc07_existing_file_eaddrinuse) {
  uv_loop_t *loop = loop_new();
  cnet_server_t *srv = server_new(loop, NULL, NULL);
  const char *path = temp_socket_path();
  char want[256];
  int fd = open(path, O_CREAT | O_WRONLY, 0600);

  reset();
  memset(&le, 0, sizeof(le));
  ASSERT_GE(fd, 0);
  close(fd);
  ASSERT_EQ(0, cnet_server_on(srv, CNET_EV_ERROR, on_listen_error, NULL));
  ASSERT_EQ(0, cnet_server_on(srv, CNET_EV_CLOSE, srv_trace, NULL));
  ASSERT_EQ(0, cnet_server_listen_path(srv, path, 0, srv_trace, NULL));
  ASSERT(!cnet_server_listening(srv));
  run_bounded(loop, 2000);
  ASSERT_STR_EQ(T.buf, "error");
  ASSERT_STR_EQ(le.err.code, "EADDRINUSE");
  ASSERT_STR_EQ(le.err.syscall, "listen");
  ASSERT_STR_EQ(le.err.address, path);
  ASSERT_EQ(-1, le.err.port);
  snprintf(want, sizeof(want), "listen EADDRINUSE: address already in use %s",
           path);
  ASSERT_STR_EQ(le.err.message, want);
  cnet_server_free(srv);
  loop_finish(loop);
  ASSERT_EQ(0, access(path, F_OK)); /* not ours: left alone */
}

TEST_CASE(ipc_path_too_long_fails_at_once) {
  uv_loop_t *loop = loop_new();
  cnet_server_t *srv = server_new(loop, NULL, NULL);
  char path[200];

  reset();
  memset(path, 'x', sizeof(path) - 1);
  memcpy(path, "/tmp/", 5);
  path[sizeof(path) - 1] = '\0';
  ASSERT_EQ(0, cnet_server_on(srv, CNET_EV_ERROR, srv_trace, NULL));
  ASSERT_EQ(0, cnet_server_on(srv, CNET_EV_CLOSE, srv_trace, NULL));
  ASSERT_EQ(UV_ENAMETOOLONG,
            cnet_server_listen_path(srv, path, 0, srv_trace, NULL));
  ASSERT_STR_EQ(cnet_last_error()->code, "ENAMETOOLONG");
  ASSERT_EQ(0, cnet_server_listener_count(srv, CNET_EV_LISTENING));
  run_bounded(loop, 2000);
  ASSERT_STR_EQ(T.buf, "");
  ASSERT_EQ(-1, access(path, F_OK));
  cnet_server_free(srv);
  loop_finish(loop);
}

/* ---- MC-06: getConnections
 * ------------------------------------------------------- */

static void mc06_count(cnet_server_t *srv, const cnet_error_t *err,
                       size_t count, void *ctx) {
  (void)ctx;
  ASSERT_NULL(err);
  ASSERT_EQ(2, count);
  trace_add(&T, "count");
  cnet_server_close(srv, NULL, NULL);
  for (int i = 0; i < 2; i++)
    cnet_socket_destroy(sv.accepted[i], NULL);
  ASSERT_EQ(0, cnet_server_connections(srv)); /* destroyed: counted out */
}

static void mc06_on_connection(cnet_server_t *srv, const cnet_event_t *ev,
                               void *ctx) {
  (void)ctx;
  sv.accepted[sv.connections++] = ev->connection;
  ASSERT_EQ(sv.connections, cnet_server_connections(srv));
  if (sv.connections == 2) {
    ASSERT_EQ(0, cnet_server_get_connections(srv, mc06_count, NULL));
    trace_add(&T, "asked"); /* the count comes later */
  }
}

TEST_CASE(mc06_get_connections_async) {
  uv_loop_t *loop = loop_new();
  cnet_server_t *srv = server_new(loop, mc06_on_connection, NULL);
  int port;

  reset();
  memset(&sv, 0, sizeof(sv));
  ASSERT_EQ(0, cnet_server_listen_port(srv, 0, "127.0.0.1", 0, NULL, NULL));
  port = server_port(srv);
  ASSERT_EQ(UV_EINVAL, cnet_server_get_connections(srv, NULL, NULL));
  ASSERT_EQ(0, cnet_server_connections(NULL));
  for (int i = 0; i < 2; i++)
    ASSERT_EQ(0, cnet_socket_on(client(loop, port, NULL, NULL), CNET_EV_CLOSE,
                                sock_trace, "client"));
  run_bounded(loop, 3000);
  ASSERT_STR_EQ(T.buf, "asked count client:close client:close");
  cnet_server_free(srv);
  loop_finish(loop);
}

/* ---- RF-01, RF-02
 * ------------------------------------------------------------------- */

TEST_CASE(rf01_unref_server_lets_loop_end) {
  uv_loop_t *loop = loop_new();
  cnet_server_t *a = server_new(loop, NULL, NULL);
  cnet_server_t *b = server_new(loop, NULL, NULL);
  uint64_t t0 = uv_hrtime();

  reset();
  ASSERT_EQ(0, cnet_server_on(a, CNET_EV_LISTENING, srv_trace, "a"));
  ASSERT_EQ(0, cnet_server_on(b, CNET_EV_LISTENING, srv_trace, "b"));
  ASSERT_EQ(0, cnet_server_listen_port(a, 0, "127.0.0.1", 0, NULL, NULL));
  cnet_server_unref(a); /* after listen */
  cnet_server_unref(b); /* RF-02: before listen, remembered */
  ASSERT_EQ(0, cnet_server_listen_port(b, 0, "127.0.0.1", 0, NULL, NULL));
  run_bounded(loop, 2000);
  ASSERT_STR_EQ(T.buf, "a:listening b:listening");
  ASSERT_LT(uv_hrtime() - t0, 1000000000ull);
  ASSERT(cnet_server_listening(a));
  ASSERT(cnet_server_listening(b));
  cnet_server_ref(a);
  cnet_server_ref(NULL);
  cnet_server_unref(NULL);
  cnet_server_free(a);
  cnet_server_free(b);
  loop_finish(loop);
}

static void close_later(uv_timer_t *t) {
  cnet_server_close(t->data, NULL, NULL);
  uv_close((uv_handle_t *)t, NULL);
}

/* ref() again: the server keeps the loop alive until it closes. */
TEST_CASE(rf01_ref_again_keeps_loop_alive) {
  uv_loop_t *loop = loop_new();
  cnet_server_t *srv = server_new(loop, NULL, NULL);
  uv_timer_t timer;

  reset();
  ASSERT_EQ(0, cnet_server_on(srv, CNET_EV_CLOSE, srv_trace, NULL));
  cnet_server_unref(srv);
  ASSERT_EQ(0, cnet_server_listen_port(srv, 0, "127.0.0.1", 0, NULL, NULL));
  cnet_server_ref(srv);
  ASSERT_EQ(0, uv_timer_init(loop, &timer));
  timer.data = srv;
  ASSERT_EQ(0, uv_timer_start(&timer, close_later, 50, 0));
  uv_unref((uv_handle_t *)&timer); /* only the server keeps the loop */
  run_bounded(loop, 2000);
  ASSERT_STR_EQ(T.buf, "close");
  cnet_server_free(srv);
  loop_finish(loop);
}

/* Server data and options accessors. */
TEST_CASE(sv_data_and_free_ends_loop) {
  uv_loop_t *loop = loop_new();
  cnet_server_options_t opts = {.allow_half_open = true};
  cnet_server_t *srv = cnet_create_server(loop, &opts, NULL, NULL);
  int x;

  ASSERT_NULL(cnet_server_get_data(srv));
  cnet_server_set_data(srv, &x);
  ASSERT_EQ((intptr_t)&x, (intptr_t)cnet_server_get_data(srv));
  ASSERT_NULL(cnet_server_get_data(NULL));
  ASSERT_NULL(cnet_server_loop(NULL));
  ASSERT_EQ(0, cnet_server_listen_port(srv, 0, NULL, 0, NULL, NULL));
  cnet_server_free(srv); /* closes; the loop then has nothing left */
  cnet_server_free(NULL);
  loop_finish(loop);
}
