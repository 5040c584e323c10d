/* Who frees what, and when (cnet.h's first paragraph; STYLE 3.4, 3.5, 4.2).
 *
 * Most of these tests prove their point at the end: loop_finish() insists
 * that the loop has no handle left -- cnet's own per-loop handle goes only
 * when the last cnet object on the loop has been freed -- and the ASan build
 * reports any leak or use after free. */
#include "harness.h"

static trace_t T;

static void reset(void) {
  memset(&T, 0, sizeof(T));
}

static void trace_ev(cnet_socket_t *s, const cnet_event_t *ev, void *ctx) {
  char w[64];

  (void)s;
  if (ev->type == CNET_EV_CLOSE)
    snprintf(w, sizeof(w), "%s%sclose(%s)", ctx ? (char *)ctx : "",
             ctx ? ":" : "", ev->close.had_error ? "true" : "false");
  else
    snprintf(w, sizeof(w), "%s%s%s", ctx ? (char *)ctx : "", ctx ? ":" : "",
             cnet_event_name(ev->type));
  trace_add(&T, w);
}

static void trace_srv(cnet_server_t *srv, const cnet_event_t *ev, void *ctx) {
  char w[64];

  (void)srv;
  snprintf(w, sizeof(w), "%s:%s", (char *)ctx, cnet_event_name(ev->type));
  trace_add(&T, w);
}

static void echo_connection(cnet_server_t *srv, const cnet_event_t *ev,
                            void *ctx) {
  (void)srv;
  (void)ctx;
  ASSERT_EQ(0, cnet_socket_pipe(ev->connection, ev->connection, NULL));
}

static cnet_server_t *echo_server(uv_loop_t *loop, int *port) {
  cnet_server_t *srv = cnet_create_server(loop, NULL, echo_connection, NULL);

  ASSERT_NOT_NULL(srv);
  ASSERT_EQ(0, cnet_server_listen_port(srv, 0, "127.0.0.1", 0, NULL, NULL));
  *port = server_port(srv);
  return srv;
}

static void send_on_connect(cnet_socket_t *s, const cnet_event_t *ev,
                            void *ctx) {
  (void)ev;
  ASSERT_GE(cnet_socket_write(s, ctx, strlen(ctx), NULL, NULL), 0);
}

static void end_on_data(cnet_socket_t *s, const cnet_event_t *ev, void *ctx) {
  (void)ev;
  (void)ctx;
  cnet_socket_end(s, NULL, 0, NULL, NULL);
}

/* ---- cnet-owned sockets
 * ------------------------------------------------------ */

static int closes;

static void count_close(cnet_socket_t *s, const cnet_event_t *ev, void *ctx) {
  (void)s;
  (void)ev;
  (void)ctx;
  closes++;
}

static void track_accepted(cnet_server_t *srv, const cnet_event_t *ev,
                           void *ctx) {
  (void)ctx;
  ASSERT_EQ(0,
            cnet_socket_on(ev->connection, CNET_EV_CLOSE, count_close, NULL));
  cnet_server_close(srv, NULL, NULL);
}

/* Accepted and cnet_create_connection sockets are freed by cnet after their
 * 'close': the test frees neither, and the loop still ends empty. */
TEST_CASE(lt01_accepted_and_created_sockets_need_no_free) {
  uv_loop_t *loop = loop_new();
  cnet_connect_options_t o = {.host = "127.0.0.1"};
  cnet_server_t *srv;
  cnet_socket_t *c;

  closes = 0;
  srv = echo_server(loop, &o.port);
  ASSERT_EQ(0, cnet_server_on(srv, CNET_EV_CONNECTION, track_accepted, NULL));
  c = cnet_create_connection(loop, &o, send_on_connect, "hello");
  ASSERT_NOT_NULL(c);
  ASSERT_EQ(0, cnet_socket_on(c, CNET_EV_DATA, end_on_data, NULL));
  ASSERT_EQ(0, cnet_socket_on(c, CNET_EV_CLOSE, count_close, NULL));
  run_bounded(loop, 3000);
  ASSERT_EQ(2, closes);
  cnet_server_free(srv);
  loop_finish(loop);
}

