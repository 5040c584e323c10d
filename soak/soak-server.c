/* soak-server: the cnet side of `make soak` -- one TCP echo server that
 * exercises as much of the library as an echo can, for as long as the soak
 * driver (soak/run.sh) keeps soak-client pointed at it.
 *
 *   soak-server [--port P] [--host H] [--seed N] [--timeout MS]
 *               [--sample-ms MS] [--warmup S] [--modes LIST]
 *
 * Per accepted connection, chosen at random (seeded; the seed is printed):
 *   pipe   cnet_socket_pipe(c, c): the library's own backpressure
 *   data   'data' -> cnet_socket_write(), honouring its return value: on 0
 *          (queued) the socket pauses until 'drain'
 *   data+pauses  as data, and now and then it also pauses reading for
 *          10..150 ms on a timer of its own, then resumes (so pause/resume
 *          from outside any listener races with 'drain' -- both must agree
 *          before reading starts again)
 * (--modes pipe,data,data_pauses: draw only among those listed.)
 * All: set_timeout(--timeout, default 5000 ms) and destroy on 'timeout';
 * allow_half_open, so a client that half-closes still gets all of its echo,
 * then the server ends (pipe does it itself; data mode calls end() on
 * 'end'); an 'error' listener that tallies codes (ECONNRESET and EPIPE are
 * what the client's resets cause; anything else is reported).
 *
 * Memory. Before anything else every allocation of cnet and libuv goes
 * through a counting allocator (cnet_replace_allocator). At exit -- after
 * the server and every socket are closed and uv_loop_close() returned 0 --
 * the live bytes and blocks must be back to 0, or the exit status is 1.
 * The process's RSS (/proc/self/statm) and the live heap are printed every
 * --sample-ms (default 5000), once --warmup seconds (default 15) after the
 * first connection, and at SIGTERM.
 *
 * Output (stdout, one line each): "listening on PORT" first; then lines
 * starting "sample", "warmup", "stop", "server", "errors", "allocations",
 * each a list of key=value pairs. SIGTERM or SIGINT stop it: close the
 * server, destroy what is still open, run the loop dry, check. Exit 0 when
 * everything was given back, 1 otherwise (or on a setup failure). */
#define _GNU_SOURCE
#include <cnet.h>

#include <inttypes.h>
#include <malloc.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

/* ---- counting allocator -------------------------------------------------
 * Only what cnet and libuv allocate goes through these; our own per-connection
 * records use the C library directly and are counted separately, so the heap
 * figures are the library's alone. malloc_usable_size() is what the block
 * really holds, so live_bytes returns exactly to 0 when all is freed. */

static struct {
  uint64_t calls, frees;
  int64_t live_bytes, live_blocks, peak_bytes;
} AC;

/* libuv's thread pool could allocate from its threads: relaxed atomics. */
#define ADD(f, n) __atomic_add_fetch(&(f), (n), __ATOMIC_RELAXED)
#define GET(f) __atomic_load_n(&(f), __ATOMIC_RELAXED)

static void note(void *p, int sign) {
  int64_t live;

  if (p == NULL)
    return;
  live = ADD(AC.live_bytes, sign * (int64_t)malloc_usable_size(p));
  ADD(AC.live_blocks, sign);
  if (live > GET(AC.peak_bytes)) /* a racy max is fine for a figure */
    __atomic_store_n(&AC.peak_bytes, live, __ATOMIC_RELAXED);
}

static void *count_malloc(size_t n) {
  void *p = malloc(n);

  ADD(AC.calls, 1);
  note(p, 1);
  return p;
}

static void *count_calloc(size_t n, size_t size) {
  void *p = calloc(n, size);

  ADD(AC.calls, 1);
  note(p, 1);
  return p;
}

static void count_free(void *p) {
  if (p == NULL)
    return;
  ADD(AC.frees, 1);
  note(p, -1);
  free(p);
}

