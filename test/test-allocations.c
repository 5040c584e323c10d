/* Hot path discipline: on a warm loop cnet allocates nothing per read, per
 * write that completes in the call, or per event (include/cnet.h,
 * cnet_replace_allocator). Every allocation of cnet and of libuv goes
 * through counting wrappers around the C library's functions; each case
 * warms up (WARMUP round trips), snapshots the counters, runs the measured
 * round trips (100 000; 5 000 under valgrind), snapshots again, and insists
 * that the window saw exactly 0 allocation calls (malloc, calloc and realloc
 * calls all count). When it did not, the case prints how many per round
 * trip, every (function, size) seen in the window with its count, and a
 * backtrace of the first of each (`addr2line -f -i -p -e test-allocations
 * 0x...`, with the +0x... offsets, names the lines).
 *
 * The wrappers are installed by a constructor, before main(): the harness
 * provides main(), and cnet_replace_allocator must come before any cnet or
 * libuv call. The harness calls neither before a case starts, so each case
 * (in its forked child) starts from a process in which nothing has been
 * allocated through them; with HARNESS_NO_FORK=1 the cases before it have
 * given everything back (each case checks that it does).
 * Only what cnet and libuv allocate is counted: the test's own malloc calls
 * (and the harness's, such as loop_new's uv_loop_t) go straight to the C
 * library.
 *
 * Every case also checks that when all objects are freed and the loop has
 * run to completion and been closed, the live bytes and blocks are back
 * where they were before the case's first cnet or libuv call: neither cnet
 * nor libuv 1.44 keeps process-wide memory from this allocator (cnet's loop
 * registry is a list of per-loop states, each freed with the last object on
 * its loop; libuv's process-wide state -- the signal lock pipe, the thread
 * pool's default threads array -- is static or descriptors, and the loop's
 * own memory -- calloc(64) of its internal fields and the realloc'd
 * watcher array -- is freed by uv_loop_close). al10 shows the libuv part on
 * a bare loop.
 *
 * Cases (al01-al10):
 *   al01 TCP ping-pong, 64-byte messages, server echoes with pipe(c, c)
 *   al02 the same over a Unix socket
 *   al03 50 connections at once, ping-pong each
 *   al04 idle timeouts (60 s, never firing) on both sides: no allocation,
 *        and no timer is re-armed (every timer's due time is unchanged)
 *   al05 the client decodes 'utf8' (setEncoding)
 *   al06 the client decodes 'hex' (setEncoding)
 *   al07 the server echoes with on('data', d => c.write(d)), not pipe
 *   al08 pipelined: 16 messages in flight
 *   al09 positive control: creating a socket and a queued 8 MiB write to a
 *        paused reader are counted
 *   al10 a bare libuv loop allocates through the wrappers and frees it all
 */
#include "harness.h"

#include <execinfo.h>
#include <malloc.h>
#include <sys/stat.h>

/* ---- counting allocator ------------------------------------------------- */

enum { K_MALLOC, K_CALLOC, K_REALLOC };
static const char *const kind_name[] = {"malloc", "calloc", "realloc"};

#define HIST_MAX 16
#define FRAMES_MAX 24

typedef struct {
  int kind;
  size_t size;
  uint64_t count;
  int nframes;
  void *frames[FRAMES_MAX]; /* of the first one */
} hist_t;

static struct {
  uint64_t calls[3]; /* malloc, calloc, realloc */
  uint64_t frees;    /* free() of a non-NULL pointer */
  int64_t live_bytes; /* malloc_usable_size of every live block */
  int64_t live_blocks;
  /* The window: every allocation while recording is tallied here. */
  bool recording;
  hist_t hist[HIST_MAX];
  int nhist;
  uint64_t hist_other; /* allocations past HIST_MAX distinct entries */
} AC;

/* libuv's thread pool could allocate from its threads: relaxed atomics. */
#define ADD(field, n) __atomic_add_fetch(&(field), (n), __ATOMIC_RELAXED)
#define GET(field) __atomic_load_n(&(field), __ATOMIC_RELAXED)

