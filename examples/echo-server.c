/* The net.createServer() example of Node's docs, in C:
 *
 *   const server = net.createServer((c) => {
 *     console.log('client connected');
 *     c.on('end', () => console.log('client disconnected'));
 *     c.write('hello\r\n');
 *     c.pipe(c);
 *   });
 *   server.on('error', (err) => { throw err; });
 *   server.listen(8124, () => console.log('server bound'));
 *
 * Usage: echo-server [PORT|PATH] [--bench] [--reuse-port] [--workers N]
 *                    [--stats]
 *
 *   PORT|PATH     A number is a TCP port (0: any free one, printed as
 *                 "listening on PORT"), anything else a Unix socket path;
 *                 8124 by default.
 *   --bench       No greeting and no printing: a plain pipe(c, c) echo.
 *   --reuse-port  Listen with SO_REUSEPORT (Node's reusePort), so several
 *                 echo-servers can share one TCP port and the kernel
 *                 spreads the connections among them.
 *   --workers N   A server that uses every core in one call: N threads,
 *                 each running a loop of its own with a server of its own
 *                 on the same TCP port (always with SO_REUSEPORT), so the
 *                 kernel spreads the connections over the threads. With
 *                 port 0 the first worker gets a free port and the others
 *                 join it; "server bound" (and "listening on PORT") come
 *                 once, when all N listen. TCP only: with a PATH it is an
 *                 error (exit 2). 0 is the single loop, as without it.
 *   --stats       At exit, one line per worker (the single loop is worker
 *                 1): "worker I: C connections, B bytes" -- connections
 *                 accepted, bytes echoed back.
 *
 * SIGINT or SIGTERM close the server (every worker's) cleanly; the program
 * exits 0 when the last connection has closed. */
#include <cnet.h>

#include <inttypes.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define GREETING "hello\r\n"
#define MAX_WORKERS 1024

typedef struct stats_s {
  uint64_t connections, bytes; /* one loop's: no locking */
} stats_t;

typedef struct worker_s {
  uv_thread_t thread;
  uv_loop_t loop;
  uv_async_t stop; /* the main thread's signal handler pokes it */
  cnet_server_t *srv;
  int port;   /* the port to listen on; then the one it got */
  int status; /* uv_loop_close()'s, at the end */
  stats_t stats;
} worker_t;

static bool bench;
static bool reuse_port;
static bool print_stats;
static int nworkers;
static worker_t *workers;
static uv_sem_t worker_listening;
static uv_signal_t sigint, sigterm;

static void on_client_end(cnet_socket_t *c, const cnet_event_t *ev,
                          void *ctx) {
  (void)c, (void)ev, (void)ctx;
  puts("client disconnected");
  fflush(stdout);
}

static void on_client_close(cnet_socket_t *c, const cnet_event_t *ev,
                            void *ctx) {
  stats_t *stats = ctx;

  (void)ev;
  stats->bytes += cnet_socket_bytes_written(c) - (bench ? 0 : strlen(GREETING));
}

static void on_connection(cnet_server_t *srv, const cnet_event_t *ev,
                          void *ctx) {
  cnet_socket_t *c = ev->connection;
  stats_t *stats = ctx;

  (void)srv;
  stats->connections++;
  if (print_stats) /* the plain echo has no listener at all */
    cnet_socket_on(c, CNET_EV_CLOSE, on_client_close, stats);
  if (!bench) {
    puts("client connected");
    fflush(stdout);
    cnet_socket_on(c, CNET_EV_END, on_client_end, NULL);
    cnet_socket_write(c, GREETING, strlen(GREETING), NULL, NULL);
  }
  cnet_socket_pipe(c, c, NULL);
}

static void on_error(cnet_server_t *srv, const cnet_event_t *ev, void *ctx) {
  (void)srv, (void)ctx;
  fprintf(stderr, "%s\n", ev->error->message); /* Node would throw */
  exit(1);
}

static void on_listening(cnet_server_t *srv, const cnet_event_t *ev,
                         void *ctx) {
  cnet_address_t a;

  (void)ev;
  puts("server bound");
  if (ctx != NULL && cnet_server_address(srv, &a) == 0)
    printf("listening on %d\n", a.port);
  fflush(stdout);
}

static void on_signal(uv_signal_t *sig, int signum) {
  cnet_server_t *srv = sig->data;

  (void)signum;
  uv_close((uv_handle_t *)&sigint, NULL);
  uv_close((uv_handle_t *)&sigterm, NULL);
  if (srv != NULL)
    cnet_server_close(srv, NULL, NULL); /* unlinks a socket path */
  for (int i = 0; i < nworkers; i++)
    uv_async_send(&workers[i].stop); /* each closes its own server */
}

/* srv NULL: the servers are the workers', and the main loop runs for the
 * signals alone. */
static void watch_signals(uv_loop_t *loop, cnet_server_t *srv) {
  uv_signal_init(loop, &sigint);
  uv_signal_init(loop, &sigterm);
  sigint.data = sigterm.data = srv;
  uv_signal_start(&sigint, on_signal, SIGINT);
  uv_signal_start(&sigterm, on_signal, SIGTERM);
  if (srv != NULL) {
    uv_unref((uv_handle_t *)&sigint); /* the server alone keeps us running */
    uv_unref((uv_handle_t *)&sigterm);
  }
}

/* Whether s is a whole decimal number (then in *n). One too large for an
 * int becomes INT_MAX, which listen() refuses as a bad port, rather than
 * wrapping round to a good one. */
