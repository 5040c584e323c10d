/* helper-netns-echo: the cnet client of test/test-netns.sh (issue 5, faults
 * on a real network path). It runs in one network namespace; the echo
 * server (examples/echo-server --bench) runs in the other, across a veth
 * pair with loss, delay and reordering applied by the test.
 *
 *   helper-netns-echo echo HOST PORT COUNT CONNS SEED [DEADLINE_MS]
 *       COUNT echo exchanges spread over CONNS connections to HOST:PORT
 *       (each connection does one exchange at a time: write a message,
 *       read until exactly as many bytes came back, compare every byte,
 *       then the next). Exchange i has a size and content that depend on
 *       SEED and i only (splitmix64), 1 B .. 64 KiB; exchange 0 is 1 B,
 *       exchange 1 is 64 KiB. When no exchange is left a connection ends,
 *       and the server's FIN must follow with no byte more. Prints
 *         exchanges N bytes B elapsed_ms E conns C seed S exchange_ms min A
 *         max Z
 *       (B: bytes sent, each of them also received; A and Z the quickest
 *       and slowest exchange, write to last byte back) and exits 0 when every
 *       exchange came back byte-exact. Anything else -- an error, a wrong
 *       byte, too many bytes, the DEADLINE_MS (45000) passing -- is one
 *       line on stderr (with the progress so far) and exit 1.
 *
 *   helper-netns-echo hole HOST PORT connect_timeout|timeout MS
 *       A connect to HOST:PORT that nobody answers (the test drops the
 *       SYNs). connect_timeout: cnet's connect_timeout option must end it
 *       with 'error' ETIMEDOUT and 'close'. timeout: Node's way,
 *       socket.setTimeout(MS) (the connect option timeout) -> 'timeout' ->
 *       destroy(), then 'close' with no 'error' and no 'connect'. Prints
 *         hole MODE ended_by_timeout elapsed_ms E timeout_ms MS [code C]
 *       and exits 0 when it ended that way, in MS .. MS + 1000 ms; else a
 *       line on stderr and exit 1.
 *
 * Both modes free everything and close the loop (uv_loop_close must
 * succeed), so valgrind sees no leak.
 */
#ifndef _POSIX_C_SOURCE
#define _POSIX_C_SOURCE 200809L
#endif

#include "cnet.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAX_MSG 65536
#define MAX_CONNS 64
#define HOLE_SLACK_MS 1000

static const char *mode = "?";

#define FAIL(...)                                                              \
  do {                                                                         \
    fprintf(stderr, "helper-netns-echo %s: ", mode);                           \
    fprintf(stderr, __VA_ARGS__);                                              \
    fputc('\n', stderr);                                                       \
    fflush(stderr);                                                            \
    exit(1);                                                                   \
  } while (0)

static uint64_t now_ms(void) {
  return uv_hrtime() / 1000000u;
}

/* ---- echo -----------------------------------------------------------------
 */

static uint64_t splitmix64(uint64_t *x) {
  uint64_t z = (*x += 0x9e3779b97f4a7c15u);

  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9u;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebu;
  return z ^ (z >> 31);
}

/* Exchange i's message into buf; its length. */
static size_t make_message(uint64_t seed, unsigned i, unsigned char *buf) {
  uint64_t x = seed ^ ((uint64_t)i * 0xd1b54a32d192ed03u);
  size_t len, k;

  len = i == 0 ? 1 : i == 1 ? MAX_MSG : 1 + splitmix64(&x) % MAX_MSG;
  for (k = 0; k < len; k += 8) {
    uint64_t r = splitmix64(&x);
    size_t n = len - k < 8 ? len - k : 8;
    memcpy(buf + k, &r, n);
  }
  return len;
}

typedef struct conn_s {
  cnet_socket_t *s;
  int id;
  bool connected, ended_by_peer, closed;
  int exchange;  /* the one in flight, -1 when none */
  size_t len;    /* its size */
  size_t got;    /* bytes of it back so far */
  uint64_t t0;   /* when it was written */
  unsigned done; /* exchanges completed on this connection */
  unsigned char msg[MAX_MSG];
} conn_t;

static struct {
  const char *host;
  int port;
  unsigned count, nconns;
  uint64_t seed;
  unsigned next;      /* the next exchange to start */
  unsigned completed; /* exchanges that came back whole */
  uint64_t bytes;     /* bytes of completed exchanges */
  unsigned closed;
  uint64_t start;
  uint64_t min_ms, max_ms; /* the quickest and slowest exchange */
  uv_timer_t deadline;
  conn_t *conns;
} E;

static void progress(char *buf, size_t size) {
  snprintf(buf, size,
           "%u of %u exchanges done, %" PRIu64 " bytes, %u of %u "
           "connections closed, %" PRIu64 " ms",
           E.completed, E.count, E.bytes, E.closed, E.nconns,
           now_ms() - E.start);
}

