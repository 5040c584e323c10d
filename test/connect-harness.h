/* The client-side layer shared by test-connect.c and test-autoselect.c:
 *
 *   reset();
 *   server_start(&sv, loop, "127.0.0.1", 0);
 *   resolver_set(&r, 2, "::1", 6, "127.0.0.1", 4);
 *   s = watch(cnet_socket_new(loop, NULL));
 *   ASSERT_EQ(0, do_connect(s, &o, end_on_connect, NULL));
 *   run_bounded(loop, 3000);
 *   ASSERT_STR_EQ(T.buf, "lookup(::1,6) lookup(127.0.0.1,4) attempt(::1) ...");
 *
 * Helpers: now_ms, F (printf into rotating buffers, for expected strings),
 * linger; a traced client (on_any records every event of a watch()ed
 * socket in T, the last 'error' in E, the last attempt's error in AE, with
 * counts and times, and fails if an event comes from inside do_connect);
 * destroy_now / destroy_after_attempt; end_on_connect; finish_refused
 * (the end of a case whose calls were refused at once); server_t (an
 * unref'd TCP server: counts, remote address, echo, greet, received
 * bytes); resolver_t + fake_lookup (an injected `lookup` that answers at
 * once, later or when told); hole_t (a loopback "black hole" whose SYNs
 * are dropped; hole_drain lets the next one through); tcp_count (sockets
 * in a /proc/net/tcp state).
 *
 * Include it once, after harness.h (with _GNU_SOURCE defined before both):
 * like harness.h, everything here is static.
 */
#ifndef CNET_TEST_CONNECT_HARNESS_H
#define CNET_TEST_CONNECT_HARNESS_H

#ifndef CNET_TEST_HARNESS_H
#error "include harness.h before connect-harness.h"
#endif

#include <poll.h>
#include <stdarg.h>
#include <stdint.h>

/* ---- small utilities ---------------------------------------------------- */

HARNESS_FN uint64_t now_ms(void) {
  return uv_hrtime() / 1000000u;
}

/* printf into one of a few rotating buffers: for expected strings. */
HARNESS_FN const char *F(const char *fmt, ...)
    __attribute__((format(printf, 1, 2)));
HARNESS_FN const char *F(const char *fmt, ...) {
  static char bufs[8][512];
  static unsigned next;
  char *b = bufs[next++ % ARRAY_LEN(bufs)];
  va_list ap;

  va_start(ap, fmt);
  vsnprintf(b, sizeof(bufs[0]), fmt, ap);
  va_end(ap);
  return b;
}

HARNESS_FN void noop(void *arg) {
  (void)arg;
}

/* Keeps the loop running ms longer: "nothing else happens" checks. */
HARNESS_FN void linger(uv_loop_t *loop, unsigned ms) {
  later(loop, ms, noop, NULL, true);
}

/* ---- a traced client ----------------------------------------------------- */

static trace_t T;       /* client events, in order */
static cnet_error_t E;  /* a copy of the last 'error' */
static cnet_error_t AE; /* a copy of the last attempt's error */
static int n_errors, n_closes, n_lookups, n_timeouts;
static uint64_t t_start, t_connect, t_error, t_timeout, t_close;
static int want_port; /* attempts must name this port (0: any) */
static bool in_call;  /* true while inside a cnet call under test */
static bool close_had_error;
static uint64_t t_attempt[8], t_attempt_timeout[8];
static int n_attempts, n_attempt_timeouts;

#define EVB(t) (1u << (t))
#define EV_ALL 0xffffffffu
/* Without the attempt events, for cases where their presence is not the
 * point (cnet may or may not report a connect_timeout as an attempt). */
#define EV_BASIC                                                               \
  (EVB(CNET_EV_LOOKUP) | EVB(CNET_EV_CONNECT) | EVB(CNET_EV_READY) |           \
   EVB(CNET_EV_DATA) | EVB(CNET_EV_END) | EVB(CNET_EV_FINISH) |                \
   EVB(CNET_EV_ERROR) | EVB(CNET_EV_TIMEOUT) | EVB(CNET_EV_CLOSE))