/* ---- CN-18: reconnect after 'close'
 * ------------------------------------------ */

static int rc_round;

static void rc_check_connect(cnet_socket_t *s, const cnet_event_t *ev,
                             void *ctx) {
  (void)ev;
  (void)ctx;
  ASSERT_EQ(0, cnet_socket_bytes_read(s)); /* counters start over */
  ASSERT_EQ(0, cnet_socket_bytes_written(s));
  ASSERT(!cnet_socket_destroyed(s));
  ASSERT_STR_EQ(cnet_socket_ready_state(s), "open");
  trace_add(&T, rc_round == 0 ? "connect1" : "connect2");
  ASSERT_EQ(1, cnet_socket_write(s, rc_round == 0 ? "one" : "second",
                                 rc_round == 0 ? 3 : 6, NULL, NULL));
}

static void rc_close(cnet_socket_t *s, const cnet_event_t *ev, void *ctx) {
  int port = (int)(intptr_t)ctx;

  ASSERT(!ev->close.had_error);
  if (rc_round++ == 0) {
    ASSERT_EQ(3, cnet_socket_bytes_read(s));
    ASSERT_EQ(3, cnet_socket_bytes_written(s));
    trace_add(&T, "close1");
    /* From inside 'close': the same object connects again. */
    ASSERT_EQ(0, cnet_socket_connect_port(s, port, "127.0.0.1", NULL, NULL));
    ASSERT(cnet_socket_connecting(s));
    ASSERT(!cnet_socket_destroyed(s));
    ASSERT_EQ(0, cnet_socket_bytes_read(s));
    ASSERT_EQ(0, cnet_socket_bytes_written(s));
  } else {
    ASSERT_EQ(6, cnet_socket_bytes_read(s));
    ASSERT_EQ(6, cnet_socket_bytes_written(s));
    trace_add(&T, "close2");
  }
}

TEST_CASE(cn18_socket_new_reconnects_after_close) {
  uv_loop_t *loop = loop_new();
  cnet_socket_t *s = cnet_socket_new(loop, NULL);
  cnet_server_t *srv;
  int port;

  reset();
  rc_round = 0;
  srv = echo_server(loop, &port);
  cnet_server_unref(srv);
  ASSERT_EQ(0, cnet_socket_on(s, CNET_EV_CONNECT, rc_check_connect, NULL));
  ASSERT_EQ(0, cnet_socket_on(s, CNET_EV_DATA, end_on_data, NULL));
  ASSERT_EQ(0,
            cnet_socket_on(s, CNET_EV_CLOSE, rc_close, (void *)(intptr_t)port));
  ASSERT_EQ(0, cnet_socket_connect_port(s, port, "127.0.0.1", NULL, NULL));
  run_bounded(loop, 3000);
  ASSERT_STR_EQ(T.buf, "connect1 close1 connect2 close2");
  ASSERT_EQ(2, rc_round);
  cnet_socket_free(s);
  cnet_server_free(srv);
  loop_finish(loop);
}

/* ---- retain / release
 * --------------------------------------------------------- */

static cnet_socket_t *kept;

static void retain_accepted(cnet_server_t *srv, const cnet_event_t *ev,
                            void *ctx) {
  cnet_address_t a;

  (void)ctx;
  kept = ev->connection;
  /* ST-06: read while open, so it is still there after 'close'. */
  ASSERT_EQ(0, cnet_socket_remote_address(kept, &a));
  cnet_socket_retain(kept);
  cnet_socket_set_data(kept, &kept);
  cnet_server_close(srv, NULL, NULL);
}