static void *count_realloc(void *p, size_t n) {
  size_t old = p != NULL ? malloc_usable_size(p) : 0;
  void *q;

  if (p != NULL && n == 0) { /* realloc(p, 0) frees, as C's does here */
    count_free(p);
    return NULL;
  }
  q = realloc(p, n);
  ADD(AC.calls, 1);
  if (q == NULL)
    return NULL;
  if (p == NULL)
    ADD(AC.live_blocks, 1);
  ADD(AC.live_bytes, (int64_t)malloc_usable_size(q) - (int64_t)old);
  if (GET(AC.live_bytes) > GET(AC.peak_bytes))
    __atomic_store_n(&AC.peak_bytes, GET(AC.live_bytes), __ATOMIC_RELAXED);
  return q;
}

/* ---- state ----------------------------------------------------------------
 */

enum mode { M_PIPE, M_DATA, M_DATA_PAUSES, M_COUNT };

/* One accepted connection. Lives from 'connection' until its pause timer has
 * closed after the socket's 'close' (the timer is always initialised: that
 * costs no allocation and keeps teardown to one path). */
typedef struct conn_s {
  struct conn_s *prev, *next; /* the live list, for teardown */
  cnet_socket_t *s;
  uv_timer_t pause_timer;
  enum mode mode;
  bool drain_wait;  /* paused because write() queued: until 'drain' */
  bool timer_pause; /* paused on our timer: until it fires */
  uint64_t rng;
} conn_t;

static enum mode modes[M_COUNT] = {M_PIPE, M_DATA, M_DATA_PAUSES};
static unsigned nmodes = M_COUNT; /* --modes: which ones connections draw */

static uv_loop_t *loop;
static cnet_server_t *srv;
static conn_t live_head = {.prev = &live_head, .next = &live_head};
static uv_signal_t sigint_h, sigterm_h;
static uv_timer_t sample_timer, warmup_timer;
/* 5 s, not Node-ish 2 s: 10 000 clients must each be touched once per
 * period to stay open, and on two shared cores the soak-client cannot do
 * that every 2 s with margin (see soak/README.md). */
static int64_t timeout_ms = 5000;
static uint64_t sample_ms = 5000, warmup_s = 15;
static uint64_t seed;
static uint64_t t0_ms; /* uv_now() at listen */
static bool
    warmup_started; /* the warm-up clock starts at the first connection */
static bool stopping;

static struct {
  uint64_t accepted, closed, open, peak_open;
  uint64_t per_mode[M_COUNT];
  uint64_t bytes_in, bytes_out;
  uint64_t timeouts, ends, drains_waited, timer_pauses;
  uint64_t err_reset, err_pipe, err_other, accept_errors;
  uint64_t records_live; /* conn_t records not yet freed */
} st;

static int64_t heap_at_listen;

static uint64_t splitmix(uint64_t *x) {
  uint64_t z = (*x += 0x9e3779b97f4a7c15ull);

  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
  return z ^ (z >> 31);
}

static long rss_kb(void) {
  long pages = 0, resident = 0;
  FILE *f = fopen("/proc/self/statm", "re");

  if (f == NULL)
    return -1;
  if (fscanf(f, "%ld %ld", &pages, &resident) != 2)
    resident = -1;
  fclose(f);
  return resident < 0 ? -1 : resident * (sysconf(_SC_PAGESIZE) / 1024);
}

static void print_sample(const char *tag) {
  printf("%s t=%.1f rss_kb=%ld heap_kb=%" PRId64 " heap_blocks=%" PRId64
         " conns=%" PRIu64 " accepted=%" PRIu64 "\n",
         tag, (double)(uv_now(loop) - t0_ms) / 1000.0, rss_kb(),
         GET(AC.live_bytes) / 1024, GET(AC.live_blocks), st.open, st.accepted);
  fflush(stdout);
}

static void on_warmup(uv_timer_t *t) {
  (void)t;
  print_sample("warmup");
}

/* ---- per connection -------------------------------------------------------
 */

