/* A loopback server that accepts one connection, and a client, both traced:
 * the scaffolding test-socket.c and test-stream-write.c share. Include it
 * after harness.h, once per test file; everything here is static.
 *
 *   reset();                                   every case starts with it
 *   port = start_server(loop, hook);           127.0.0.1, port 0
 *   c = connect_client(loop, port, cb, ctx);   its events traced into CT
 *   run_bounded(loop, ms);
 *   ASSERT_STR_EQ(CT.buf, "connect ready ..."); ST: the accepted socket
 *   finish(loop);
 *
 * Traces are event names separated by spaces; consecutive 'data' events
 * are one word (how a stream is cut into reads is the kernel's business),
 * 'close' is "close(true)" or "close(false)", and 'error' is "error", or
 * "error:CODE" in a file that defines ONE_CONNECTION_ERROR_CODES to 1
 * before including this. A file that defines ONE_CONNECTION_UNHANDLED_FAILS
 * to 1 fails any case in which an 'error' has no listener. The bytes each
 * side received are in S.rx and CRX. */
#ifndef CNET_TEST_ONE_CONNECTION_H
#define CNET_TEST_ONE_CONNECTION_H

static trace_t CT, ST; /* client side, server side */

#ifndef ONE_CONNECTION_ERROR_CODES
#define ONE_CONNECTION_ERROR_CODES 0
#endif
#ifndef ONE_CONNECTION_UNHANDLED_FAILS
#define ONE_CONNECTION_UNHANDLED_FAILS 0
#endif

/* An 'error' nobody listens to is a bug in the test or the library. */
HARNESS_FN void fail_unhandled(const char *what, const cnet_error_t *err,
                               void *ctx) {
  (void)ctx;
  FAIL("unhandled %s 'error': %s (%s)", what, err->message,
       err->code ? err->code : "?");
}

static void trace_event(trace_t *t, const cnet_event_t *ev) {
  const char *w = cnet_event_name(ev->type);
  char buf[160];

  if (ev->type == CNET_EV_DATA && t->len >= 4 &&
      strcmp(t->buf + t->len - 4, "data") == 0)
    return;
  if (ev->type == CNET_EV_CLOSE)
    w = ev->close.had_error ? "close(true)" : "close(false)";
  if (ev->type == CNET_EV_ERROR && ONE_CONNECTION_ERROR_CODES) {
    snprintf(buf, sizeof(buf), "error:%s", ev->error->code);
    w = buf;
  }
  trace_add(t, w);
}

typedef struct {
  char buf[1 << 17];
  size_t len;
} rx_t;

HARNESS_FN void rx_add(rx_t *rx, const cnet_event_t *ev) {
  ASSERT_GT(ev->data.len, 0);
  ASSERT(rx->len + ev->data.len <= sizeof(rx->buf));
  memcpy(rx->buf + rx->len, ev->data.base, ev->data.len); /* copy: valid
                                                             only now */
  rx->len += ev->data.len;
}

/* ---- a server whose accepted socket is traced into ST -------------------- */

typedef void (*conn_hook_fn)(cnet_socket_t *s);

static struct {
  cnet_server_t *srv;
  cnet_socket_t *conn; /* the last accepted; valid until its 'close' */
  int connections;
  int port;
  rx_t rx;
  conn_hook_fn hook;
  bool no_rx;         /* big transfers count their bytes only */
  uint64_t received;  /* every byte, also with no_rx */
  const char *expect; /* with no_rx: what the bytes must be, if not NULL */
  cnet_error_t error; /* the accepted socket's 'error' */
  uint64_t bytes_read, bytes_written; /* at the accepted socket's 'close' */
} S;

static rx_t CRX; /* what the client received */