static void note_alloc(int kind, size_t size) {
  ADD(AC.calls[kind], 1);
  if (!GET(AC.recording))
    return;
  for (int i = 0; i < AC.nhist; i++) {
    if (AC.hist[i].kind == kind && AC.hist[i].size == size) {
      AC.hist[i].count++;
      return;
    }
  }
  if (AC.nhist == HIST_MAX) {
    AC.hist_other++;
    return;
  }
  hist_t *h = &AC.hist[AC.nhist++];
  h->kind = kind;
  h->size = size;
  h->count = 1;
  h->nframes = backtrace(h->frames, FRAMES_MAX);
}

static void note_live(void *p, int sign) {
  if (p == NULL)
    return;
  ADD(AC.live_bytes, sign * (int64_t)malloc_usable_size(p));
  ADD(AC.live_blocks, sign);
}

static void *count_malloc(size_t size) {
  void *p = malloc(size);

  note_alloc(K_MALLOC, size);
  note_live(p, 1);
  return p;
}

static void *count_calloc(size_t n, size_t size) {
  void *p = calloc(n, size);

  note_alloc(K_CALLOC, n * size);
  note_live(p, 1);
  return p;
}

static void count_free(void *p) {
  if (p == NULL)
    return;
  ADD(AC.frees, 1);
  note_live(p, -1);
  free(p);
}

static void *count_realloc(void *p, size_t size) {
  size_t old = p != NULL ? malloc_usable_size(p) : 0;
  void *q;

  if (p != NULL && size == 0) { /* C's realloc(p, 0): frees p */
    note_alloc(K_REALLOC, 0);
    count_free(p);
    return NULL;
  }
  q = realloc(p, size);
  note_alloc(K_REALLOC, size);
  if (q != NULL) {
    ADD(AC.live_bytes, (int64_t)malloc_usable_size(q) - (int64_t)old);
    if (p == NULL)
      ADD(AC.live_blocks, 1);
  }
  return q;
}

/* Before main(), so before the harness or any case touches cnet or libuv. */
__attribute__((constructor)) static void install_counting_allocator(void) {
  void *frames[4];

  /* backtrace() loads libgcc_s on first use: do it now, not in a window. */
  (void)backtrace(frames, 4);
  if (cnet_replace_allocator(count_malloc, count_realloc, count_calloc,
                             count_free) != 0) {
    fprintf(stderr, "cnet_replace_allocator: %s\n",
            cnet_last_error()->message);
    abort();
  }
}

typedef struct {
  uint64_t calls[3];
  uint64_t frees;
  int64_t live_bytes, live_blocks;
} snap_t;

static snap_t snap(void) {
  snap_t s;

  for (int k = 0; k < 3; k++)
    s.calls[k] = GET(AC.calls[k]);
  s.frees = GET(AC.frees);
  s.live_bytes = GET(AC.live_bytes);
  s.live_blocks = GET(AC.live_blocks);
  return s;
}

static uint64_t allocs(const snap_t *s) {
  return s->calls[K_MALLOC] + s->calls[K_CALLOC] + s->calls[K_REALLOC];
}

/* Start a window: snapshot and tally every allocation until window_end. */
static snap_t window_begin(void) {
  AC.nhist = 0;
  AC.hist_other = 0;
  snap_t s = snap();
  __atomic_store_n(&AC.recording, true, __ATOMIC_RELAXED);
  return s;
}

static snap_t window_end(void) {
  snap_t s = snap();

  __atomic_store_n(&AC.recording, false, __ATOMIC_RELAXED);
  return s;
}

/* One line for the window on stdout; with allocations, what they were on
 * stderr and, where none was expected (ops != 0: a measured window), where
 * each came from. Returns the number of allocation calls. */