static void on_record_closed(uv_handle_t *h) {
  free(h->data); /* the conn_t */
  st.records_live--;
}

static void resume_if_free(conn_t *c) {
  if (!c->drain_wait && !c->timer_pause)
    cnet_socket_resume(c->s);
}

static void on_pause_over(uv_timer_t *t) {
  conn_t *c = t->data;

  c->timer_pause = false;
  if (!cnet_socket_destroyed(c->s)) /* destroyed, its 'close' still to come */
    resume_if_free(c);
}

static void on_data(cnet_socket_t *s, const cnet_event_t *ev, void *ctx) {
  conn_t *c = ctx;
  int r = cnet_socket_write(s, ev->data.base, ev->data.len, NULL, NULL);

  if (r < 0) { /* misuse: cannot happen on a live socket; say so loudly */
    fprintf(stderr, "soak-server: write: %s\n", cnet_last_error()->message);
    st.err_other++;
    cnet_socket_destroy(s, NULL);
    return;
  }
  if (r == 0) { /* queued in user memory: stop reading until 'drain' */
    c->drain_wait = true;
    st.drains_waited++;
    cnet_socket_pause(s);
  }
  if (c->mode == M_DATA_PAUSES && !c->timer_pause &&
      splitmix(&c->rng) % 8 == 0) {
    c->timer_pause = true;
    st.timer_pauses++;
    cnet_socket_pause(s);
    uv_timer_start(&c->pause_timer, on_pause_over, 10 + splitmix(&c->rng) % 141,
                   0);
  }
}

static void on_drain(cnet_socket_t *s, const cnet_event_t *ev, void *ctx) {
  conn_t *c = ctx;

  (void)s, (void)ev;
  if (!c->drain_wait)
    return; /* a drain after a write that did not make us wait */
  c->drain_wait = false;
  resume_if_free(c);
}

/* The client half-closed: everything it sent has been read (and written or
 * queued); end() sends our FIN after the queue, so it gets its whole echo. */
static void on_end_data(cnet_socket_t *s, const cnet_event_t *ev, void *ctx) {
  (void)ev, (void)ctx;
  st.ends++;
  cnet_socket_end(s, NULL, 0, NULL, NULL);
}

static void on_end_pipe(cnet_socket_t *s, const cnet_event_t *ev, void *ctx) {
  (void)s, (void)ev, (void)ctx;
  st.ends++; /* the pipe ends us itself */
}

static void on_timeout(cnet_socket_t *s, const cnet_event_t *ev, void *ctx) {
  (void)ev, (void)ctx;
  st.timeouts++;
  cnet_socket_destroy(s, NULL);
}

static void on_sock_error(cnet_socket_t *s, const cnet_event_t *ev, void *ctx) {
  const char *code = ev->error->code != NULL ? ev->error->code : "?";

  (void)s, (void)ctx;
  if (strcmp(code, "ECONNRESET") == 0)
    st.err_reset++;
  else if (strcmp(code, "EPIPE") == 0)
    st.err_pipe++;
  else {
    if (st.err_other++ < 20)
      fprintf(stderr, "soak-server: unexpected socket error: %s\n",
              ev->error->message);
  }
}

static void on_sock_close(cnet_socket_t *s, const cnet_event_t *ev, void *ctx) {
  conn_t *c = ctx;

  (void)ev;
  st.closed++;
  st.open--;
  st.bytes_in += cnet_socket_bytes_read(s);
  st.bytes_out += cnet_socket_bytes_written(s);
  c->prev->next = c->next;
  c->next->prev = c->prev;
  c->s = NULL; /* cnet frees the socket after this listener */
  uv_close((uv_handle_t *)&c->pause_timer, on_record_closed);
}