TEST_CASE(lt02_retain_keeps_accepted_socket_past_close) {
  uv_loop_t *loop = loop_new();
  cnet_connect_options_t o = {.host = "127.0.0.1"};
  cnet_address_t a;
  cnet_server_t *srv;
  cnet_socket_t *c;

  kept = NULL;
  srv = echo_server(loop, &o.port);
  ASSERT_EQ(0, cnet_server_on(srv, CNET_EV_CONNECTION, retain_accepted, NULL));
  c = cnet_create_connection(loop, &o, send_on_connect, "abcd");
  ASSERT_EQ(0, cnet_socket_on(c, CNET_EV_DATA, end_on_data, NULL));
  run_bounded(loop, 3000);
  /* Closed, but still ours to read. */
  ASSERT_NOT_NULL(kept);
  ASSERT(cnet_socket_destroyed(kept));
  ASSERT_STR_EQ(cnet_socket_ready_state(kept), "closed");
  ASSERT_EQ(4, cnet_socket_bytes_read(kept));
  ASSERT_EQ(4, cnet_socket_bytes_written(kept));
  ASSERT_EQ((intptr_t)&kept, (intptr_t)cnet_socket_get_data(kept));
  ASSERT_EQ((intptr_t)loop, (intptr_t)cnet_socket_loop(kept));
  ASSERT_EQ((intptr_t)srv, (intptr_t)cnet_socket_server(kept));
  ASSERT_EQ(0, cnet_socket_remote_address(kept, &a));
  ASSERT_STR_EQ(a.address, "127.0.0.1");
  cnet_server_free(srv); /* the socket keeps what it points to */
  ASSERT_EQ((intptr_t)srv, (intptr_t)cnet_socket_server(kept));
  cnet_socket_release(kept);
  loop_finish(loop);
}

/* Decisions 30-31: an accepted socket whose peer nobody asked for has none
 * after 'close' (Node: undefined), and, allocated for TCP only, it may not
 * reconnect over a Unix socket. */
static void retain_accepted_quietly(cnet_server_t *srv, const cnet_event_t *ev,
                                    void *ctx) {
  (void)ctx;
  kept = ev->connection;
  cnet_socket_retain(kept);
  cnet_server_close(srv, NULL, NULL);
}

TEST_CASE(lt15_accepted_peer_unasked_and_no_path_reconnect) {
  uv_loop_t *loop = loop_new();
  cnet_connect_options_t o = {.host = "127.0.0.1"};
  cnet_connect_options_t ipc = {.path = "/nonexistent/cnet-lt15.sock"};
  cnet_address_t a;
  cnet_server_t *srv;
  cnet_socket_t *c;

  kept = NULL;
  srv = echo_server(loop, &o.port);
  ASSERT_EQ(0, cnet_server_on(srv, CNET_EV_CONNECTION, retain_accepted_quietly,
                              NULL));
  c = cnet_create_connection(loop, &o, send_on_connect, "abcd");
  ASSERT_EQ(0, cnet_socket_on(c, CNET_EV_DATA, end_on_data, NULL));
  run_bounded(loop, 3000);
  ASSERT_NOT_NULL(kept);
  ASSERT(cnet_socket_destroyed(kept));
  ASSERT_EQ(UV_ENOTCONN, cnet_socket_remote_address(kept, &a));
  ASSERT_EQ(CNET_ERR_INVALID_ARG_VALUE, cnet_socket_connect(kept, &ipc, NULL,
                                                            NULL));
  ASSERT_STR_EQ(cnet_last_error()->message,
                "The property 'options.path' cannot be used by a socket a TCP "
                "server accepted. Received '/nonexistent/cnet-lt15.sock'");
  ASSERT(cnet_socket_destroyed(kept)); /* nothing changed */
  cnet_server_free(srv);
  cnet_socket_release(kept);
  loop_finish(loop);
}

/* STYLE 4.2: a cnet-owned socket may reconnect after 'close' if retained. */
static int rt_round;

static void rt_close(cnet_socket_t *s, const cnet_event_t *ev, void *ctx) {
  (void)ev;
  if (rt_round++ == 0)
    ASSERT_EQ(0, cnet_socket_connect_port(s, (int)(intptr_t)ctx, "127.0.0.1",
                                          NULL, NULL));
  trace_add(&T, "close");
}