static uint64_t window_report(const char *what, const snap_t *a,
                              const snap_t *b, uint64_t ops) {
  uint64_t n = allocs(b) - allocs(a);

  printf("# [%s] %s: %llu allocation calls (%llu malloc, %llu calloc, "
         "%llu realloc), %llu frees, live %+lld bytes\n",
         harness_current, what, (unsigned long long)n,
         (unsigned long long)(b->calls[K_MALLOC] - a->calls[K_MALLOC]),
         (unsigned long long)(b->calls[K_CALLOC] - a->calls[K_CALLOC]),
         (unsigned long long)(b->calls[K_REALLOC] - a->calls[K_REALLOC]),
         (unsigned long long)(b->frees - a->frees),
         (long long)(b->live_bytes - a->live_bytes));
  if (n == 0)
    return 0;
  fflush(stdout);
  if (ops != 0)
    fprintf(stderr, "[%s] %s: %.4f allocation calls per round trip\n",
            harness_current, what, (double)n / (double)ops);
  fprintf(ops != 0 ? stderr : stdout,
          "# [%s] allocations in the window, by call and size:\n",
          harness_current);
  for (int i = 0; i < AC.nhist; i++)
    fprintf(ops != 0 ? stderr : stdout, "#   %-7s %8zu bytes  x %llu\n",
            kind_name[AC.hist[i].kind], AC.hist[i].size,
            (unsigned long long)AC.hist[i].count);
  if (AC.hist_other != 0)
    fprintf(ops != 0 ? stderr : stdout,
            "#   (and %llu more of other sizes)\n",
            (unsigned long long)AC.hist_other);
  for (int i = 0; ops != 0 && i < AC.nhist; i++) {
    fprintf(stderr, "[%s] backtrace of the first %s(%zu):\n", harness_current,
            kind_name[AC.hist[i].kind], AC.hist[i].size);
    fflush(stderr);
    backtrace_symbols_fd(AC.hist[i].frames, AC.hist[i].nframes, 2);
  }
  return n;
}

/* ---- common -------------------------------------------------------------- */

static void fail_unhandled(const char *what, const cnet_error_t *err,
                           void *ctx) {
  (void)ctx;
  FAIL("unhandled %s 'error': %s (%s)", what, err->message,
       err->code ? err->code : "?");
}

static void fail_on_timeout(cnet_socket_t *s, const cnet_event_t *ev,
                            void *ctx) {
  (void)s;
  (void)ev;
  (void)ctx;
  FAIL("an idle timeout of 60 s fired during the test");
}

static unsigned rounds_measured(void) {
  return getenv("CNET_UNDER_VALGRIND") != NULL ? 5000 : 100000;
}

#define WARMUP 1000u
#define MSG_LEN 64
#define MAX_CONNS 64

/* Byte j of message seq: its number in hex, then letters that shift with
 * it (printable ASCII, so its UTF-8 text is the bytes themselves). */
static unsigned char msg_byte(uint64_t seq, size_t j) {
  static const char alnum[] =
      "0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ";

  if (j < 16)
    return (unsigned char)alnum[(seq >> (4 * (15 - j))) & 15];
  return (unsigned char)alnum[(seq + j) % 62];
}

/* ---- the echo bench ------------------------------------------------------ */

typedef enum { ECHO_PIPE, ECHO_WRITE } echo_mode_t;

typedef struct {
  bool unix_socket;
  int nconn;
  int depth;            /* messages in flight per connection */
  echo_mode_t mode;     /* how the server echoes */
  int64_t timeout_ms;   /* setTimeout on both sides; 0: none */
  const char *encoding; /* setEncoding on the client; NULL: bytes */
} bench_cfg_t;

typedef struct {
  cnet_socket_t *s;
  uint64_t seq_tx; /* messages written */
  uint64_t seq_rx; /* messages received whole */
  size_t off;      /* bytes of message seq_rx received */
  int nibble;      /* hex: the high nibble waiting for its pair, or -1 */
  bool closed;
} conn_t;

/* Active timers and their due times (uv_now + due_in: the absolute time,
 * which only a re-arm changes). */
#define TIMERS_MAX 256
typedef struct {
  uv_timer_t *t[TIMERS_MAX];
  uint64_t due[TIMERS_MAX];
  int n;
  int long_ones; /* due in more than 30 s: the sockets' idle timers */
} timers_t;