HARNESS_FN void on_any(cnet_socket_t *s, const cnet_event_t *ev, void *ctx) {
  char w[CNET_MESSAGE_MAX + 64];

  (void)s;
  (void)ctx;
  /* Deferred delivery: never from inside the call that caused it. */
  if (in_call)
    FAIL("'%s' emitted inside the call", cnet_event_name(ev->type));
  switch (ev->type) {
  case CNET_EV_LOOKUP:
    n_lookups++;
    ASSERT_NOT_NULL(ev->lookup.host);
    if (ev->lookup.error != NULL) {
      ASSERT_NULL(ev->lookup.address);
      ASSERT_EQ(0, ev->lookup.family);
      snprintf(w, sizeof(w), "lookup(%s)", ev->lookup.error->code);
    } else {
      ASSERT_NOT_NULL(ev->lookup.address);
      snprintf(w, sizeof(w), "lookup(%s,%d)", ev->lookup.address,
               ev->lookup.family);
    }
    break;
  case CNET_EV_CONNECTION_ATTEMPT:
  case CNET_EV_CONNECTION_ATTEMPT_FAILED:
  case CNET_EV_CONNECTION_ATTEMPT_TIMEOUT:
    ASSERT_NOT_NULL(ev->attempt.address);
    ASSERT_EQ(cnet_is_ip(ev->attempt.address), ev->attempt.family);
    if (want_port != 0)
      ASSERT_EQ(want_port, ev->attempt.port);
    if (ev->type == CNET_EV_CONNECTION_ATTEMPT && n_attempts < 8)
      t_attempt[n_attempts++] = now_ms();
    if (ev->type == CNET_EV_CONNECTION_ATTEMPT_TIMEOUT &&
        n_attempt_timeouts < 8)
      t_attempt_timeout[n_attempt_timeouts++] = now_ms();
    if (ev->type == CNET_EV_CONNECTION_ATTEMPT_FAILED) {
      ASSERT_NOT_NULL(ev->attempt.error);
      AE = *ev->attempt.error;
      snprintf(w, sizeof(w), "failed(%s,%s)", ev->attempt.address,
               ev->attempt.error->code);
    } else {
      ASSERT_NULL(ev->attempt.error);
      snprintf(w, sizeof(w), "%s(%s)",
               ev->type == CNET_EV_CONNECTION_ATTEMPT ? "attempt"
                                                      : "attempt_timeout",
               ev->attempt.address);
    }
    break;
  case CNET_EV_ERROR:
    n_errors++;
    E = *ev->error;
    t_error = now_ms();
    snprintf(w, sizeof(w), "error(%s)", ev->error->code);
    break;
  case CNET_EV_CLOSE:
    n_closes++;
    t_close = now_ms();
    close_had_error = ev->close.had_error;
    snprintf(w, sizeof(w), "close(%s)", ev->close.had_error ? "true" : "false");
    break;
  case CNET_EV_TIMEOUT:
    n_timeouts++;
    t_timeout = now_ms();
    snprintf(w, sizeof(w), "timeout");
    break;
  case CNET_EV_CONNECT:
    t_connect = now_ms();
    snprintf(w, sizeof(w), "connect");
    break;
  case CNET_EV_DATA:
    /* How a stream is cut into reads is the kernel's business. */
    if (T.len >= 4 && strcmp(T.buf + T.len - 4, "data") == 0)
      return;
    snprintf(w, sizeof(w), "data");
    break;
  default:
    snprintf(w, sizeof(w), "%s", cnet_event_name(ev->type));
    break;
  }
  trace_add(&T, w);
}