static void rt_connect(cnet_socket_t *s, const cnet_event_t *ev, void *ctx) {
  (void)ev;
  (void)ctx;
  trace_add(&T, "connect");
  cnet_socket_end(s, NULL, 0, NULL, NULL);
}

TEST_CASE(lt03_retained_created_socket_reconnects) {
  uv_loop_t *loop = loop_new();
  cnet_connect_options_t o = {.host = "127.0.0.1"};
  cnet_server_t *srv;
  cnet_socket_t *c;

  reset();
  rt_round = 0;
  srv = echo_server(loop, &o.port);
  cnet_server_unref(srv);
  c = cnet_create_connection(loop, &o, NULL, NULL);
  cnet_socket_retain(c);
  ASSERT_EQ(0, cnet_socket_on(c, CNET_EV_CONNECT, rt_connect, NULL));
  ASSERT_EQ(
      0, cnet_socket_on(c, CNET_EV_CLOSE, rt_close, (void *)(intptr_t)o.port));
  run_bounded(loop, 3000);
  ASSERT_STR_EQ(T.buf, "connect close connect close");
  cnet_socket_release(c);
  cnet_server_free(srv);
  loop_finish(loop);
}

/* ---- freeing from inside the object's own listeners
 * ----------------------------------- */

static void free_in_listener(cnet_socket_t *s, const cnet_event_t *ev,
                             void *ctx) {
  trace_ev(s, ev, ctx);
  cnet_socket_free(s);
  /* Still alive until the 'close' listeners have run. */
  ASSERT(cnet_socket_destroyed(s));
}

static void hello_connection(cnet_server_t *srv, const cnet_event_t *ev,
                             void *ctx) {
  (void)ctx;
  ASSERT_EQ(1, cnet_socket_write(ev->connection, "hello", 5, NULL, NULL));
  ASSERT_EQ(0, cnet_socket_on(ev->connection, CNET_EV_END, trace_ev, "srv"));
  ASSERT_EQ(0, cnet_socket_on(ev->connection, CNET_EV_CLOSE, trace_ev, "srv"));
  cnet_server_close(srv, NULL, NULL);
}

static void free_in_event(cnet_event_type_t type, const char *want) {
  uv_loop_t *loop = loop_new();
  cnet_server_t *srv = cnet_create_server(loop, NULL, NULL, NULL);
  cnet_socket_t *s = cnet_socket_new(loop, NULL);
  int port;

  reset();
  ASSERT_EQ(0, cnet_server_on(srv, CNET_EV_CONNECTION, hello_connection, NULL));
  ASSERT_EQ(0, cnet_server_listen_port(srv, 0, "127.0.0.1", 0, NULL, NULL));
  port = server_port(srv);
  ASSERT_EQ(0, cnet_socket_on(s, type, free_in_listener, NULL));
  ASSERT_EQ(0, cnet_socket_on(s, type, trace_ev, "second"));
  if (type != CNET_EV_DATA)
    ASSERT_EQ(0, cnet_socket_on(s, CNET_EV_DATA, end_on_data, NULL));
  if (type != CNET_EV_CLOSE)
    ASSERT_EQ(0, cnet_socket_on(s, CNET_EV_CLOSE, trace_ev, NULL));
  ASSERT_EQ(0, cnet_socket_connect_port(s, port, "127.0.0.1", NULL, NULL));
  run_bounded(loop, 3000);
  ASSERT_STR_EQ(T.buf, want);
  cnet_server_free(srv);
  loop_finish(loop);
}

TEST_CASE(lt04_free_socket_in_its_data_listener) {
  free_in_event(CNET_EV_DATA, "data second:data close(false) srv:end "
                              "srv:close(false)");
}

TEST_CASE(lt05_free_socket_in_its_close_listener) {
  free_in_event(CNET_EV_CLOSE, "srv:end srv:close(false) close(false) "
                               "second:close(false)");
}