static void on_connection(cnet_server_t *server, const cnet_event_t *ev,
                          void *ctx) {
  cnet_socket_t *s = ev->connection;
  conn_t *c;

  (void)server, (void)ctx;
  if (!warmup_started) {
    warmup_started = true;
    uv_timer_start(&warmup_timer, on_warmup, warmup_s * 1000, 0);
  }
  c = calloc(1, sizeof(*c));
  if (c == NULL) {
    st.err_other++;
    cnet_socket_destroy(s, NULL);
    return;
  }
  st.records_live++;
  st.accepted++;
  if (++st.open > st.peak_open)
    st.peak_open = st.open;
  c->s = s;
  c->rng = seed ^ (st.accepted * 0xd1b54a32d192ed03ull);
  c->mode = modes[splitmix(&c->rng) % nmodes];
  st.per_mode[c->mode]++;
  uv_timer_init(loop, &c->pause_timer);
  c->pause_timer.data = c;
  c->next = live_head.next;
  c->prev = &live_head;
  live_head.next->prev = c;
  live_head.next = c;

  cnet_socket_on(s, CNET_EV_ERROR, on_sock_error, c);
  cnet_socket_on(s, CNET_EV_CLOSE, on_sock_close, c);
  cnet_socket_set_timeout(s, timeout_ms, on_timeout, c);
  if (c->mode == M_PIPE) {
    cnet_socket_on(s, CNET_EV_END, on_end_pipe, c);
    cnet_socket_pipe(s, s, NULL);
  } else {
    cnet_socket_on(s, CNET_EV_END, on_end_data, c);
    cnet_socket_on(s, CNET_EV_DRAIN, on_drain, c);
    cnet_socket_on(s, CNET_EV_DATA, on_data, c); /* starts reading */
  }
}

/* ---- server, samples, signals ------------------------------------------- */

static void on_accept_error(cnet_server_t *server, const cnet_event_t *ev,
                            void *ctx) {
  (void)server, (void)ctx;
  if (st.accept_errors++ < 20)
    fprintf(stderr, "soak-server: %s (server keeps listening)\n",
            ev->error->message);
}

static void on_server_error(cnet_server_t *server, const cnet_event_t *ev,
                            void *ctx) {
  (void)server, (void)ctx;
  fprintf(stderr, "soak-server: %s\n", ev->error->message);
  exit(1);
}

static void on_listening(cnet_server_t *server, const cnet_event_t *ev,
                         void *ctx) {
  cnet_address_t a;

  (void)ev, (void)ctx;
  if (cnet_server_address(server, &a) != 0) {
    fprintf(stderr, "soak-server: no address after listening\n");
    exit(1);
  }
  t0_ms = uv_now(loop);
  heap_at_listen = GET(AC.live_bytes);
  printf("listening on %d\n", a.port);
  printf("config seed=%" PRIu64 " timeout_ms=%" PRId64 " pid=%d\n", seed,
         timeout_ms, (int)getpid());
  print_sample("sample");
  fflush(stdout);
}

static void on_sample(uv_timer_t *t) {
  (void)t;
  print_sample("sample");
}

static void on_signal(uv_signal_t *h, int signum) {
  (void)h, (void)signum;
  if (stopping)
    return;
  stopping = true;
  /* What the soak left behind, with the server still up: the client has
   * drained and closed everything, so conns should be 0 and the heap close
   * to what a fresh listening server holds. */
  print_sample("stop");
  printf("stop heap_at_listen_kb=%" PRId64 " heap_now_kb=%" PRId64
         " peak_heap_kb=%" PRId64 "\n",
         heap_at_listen / 1024, GET(AC.live_bytes) / 1024,
         GET(AC.peak_bytes) / 1024);
  fflush(stdout);
  uv_close((uv_handle_t *)&sigint_h, NULL);
  uv_close((uv_handle_t *)&sigterm_h, NULL);
  uv_close((uv_handle_t *)&sample_timer, NULL);
  uv_close((uv_handle_t *)&warmup_timer, NULL);
  cnet_server_close(srv, NULL, NULL);
  /* Destroy from outside any listener; 'close' (which unlinks) comes later,
   * but take next first anyway. */
  for (conn_t *c = live_head.next, *next; c != &live_head; c = next) {
    next = c->next;
    cnet_socket_destroy(c->s, NULL);
  }
}