static void next_exchange(conn_t *c) {
  if (E.next >= E.count) {
    c->exchange = -1;
    cnet_socket_end(c->s, NULL, 0, NULL, NULL);
    return;
  }
  c->exchange = (int)E.next++;
  c->len = make_message(E.seed, (unsigned)c->exchange, c->msg);
  c->got = 0;
  c->t0 = now_ms();
  if (cnet_socket_write(c->s, c->msg, c->len, NULL, NULL) < 0)
    FAIL("conn %d: write: %s", c->id, cnet_last_error()->message);
}

static void on_echo_event(cnet_socket_t *s, const cnet_event_t *ev, void *ctx) {
  conn_t *c = ctx;
  char p[256];

  switch (ev->type) {
  case CNET_EV_CONNECT:
    c->connected = true;
    next_exchange(c);
    break;
  case CNET_EV_DATA: {
    const unsigned char *d = (const unsigned char *)ev->data.base;
    size_t n = ev->data.len;

    if (c->exchange < 0 || c->got + n > c->len) {
      progress(p, sizeof(p));
      FAIL("conn %d: %zu bytes more than sent (exchange %d, %zu of %zu "
           "back); %s",
           c->id, n, c->exchange, c->got, c->len, p);
    }
    if (memcmp(c->msg + c->got, d, n) != 0) {
      size_t k = 0;

      while (c->msg[c->got + k] == d[k])
        k++;
      progress(p, sizeof(p));
      FAIL("conn %d: exchange %d (%zu bytes): byte %zu is 0x%02x, sent "
           "0x%02x; %s",
           c->id, c->exchange, c->len, c->got + k, d[k], c->msg[c->got + k], p);
    }
    c->got += n;
    if (c->got == c->len) {
      uint64_t took = now_ms() - c->t0;

      if (E.completed == 0 || took < E.min_ms)
        E.min_ms = took;
      if (took > E.max_ms)
        E.max_ms = took;
      E.completed++;
      E.bytes += c->len;
      c->done++;
      next_exchange(c);
    }
    break;
  }
  case CNET_EV_END:
    c->ended_by_peer = true;
    if (c->exchange >= 0) {
      progress(p, sizeof(p));
      FAIL("conn %d: the server ended during exchange %d (%zu of %zu "
           "back); %s",
           c->id, c->exchange, c->got, c->len, p);
    }
    break;
  case CNET_EV_ERROR:
    progress(p, sizeof(p));
    FAIL("conn %d: %s (%s); %s", c->id, ev->error->message, ev->error->code, p);
  case CNET_EV_CLOSE:
    c->closed = true;
    if (!c->ended_by_peer) {
      progress(p, sizeof(p));
      FAIL("conn %d: closed without the server's FIN; %s", c->id, p);
    }
    if (++E.closed == E.nconns)
      uv_timer_stop(&E.deadline);
    break;
  default:
    break;
  }
  (void)s;
}

static void on_deadline(uv_timer_t *t) {
  char p[256];

  (void)t;
  progress(p, sizeof(p));
  FAIL("deadline passed: %s", p);
}

static int run_echo(int argc, char **argv) {
  static const cnet_event_type_t types[] = {CNET_EV_DATA, CNET_EV_END,
                                            CNET_EV_ERROR, CNET_EV_CLOSE};
  uv_loop_t *loop = uv_default_loop();
  uint64_t deadline_ms = 45000, elapsed;
  unsigned i, k;

  if (argc < 7)
    FAIL("usage: echo HOST PORT COUNT CONNS SEED [DEADLINE_MS]");
  E.host = argv[2];
  E.port = atoi(argv[3]);
  E.count = (unsigned)strtoul(argv[4], NULL, 10);
  E.nconns = (unsigned)strtoul(argv[5], NULL, 10);
  E.seed = strtoull(argv[6], NULL, 10);
  if (argc > 7)
    deadline_ms = strtoull(argv[7], NULL, 10);
  if (E.nconns == 0 || E.nconns > MAX_CONNS || E.count == 0)
    FAIL("CONNS must be 1..%d and COUNT > 0", MAX_CONNS);
  if ((E.conns = calloc(E.nconns, sizeof(*E.conns))) == NULL)
    FAIL("out of memory");
  uv_timer_init(loop, &E.deadline);
  uv_timer_start(&E.deadline, on_deadline, deadline_ms, 0);
  E.start = now_ms();
  for (i = 0; i < E.nconns; i++) {
    conn_t *c = &E.conns[i];
    cnet_connect_options_t o = {
        .host = E.host, .port = E.port, .no_delay = true};

    c->id = (int)i;
    c->exchange = -1;
    if ((c->s = cnet_socket_new(loop, NULL)) == NULL)
      FAIL("cnet_socket_new: %s", cnet_last_error()->message);
    for (k = 0; k < sizeof(types) / sizeof(types[0]); k++)
      cnet_socket_on(c->s, types[k], on_echo_event, c);
    if (cnet_socket_connect(c->s, &o, on_echo_event, c) != 0)
      FAIL("connect: %s", cnet_last_error()->message);
  }
  uv_run(loop, UV_RUN_DEFAULT);
  elapsed = now_ms() - E.start;
  if (E.completed != E.count || E.closed != E.nconns) {
    char p[256];

    progress(p, sizeof(p));
    FAIL("the loop ended early: %s", p);
  }
  printf("exchanges %u bytes %" PRIu64 " elapsed_ms %" PRIu64
         " conns %u seed %" PRIu64 " exchange_ms min %" PRIu64 " max %" PRIu64
         "\n",
         E.completed, E.bytes, elapsed, E.nconns, E.seed, E.min_ms, E.max_ms);
  for (i = 0; i < E.nconns; i++)
    cnet_socket_free(E.conns[i].s);
  uv_close((uv_handle_t *)&E.deadline, NULL);
  uv_run(loop, UV_RUN_DEFAULT);
  free(E.conns);
  if (uv_loop_close(loop) != 0)
    FAIL("uv_loop_close: handles left open");
  return 0;
}