TEST_CASE(lt06_free_socket_in_its_error_listener) {
  uv_loop_t *loop = loop_new();
  cnet_socket_t *s = cnet_socket_new(loop, NULL);

  reset();
  ASSERT_EQ(0, cnet_socket_on(s, CNET_EV_ERROR, free_in_listener, NULL));
  ASSERT_EQ(0, cnet_socket_on(s, CNET_EV_ERROR, trace_ev, "second"));
  ASSERT_EQ(0, cnet_socket_on(s, CNET_EV_CLOSE, trace_ev, NULL));
  ASSERT_EQ(
      0, cnet_socket_connect_port(s, closed_port(), "127.0.0.1", NULL, NULL));
  run_bounded(loop, 3000);
  ASSERT_STR_EQ(T.buf, "error second:error close(true)");
  loop_finish(loop);
}

/* ---- the server
 * ------------------------------------------------------------------------- */

static void free_server_on_connection(cnet_server_t *srv,
                                      const cnet_event_t *ev, void *ctx) {
  (void)ctx;
  trace_add(&T, "connection");
  ASSERT_EQ(0, cnet_socket_pipe(ev->connection, ev->connection, NULL));
  ASSERT_EQ(0, cnet_socket_on(ev->connection, CNET_EV_CLOSE, trace_ev, "srv"));
  cnet_server_free(srv);
  ASSERT(!cnet_server_listening(srv)); /* alive until its listeners ran */
  ASSERT_EQ((intptr_t)srv, (intptr_t)cnet_socket_server(ev->connection));
}

TEST_CASE(lt07_free_server_in_connection_listener) {
  uv_loop_t *loop = loop_new();
  cnet_server_t *srv =
      cnet_create_server(loop, NULL, free_server_on_connection, NULL);
  cnet_connect_options_t o = {.host = "127.0.0.1"};
  cnet_socket_t *c;

  reset();
  ASSERT_EQ(0, cnet_server_on(srv, CNET_EV_CONNECTION, trace_srv, "after"));
  ASSERT_EQ(0, cnet_server_on(srv, CNET_EV_CLOSE, trace_srv, "server"));
  ASSERT_EQ(0, cnet_server_listen_port(srv, 0, "127.0.0.1", 0, NULL, NULL));
  o.port = server_port(srv);
  c = cnet_create_connection(loop, &o, send_on_connect, "ping");
  ASSERT_EQ(0, cnet_socket_on(c, CNET_EV_DATA, trace_ev, "client"));
  ASSERT_EQ(0, cnet_socket_on(c, CNET_EV_DATA, end_on_data, NULL));
  ASSERT_EQ(0, cnet_socket_on(c, CNET_EV_CLOSE, trace_ev, "client"));
  run_bounded(loop, 3000);
  /* The connection outlives the server object's owner; 'close' still comes
   * once it is gone (correction 4: before the socket's own 'close'). */
  ASSERT_STR_EQ(T.buf, "connection after:connection client:data "
                       "server:close srv:close(false) client:close(false)");
  loop_finish(loop);
}

static int counted;

static void count_cb(cnet_server_t *srv, const cnet_error_t *err, size_t count,
                     void *ctx) {
  (void)srv;
  (void)ctx;
  ASSERT_NULL(err);
  ASSERT_EQ(0, count);
  counted++;
}

TEST_CASE(lt08_server_free_then_loop_ends) {
  uv_loop_t *loop = loop_new();
  cnet_server_t *srv = cnet_create_server(loop, NULL, NULL, NULL);

  reset();
  counted = 0;
  ASSERT_EQ(0, cnet_server_on(srv, CNET_EV_LISTENING, trace_srv, "server"));
  ASSERT_EQ(0, cnet_server_on(srv, CNET_EV_CLOSE, trace_srv, "server"));
  ASSERT_EQ(0, cnet_server_listen_port(srv, 0, NULL, 0, NULL, NULL));
  ASSERT_EQ(0, cnet_server_get_connections(srv, count_cb, NULL));
  cnet_server_free(srv); /* listening: closes it; callbacks still run */
  run_bounded(loop, 2000);
  ASSERT_STR_EQ(T.buf, "server:close");
  ASSERT_EQ(1, counted);
  loop_finish(loop);
}