static void raise_nofile(void) {
  struct rlimit rl;

  if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
    rl.rlim_cur = rl.rlim_max; /* 10k connections need more than 1024 */
    if (setrlimit(RLIMIT_NOFILE, &rl) != 0)
      perror("soak-server: setrlimit");
  }
}

static void usage(void) {
  fprintf(stderr, "usage: soak-server [--port P] [--host H] [--seed N] "
                  "[--timeout MS] [--sample-ms MS] [--warmup S]\n"
                  "                   [--modes pipe,data,data_pauses]\n");
  exit(2);
}

/* --modes pipe,data: draw only among these (e.g. to soak the rest while
 * one of them has a known bug). */
static void parse_modes(const char *list) {
  static const char *const names[M_COUNT] = {"pipe", "data", "data_pauses"};
  const char *p = list;

  nmodes = 0;
  while (*p != '\0') {
    size_t n = strcspn(p, ",");
    unsigned m = 0;

    while (m < M_COUNT &&
           !(strlen(names[m]) == n && strncmp(p, names[m], n) == 0))
      m++;
    if (m == M_COUNT || nmodes == M_COUNT)
      usage();
    modes[nmodes++] = (enum mode)m;
    p += n + (p[n] == ',');
  }
  if (nmodes == 0)
    usage();
}

static uint64_t num_arg(int argc, char **argv, int *i) {
  char *end;
  unsigned long long v;

  if (++*i >= argc)
    usage();
  v = strtoull(argv[*i], &end, 0);
  if (*argv[*i] == '\0' || *end != '\0')
    usage();
  return v;
}