static struct {
  bench_cfg_t cfg;
  uv_loop_t *loop;
  cnet_server_t *srv;
  conn_t conns[MAX_CONNS];
  int connected;
  int accepted, server_closes, client_closes;
  int phase; /* 0 connecting, 1 warm-up, 2 measured, 3 ending */
  uint64_t issued, completed, target, measured;
  uint64_t queued_writes; /* client writes that returned 0 in the window */
  uint64_t server_queued; /* ECHO_WRITE server writes that returned 0 */
  snap_t a, b;
  timers_t ta, tb;
  char dir[64], path[128];
} B;

static void collect_timer(uv_handle_t *h, void *arg) {
  timers_t *T = arg;
  uv_timer_t *t = (uv_timer_t *)h;

  if (uv_handle_get_type(h) != UV_TIMER || !uv_is_active(h) ||
      uv_is_closing(h))
    return;
  ASSERT(T->n < TIMERS_MAX);
  T->t[T->n] = t;
  T->due[T->n] = uv_now(h->loop) + uv_timer_get_due_in(t);
  if (uv_timer_get_due_in(t) > 30000)
    T->long_ones++;
  T->n++;
}

static timers_t timers_now(void) {
  timers_t T;

  memset(&T, 0, sizeof(T));
  uv_walk(B.loop, collect_timer, &T);
  return T;
}

static void write_msg(conn_t *c) {
  unsigned char buf[MSG_LEN];
  int r;

  for (size_t j = 0; j < MSG_LEN; j++)
    buf[j] = msg_byte(c->seq_tx, j);
  c->seq_tx++;
  B.issued++;
  r = cnet_socket_write(c->s, buf, MSG_LEN, NULL, NULL);
  ASSERT_GE(r, 0);
  if (r == 0 && B.phase == 2)
    B.queued_writes++;
}

/* Fill every connection up to depth messages in flight, within target. */
static void kick(void) {
  for (int i = 0; i < B.cfg.nconn; i++) {
    conn_t *c = &B.conns[i];
    while (c->seq_tx - c->seq_rx < (uint64_t)B.cfg.depth &&
           B.issued < B.target)
      write_msg(c);
  }
}

static void end_all(void) {
  for (int i = 0; i < B.cfg.nconn; i++)
    ASSERT_EQ(0, cnet_socket_end(B.conns[i].s, NULL, 0, NULL, NULL));
  cnet_server_close(B.srv, NULL, NULL);
}

/* Message seq_rx of c is whole. */
static void completed(conn_t *c) {
  c->off = 0;
  c->seq_rx++;
  B.completed++;
  if (B.completed < B.target) {
    if (B.issued < B.target)
      write_msg(c); /* keep depth in flight on this connection */
    return;
  }
  /* Everything issued has come back: nothing is in flight. */
  ASSERT_EQ(B.issued, B.completed);
  if (B.phase == 1) {
    if (B.cfg.timeout_ms != 0)
      B.ta = timers_now();
    B.phase = 2;
    B.target = B.completed + B.measured;
    B.a = window_begin();
    kick();
  } else {
    B.b = window_end();
    if (B.cfg.timeout_ms != 0)
      B.tb = timers_now();
    B.phase = 3;
    end_all();
  }
}

static void rx_byte(conn_t *c, unsigned char byte) {
  if (c->seq_rx == c->seq_tx)
    FAIL("connection %d: byte 0x%02x beyond what was written (%llu)",
         (int)(c - B.conns), byte, (unsigned long long)c->seq_tx);
  if (byte != msg_byte(c->seq_rx, c->off))
    FAIL("connection %d: message %llu byte %zu is 0x%02x, not 0x%02x",
         (int)(c - B.conns), (unsigned long long)c->seq_rx, c->off, byte,
         msg_byte(c->seq_rx, c->off));
  if (++c->off == MSG_LEN)
    completed(c);
}

static int hex_value(char ch) {
  if (ch >= '0' && ch <= '9')
    return ch - '0';
  if (ch >= 'a' && ch <= 'f')
    return ch - 'a' + 10;
  FAIL("'%c' in hex text", ch);
}