HARNESS_FN cnet_socket_t *watch_mask(cnet_socket_t *s, unsigned mask) {
  static const cnet_event_type_t types[] = {CNET_EV_LOOKUP,
                                            CNET_EV_CONNECTION_ATTEMPT,
                                            CNET_EV_CONNECTION_ATTEMPT_FAILED,
                                            CNET_EV_CONNECTION_ATTEMPT_TIMEOUT,
                                            CNET_EV_CONNECT,
                                            CNET_EV_READY,
                                            CNET_EV_DATA,
                                            CNET_EV_END,
                                            CNET_EV_FINISH,
                                            CNET_EV_ERROR,
                                            CNET_EV_TIMEOUT,
                                            CNET_EV_CLOSE};

  ASSERT_NOT_NULL(s);
  for (size_t i = 0; i < ARRAY_LEN(types); i++)
    if (mask & EVB(types[i]))
      ASSERT_EQ(0, cnet_socket_on(s, types[i], on_any, NULL));
  return s;
}

HARNESS_FN cnet_socket_t *watch(cnet_socket_t *s) {
  return watch_mask(s, EV_ALL);
}

HARNESS_FN void destroy_now(cnet_socket_t *s, const cnet_event_t *ev,
                            void *ctx) {
  (void)ev;
  (void)ctx;
  cnet_socket_destroy(s, NULL);
}

HARNESS_FN void destroy_later(void *arg) {
  cnet_socket_destroy(arg, NULL);
}

/* Arms destroy_later(s) ms_after the n-th 'connectionAttempt', so a test
 * that destroys "during an attempt" does not depend on how fast the lookup
 * ran (valgrind is slow). */
static unsigned arm_after_n, arm_ms, arm_seen;

HARNESS_FN void arm_destroy(cnet_socket_t *s, const cnet_event_t *ev,
                            void *ctx) {
  (void)ev;
  (void)ctx;
  if (++arm_seen == arm_after_n)
    later(cnet_socket_loop(s), arm_ms, destroy_later, s, true);
}

HARNESS_FN void destroy_after_attempt(cnet_socket_t *s, unsigned n,
                                      unsigned ms) {
  arm_after_n = n;
  arm_ms = ms;
  arm_seen = 0;
  ASSERT_EQ(0,
            cnet_socket_on(s, CNET_EV_CONNECTION_ATTEMPT, arm_destroy, NULL));
}

HARNESS_FN void end_on_connect(cnet_socket_t *s, const cnet_event_t *ev,
                               void *ctx) {
  (void)ev;
  (void)ctx;
  ASSERT_EQ(0, cnet_socket_end(s, NULL, 0, NULL, NULL));
}

/* socket.connect(opts) with the "nothing inside the call" guard. */
HARNESS_FN int do_connect(cnet_socket_t *s, const cnet_connect_options_t *o,
                          cnet_socket_listener cb, void *ctx) {
  int r;

  in_call = true;
  r = cnet_socket_connect(s, o, cb, ctx);
  in_call = false;
  return r;
}

HARNESS_FN void reset(void) {
  memset(&T, 0, sizeof(T));
  memset(&E, 0, sizeof(E));
  memset(&AE, 0, sizeof(AE));
  n_errors = n_closes = n_lookups = n_timeouts = 0;
  t_start = now_ms();
  t_connect = t_error = t_timeout = t_close = 0;
  want_port = 0;
  in_call = false;
  close_had_error = false;
  n_attempts = n_attempt_timeouts = 0;
}

/* The end of a case whose calls were all refused at once: s is not
 * connecting and nothing is emitted afterwards. Frees s and checks that the
 * loop ends clean. */
HARNESS_FN void finish_refused(uv_loop_t *loop, cnet_socket_t *s) {
  ASSERT(!cnet_socket_connecting(s));
  run_bounded(loop, 1000);
  ASSERT_STR_EQ(T.buf, "");
  cnet_socket_free(s);
  loop_finish(loop);
}

/* ---- servers --------------------------------------------------------------
 */

typedef struct {
  cnet_server_t *srv;
  int port;
  int conns;
  int last_remote_port;
  char last_remote[CNET_ADDR_MAX];
  bool echo;  /* pipe each connection to itself */
  bool greet; /* end("bye") at once */
  char rx[256];
  size_t rx_len;
} server_t;