static bool is_number(const char *s, long *n) {
  char *end;

  *n = strtol(s, &end, 10);
  if (*n > INT_MAX || *n < INT_MIN)
    *n = *n > 0 ? INT_MAX : INT_MIN;
  return *s != '\0' && *end == '\0';
}

static int listen_on(cnet_server_t *srv, const char *where) {
  long port;

  if (is_number(where, &port)) {
    cnet_listen_options_t opts = {.port = (int)port, .reuse_port = reuse_port};

    return cnet_server_listen(srv, &opts, on_listening, port == 0 ? srv : NULL);
  }
  return cnet_server_listen_path(srv, where, 0, on_listening, NULL);
}

static void report(int i, const stats_t *stats) {
  printf("worker %d: %" PRIu64 " connections, %" PRIu64 " bytes\n", i + 1,
         stats->connections, stats->bytes);
}

static void usage(const char *why) {
  fprintf(stderr,
          "echo-server: %s\nusage: echo-server [PORT|PATH] [--bench] "
          "[--reuse-port] [--workers N] [--stats]\n",
          why);
  exit(2);
}

/* ---- --workers N: a loop and a server per thread ------------------------- */

static void on_worker_listening(cnet_server_t *srv, const cnet_event_t *ev,
                                void *ctx) {
  worker_t *w = ctx;
  cnet_address_t a;

  (void)ev;
  if (cnet_server_address(srv, &a) == 0)
    w->port = a.port;
  uv_sem_post(&worker_listening); /* the main thread reads w->port now */
}

static void on_worker_stop(uv_async_t *stop) {
  worker_t *w = stop->data;

  uv_close((uv_handle_t *)stop, NULL);
  cnet_server_close(w->srv, NULL, NULL);
}

/* A worker's thread: the single-loop main() below, on a loop of its own. */
static void worker_run(void *arg) {
  worker_t *w = arg;
  cnet_listen_options_t opts = {.port = w->port, .reuse_port = true};

  uv_loop_init(&w->loop);
  uv_async_init(&w->loop, &w->stop, on_worker_stop);
  w->stop.data = w;
  w->srv = cnet_create_server(&w->loop, NULL, on_connection, &w->stats);
  cnet_server_on(w->srv, CNET_EV_ERROR, on_error, NULL);
  if (cnet_server_listen(w->srv, &opts, on_worker_listening, w) != 0) {
    fprintf(stderr, "%s\n", cnet_last_error()->message);
    exit(1);
  }
  uv_run(&w->loop, UV_RUN_DEFAULT);
  cnet_server_free(w->srv);
  uv_run(&w->loop, UV_RUN_DEFAULT); /* let the last handles close */
  w->status = uv_loop_close(&w->loop);
}

/* Start the workers one at a time, each once the one before listens (the
 * first may get the port, from 0, that the others then share); the signals
 * stop them; wait for every one to finish. */
static int run_workers(const char *where) {
  long port;
  int status = 0;

  if (!is_number(where, &port))
    usage("--workers needs a TCP port, not a Unix socket path");
  workers = calloc(nworkers, sizeof(*workers));
  if (workers == NULL || uv_sem_init(&worker_listening, 0) != 0)
    return 1; /* out of memory */
  watch_signals(uv_default_loop(), NULL);
  for (int i = 0; i < nworkers; i++) {
    workers[i].port = i == 0 ? (int)port : workers[0].port;
    if (uv_thread_create(&workers[i].thread, worker_run, &workers[i]) != 0) {
      fprintf(stderr, "echo-server: cannot start worker %d\n", i + 1);
      return 1;
    }
    uv_sem_wait(&worker_listening);
  }
  puts("server bound");
  if (port == 0)
    printf("listening on %d\n", workers[0].port);
  fflush(stdout);
  cnet_run(); /* until a signal has told every worker to stop */
  for (int i = 0; i < nworkers; i++) {
    uv_thread_join(&workers[i].thread);
    if (workers[i].status != 0)
      status = 1;
    if (print_stats)
      report(i, &workers[i].stats);
  }
  uv_sem_destroy(&worker_listening);
  free(workers);
  return status == 0 && uv_loop_close(uv_default_loop()) == 0 ? 0 : 1;
}

int main(int argc, char **argv) {
  const char *where = "8124";
  cnet_server_t *srv;
  stats_t stats = {0};
  long n;

  for (int i = 1; i < argc; i++) {
    if (strcmp(argv[i], "--bench") == 0)
      bench = true;
    else if (strcmp(argv[i], "--reuse-port") == 0)
      reuse_port = true;
    else if (strcmp(argv[i], "--stats") == 0)
      print_stats = true;
    else if (strcmp(argv[i], "--workers") == 0) {
      if (++i == argc || !is_number(argv[i], &n) || n < 0 || n > MAX_WORKERS)
        usage("--workers takes a number of threads, 0 to 1024");
      nworkers = (int)n;
    } else
      where = argv[i];
  }
  if (nworkers > 0)
    return run_workers(where);

  srv = cnet_create_server(NULL, NULL, on_connection, &stats);
  cnet_server_on(srv, CNET_EV_ERROR, on_error, NULL);
  watch_signals(uv_default_loop(), srv);
  if (listen_on(srv, where) != 0) {
    fprintf(stderr, "%s\n", cnet_last_error()->message);
    return 1;
  }
  cnet_run();
  cnet_server_free(srv);
  cnet_run(); /* let the last handles close */
  if (print_stats)
    report(0, &stats);
  return uv_loop_close(uv_default_loop()) == 0 ? 0 : 1;
}