int main(int argc, char **argv) {
  cnet_server_options_t so = {.allow_half_open = true};
  cnet_listen_options_t lo = {.host = "127.0.0.1", .backlog = 4096};
  bool seeded = false;
  int status = 0, rc;

  /* First of all: no cnet or libuv call may come before this. */
  if (cnet_replace_allocator(count_malloc, count_realloc, count_calloc,
                             count_free) != 0) {
    fprintf(stderr, "soak-server: cnet_replace_allocator failed\n");
    return 1;
  }
  for (int i = 1; i < argc; i++) {
    if (strcmp(argv[i], "--port") == 0)
      lo.port = (int)num_arg(argc, argv, &i);
    else if (strcmp(argv[i], "--host") == 0 && i + 1 < argc)
      lo.host = argv[++i];
    else if (strcmp(argv[i], "--seed") == 0)
      seed = num_arg(argc, argv, &i), seeded = true;
    else if (strcmp(argv[i], "--timeout") == 0)
      timeout_ms = (int64_t)num_arg(argc, argv, &i);
    else if (strcmp(argv[i], "--sample-ms") == 0)
      sample_ms = num_arg(argc, argv, &i);
    else if (strcmp(argv[i], "--warmup") == 0)
      warmup_s = num_arg(argc, argv, &i);
    else if (strcmp(argv[i], "--modes") == 0 && i + 1 < argc)
      parse_modes(argv[++i]);
    else
      usage();
  }
  if (!seeded)
    seed = (uint64_t)time(NULL) ^ ((uint64_t)getpid() << 32);
  if (sample_ms == 0)
    sample_ms = 5000;
  raise_nofile();

  loop = uv_default_loop();
  uv_signal_init(loop, &sigint_h);
  uv_signal_init(loop, &sigterm_h);
  uv_signal_start(&sigint_h, on_signal, SIGINT);
  uv_signal_start(&sigterm_h, on_signal, SIGTERM);
  uv_unref((uv_handle_t *)&sigint_h); /* the server keeps the loop alive */
  uv_unref((uv_handle_t *)&sigterm_h);
  uv_timer_init(loop, &sample_timer);
  uv_timer_init(loop, &warmup_timer);
  uv_unref((uv_handle_t *)&sample_timer);
  uv_unref((uv_handle_t *)&warmup_timer);
  uv_timer_start(&sample_timer, on_sample, sample_ms, sample_ms);

  srv = cnet_create_server(loop, &so, on_connection, NULL);
  if (srv == NULL) {
    fprintf(stderr, "soak-server: %s\n", cnet_last_error()->message);
    return 1;
  }
  cnet_server_on(srv, CNET_EV_ERROR, on_server_error, NULL);
  cnet_server_on(srv, CNET_EV_ACCEPT_ERROR, on_accept_error, NULL);
  if (cnet_server_listen(srv, &lo, on_listening, NULL) != 0) {
    fprintf(stderr, "soak-server: %s\n", cnet_last_error()->message);
    return 1;
  }

  uv_run(loop, UV_RUN_DEFAULT); /* until SIGTERM and every 'close' */
  cnet_server_free(srv);
  uv_run(loop, UV_RUN_DEFAULT); /* the last handles' close callbacks */
  rc = uv_loop_close(loop);

  printf("server seed=%" PRIu64 " accepted=%" PRIu64 " closed=%" PRIu64
         " peak_open=%" PRIu64 " pipe=%" PRIu64 " data=%" PRIu64
         " data_pauses=%" PRIu64 " bytes_in=%" PRIu64 " bytes_out=%" PRIu64
         " timeouts=%" PRIu64 " half_closes=%" PRIu64 " drain_waits=%" PRIu64
         " timer_pauses=%" PRIu64 "\n",
         seed, st.accepted, st.closed, st.peak_open, st.per_mode[M_PIPE],
         st.per_mode[M_DATA], st.per_mode[M_DATA_PAUSES], st.bytes_in,
         st.bytes_out, st.timeouts, st.ends, st.drains_waited, st.timer_pauses);
  {
    struct rusage ru;

    getrusage(RUSAGE_SELF, &ru);
    printf("cpu user_s=%.2f sys_s=%.2f max_rss_kb=%ld\n",
           (double)ru.ru_utime.tv_sec + (double)ru.ru_utime.tv_usec / 1e6,
           (double)ru.ru_stime.tv_sec + (double)ru.ru_stime.tv_usec / 1e6,
           ru.ru_maxrss);
  }
  printf("errors econnreset=%" PRIu64 " epipe=%" PRIu64 " other=%" PRIu64
         " accept_errors=%" PRIu64 "\n",
         st.err_reset, st.err_pipe, st.err_other, st.accept_errors);
  printf("allocations calls=%" PRIu64 " frees=%" PRIu64 " live_bytes=%" PRId64
         " live_blocks=%" PRId64 " peak_heap_kb=%" PRId64
         " loop_close=%d records_live=%" PRIu64 "\n",
         GET(AC.calls), GET(AC.frees), GET(AC.live_bytes), GET(AC.live_blocks),
         GET(AC.peak_bytes) / 1024, rc, st.records_live);
  if (rc != 0) {
    fprintf(stderr, "soak-server: uv_loop_close: %s\n", uv_strerror(rc));
    status = 1;
  }
  if (GET(AC.live_bytes) != 0 || GET(AC.live_blocks) != 0) {
    fprintf(stderr,
            "soak-server: LEAK: %" PRId64 " bytes in %" PRId64
            " blocks still allocated by cnet/libuv at exit\n",
            GET(AC.live_bytes), GET(AC.live_blocks));
    status = 1;
  }
  if (st.records_live != 0 || st.open != 0) {
    fprintf(stderr,
            "soak-server: %" PRIu64 " connection records, %" PRIu64
            " connections never closed\n",
            st.records_live, st.open);
    status = 1;
  }
  if (st.err_other != 0) {
    fprintf(stderr, "soak-server: %" PRIu64 " unexpected errors\n",
            st.err_other);
    status = 1;
  }
  return status;
}