static void server_sock_event(cnet_socket_t *s, const cnet_event_t *ev,
                              void *ctx) {
  (void)ctx;
  trace_event(&ST, ev);
  if (ev->type == CNET_EV_DATA) {
    if (S.expect != NULL)
      for (size_t i = 0; i < ev->data.len; i++)
        if (ev->data.base[i] != S.expect[S.received + i])
          FAIL("received byte %llu is 0x%02x, not 0x%02x",
               (unsigned long long)(S.received + i),
               (unsigned char)ev->data.base[i],
               (unsigned char)S.expect[S.received + i]);
    S.received += ev->data.len;
    if (!S.no_rx)
      rx_add(&S.rx, ev);
  }
  if (ev->type == CNET_EV_ERROR)
    S.error = *ev->error;
  if (ev->type == CNET_EV_CLOSE) {
    S.bytes_read = cnet_socket_bytes_read(s);
    S.bytes_written = cnet_socket_bytes_written(s);
    S.conn = NULL;
  }
}

static void on_connection(cnet_server_t *srv, const cnet_event_t *ev,
                          void *ctx) {
  cnet_socket_t *s = ev->connection;
  static const cnet_event_type_t types[] = {
      CNET_EV_DATA, CNET_EV_END, CNET_EV_FINISH, CNET_EV_ERROR, CNET_EV_CLOSE};

  (void)ctx;
  S.conn = s;
  S.connections++;
  trace_add(&ST, "connection");
  for (size_t i = 0; i < ARRAY_LEN(types); i++)
    ASSERT_EQ(0, cnet_socket_on(s, types[i], server_sock_event, NULL));
  cnet_server_close(srv, NULL, NULL); /* one connection per test */
  if (S.hook != NULL)
    S.hook(s);
}

static void reset(void) {
  memset(&CT, 0, sizeof(CT));
  memset(&ST, 0, sizeof(ST));
  memset(&S, 0, sizeof(S));
  memset(&CRX, 0, sizeof(CRX));
  if (ONE_CONNECTION_UNHANDLED_FAILS)
    cnet_set_unhandled_error_handler(fail_unhandled, NULL);
}

/* Listens on host (127.0.0.1 when NULL) port 0; returns the port. */
HARNESS_FN int start_server_opts(uv_loop_t *loop,
                                 const cnet_server_options_t *o,
                                 const char *host, conn_hook_fn hook) {
  S.srv = cnet_create_server(loop, o, on_connection, NULL);
  ASSERT_NOT_NULL(S.srv);
  S.hook = hook;
  ASSERT_EQ(0, cnet_server_listen_port(S.srv, 0, host ? host : "127.0.0.1", 0,
                                       NULL, NULL));
  S.port = server_port(S.srv);
  return S.port;
}

HARNESS_FN int start_server(uv_loop_t *loop, conn_hook_fn hook) {
  return start_server_opts(loop, NULL, NULL, hook);
}

static void client_event(cnet_socket_t *s, const cnet_event_t *ev, void *ctx) {
  (void)s;
  (void)ctx;
  trace_event(&CT, ev);
  if (ev->type == CNET_EV_DATA)
    rx_add(&CRX, ev);
}

/* Traces every client event that a test does not handle itself. */
HARNESS_FN void trace_client(cnet_socket_t *c) {
  static const cnet_event_type_t types[] = {
      CNET_EV_CONNECT, CNET_EV_READY, CNET_EV_DATA,  CNET_EV_END,
      CNET_EV_FINISH,  CNET_EV_ERROR, CNET_EV_CLOSE, CNET_EV_DRAIN};

  for (size_t i = 0; i < ARRAY_LEN(types); i++)
    ASSERT_EQ(0, cnet_socket_on(c, types[i], client_event, NULL));
}

HARNESS_FN cnet_socket_t *connect_client(uv_loop_t *loop, int port,
                                         cnet_socket_listener cb, void *ctx) {
  cnet_connect_options_t o = {.port = port, .host = "127.0.0.1"};
  cnet_socket_t *c = cnet_create_connection(loop, &o, cb, ctx);

  ASSERT_NOT_NULL(c);
  trace_client(c);
  return c;
}

HARNESS_FN void finish(uv_loop_t *loop) {
  cnet_server_free(S.srv);
  loop_finish(loop);
}

#endif /* CNET_TEST_ONE_CONNECTION_H */