HARNESS_FN void srv_sock_event(cnet_socket_t *s, const cnet_event_t *ev,
                               void *ctx) {
  server_t *sv = ctx;

  (void)s;
  if (ev->type == CNET_EV_DATA && !sv->echo) {
    ASSERT(sv->rx_len + ev->data.len <= sizeof(sv->rx));
    memcpy(sv->rx + sv->rx_len, ev->data.base, ev->data.len);
    sv->rx_len += ev->data.len;
  }
  /* CNET_EV_ERROR: a client that resets is not this test's business. */
}

HARNESS_FN void srv_connection(cnet_server_t *srv, const cnet_event_t *ev,
                               void *ctx) {
  server_t *sv = ctx;
  cnet_socket_t *c = ev->connection;
  cnet_address_t ra;

  (void)srv;
  sv->conns++;
  if (cnet_socket_remote_address(c, &ra) == 0) { /* not for IPC */
    snprintf(sv->last_remote, sizeof(sv->last_remote), "%s", ra.address);
    sv->last_remote_port = ra.port;
  }
  ASSERT_EQ(0, cnet_socket_on(c, CNET_EV_ERROR, srv_sock_event, sv));
  if (sv->echo)
    ASSERT_EQ(0, cnet_socket_pipe(c, c, NULL));
  else
    ASSERT_EQ(0, cnet_socket_on(c, CNET_EV_DATA, srv_sock_event, sv));
  if (sv->greet)
    ASSERT_EQ(0, cnet_socket_end(c, "bye", 3, NULL, NULL));
}

/* A TCP server on host:port (port 0: any), unref'd so that it never keeps
 * the loop alive by itself: the loop ends when the clients are done. */
HARNESS_FN void server_start(server_t *sv, uv_loop_t *loop, const char *host,
                             int port) {
  sv->srv = cnet_create_server(loop, NULL, srv_connection, sv);
  ASSERT_NOT_NULL(sv->srv);
  cnet_server_unref(sv->srv);
  ASSERT_EQ(0, cnet_server_listen_port(sv->srv, port, host, 0, NULL, NULL));
  sv->port = server_port(sv->srv);
}

/* ---- resolvers for the `lookup` option ------------------------------------
 */

typedef struct {
  int calls;
  char host[CNET_HOST_MAX];
  const char *host_ptr; /* as given: must stay valid until the answer */
  cnet_lookup_options_t opts;
  uv_loop_t *loop;
  cnet_lookup_t *req; /* the pending request */
  cnet_lookup_address_t answers[8];
  size_t n;
  int err;                    /* < 0: answer cnet_lookup_done(err) */
  const cnet_error_t *custom; /* answer cnet_lookup_fail(custom) */
  int delay_ms;               /* 0: inside the call; > 0: later; < 0: never
                                 by itself (the case calls answer()) */
  bool returned;              /* the answer call returned */
} resolver_t;

HARNESS_FN void resolver_answer(resolver_t *r) {
  cnet_lookup_t *req = r->req;

  ASSERT_NOT_NULL(req);
  r->req = NULL;
  ASSERT_STR_EQ(r->host_ptr, r->host);
  if (r->custom != NULL)
    cnet_lookup_fail(req, r->custom);
  else
    cnet_lookup_done(req, r->err, r->err != 0 ? NULL : r->answers, r->n);
  r->returned = true;
}

HARNESS_FN void resolver_answer_cb(void *arg) {
  resolver_answer(arg);
}

HARNESS_FN void fake_lookup(cnet_lookup_t *req, const char *host,
                            const cnet_lookup_options_t *opts, void *ctx) {
  resolver_t *r = ctx;

  ASSERT_NOT_NULL(r);
  ASSERT_NOT_NULL(host);
  ASSERT_NOT_NULL(opts);
  ASSERT_NULL(r->req); /* one question at a time */
  r->calls++;
  snprintf(r->host, sizeof(r->host), "%s", host);
  r->host_ptr = host;
  r->opts = *opts;
  r->loop = cnet_lookup_loop(req);
  ASSERT_NOT_NULL(r->loop);
  r->req = req;
  if (r->delay_ms == 0)
    resolver_answer(r);
  else if (r->delay_ms > 0)
    later(r->loop, (unsigned)r->delay_ms, resolver_answer_cb, r, true);
}