static void client_event(cnet_socket_t *s, const cnet_event_t *ev,
                         void *ctx) {
  conn_t *c = ctx;
  const char *p = ev->data.base;
  size_t n = ev->data.len;

  (void)s;
  switch (ev->type) {
  case CNET_EV_DATA:
    ASSERT_GE(B.phase, 1); /* writes start once all are connected */
    if (B.cfg.encoding != NULL)
      ASSERT_EQ(0, p[n]); /* text comes NUL-terminated */
    if (B.cfg.encoding != NULL && strcmp(B.cfg.encoding, "hex") == 0) {
      for (size_t i = 0; i < n; i++) {
        int v = hex_value(p[i]);
        if (c->nibble < 0) {
          c->nibble = v;
        } else {
          int byte = c->nibble << 4 | v;
          c->nibble = -1;
          rx_byte(c, (unsigned char)byte);
        }
      }
    } else {
      for (size_t i = 0; i < n; i++)
        rx_byte(c, (unsigned char)p[i]);
    }
    break;
  case CNET_EV_CONNECT:
    if (++B.connected == B.cfg.nconn) {
      B.phase = 1;
      B.target = WARMUP;
      kick();
    }
    break;
  case CNET_EV_CLOSE:
    ASSERT(!ev->close.had_error);
    ASSERT(!c->closed);
    c->closed = true;
    B.client_closes++;
    break;
  default:
    break;
  }
}

static void server_echo(cnet_socket_t *s, const cnet_event_t *ev, void *ctx) {
  (void)ctx;
  if (cnet_socket_write(s, ev->data.base, ev->data.len, NULL, NULL) == 0 &&
      B.phase == 2)
    B.server_queued++;
}

static void server_sock_event(cnet_socket_t *s, const cnet_event_t *ev,
                              void *ctx) {
  (void)s;
  (void)ctx;
  if (ev->type == CNET_EV_CLOSE) {
    ASSERT(!ev->close.had_error);
    B.server_closes++;
  }
}

static void on_connection(cnet_server_t *srv, const cnet_event_t *ev,
                          void *ctx) {
  cnet_socket_t *c = ev->connection;

  (void)srv;
  (void)ctx;
  B.accepted++;
  ASSERT_EQ(0, cnet_socket_on(c, CNET_EV_CLOSE, server_sock_event, NULL));
  if (B.cfg.timeout_ms != 0)
    ASSERT_EQ(0, cnet_socket_set_timeout(c, B.cfg.timeout_ms,
                                         fail_on_timeout, NULL));
  if (B.cfg.mode == ECHO_PIPE)
    ASSERT_EQ(0, cnet_socket_pipe(c, c, NULL)); /* c.pipe(c) */
  else
    ASSERT_EQ(0, cnet_socket_on(c, CNET_EV_DATA, server_echo, NULL));
}

/* Runs the whole bench and checks the window; live bytes and blocks must
 * be back at the start afterwards. */