TEST_CASE(lt09_free_unused_objects) {
  uv_loop_t *loop = loop_new();

  cnet_socket_free(cnet_socket_new(loop, NULL));
  cnet_server_free(cnet_create_server(loop, NULL, NULL, NULL));
  cnet_socket_free(NULL);
  cnet_server_free(NULL);
  cnet_socket_retain(NULL);
  cnet_socket_release(NULL);
  loop_finish(loop);
}

/* ---- destroy / free while connecting
 * ------------------------------------------------------ */

static void destroy_on_connect(cnet_socket_t *s, const cnet_event_t *ev,
                               void *ctx) {
  trace_ev(s, ev, ctx);
  cnet_socket_destroy(s, NULL);
}

static void count_accepted(cnet_server_t *srv, const cnet_event_t *ev,
                           void *ctx) {
  (void)ctx;
  ASSERT_EQ(0, cnet_socket_on(ev->connection, CNET_EV_END, trace_ev, "srv"));
  ASSERT_EQ(0, cnet_socket_on(ev->connection, CNET_EV_CLOSE, trace_ev, "srv"));
  cnet_server_close(srv, NULL, NULL);
}

TEST_CASE(lt10_destroy_inside_connect) {
  uv_loop_t *loop = loop_new();
  cnet_server_t *srv = cnet_create_server(loop, NULL, count_accepted, NULL);
  cnet_connect_options_t o = {.host = "127.0.0.1"};
  cnet_socket_t *c;

  reset();
  ASSERT_EQ(0, cnet_server_listen_port(srv, 0, "127.0.0.1", 0, NULL, NULL));
  o.port = server_port(srv);
  c = cnet_create_connection(loop, &o, destroy_on_connect, NULL);
  ASSERT_EQ(0, cnet_socket_on(c, CNET_EV_CONNECT, trace_ev, "second"));
  ASSERT_EQ(0, cnet_socket_on(c, CNET_EV_DATA, trace_ev, NULL));
  ASSERT_EQ(0, cnet_socket_on(c, CNET_EV_ERROR, trace_ev, NULL));
  ASSERT_EQ(0, cnet_socket_on(c, CNET_EV_CLOSE, trace_ev, NULL));
  run_bounded(loop, 3000);
  /* The other 'connect' listeners still run: one emit, one snapshot. */
  ASSERT_NOT_NULL(strstr(T.buf, "connect second:connect close(false)"));
  ASSERT_NOT_NULL(strstr(T.buf, "srv:end"));
  ASSERT_NOT_NULL(strstr(T.buf, "srv:close(false)"));
  ASSERT_NULL(strstr(T.buf, "error"));
  cnet_server_free(srv);
  loop_finish(loop);
}

/* DN-08: freed while "localhost" is being looked up; the late answer is
 * dropped and nothing is touched after the free. */
TEST_CASE(lt11_free_during_lookup) {
  uv_loop_t *loop = loop_new();
  cnet_socket_t *s = cnet_socket_new(loop, NULL);

  reset();
  ASSERT_EQ(0, cnet_socket_on(s, CNET_EV_LOOKUP, trace_ev, NULL));
  ASSERT_EQ(0, cnet_socket_on(s, CNET_EV_CONNECT, trace_ev, NULL));
  ASSERT_EQ(0, cnet_socket_on(s, CNET_EV_ERROR, trace_ev, NULL));
  ASSERT_EQ(0, cnet_socket_on(s, CNET_EV_CLOSE, trace_ev, NULL));
  ASSERT_EQ(0, cnet_socket_connect_port(s, 9, "localhost", NULL, NULL));
  cnet_socket_free(s);
  run_bounded(loop, 3000);
  ASSERT_STR_EQ(T.buf, "close(false)");
  loop_finish(loop);
}