/* resolver_set(r, 2, "::1", 6, "127.0.0.1", 4) */
HARNESS_FN void resolver_set(resolver_t *r, size_t n, ...) {
  va_list ap;

  ASSERT(n <= ARRAY_LEN(r->answers));
  memset(r, 0, sizeof(*r));
  va_start(ap, n);
  for (size_t i = 0; i < n; i++) {
    r->answers[i].address = va_arg(ap, const char *);
    r->answers[i].family = va_arg(ap, int);
  }
  va_end(ap);
  r->n = n;
}

/* ---- a loopback "black hole" ----------------------------------------------
 */

/* A listening socket with backlog 0 whose accept queue is already full
 * (one connection nobody accepts). Linux drops further SYNs when the queue
 * is full (tcp_abort_on_overflow is 0 here), so a connect() to it neither
 * succeeds nor fails: the client retransmits its SYN (1 s, 2 s, 4 s ...)
 * for about two minutes. Checked on this kernel: five connects in a row
 * each still pending after 1.5 s. */
typedef struct {
  int lfd, filler, port;
  int accepted; /* the filler, once hole_drain() took it; else -1 */
} hole_t;

HARNESS_FN void hole_open(hole_t *h, const char *ip, int port) {
  struct sockaddr_in a;
  socklen_t len = sizeof(a);
  struct pollfd p;

  memset(&a, 0, sizeof(a));
  a.sin_family = AF_INET;
  a.sin_port = htons((uint16_t)port);
  ASSERT_EQ(1, inet_pton(AF_INET, ip, &a.sin_addr));
  h->lfd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  ASSERT_GE(h->lfd, 0);
  ASSERT_EQ(0, bind(h->lfd, (struct sockaddr *)&a, sizeof(a)));
  ASSERT_EQ(0, listen(h->lfd, 0));
  ASSERT_EQ(0, getsockname(h->lfd, (struct sockaddr *)&a, &len));
  h->port = ntohs(a.sin_port);
  h->accepted = -1;
  h->filler = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  ASSERT_GE(h->filler, 0);
  ASSERT_EQ(0, connect(h->filler, (struct sockaddr *)&a, sizeof(a)));
  p.fd = h->lfd;
  p.events = POLLIN;
  p.revents = 0;
  ASSERT_EQ(1, poll(&p, 1, 1000)); /* the filler sits in the accept queue */
}

/* Accepts the filler: the queue has room again, so the next SYN a
 * client retransmits (about 1 s after its first) gets through. A slow
 * address rather than a dead one. */
HARNESS_FN void hole_drain(hole_t *h) {
  h->accepted = accept(h->lfd, NULL, NULL);
  ASSERT_GE(h->accepted, 0);
}

HARNESS_FN void hole_drain_cb(void *arg) {
  hole_drain(arg);
}

HARNESS_FN void hole_close(hole_t *h) {
  if (h->accepted >= 0)
    close(h->accepted);
  close(h->filler);
  close(h->lfd);
}

/* How many TCP sockets of ours are in /proc/net/tcp state `st` towards
 * ip:port (2: SYN_SENT). */
HARNESS_FN int tcp_count(const char *ip, int port, unsigned st) {
  FILE *f = fopen("/proc/net/tcp", "r");
  struct in_addr want;
  char line[512];
  int n = 0;

  ASSERT_NOT_NULL(f);
  ASSERT_EQ(1, inet_pton(AF_INET, ip, &want));
  while (fgets(line, sizeof(line), f) != NULL) {
    unsigned la, lp, ra, rp, s;
    if (sscanf(line, " %*d: %x:%x %x:%x %x", &la, &lp, &ra, &rp, &s) == 5 &&
        ra == want.s_addr && (int)rp == port && s == st)
      n++;
  }
  fclose(f);
  return n;
}
#define TCP_SYN_SENT_STATE 2u

#endif /* CNET_TEST_CONNECT_HARNESS_H */