static void bench(const bench_cfg_t *cfg) {
  static const cnet_event_type_t types[] = {CNET_EV_CONNECT, CNET_EV_DATA,
                                            CNET_EV_CLOSE};
  snap_t start = snap(), end;
  uint64_t n;

  memset(&B, 0, sizeof(B));
  B.cfg = *cfg;
  B.measured = rounds_measured();
  ASSERT(cfg->nconn <= MAX_CONNS);
  cnet_set_unhandled_error_handler(fail_unhandled, NULL);
  B.loop = loop_new();
  B.srv = cnet_create_server(B.loop, NULL, on_connection, NULL);
  ASSERT_NOT_NULL(B.srv);
  if (cfg->unix_socket) {
    snprintf(B.dir, sizeof(B.dir), "/tmp/cnet-alloc-XXXXXX");
    ASSERT_NOT_NULL(mkdtemp(B.dir));
    snprintf(B.path, sizeof(B.path), "%s/echo.sock", B.dir);
    ASSERT_EQ(0, cnet_server_listen_path(B.srv, B.path, 0, NULL, NULL));
  } else {
    ASSERT_EQ(0,
              cnet_server_listen_port(B.srv, 0, "127.0.0.1", 0, NULL, NULL));
  }
  for (int i = 0; i < cfg->nconn; i++) {
    conn_t *c = &B.conns[i];
    cnet_connect_options_t o = {.host = "127.0.0.1"};

    if (cfg->unix_socket)
      o.path = B.path;
    else
      o.port = server_port(B.srv);
    c->nibble = -1;
    c->s = cnet_create_connection(B.loop, &o, NULL, NULL);
    ASSERT_NOT_NULL(c->s);
    for (size_t t = 0; t < ARRAY_LEN(types); t++)
      ASSERT_EQ(0, cnet_socket_on(c->s, types[t], client_event, c));
    if (cfg->encoding != NULL)
      ASSERT_EQ(0, cnet_socket_set_encoding(c->s, cfg->encoding));
    if (cfg->timeout_ms != 0)
      ASSERT_EQ(0, cnet_socket_set_timeout(c->s, cfg->timeout_ms,
                                           fail_on_timeout, NULL));
  }
  run_bounded(B.loop, 9000);
  ASSERT_EQ(3, B.phase);
  ASSERT_EQ(WARMUP + B.measured, B.completed);
  ASSERT_EQ(cfg->nconn, B.accepted);
  ASSERT_EQ(cfg->nconn, B.client_closes);
  ASSERT_EQ(cfg->nconn, B.server_closes);
  cnet_server_free(B.srv);
  loop_finish(B.loop);
  if (cfg->unix_socket) {
    unlink(B.path); /* if the server left it */
    ASSERT_EQ(0, rmdir(B.dir));
  }

  if (B.queued_writes != 0 || B.server_queued != 0)
    printf("# [%s] writes that did not complete in the call: client %llu, "
           "server %llu\n",
           harness_current, (unsigned long long)B.queued_writes,
           (unsigned long long)B.server_queued);
  n = window_report("measured round trips", &B.a, &B.b, B.measured);
  ASSERT_EQ(0, n);
  if (cfg->timeout_ms != 0) {
    /* Two idle timers per connection, armed before the window; none may
     * move (a re-arm per read or write would change its due time). */
    ASSERT_EQ(2 * cfg->nconn, B.ta.long_ones);
    ASSERT_EQ(B.ta.n, B.tb.n);
    for (int i = 0; i < B.ta.n; i++) {
      ASSERT(B.ta.t[i] == B.tb.t[i]);
      if (B.ta.due[i] != B.tb.due[i])
        FAIL("timer %d re-armed in the window: due at %llu, then %llu", i,
             (unsigned long long)B.ta.due[i],
             (unsigned long long)B.tb.due[i]);
    }
  }

  end = snap();
  if (end.live_bytes != start.live_bytes ||
      end.live_blocks != start.live_blocks)
    FAIL("after the loop ended: %lld bytes in %lld blocks still live "
         "(before: %lld in %lld)",
         (long long)end.live_bytes, (long long)end.live_blocks,
         (long long)start.live_bytes, (long long)start.live_blocks);
}

/* ---- cases --------------------------------------------------------------- */

TEST_CASE(al01_tcp_ping_pong_allocates_nothing) {
  bench(&(bench_cfg_t){.nconn = 1, .depth = 1, .mode = ECHO_PIPE});
}

TEST_CASE(al02_unix_ping_pong_allocates_nothing) {
  bench(&(bench_cfg_t){
      .unix_socket = true, .nconn = 1, .depth = 1, .mode = ECHO_PIPE});
}

TEST_CASE(al03_fifty_connections_allocate_nothing) {
  bench(&(bench_cfg_t){.nconn = 50, .depth = 1, .mode = ECHO_PIPE});
}

TEST_CASE(al04_idle_timeouts_allocate_nothing_and_never_rearm) {
  bench(&(bench_cfg_t){
      .nconn = 1, .depth = 1, .mode = ECHO_PIPE, .timeout_ms = 60000});
}

TEST_CASE(al05_utf8_decoding_allocates_nothing) {
  bench(&(bench_cfg_t){
      .nconn = 1, .depth = 1, .mode = ECHO_PIPE, .encoding = "utf8"});
}