/* ---- zero-copy buffers: released exactly once, after the callback
 * ------------------------------ */

static void owned_release(void *data, size_t len, void *ctx) {
  ASSERT_EQ(5, len);
  ASSERT_MEM_EQ(data, "owned", 5);
  trace_add(&T, ctx);
  free(data);
}

static void owned_cb(cnet_socket_t *s, const cnet_error_t *err, void *ctx) {
  char w[96];

  (void)s;
  snprintf(w, sizeof(w), "%s:%s", (char *)ctx, err ? err->code : "ok");
  trace_add(&T, w);
}

static void *owned_copy(void) {
  char *p = malloc(5);

  ASSERT_NOT_NULL(p);
  memcpy(p, "owned", 5);
  return p;
}

TEST_CASE(lt12_write_owned_released_after_cb_on_destroy) {
  uv_loop_t *loop = loop_new();
  cnet_socket_t *s = cnet_socket_new(loop, NULL);
  cnet_server_t *srv;
  int port;

  reset();
  srv = echo_server(loop, &port);
  cnet_server_unref(srv);
  ASSERT_EQ(0, cnet_socket_on(s, CNET_EV_CLOSE, trace_ev, NULL));
  ASSERT_EQ(0, cnet_socket_connect_port(s, port, "127.0.0.1", NULL, NULL));
  ASSERT_EQ(0, cnet_socket_write_owned(s, owned_copy(), 5, owned_release,
                                       "release", owned_cb, "cb"));
  cnet_socket_destroy(s, NULL); /* queued, never sent */
  run_bounded(loop, 3000);
  ASSERT_STR_EQ(T.buf,
                "cb:ERR_SOCKET_CLOSED_BEFORE_CONNECTION release close(false)");
  cnet_socket_free(s);
  cnet_server_free(srv);
  loop_finish(loop);
}

static void owned_on_connect(cnet_socket_t *s, const cnet_event_t *ev,
                             void *ctx) {
  (void)ev;
  (void)ctx;
  ASSERT_EQ(1, cnet_socket_write_owned(s, owned_copy(), 5, owned_release,
                                       "release", owned_cb, "cb"));
  ASSERT_EQ(1, cnet_socket_write_owned(s, "owned", 5, NULL, NULL, owned_cb,
                                       "static"));
  cnet_socket_end(s, NULL, 0, NULL, NULL);
  cnet_socket_resume(s); /* EN-07: read the echo, or 'end' never comes */
}

TEST_CASE(lt13_write_owned_released_after_cb_on_success) {
  uv_loop_t *loop = loop_new();
  cnet_connect_options_t o = {.host = "127.0.0.1"};
  cnet_server_t *srv;

  reset();
  srv = echo_server(loop, &o.port);
  cnet_server_unref(srv);
  ASSERT_NOT_NULL(cnet_create_connection(loop, &o, owned_on_connect, NULL));
  run_bounded(loop, 3000);
  ASSERT_STR_EQ(T.buf, "cb:ok release static:ok");
  cnet_server_free(srv);
  loop_finish(loop);
}

/* Refused at once (WR-13): the callback first, then the release. */
TEST_CASE(lt14_write_owned_refused_released_after_cb) {
  uv_loop_t *loop = loop_new();
  cnet_socket_t *s = cnet_socket_new(loop, NULL);

  reset();
  ASSERT_EQ(0, cnet_socket_on(s, CNET_EV_CLOSE, trace_ev, NULL));
  cnet_socket_destroy(s, NULL);
  ASSERT_EQ(0, cnet_socket_write_owned(s, owned_copy(), 5, owned_release,
                                       "release", owned_cb, "cb"));
  run_bounded(loop, 2000);
  /* Node: close cb:ERR_STREAM_DESTROYED (both on the tick queue). */
  ASSERT_STR_EQ(T.buf, "close(false) cb:ERR_STREAM_DESTROYED release");
  cnet_socket_free(s);
  loop_finish(loop);
}