/* ---- hole -----------------------------------------------------------------
 */

static struct {
  bool idle; /* the 'timeout' way, else connect_timeout */
  uint64_t start, end;
  bool connected, timed_out, closed, had_error;
  cnet_error_t error;
} H;

static void on_hole_event(cnet_socket_t *s, const cnet_event_t *ev, void *ctx) {
  (void)ctx;
  switch (ev->type) {
  case CNET_EV_CONNECT:
    H.connected = true;
    break;
  case CNET_EV_TIMEOUT: /* Node: socket.on('timeout', () => s.destroy()) */
    H.timed_out = true;
    cnet_socket_destroy(s, NULL);
    break;
  case CNET_EV_ERROR:
    H.error = *ev->error;
    H.had_error = true;
    break;
  case CNET_EV_CLOSE:
    H.closed = true;
    H.end = now_ms();
    break;
  default:
    break;
  }
}

static int run_hole(int argc, char **argv) {
  static const cnet_event_type_t types[] = {CNET_EV_CONNECT, CNET_EV_TIMEOUT,
                                            CNET_EV_ERROR, CNET_EV_CLOSE};
  uv_loop_t *loop = uv_default_loop();
  cnet_connect_options_t o = {0};
  cnet_socket_t *s;
  uint64_t ms, elapsed;
  unsigned k;

  if (argc < 6 || (strcmp(argv[4], "connect_timeout") != 0 &&
                   strcmp(argv[4], "timeout") != 0))
    FAIL("usage: hole HOST PORT connect_timeout|timeout MS");
  H.idle = strcmp(argv[4], "timeout") == 0;
  ms = strtoull(argv[5], NULL, 10);
  o.host = argv[2];
  o.port = atoi(argv[3]);
  if (H.idle)
    o.timeout = ms;
  else
    o.connect_timeout = ms;
  if ((s = cnet_socket_new(loop, NULL)) == NULL)
    FAIL("cnet_socket_new: %s", cnet_last_error()->message);
  for (k = 0; k < sizeof(types) / sizeof(types[0]); k++)
    cnet_socket_on(s, types[k], on_hole_event, NULL);
  uv_update_time(loop); /* the timers count from the loop's now */
  H.start = now_ms();
  if (cnet_socket_connect(s, &o, NULL, NULL) != 0)
    FAIL("connect: %s", cnet_last_error()->message);
  uv_run(loop, UV_RUN_DEFAULT);
  elapsed = H.end - H.start;
  cnet_socket_free(s);
  uv_run(loop, UV_RUN_DEFAULT);
  if (uv_loop_close(loop) != 0)
    FAIL("uv_loop_close: handles left open");

  if (!H.closed)
    FAIL("no 'close' (the loop ended first)");
  if (H.connected)
    FAIL("connected to %s:%d, which should be a black hole", o.host, o.port);
  if (H.idle) {
    if (!H.timed_out)
      FAIL("ended after %" PRIu64 " ms without 'timeout'%s%s", elapsed,
           H.had_error ? ": " : "", H.had_error ? H.error.message : "");
    if (H.had_error)
      FAIL("'error' %s after destroy() with no error", H.error.message);
  } else {
    if (!H.had_error || strcmp(H.error.code, "ETIMEDOUT") != 0)
      FAIL("ended after %" PRIu64 " ms with %s, not ETIMEDOUT", elapsed,
           H.had_error ? H.error.message : "no error");
  }
  printf("hole %s ended_by_timeout elapsed_ms %" PRIu64 " timeout_ms %" PRIu64
         "%s%s\n",
         argv[4], elapsed, ms, H.had_error ? " message " : "",
         H.had_error ? H.error.message : "");
  fflush(stdout);
  if (elapsed + 1 < ms || elapsed > ms + HOLE_SLACK_MS)
    FAIL("ended after %" PRIu64 " ms; expected %" PRIu64 " .. %" PRIu64,
         elapsed, ms, ms + HOLE_SLACK_MS);
  return 0;
}

int main(int argc, char **argv) {
  setvbuf(stdout, NULL, _IOLBF, 0);
  if (argc > 1)
    mode = argv[1];
  if (argc > 1 && strcmp(argv[1], "echo") == 0)
    return run_echo(argc, argv);
  if (argc > 1 && strcmp(argv[1], "hole") == 0)
    return run_hole(argc, argv);
  FAIL("usage: helper-netns-echo echo|hole ...");
}