TEST_CASE(al06_hex_decoding_allocates_nothing) {
  bench(&(bench_cfg_t){
      .nconn = 1, .depth = 1, .mode = ECHO_PIPE, .encoding = "hex"});
}

TEST_CASE(al07_data_listener_echo_allocates_nothing) {
  bench(&(bench_cfg_t){.nconn = 1, .depth = 1, .mode = ECHO_WRITE});
}

TEST_CASE(al08_pipelined_sixteen_in_flight_allocates_nothing) {
  bench(&(bench_cfg_t){.nconn = 1, .depth = 16, .mode = ECHO_PIPE});
}

/* ---- al09: the positive control ------------------------------------------ */

#define BIG_LEN (8u << 20)

static struct {
  uv_loop_t *loop;
  cnet_server_t *srv;
  cnet_socket_t *client, *conn;
  unsigned char *big;
  uint64_t received;
  int drains, closes;
  int write_r;
  size_t queued;
  snap_t a, b;
  uint64_t write_allocs;
} P;

static void p_server_event(cnet_socket_t *s, const cnet_event_t *ev,
                           void *ctx) {
  (void)s;
  (void)ctx;
  if (ev->type == CNET_EV_DATA) {
    for (size_t i = 0; i < ev->data.len; i++)
      if ((unsigned char)ev->data.base[i] != P.big[P.received + i])
        FAIL("byte %llu differs", (unsigned long long)(P.received + i));
    P.received += ev->data.len;
  } else if (ev->type == CNET_EV_CLOSE) {
    P.closes++;
    P.conn = NULL;
  }
}

static void p_on_connection(cnet_server_t *srv, const cnet_event_t *ev,
                            void *ctx) {
  cnet_socket_t *c = ev->connection;

  (void)ctx;
  P.conn = c;
  cnet_socket_pause(c); /* and pause_on_connect: nothing is read yet */
  ASSERT_EQ(0, cnet_socket_on(c, CNET_EV_DATA, p_server_event, NULL));
  ASSERT_EQ(0, cnet_socket_on(c, CNET_EV_CLOSE, p_server_event, NULL));
  ASSERT(cnet_socket_is_paused(c));
  cnet_server_close(srv, NULL, NULL);
}

static void p_resume(void *arg) {
  (void)arg;
  if (P.conn == NULL) { /* not accepted yet */
    later(P.loop, 10, p_resume, NULL, true);
    return;
  }
  cnet_socket_resume(P.conn);
}

static void p_client_event(cnet_socket_t *s, const cnet_event_t *ev,
                           void *ctx) {
  (void)ctx;
  switch (ev->type) {
  case CNET_EV_CONNECT:
    /* The peer reads nothing: the kernel takes a few MiB at most, cnet
     * must copy and queue the rest -- allocations the counter must see. */
    P.a = window_begin();
    P.write_r = cnet_socket_write(s, P.big, BIG_LEN, NULL, NULL);
    P.b = window_end();
    P.queued = cnet_socket_writable_length(s);
    later(P.loop, 20, p_resume, NULL, true);
    break;
  case CNET_EV_DRAIN:
    P.drains++;
    ASSERT_EQ(0, cnet_socket_end(s, NULL, 0, NULL, NULL));
    break;
  case CNET_EV_CLOSE:
    P.closes++;
    break;
  default:
    break;
  }
}

TEST_CASE(al09_positive_control_counts_socket_creation_and_queued_write) {
  static const cnet_event_type_t types[] = {CNET_EV_CONNECT, CNET_EV_DRAIN,
                                            CNET_EV_CLOSE};
  cnet_server_options_t so = {.pause_on_connect = true};
  snap_t start = snap(), a, b, end;
  cnet_socket_t *x;
  uint64_t n;

  memset(&P, 0, sizeof(P));
  cnet_set_unhandled_error_handler(fail_unhandled, NULL);
  P.big = malloc(BIG_LEN); /* the test's own: not counted */
  ASSERT_NOT_NULL(P.big);
  for (size_t i = 0; i < BIG_LEN; i++)
    P.big[i] = (unsigned char)(i * 7 + (i >> 13));
  P.loop = loop_new();

  /* 1. Creating a socket allocates (the socket; the loop's cnet state). */
  a = window_begin();
  x = cnet_socket_new(P.loop, NULL);
  b = window_end();
  ASSERT_NOT_NULL(x);
  n = window_report("cnet_socket_new", &a, &b, 0);
  ASSERT_GT(n, 0);
  ASSERT_GT(b.live_bytes - a.live_bytes, 0);

  /* 2. A write the kernel cannot take whole: the rest is copied. */
  P.srv = cnet_create_server(P.loop, &so, p_on_connection, NULL);
  ASSERT_NOT_NULL(P.srv);
  ASSERT_EQ(0, cnet_server_listen_port(P.srv, 0, "127.0.0.1", 0, NULL, NULL));
  cnet_connect_options_t o = {.port = server_port(P.srv),
                              .host = "127.0.0.1"};
  P.client = cnet_create_connection(P.loop, &o, NULL, NULL);
  ASSERT_NOT_NULL(P.client);
  for (size_t t = 0; t < ARRAY_LEN(types); t++)
    ASSERT_EQ(0, cnet_socket_on(P.client, types[t], p_client_event, NULL));
  run_bounded(P.loop, 9000);
  printf("# [%s] 8 MiB write to a paused reader: returned %d, %zu bytes "
         "queued\n",
         harness_current, P.write_r, P.queued);
  ASSERT_EQ(0, P.write_r);   /* queued: wait for 'drain' */
  ASSERT_GT(P.queued, 0);
  n = window_report("queued write", &P.a, &P.b, 0);
  ASSERT_GT(n, 0);
  ASSERT_GE(P.b.live_bytes - P.a.live_bytes, (int64_t)P.queued);
  ASSERT_EQ(BIG_LEN, P.received);
  ASSERT_EQ(1, P.drains);
  ASSERT_EQ(2, P.closes);

  /* 3. Everything freed: objects, then the loop run to completion. */
  cnet_socket_free(x);
  cnet_server_free(P.srv);
  loop_finish(P.loop);
  free(P.big);
  end = snap();
  printf("# [%s] live before the first cnet call: %lld bytes in %lld "
         "blocks; after: %lld bytes in %lld blocks (%llu allocation calls, "
         "%llu frees in the case)\n",
         harness_current, (long long)start.live_bytes,
         (long long)start.live_blocks, (long long)end.live_bytes,
         (long long)end.live_blocks,
         (unsigned long long)(allocs(&end) - allocs(&start)),
         (unsigned long long)(end.frees - start.frees));
  ASSERT_EQ(start.live_bytes, end.live_bytes);
  ASSERT_EQ(start.live_blocks, end.live_blocks);
}

/* libuv alone: what a loop allocates through the wrappers, and that
 * uv_loop_close gives all of it back (so the cases above may insist on an
 * exact balance: libuv keeps nothing process-wide from this allocator). */
TEST_CASE(al10_libuv_loop_memory_all_freed_by_close) {
  snap_t start = snap(), mid, end;
  uv_loop_t loop;
  uv_tcp_t tcp;

  ASSERT_EQ(0, uv_loop_init(&loop));
  ASSERT_EQ(0, uv_tcp_init(&loop, &tcp));
  mid = snap();
  ASSERT_GT(allocs(&mid) - allocs(&start), 0); /* libuv does use them */
  uv_close((uv_handle_t *)&tcp, NULL);
  ASSERT_EQ(0, uv_run(&loop, UV_RUN_DEFAULT));
  ASSERT_EQ(0, uv_loop_close(&loop));
  end = snap();
  printf("# [%s] uv_loop_init + a handle: %llu allocation calls, %lld "
         "bytes live; after uv_loop_close: %lld bytes in %lld blocks\n",
         harness_current, (unsigned long long)(allocs(&mid) - allocs(&start)),
         (long long)(mid.live_bytes - start.live_bytes),
         (long long)(end.live_bytes - start.live_bytes),
         (long long)(end.live_blocks - start.live_blocks));
  ASSERT_EQ(start.live_bytes, end.live_bytes);
  ASSERT_EQ(start.live_blocks, end.live_blocks);
}
